//! The flags every `mfp-host` command takes (DESIGN.md, "Host contract"): which state dir
//! and component, the sandbox's limits, and the network the device may reach. Both front
//! ends open their device from them.

use std::path::PathBuf;
use std::time::Duration;

use crate::capabilities::net::{NetConfig, ProxyConfig, ResolveRule, SigninOverrides};
use crate::device::DeviceOptions;
use crate::frontend::Failure;
use crate::runtime::RuntimeOptions;
use crate::runtime::component::ComponentSource;

/// The global flags of `mfp-host`. They show once, under their own heading, after each
/// command's own options.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Global options")]
pub struct DeviceFlags {
    /// Folder holding the device's database and compiled-code cache.
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Run this component file instead of the one built into the binary.
    #[arg(long, global = true, value_name = "PATH")]
    pub component: Option<PathBuf>,
    /// Wall-clock limit for one call into the component.
    #[arg(long, global = true, value_name = "MS", default_value_t = 5000)]
    pub call_timeout_ms: u64,
    /// Wall-clock limit for one call that uses the network (sign-in, a send).
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 600)]
    pub network_call_timeout_secs: u64,
    /// Linear-memory limit of one component instance.
    #[arg(long, global = true, value_name = "MIB", default_value_t = 64)]
    pub memory_limit_mib: usize,
    /// Compile the component at every start instead of caching it in the state dir.
    #[arg(long, global = true)]
    pub no_compile_cache: bool,
    /// The identity platform the device may reach.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        default_value = "https://login.microsoftonline.com"
    )]
    pub authority: String,
    /// Connect to ADDR:PORT when the component asks for HOST:PORT (TLS still verifies HOST).
    #[arg(long, global = true, value_name = "HOST:PORT=ADDR:PORT")]
    pub resolve: Vec<String>,
    /// Extra trusted root certificates (PEM), besides the built-in web roots.
    #[arg(long, global = true, value_name = "PEM")]
    pub ca_file: Vec<PathBuf>,
    /// Sign in to this tenant for this invocation instead of the stored `tenant` setting.
    #[arg(long, global = true, value_name = "TENANT")]
    pub tenant: Option<String>,
    /// Use this application (client) id for this invocation instead of the stored `client-id`.
    #[arg(long, global = true, value_name = "GUID")]
    pub client_id: Option<String>,
    /// HTTP proxy for HTTPS to the identity platform (HTTP CONNECT).
    #[arg(long, global = true, value_name = "URL")]
    pub proxy: Option<String>,
    /// Longest wait for one HTTPS read or write. (SMTP waits per RFC 5321 stage, up to 10 minutes.)
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 60)]
    pub io_timeout_secs: u64,
    /// For tests only: divide every SMTP stage timeout of RFC 5321 (5 minutes for a reply, 10
    /// for the reply to the final dot) by N. 1 keeps the RFC values.
    #[arg(
        long,
        global = true,
        value_name = "N",
        default_value_t = 1,
        hide = true
    )]
    pub smtp_timeout_divisor: u32,
    /// Longest wait for a TCP connection (and for a free SMTP connection slot).
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 10)]
    pub connect_timeout_secs: u64,
}

/// The default state dir: the per-user state folder (XDG on Linux).
pub fn default_state_dir() -> PathBuf {
    directories::ProjectDirs::from("", "", "mfp-smtp-oauth")
        .map(|dirs| {
            dirs.state_dir()
                .unwrap_or(dirs.data_local_dir())
                .to_path_buf()
        })
        .unwrap_or_else(|| PathBuf::from("mfp-state"))
}

impl DeviceFlags {
    /// The state dir these flags name.
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir.clone().unwrap_or_else(default_state_dir)
    }

    /// The device options these flags describe, without the network (see [`Self::device_options`]).
    pub fn offline_device_options(&self) -> DeviceOptions {
        let mut options = DeviceOptions::new(self.state_dir());
        options.component = self
            .component
            .clone()
            .map(ComponentSource::File)
            .unwrap_or_default();
        options.compile_cache = !self.no_compile_cache;
        options.runtime = RuntimeOptions {
            call_timeout: Duration::from_millis(self.call_timeout_ms.max(1)),
            network_call_timeout: Duration::from_secs(self.network_call_timeout_secs.max(1)),
            memory_limit: self.memory_limit_mib.max(1).saturating_mul(1 << 20),
            cache_dir: None,
        };
        options
    }

    /// The device options these flags describe, with the network they grant.
    pub fn device_options(&self) -> Result<DeviceOptions, Failure> {
        let mut options = self.offline_device_options();
        options.net = Some(self.net_config()?);
        options.overrides = SigninOverrides {
            tenant: self.tenant.clone(),
            client_id: self.client_id.clone(),
        };
        Ok(options)
    }

    /// The network configuration these flags describe.
    pub fn net_config(&self) -> Result<NetConfig, Failure> {
        let bad = |what: String| {
            Failure::bad_input(
                "network-config-invalid",
                format!("A network option is invalid: {what}"),
                "See `mfp-host --help` for the forms of --authority, --resolve, --ca-file and --proxy.",
            )
        };
        let mut config = NetConfig {
            authority: self.authority.clone(),
            io_timeout: Duration::from_secs(self.io_timeout_secs.max(1)),
            smtp_timeout_divisor: self.smtp_timeout_divisor.max(1),
            connect_timeout: Duration::from_secs(self.connect_timeout_secs.max(1)),
            ..NetConfig::default()
        };
        for rule in &self.resolve {
            config
                .resolve
                .push(ResolveRule::parse(rule).map_err(|e| bad(e.to_string()))?);
        }
        for path in &self.ca_file {
            config.extra_roots_pem.push(
                std::fs::read(path)
                    .map_err(|e| bad(format!("--ca-file {}: {e}", path.display())))?,
            );
        }
        if let Some(proxy) = &self.proxy {
            config.proxy = Some(ProxyConfig::parse(proxy).map_err(|e| bad(e.to_string()))?);
        }
        Ok(config)
    }
}

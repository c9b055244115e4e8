//! The `net` import of the WIT world, served by this module's [`NetGrant`]: the adapter
//! between the generated bindings and the plain network code beside it.

use std::net::IpAddr;
use std::time::Duration;

use wasmtime::component::{Resource, ResourceTable};

use super::{HttpRequest, MAX_STAGE_TIMEOUT, NetError, NetGrant, SmtpConnection};
use crate::bindings::net::{self as wit, Host, HostConnection};

/// One call's network access: its grant (none for panel calls) and its open connections.
pub struct NetAccess {
    grant: Option<NetGrant>,
    table: ResourceTable,
    overrides: SigninOverrides,
    /// The device's address on the last SMTP connection opened, for an EHLO literal.
    last_local_ip: Option<IpAddr>,
    /// The sum of the SMTP timeouts the component asked for: the call's deadline grows
    /// by it, so a send waiting as long as RFC 5321 allows is not stopped as runaway.
    smtp_wait_budget: Duration,
}

/// The host's `--tenant` and `--client-id`, handed to the component for this invocation.
#[derive(Clone, Debug, Default)]
pub struct SigninOverrides {
    pub tenant: Option<String>,
    pub client_id: Option<String>,
}

impl NetAccess {
    pub fn new(grant: Option<NetGrant>, overrides: SigninOverrides) -> Self {
        Self {
            grant,
            table: ResourceTable::new(),
            overrides,
            last_local_ip: None,
            smtp_wait_budget: Duration::ZERO,
        }
    }

    /// How much longer than its own deadline this call may run: the sum of the stage
    /// timeouts of every SMTP read, write and handshake it made (each capped at
    /// [`MAX_STAGE_TIMEOUT`]).
    pub fn smtp_wait_budget(&self) -> Duration {
        self.smtp_wait_budget
    }

    /// Takes a stage timeout the component asked for, capped, into the budget.
    fn stage_timeout(&mut self, timeout_ms: u32) -> Duration {
        let timeout = Duration::from_millis(u64::from(timeout_ms)).min(MAX_STAGE_TIMEOUT);
        self.smtp_wait_budget = self.smtp_wait_budget.saturating_add(timeout);
        timeout
    }

    fn grant(&self) -> Result<&NetGrant, wit::NetError> {
        self.grant.as_ref().ok_or_else(|| {
            wit::NetError::Denied("no network access is granted to this call".into())
        })
    }

    /// The connection behind `handle`; an unknown handle is a bug, and traps.
    fn connection(
        &mut self,
        handle: &Resource<SmtpConnection>,
    ) -> wasmtime::Result<&mut SmtpConnection> {
        Ok(self.table.get_mut(handle)?)
    }
}

/// The host's network error as the component's `net-error` (one case each).
impl From<NetError> for wit::NetError {
    fn from(err: NetError) -> Self {
        match err {
            NetError::Denied(what) => wit::NetError::Denied(what),
            NetError::Dns(what) => wit::NetError::Dns(what),
            NetError::Refused(what) => wit::NetError::Refused(what),
            NetError::Timeout => wit::NetError::Timeout,
            NetError::Tls(what) => wit::NetError::Tls(what),
            NetError::Closed => wit::NetError::Closed,
            NetError::TooLarge(n) => wit::NetError::TooLarge(n),
            NetError::Proxy(what) => wit::NetError::Proxy(what),
            NetError::Other(what) => wit::NetError::Other(what),
        }
    }
}

impl Host for NetAccess {
    fn http_request(
        &mut self,
        req: wit::Request,
    ) -> wasmtime::Result<Result<wit::Response, wit::NetError>> {
        let request = HttpRequest {
            method: match req.method {
                wit::HttpMethod::Get => "GET",
                wit::HttpMethod::Post => "POST",
            }
            .to_owned(),
            url: req.url,
            headers: req.headers,
            body: req.body,
        };
        Ok(self.grant().and_then(|grant| {
            let response = grant.http_request(request).map_err(wit::NetError::from)?;
            Ok(wit::Response {
                status: response.status,
                headers: response.headers,
                body: response.body,
            })
        }))
    }

    fn ehlo_name(&mut self) -> wasmtime::Result<String> {
        Ok(match &self.grant {
            Some(grant) => grant.ehlo_name(self.last_local_ip),
            None => super::ehlo::ehlo_name(None, self.last_local_ip),
        })
    }

    fn smtp_timeout_divisor(&mut self) -> wasmtime::Result<u32> {
        Ok(self
            .grant
            .as_ref()
            .map_or(1, NetGrant::smtp_timeout_divisor))
    }
}

/// The `config` import: what the host was configured with for this call.
impl crate::bindings::config::Host for NetAccess {
    fn authority(&mut self) -> wasmtime::Result<String> {
        Ok(self
            .grant
            .as_ref()
            .map(|g| g.authority().to_owned())
            .unwrap_or_default())
    }

    fn tenant_override(&mut self) -> wasmtime::Result<Option<String>> {
        Ok(self.overrides.tenant.clone())
    }

    fn client_id_override(&mut self) -> wasmtime::Result<Option<String>> {
        Ok(self.overrides.client_id.clone())
    }
}

impl HostConnection for NetAccess {
    fn connect(
        &mut self,
        host: String,
        port: u16,
    ) -> wasmtime::Result<Result<Resource<SmtpConnection>, wit::NetError>> {
        let connection = match self
            .grant()
            .and_then(|g| g.connect(&host, port).map_err(wit::NetError::from))
        {
            Ok(connection) => connection,
            Err(e) => return Ok(Err(e)),
        };
        self.last_local_ip = connection.local_ip().or(self.last_local_ip);
        // A full table is the host's limit, not the network's: trap.
        Ok(Ok(self.table.push(connection)?))
    }

    fn read(
        &mut self,
        handle: Resource<SmtpConnection>,
        max: u32,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, wit::NetError>> {
        // A reply's time counts once, at its first read: reads that continue it wait
        // only for what is left of it (see `SmtpConnection::read`).
        let timeout = if self.connection(&handle)?.reading_a_reply() {
            Duration::from_millis(u64::from(timeout_ms)).min(MAX_STAGE_TIMEOUT)
        } else {
            self.stage_timeout(timeout_ms)
        };
        Ok(self
            .connection(&handle)?
            .read(max, timeout)
            .map_err(wit::NetError::from))
    }

    fn write(
        &mut self,
        handle: Resource<SmtpConnection>,
        data: Vec<u8>,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<(), wit::NetError>> {
        let timeout = self.stage_timeout(timeout_ms);
        Ok(self
            .connection(&handle)?
            .write(&data, timeout)
            .map_err(wit::NetError::from))
    }

    fn start_tls(
        &mut self,
        handle: Resource<SmtpConnection>,
        server_name: String,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<(), wit::NetError>> {
        let timeout = self.stage_timeout(timeout_ms);
        Ok(self
            .connection(&handle)?
            .start_tls(&server_name, timeout)
            .map_err(wit::NetError::from))
    }

    fn drop(&mut self, handle: Resource<SmtpConnection>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        Ok(())
    }
}

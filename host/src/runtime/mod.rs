//! The wasmtime side: one [`Engine`] and one [`InstancePre`] per process, and a fresh,
//! bounded instance for every call. A call that traps, overruns its deadline or its
//! memory cap returns a [`CallError`]; the instance is dropped and the next call gets a
//! new one, so one bad call never poisons the device.

pub mod compile_cache;
pub mod component;
pub mod sandbox;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wasmtime::component::{Instance, InstancePre, Linker};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store,
    StoreLimits, StoreLimitsBuilder, Trap, UpdateDeadline,
};

use crate::bindings::{mailer, panel, relay, signin};
use crate::capabilities::attachments::AttachmentSet;
use crate::capabilities::net::{NetAccess, NetGrant, SigninOverrides};
use crate::capabilities::relay_client::RelayAccess;
use crate::capabilities::store::DurableStore;
use compile_cache::CacheOutcome;

/// How often the epoch advances; deadlines are whole multiples of it.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Limits of every call into the component.
#[derive(Clone, Debug)]
pub struct RuntimeOptions {
    /// Wall-clock time one panel call may run before it is interrupted.
    pub call_timeout: Duration,
    /// Wall-clock time a call that uses the network (sign-in, a send) may run: the epoch
    /// keeps counting while the component waits on the host's network, so these need more.
    /// An SMTP send may run longer by the sum of the stage timeouts its reads and writes
    /// asked for (RFC 5321 §4.5.3.2: up to 10 minutes for the final reply alone), so a slow
    /// but legitimate server is never cut off by this deadline.
    pub network_call_timeout: Duration,
    /// Linear memory one instance may use, in bytes.
    pub memory_limit: usize,
    /// Where compiled components are cached; `None` compiles at every start.
    pub cache_dir: Option<PathBuf>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(5),
            network_call_timeout: Duration::from_secs(600),
            memory_limit: 64 << 20,
            cache_dir: None,
        }
    }
}

/// Why a call into the component did not return.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("the component ran past its deadline of {0:?} and was stopped")]
    DeadlineExceeded(Duration),
    #[error("the component reached its memory limit of {0} MiB and was stopped")]
    MemoryLimit(usize),
    #[error("the component trapped: {0}")]
    Trap(String),
    #[error("the component could not be instantiated: {0}")]
    Instantiate(String),
}

/// What an instance may hold: its memory cap, the device's store, and this call's network
/// grant and attachments.
pub struct InstanceState {
    memory: MemoryCap,
    pub(crate) store: DurableStore,
    net: NetAccess,
    files: AttachmentSet,
    /// The device connection a relay call serves.
    pub(crate) relay: RelayAccess,
}

/// What one call may reach beyond the store: decided by the host per call, before the
/// component runs, so the component cannot widen it.
#[derive(Default)]
pub struct CallGrants {
    /// The network, if this call may use it (sign-in and sends).
    pub net: Option<NetGrant>,
    /// The files of a send.
    pub attachments: AttachmentSet,
    /// The host's `--tenant` / `--client-id` for this invocation.
    pub overrides: SigninOverrides,
}

impl CallGrants {
    /// Whether this call may use the network (and so gets the longer deadline).
    fn uses_network(&self) -> bool {
        self.net.is_some()
    }
}

/// Wasmtime's [`StoreLimits`] (memory cap, trap on a refused growth), plus a note of
/// whether the memory cap was what stopped the call, so the error can say so.
struct MemoryCap {
    limits: StoreLimits,
    limit: usize,
    hit: bool,
}

impl MemoryCap {
    fn new(limit: usize) -> Self {
        let limits = StoreLimitsBuilder::new()
            .memory_size(limit)
            .table_elements(1 << 16)
            // The component is one core module's memory and a few small tables (its own
            // and wit-component's glue): the memory cap covers the whole instance.
            .memories(1)
            .tables(8)
            .instances(64)
            .trap_on_grow_failure(true)
            .build();
        Self {
            limits,
            limit,
            hit: false,
        }
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.hit |= desired > self.limit;
        self.limits.memory_growing(current, desired, maximum)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .ok();
        Self { stop, thread }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A loaded component, ready to be instantiated for each call.
pub struct Runtime {
    engine: Engine,
    pre: InstancePre<InstanceState>,
    exports: ExportIndices,
    store: DurableStore,
    options: RuntimeOptions,
    cache: CacheOutcome,
    _ticker: EpochTicker,
}

impl Runtime {
    /// The engine configuration every instance runs under: epoch interruption on, and
    /// instances taken from a pool of slots made once, so that the fresh instance of every
    /// call costs little (a panel call is mostly instantiation otherwise).
    pub fn engine() -> wasmtime::Result<Engine> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.wasm_component_model(true);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool()));
        Engine::new(&config)
    }

    /// Compiles (or loads from the cache) `bytes` and links it against the granted
    /// capabilities. Fails if the component imports anything the host does not grant.
    pub fn new(
        bytes: &[u8],
        store: DurableStore,
        options: RuntimeOptions,
    ) -> wasmtime::Result<Self> {
        let engine = Self::engine()?;
        let (component, cache) = compile_cache::load_or_compile(
            &engine,
            bytes,
            options.cache_dir.as_deref(),
            &store.compile_cache_key(),
        )?;
        let mut linker = Linker::<InstanceState>::new(&engine);
        sandbox::add_granted_wasi(&mut linker)?;
        link_capabilities(&mut linker)?;
        let pre = linker.instantiate_pre(&component)?;
        let exports = ExportIndices::new(&pre)?;
        let ticker = EpochTicker::start(engine.clone());
        Ok(Self {
            engine,
            pre,
            exports,
            store,
            options,
            cache,
            _ticker: ticker,
        })
    }

    /// Whether this start loaded precompiled code.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.cache
    }

    /// Runs `f` against a fresh instance, bounded by the deadline and the memory cap.
    pub fn call<R>(
        &self,
        grants: CallGrants,
        f: impl FnOnce(Exports<'_>, &mut Store<InstanceState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let timeout = if grants.uses_network() {
            self.options.network_call_timeout
        } else {
            self.options.call_timeout
        };
        let started = Instant::now();
        // The epoch deadline stops guest code only; the network gets the call's deadline
        // itself, so a call blocked in an HTTPS exchange ends on time too.
        let net = grants.net.map(|grant| grant.until(started + timeout));
        let state = InstanceState {
            memory: MemoryCap::new(self.options.memory_limit),
            store: self.store.clone(),
            net: NetAccess::new(net, grants.overrides),
            files: grants.attachments,
            relay: RelayAccess::default(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.memory);
        store.set_epoch_deadline(ticks_for(timeout));
        // At the deadline, the call may go on while it is within its own timeout plus the
        // SMTP stage timeouts it has used; otherwise it is interrupted.
        store.epoch_deadline_callback(move |ctx| {
            let waits = ctx.data().net.smtp_wait_budget() + ctx.data().relay.wait_budget();
            let allowed = timeout.saturating_add(waits);
            match allowed.checked_sub(started.elapsed()) {
                Some(left) if !left.is_zero() => Ok(UpdateDeadline::Continue(ticks_for(left))),
                _ => Err(Trap::Interrupt.into()),
            }
        });
        let instance = match self.pre.instantiate(&mut store) {
            Ok(instance) => instance,
            Err(err) => return Err(self.classify(err, &store, true, timeout)),
        };
        let exports = Exports {
            instance,
            indices: &self.exports,
        };
        f(exports, &mut store).map_err(|err| self.classify(err, &store, false, timeout))
    }

    fn classify(
        &self,
        err: wasmtime::Error,
        store: &Store<InstanceState>,
        instantiating: bool,
        timeout: Duration,
    ) -> CallError {
        if store.data().memory.hit {
            return CallError::MemoryLimit(self.options.memory_limit >> 20);
        }
        match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => CallError::DeadlineExceeded(timeout),
            Some(trap) => CallError::Trap(trap.to_string()),
            None if instantiating => CallError::Instantiate(format!("{err:#}")),
            None => CallError::Trap(format!("{err:#}")),
        }
    }
}

/// Where each exported interface's functions are in the component, looked up once when
/// the component is loaded.
struct ExportIndices {
    panel: panel::GuestIndices,
    signin: signin::GuestIndices,
    mailer: mailer::GuestIndices,
    relay: relay::GuestIndices,
}

impl ExportIndices {
    fn new(pre: &InstancePre<InstanceState>) -> wasmtime::Result<Self> {
        Ok(Self {
            panel: panel::GuestIndices::new(pre)?,
            signin: signin::GuestIndices::new(pre)?,
            mailer: mailer::GuestIndices::new(pre)?,
            relay: relay::GuestIndices::new(pre)?,
        })
    }
}

/// The exports of one call's fresh instance. Each accessor type-checks and binds only the
/// interface the call uses: binding all four (bindgen's `DevicePanel`) type-checked some 20
/// functions on every call, a seventh of a read-only panel call.
pub struct Exports<'a> {
    instance: Instance,
    indices: &'a ExportIndices,
}

impl Exports<'_> {
    /// `mfp:smtp-oauth/panel`: settings, Apply, history, diagnostics.
    pub fn panel(&self, store: &mut Store<InstanceState>) -> wasmtime::Result<panel::Guest> {
        self.indices.panel.load(store, &self.instance)
    }

    /// `mfp:smtp-oauth/signin`: the device code flow and the account.
    pub fn signin(&self, store: &mut Store<InstanceState>) -> wasmtime::Result<signin::Guest> {
        self.indices.signin.load(store, &self.instance)
    }

    /// `mfp:smtp-oauth/mailer`: one send.
    pub fn mailer(&self, store: &mut Store<InstanceState>) -> wasmtime::Result<mailer::Guest> {
        self.indices.mailer.load(store, &self.instance)
    }

    /// `mfp:smtp-oauth/relay`: the relay's configuration check and one device's session.
    pub fn relay(&self, store: &mut Store<InstanceState>) -> wasmtime::Result<relay::Guest> {
        self.indices.relay.load(store, &self.instance)
    }
}

/// Instances that may exist at once: every web request, sign-in poll and relay connection
/// holds one while its call runs (the relay at most 16, the panel's server its 64
/// connections). One more waits for its call to fail as `Instantiate`, never for memory.
const POOLED_INSTANCES: u32 = 128;

/// How much of a slot's memory (and table) is reset in place when its instance ends.
const KEEP_RESIDENT: usize = 4 << 20;

/// The instance pool: slots for [`POOLED_INSTANCES`] component instances, each with the
/// few core instances, memories and tables the component is made of.
fn pool() -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(POOLED_INSTANCES)
        .total_core_instances(POOLED_INSTANCES * 8)
        .total_memories(POOLED_INSTANCES * 2)
        .total_tables(POOLED_INSTANCES * 4)
        .max_memory_size(1 << 30)
        // A call touches some hundreds of KiB of its memory. Resetting those pages with
        // memset (found by the kernel's PAGEMAP_SCAN, Linux 6.7 and later) keeps them
        // mapped for the next call, instead of `madvise` dropping them and every page of
        // the next instance faulting in again. On older kernels the pool falls back to
        // `madvise`.
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT)
        .pagemap_scan(wasmtime::Enabled::Auto);
    pool
}

/// `wait` in epoch ticks, at least one.
fn ticks_for(wait: Duration) -> u64 {
    let ticks = wait.as_millis().div_ceil(EPOCH_TICK.as_millis()).max(1);
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

/// Links the project's own imports, each to its capability in the instance state.
fn link_capabilities(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    use crate::bindings::mfp::smtp_oauth::{attachments, config, net, relay_client, store, types};
    types::add_to_linker::<InstanceState, StoreCapability>(linker, |state| &mut state.store)?;
    store::add_to_linker::<InstanceState, StoreCapability>(linker, |state| &mut state.store)?;
    net::add_to_linker::<InstanceState, NetCapability>(linker, |state| &mut state.net)?;
    config::add_to_linker::<InstanceState, NetCapability>(linker, |state| &mut state.net)?;
    attachments::add_to_linker::<InstanceState, FilesCapability>(linker, |state| &mut state.files)?;
    relay_client::add_to_linker::<InstanceState, RelayCapability>(linker, |state| {
        &mut state.relay
    })?;
    Ok(())
}

/// Binds the `store` import to the instance's [`DurableStore`].
struct StoreCapability;
impl wasmtime::component::HasData for StoreCapability {
    type Data<'a> = &'a mut DurableStore;
}

/// Binds the `net` import to the call's [`NetAccess`].
struct NetCapability;
impl wasmtime::component::HasData for NetCapability {
    type Data<'a> = &'a mut NetAccess;
}

/// Binds the `relay-client` import to the call's [`RelayAccess`].
struct RelayCapability;
impl wasmtime::component::HasData for RelayCapability {
    type Data<'a> = &'a mut RelayAccess;
}

/// Binds the `attachments` import to the call's [`AttachmentSet`].
struct FilesCapability;
impl wasmtime::component::HasData for FilesCapability {
    type Data<'a> = &'a mut AttachmentSet;
}

/// What a component file is: its hash and the names of its imports and exports.
#[derive(Debug)]
pub struct ComponentInfo {
    pub sha256: String,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

/// Compiles `bytes` (without instantiating) and lists its imports and exports.
pub fn inspect(bytes: &[u8]) -> wasmtime::Result<ComponentInfo> {
    use sha2::{Digest, Sha256};
    let engine = Runtime::engine()?;
    let component = wasmtime::component::Component::new(&engine, bytes)?;
    let ty = component.component_type();
    Ok(ComponentInfo {
        sha256: hex::encode(Sha256::digest(bytes)),
        imports: ty
            .imports(&engine)
            .map(|(name, _)| name.to_owned())
            .collect(),
        exports: ty
            .exports(&engine)
            .map(|(name, _)| name.to_owned())
            .collect(),
    })
}

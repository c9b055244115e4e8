//! What of the system the component may touch: `wasi:random/random` (the Message-ID and
//! the MIME boundary), and nothing more. The component is built without WASI's std glue,
//! so no clocks, pollables, streams or stdio are linked: a component that imports them,
//! or the filesystem, sockets or HTTP, fails to instantiate instead of running with
//! hidden power (or blocking in a host call past its deadline). The WASI context itself
//! has no preopened directories, no environment variables, no arguments and empty stdio.

use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::p2::bindings::random;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// WASI packages the host links; any other import is refused at instantiation.
pub const GRANTED_WASI: &[&str] = &["wasi:random/random"];

/// A WASI context that grants nothing: no preopens, no environment, no sockets, no stdio.
pub fn empty_wasi_ctx() -> WasiCtx {
    WasiCtxBuilder::new()
        .allow_ip_name_lookup(false)
        .allow_tcp(false)
        .allow_udp(false)
        .build()
}

/// State types that carry a WASI context.
pub trait HasWasi: WasiView + 'static {}
impl<T: WasiView + 'static> HasWasi for T {}

/// Links exactly the interfaces in [`GRANTED_WASI`].
pub fn add_granted_wasi<T: HasWasi>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    use wasmtime_wasi::random::WasiRandom;
    random::random::add_to_linker::<T, WasiRandom>(linker, |t| t.ctx().ctx.random())?;
    Ok(())
}

/// Helper so state types can hand out their WASI view.
pub fn view<'a>(ctx: &'a mut WasiCtx, table: &'a mut ResourceTable) -> WasiCtxView<'a> {
    WasiCtxView { ctx, table }
}

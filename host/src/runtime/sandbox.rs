//! What of the system the component may touch: the WASI interfaces Rust's standard
//! library needs (clocks, random, exit, environment, stdio, streams) and nothing more.
//! No filesystem, no sockets, no HTTP are linked, so a component that imports them fails
//! to instantiate instead of running with hidden power. The WASI context itself has no
//! preopened directories, no environment variables, no arguments and empty stdio.

use wasmtime::component::{HasData, Linker, ResourceTable};
use wasmtime_wasi::p2::bindings::{cli, clocks, io, random, sync};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// WASI packages the host links; any other import is refused at instantiation.
pub const GRANTED_WASI: &[&str] = &["wasi:cli/", "wasi:clocks/", "wasi:io/", "wasi:random/"];

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

struct Table;
impl HasData for Table {
    type Data<'a> = &'a mut ResourceTable;
}

fn table<T: WasiView>(state: &mut T) -> &mut ResourceTable {
    state.ctx().table
}

/// Links exactly the interfaces in [`GRANTED_WASI`].
pub fn add_granted_wasi<T: HasWasi>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
    use wasmtime_wasi::random::WasiRandom;
    let l = linker;
    io::error::add_to_linker::<T, Table>(l, table)?;
    sync::io::poll::add_to_linker::<T, Table>(l, table)?;
    sync::io::streams::add_to_linker::<T, Table>(l, table)?;
    clocks::wall_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    clocks::monotonic_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    random::random::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure_seed::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    cli::exit::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::environment::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_input::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_output::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    Ok(())
}

/// Helper so state types can hand out their WASI view.
pub fn view<'a>(ctx: &'a mut WasiCtx, table: &'a mut ResourceTable) -> WasiCtxView<'a> {
    WasiCtxView { ctx, table }
}

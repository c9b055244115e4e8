//! The component's heap on wasm: talc (smaller and quicker than std's dlmalloc), fed first
//! from an arena inside the module's initial memory, then by growing the memory.
//!
//! Why the arena: the host keeps a pool of instance slots, and a slot's memory starts every
//! call at the module's initial size. Growing it, even by the one page a panel call needs,
//! costs the host an `mprotect` to open the page and another to close it again for the
//! slot's next instance, each flushing the TLBs of every core. With [`ARENA_BYTES`] of heap
//! already in the initial memory (zeroed `.bss`: not stored in the module, and its pages
//! are only touched, then reset, as far as a call uses them), a panel call never grows it.

use core::alloc::Layout;
use core::mem::MaybeUninit;
use core::ptr::NonNull;

use talc::base::Talc;
use talc::base::binning::Binning;
use talc::cell::TalcSyncCell;
use talc::source::Source;
use talc::wasm::WasmBinning;

/// Heap in the initial memory. A panel call's heap fits in one 64 KiB page (settings,
/// Apply, diagnostics and history each grew the memory by exactly one page before this
/// arena); four pages leave room for the larger ones. A send grows beyond it.
const ARENA_BYTES: usize = 256 << 10;

/// wasm's page size.
const PAGE_BYTES: usize = 64 << 10;

/// The arena's bytes, owned by the allocator alone.
static mut ARENA: [MaybeUninit<u8>; ARENA_BYTES] = [MaybeUninit::uninit(); ARENA_BYTES];

/// The component's allocator. Single-threaded wasm (no `atomics`) is what talc's cell
/// requires.
#[global_allocator]
static ALLOCATOR: TalcSyncCell<ArenaThenGrow, WasmBinning> =
    TalcSyncCell::new_wasm(ArenaThenGrow {
        arena_claimed: false,
        end: None,
    });

/// Where talc's memory comes from: the arena once, then pages grown at the memory's end,
/// each extending the heap grown before it.
#[derive(Debug)]
struct ArenaThenGrow {
    arena_claimed: bool,
    /// The end of the heap grown from the memory's end, once there is one.
    end: Option<NonNull<u8>>,
}

// SAFETY: `acquire` only claims memory the allocator owns (the arena, which nothing else
// names, and pages it grew itself), and neither allocates nor touches the cell.
unsafe impl Source for ArenaThenGrow {
    fn acquire<B: Binning>(talc: &mut Talc<Self, B>, layout: Layout) -> Result<(), ()> {
        if !talc.source.arena_claimed {
            talc.source.arena_claimed = true;
            // SAFETY: the arena is claimed once and used by nothing else.
            let claimed = unsafe { talc.claim((&raw mut ARENA).cast(), ARENA_BYTES) };
            if claimed.is_some() {
                // talc asks again if the arena cannot hold this allocation.
                return Ok(());
            }
        }
        // Enough pages for `layout` with talc's bookkeeping and its alignment; if that
        // is still short, talc asks again and the heap is extended once more.
        let wanted = layout.size() + layout.align() + 4 * core::mem::size_of::<usize>();
        let pages = wanted.div_ceil(PAGE_BYTES);
        let previous_pages = core::arch::wasm32::memory_grow(0, pages);
        if previous_pages == usize::MAX {
            return Err(());
        }
        let base = (previous_pages * PAGE_BYTES) as *mut u8;
        let bytes = pages * PAGE_BYTES;
        if let Some(end) = talc.source.end.take() {
            if end.as_ptr() == base {
                // SAFETY: the grown pages follow the heap that ends at `end`.
                talc.source.end = Some(unsafe { talc.extend(end, base.wrapping_add(bytes)) });
                return Ok(());
            }
        }
        // SAFETY: the pages were just grown, and nothing else uses them.
        talc.source.end = unsafe { talc.claim(base, bytes) };
        Ok(())
    }
}

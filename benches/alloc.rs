//! Heap use per start, counted rather than timed: a counting global allocator
//! sees every allocation of the process (the starting thread and the started one),
//! and the table printed shows what pythread's `start` + `join` allocates beyond
//! `std::thread::spawn` + `JoinHandle::join` of the same empty fn, next to
//! `shared_thread`. Also prints the handle sizes. Run with `make bench` or
//! `cargo bench --bench alloc`; it is a plain program, not a criterion bench, and
//! it asserts nothing (benchmarks never gate the tests).
//!
//! Fairness: each variant runs `ROUNDS` start+join cycles after a warm-up (the
//! first thread of a process allocates one-time state), and the count is read only
//! after every started thread has exited (pythread's `join` returns once the fn has
//! finished, before the OS thread is gone, so the count waits for the stragglers).

use std::alloc::{GlobalAlloc, Layout, System};
use std::mem::size_of;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use shared_thread::SharedThread;

/// The system allocator, counting allocations and requested bytes while
/// `COUNTING` is set. A `realloc` counts as one allocation of the new size.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

impl Counting {
    fn count(layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
    }
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds the
// `GlobalAlloc` contract; counting touches only atomics and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Counting::count(layout);
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Counting::count(layout);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // The new layout is valid: `realloc`'s caller guarantees it.
        Counting::count(Layout::from_size_align(new_size, layout.align()).unwrap_or(layout));
        // SAFETY: as for `alloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const ROUNDS: u32 = 1000;

/// Allocations and bytes per call of `start_join`, averaged over `ROUNDS`.
fn per_start(start_join: fn()) -> (f64, f64) {
    for _ in 0..10 {
        start_join();
    }
    settle();
    ALLOCATIONS.store(0, Ordering::SeqCst);
    BYTES.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    for _ in 0..ROUNDS {
        start_join();
    }
    settle();
    COUNTING.store(false, Ordering::SeqCst);
    let rounds = f64::from(ROUNDS);
    (
        ALLOCATIONS.load(Ordering::SeqCst) as f64 / rounds,
        BYTES.load(Ordering::SeqCst) as f64 / rounds,
    )
}

/// Gives threads whose fn has finished (and so were joined by pythread) time to
/// exit, so that whatever they allocate on the way out is counted.
fn settle() {
    thread::sleep(Duration::from_millis(200));
}

fn main() {
    if cfg!(loom) {
        eprintln!("benchmarks need a normal build: not --cfg loom");
        return;
    }
    let std = per_start(|| thread::spawn(|| {}).join().unwrap());
    let rows = [
        ("std::thread", std),
        (
            "pythread",
            per_start(|| pythread::start(|| {}).join().unwrap()),
        ),
        (
            "shared_thread",
            per_start(|| *SharedThread::spawn(|| {}).join()),
        ),
    ];
    println!("heap use per start+join of an empty fn ({ROUNDS} rounds, process-wide)");
    println!(
        "{:<14} {:>8} {:>8} {:>12} {:>12}",
        "", "allocs", "bytes", "allocs - std", "bytes - std"
    );
    for (name, (allocations, bytes)) in rows {
        println!(
            "{name:<14} {allocations:>8.2} {bytes:>8.1} {:>12.2} {:>12.1}",
            allocations - std.0,
            bytes - std.1
        );
    }
    println!();
    let sizes = [
        ("pythread::Handle", size_of::<pythread::Handle>()),
        ("std::thread::JoinHandle<()>", size_of::<JoinHandle<()>>()),
        (
            "shared_thread::SharedThread<()>",
            size_of::<SharedThread<()>>(),
        ),
        ("one pointer (usize)", size_of::<usize>()),
    ];
    for (name, bytes) in sizes {
        println!("size_of {name:<32} {bytes:>3} bytes");
    }
}

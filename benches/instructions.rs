//! User-space instructions per start+join, for `make bench-instructions`: runs `N`
//! start+join cycles of an empty fn with one of the variants of the `start_join`
//! group, so that `valgrind --tool=callgrind` can count them (the Makefile target
//! runs N = 0 and N = 2000 and prints the difference per cycle). The same for the
//! per-thread calls a Python runtime makes on every `threading.get_ident()` and
//! `RLock` operation: `get_ident`, `current_ident` and an `RLock` acquire+release
//! (on `main`, a thread the crate did not start), next to std's
//! `thread::current().id()`. `perf` counters are
//! not available on every machine (not in the reference VM); instruction counts are
//! deterministic where wall time on a shared machine is not. Not a criterion bench:
//! it asserts and times nothing.

mod common;

use common::std_detached;
use std::hint::black_box;
use std::thread;
use std::time::Duration;

fn main() {
    // `cargo bench` passes `--bench`; the variant and the count are the other two.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let [variant, count] = args.as_slice() else {
        eprintln!(
            "usage: instructions std|std_detached|pythread|get_ident|current_ident|rlock|std_thread_id N"
        );
        return;
    };
    if cfg!(loom) {
        eprintln!("benchmarks need a normal build: not --cfg loom");
        return;
    }
    let count: u32 = count.parse().expect("N is a number");
    let rlock = pythread::RLock::new();
    match variant.as_str() {
        "std" => repeat(count, || thread::spawn(|| {}).join().unwrap()),
        "std_detached" => repeat(count, std_detached),
        "pythread" => repeat(count, || pythread::start(|| {}).join().unwrap()),
        "get_ident" => repeat(count, || {
            black_box(pythread::get_ident());
        }),
        "current_ident" => repeat(count, || {
            black_box(pythread::current_ident());
        }),
        "rlock" => repeat(count, || {
            rlock.acquire();
            rlock.release().unwrap();
        }),
        "std_thread_id" => repeat(count, || {
            black_box(thread::current().id());
        }),
        other => panic!("unknown variant {other}"),
    }
    // Let detached threads finish exiting, so that their work is counted.
    thread::sleep(Duration::from_millis(100));
}

/// Runs `operation` once, then `count` times. The first call of a thread may set
/// things up (mint its ident, std's `Thread`): it is made at N = 0 too, so that the
/// difference is the steady state.
fn repeat(count: u32, mut operation: impl FnMut()) {
    operation();
    for _ in 0..count {
        operation();
    }
}

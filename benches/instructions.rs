//! User-space instructions per start+join, for `make bench-instructions`: runs `N`
//! start+join cycles of an empty fn with one of the variants of the `start_join`
//! group, so that `valgrind --tool=callgrind` can count them (the Makefile target
//! runs N = 0 and N = 2000 and prints the difference per cycle). `perf` counters are
//! not available on every machine (not in the reference VM); instruction counts are
//! deterministic where wall time on a shared machine is not. Not a criterion bench:
//! it asserts and times nothing.

mod common;

use common::std_detached;
use std::thread;
use std::time::Duration;

fn main() {
    // `cargo bench` passes `--bench`; the variant and the count are the other two.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let [variant, count] = args.as_slice() else {
        eprintln!("usage: instructions std|std_detached|pythread N");
        return;
    };
    if cfg!(loom) {
        eprintln!("benchmarks need a normal build: not --cfg loom");
        return;
    }
    let count: u32 = count.parse().expect("N is a number");
    let start_join: fn() = match variant.as_str() {
        "std" => || thread::spawn(|| {}).join().unwrap(),
        "std_detached" => std_detached,
        "pythread" => || pythread::start(|| {}).join().unwrap(),
        other => panic!("unknown variant {other}"),
    };
    for _ in 0..count {
        start_join();
    }
    // Let detached threads finish exiting, so that their work is counted.
    thread::sleep(Duration::from_millis(100));
}

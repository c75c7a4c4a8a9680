//! What the benchmark binaries share.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

/// std with pythread's join semantics and nothing else of pythread: wait until the
/// fn has run, not until the OS thread has exited, and detach it. The gap between
/// this and `std` is what that choice costs or saves; the gap between this and
/// `pythread` is pythread's own bookkeeping.
pub fn std_detached() {
    let done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&done);
    let joiner = thread::current();
    drop(thread::spawn(move || {
        flag.store(true, Ordering::Release);
        joiner.unpark();
    }));
    while !done.load(Ordering::Acquire) {
        thread::park();
    }
}

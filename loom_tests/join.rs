//! `start` then `join`, with the joiner racing the started function.
//!
//! loom runs the joiner against every interleaving of the started thread, so
//! each model covers a join that arrives before `f` runs (it sleeps on the slow
//! path), while `f` finishes (the `WAITING`/outcome race on the state byte), and
//! after (the lock-free fast path); the second join in each model is always on the
//! fast path. What they prove:
//!
//! - the outcome is delivered: `Ok(())` when `f` returns, `Err(Panic)` with the
//!   payload when it panics, and the same on every later join;
//! - `join` never misses the wake-up (loom would report the execution as a
//!   deadlock) and never returns early: `f`'s last write, made through a loom
//!   `UnsafeCell`, is read after `join` without a data race, so everything `f`
//!   did happens-before `join` returns.
#![cfg(loom)]

mod common;

use common::{EXPECTED, RaceCell, check, expect_message};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};
use pythread::Panic;

/// `f` returns: `join` delivers `Ok(())` and everything `f` wrote.
#[test]
fn join_after_return_sees_every_write() {
    check("join_after_return_sees_every_write", None, || {
        let cell = RaceCell::new(0);
        let done = Arc::new(AtomicBool::new(false));
        let handle = pythread::start({
            let (cell, done) = (Arc::clone(&cell), Arc::clone(&done));
            move || {
                cell.write(1);
                // A relaxed store: only `join`'s own ordering makes it visible.
                done.store(true, Ordering::Relaxed);
            }
        });

        handle.join().expect("f returned");
        assert_eq!(cell.read(), 1, "join returned before f's write");
        assert!(done.load(Ordering::Relaxed), "join returned before f ended");
        assert!(handle.is_finished());

        // Again, now certainly on the fast path: the same outcome.
        handle.join().expect("f returned");
        assert_eq!(cell.read(), 1);
    });
}

/// `f` panics: `join` delivers the panic with its message, the writes `f` made
/// before panicking, and the very same `Panic` on every join.
#[test]
fn join_after_panic_delivers_the_payload() {
    check("join_after_panic_delivers_the_payload", None, || {
        let cell = RaceCell::new(0);
        let handle = pythread::start({
            let cell = Arc::clone(&cell);
            move || {
                cell.write(7);
                panic!("{EXPECTED} boom {}", 7);
            }
        });

        let first = expect_message(handle.join(), "[expected] boom 7");
        assert_eq!(cell.read(), 7, "join returned before f's write");
        assert!(first.is::<String>());
        assert!(handle.is_finished());

        let second = handle.join().expect_err("f panicked");
        assert!(Panic::ptr_eq(&first, &second), "a fresh Panic per join");
    });
}

//! Detach: every handle dropped before, while or after the started function
//! finishes.
//!
//! `main` drops its handles at a point loom moves across every step of the
//! started thread, so the last reference to the shared state is released by
//! either side. What they prove:
//!
//! - `f` still runs to completion, and what it captured (or panicked with) is
//!   dropped exactly once: the model waits on a drop-counting probe, so a value
//!   never dropped shows up as a loom deadlock, and loom's `Arc` leak check
//!   (after every execution) catches the crate's shared state or the outcome
//!   staying behind;
//! - a `Panic` obtained by joining keeps the payload alive after all handles are
//!   gone, until the last clone of the `Panic` is dropped.
#![cfg(loom)]

mod common;

use common::{check, DropProbe, RaceCell};
use loom::sync::Arc;

/// Detaching a thread that returns: `f` runs, its capture is dropped once.
#[test]
fn detach_returning_thread() {
    check("detach_returning_thread", None, || {
        let probe = DropProbe::new();
        let cell = RaceCell::new(0);
        let handle = pythread::start({
            let (token, cell) = (probe.token(), Arc::clone(&cell));
            move || {
                cell.write(1);
                drop(token);
            }
        });
        let clone = handle.clone();
        drop(handle);
        drop(clone);

        assert_eq!(probe.wait_for_drops(1), 1);
        // The probe's lock orders f's write before this read: f did run.
        assert_eq!(cell.read(), 1);
    });
}

/// Detaching a thread that panics: the payload is dropped once, by the started
/// thread (the only holder of the outcome once every handle is gone).
#[test]
fn detach_panicking_thread_drops_payload_once() {
    check("detach_panicking_thread_drops_payload_once", None, || {
        let probe = DropProbe::new();
        let handle = pythread::start({
            let token = probe.token();
            move || std::panic::panic_any(token)
        });
        drop(handle);

        assert_eq!(probe.wait_for_drops(1), 1);
    });
}

/// A joined `Panic` outlives every handle and keeps the payload alive; dropping
/// it last drops the payload, once.
#[test]
fn joined_panic_outlives_detached_handles() {
    check("joined_panic_outlives_detached_handles", None, || {
        let probe = DropProbe::new();
        let handle = pythread::start({
            let token = probe.token();
            move || std::panic::panic_any(token)
        });
        let panic = handle.join().expect_err("f panicked");
        drop(handle);

        assert_eq!(
            probe.drops(),
            0,
            "payload dropped while a Panic refers to it"
        );
        assert!(panic.is::<common::Token>());
        drop(panic);
        assert_eq!(probe.wait_for_drops(1), 1);
    });
}

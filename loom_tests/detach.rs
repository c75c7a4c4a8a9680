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
//!   gone, until the last clone of the `Panic` is dropped;
//! - the detached `f` ended the way it was written to (its token is marked with
//!   `Token::reached` by its last act): an unexpected panic inside `f`, a loom
//!   failure included, which nobody would see in a detached thread's outcome,
//!   fails the model.
#![cfg(loom)]

mod common;

use common::{DropProbe, RaceCell, Token, check, expect_payload};
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
                drop(token.reached());
            }
        });
        let clone = handle.clone();
        drop(handle);
        drop(clone);

        assert_eq!(probe.wait_for_drops(1), 1);
        assert_eq!(probe.reached(), 1, "f did not reach its end (it panicked)");
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
            move || std::panic::panic_any(token.reached())
        });
        drop(handle);

        assert_eq!(probe.wait_for_drops(1), 1);
        assert_eq!(
            probe.reached(),
            1,
            "the dropped token was not f's payload: f panicked with something else"
        );
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
        let panic = expect_payload::<Token>(handle.join());
        drop(handle);

        assert_eq!(
            probe.drops(),
            0,
            "payload dropped while a Panic refers to it"
        );
        drop(panic);
        assert_eq!(probe.wait_for_drops(1), 1);
    });
}

//! Targeted tests for behaviour that no other test reaches, each written to catch a
//! mutant that `make mutants` found surviving (see `TESTING.md`):
//!
//! - [`pythread::current_ident`] is `None` again once the function has finished,
//!   also on the started thread itself while it drops the outcome of a detached
//!   thread (the mutant: `CurrentGuard::drop` doing nothing);
//! - `Builder::start` with a NUL in the name panics as an invalid name, not as a
//!   refused thread (the mutant: its `InvalidInput` match guard always `false`).
#![cfg(not(loom))]

mod support;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use pythread::Ident;

/// A payload that records `current_ident()` on the thread that drops it.
struct Witness(Arc<Mutex<Option<Option<Ident>>>>);

impl Drop for Witness {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = Some(pythread::current_ident());
    }
}

#[test]
fn current_ident_is_none_once_the_function_has_finished() {
    support::silence_intended_panics();
    let seen = Arc::new(Mutex::new(None));
    let (open, gate) = mpsc::channel::<()>();
    let witness = Witness(Arc::clone(&seen));
    let handle = pythread::start(move || {
        gate.recv().expect("the gate opens");
        support::set_quiet(true);
        std::panic::panic_any(witness)
    });
    // Detach before the function finishes: the started thread itself then drops
    // the outcome, and with it the payload, after the function has finished.
    drop(handle);
    open.send(()).unwrap();
    support::wait_until("the detached payload's drop", || {
        seen.lock().unwrap().is_some()
    });
    let seen = seen.lock().unwrap().expect("recorded");
    assert_eq!(seen, None, "current_ident() after the function finished");
}

#[test]
fn builder_start_with_a_nul_in_the_name_panics_as_an_invalid_name() {
    support::silence_intended_panics();
    let caught = std::panic::catch_unwind(|| {
        support::set_quiet(true);
        pythread::Builder::new().name("bad\0name").start(|| {})
    });
    support::set_quiet(false);
    let payload = caught.expect_err("a NUL in the name must make start panic");
    let text = payload
        .downcast_ref::<String>()
        .cloned()
        .expect("a formatted message");
    assert!(text.contains("invalid thread name"), "{text}");
    // It is bad input, not the OS refusing a thread (CPython's "can't start").
    assert!(!text.contains("can't start new thread"), "{text}");
}

//! Targeted tests for behaviour that the model (`tests/model.rs`) and the
//! properties (`tests/properties.rs`) cannot reach, each written to catch a mutant
//! that `make mutants` found surviving (see `TESTING.md`):
//!
//! - a function joining its own handle gets a "cannot join current thread" panic
//!   instead of waiting for itself forever (`join` and a non-zero `join_timeout`);
//! - a payload whose own `Drop` panics is dropped by the last `Panic` without that
//!   panic escaping into the code that dropped it;
//! - [`pythread::current_ident`] is `None` again once the function has finished, also
//!   while the outcome of a detached thread is dropped on that thread.
#![cfg(not(loom))]

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use pythread::{Handle, Ident};

/// The bound on every wait here: reaching it means a hang.
const WATCHDOG: Duration = Duration::from_secs(10);

thread_local! {
    /// Set right before a deliberate panic, so the panic hook stays quiet for it.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

fn silence_intended_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                report(info);
            }
        }));
    });
}

fn message_of(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn joining_its_own_handle_panics_instead_of_deadlocking() {
    silence_intended_panics();
    let (give, own) = mpsc::channel::<Handle>();
    let handle = pythread::start(move || {
        let me = own.recv().expect("the handle arrives");
        QUIET.with(|quiet| quiet.set(true));
        let joined = catch_unwind(AssertUnwindSafe(|| me.join())).map(|_| ());
        let timed = catch_unwind(AssertUnwindSafe(|| me.join_timeout(WATCHDOG))).map(|_| ());
        QUIET.with(|quiet| quiet.set(false));
        // A zero timeout only polls, which is harmless even on itself.
        assert!(me.join_timeout(Duration::ZERO).is_none());
        for (call, result) in [("join", joined), ("join_timeout", timed)] {
            let payload = result.expect_err(call);
            let message = message_of(&*payload);
            assert!(
                message.contains("cannot join current thread"),
                "{call}: {message:?}"
            );
        }
    });
    give.send(handle.clone()).unwrap();
    let outcome = handle
        .join_timeout(WATCHDOG)
        .expect("a self-join must not deadlock");
    if let Err(panic) = outcome {
        panic!("the self-joining thread failed: {panic}");
    }
}

/// A payload whose `Drop` panics.
struct Grenade;

impl Drop for Grenade {
    fn drop(&mut self) {
        QUIET.with(|quiet| quiet.set(true));
        panic!("Grenade dropped");
    }
}

#[test]
fn a_payload_whose_drop_panics_is_dropped_quietly() {
    silence_intended_panics();
    let handle = pythread::start(|| {
        QUIET.with(|quiet| quiet.set(true));
        std::panic::panic_any(Grenade)
    });
    let panic = handle
        .join_timeout(WATCHDOG)
        .expect("finished")
        .expect_err("panicked");
    assert!(panic.is::<Grenade>());
    drop(handle);
    let dropped = catch_unwind(AssertUnwindSafe(move || drop(panic)));
    QUIET.with(|quiet| quiet.set(false));
    assert!(
        dropped.is_ok(),
        "the payload's panic escaped from dropping the last Panic"
    );
}

/// A payload that records `current_ident()` on the thread that drops it.
struct Witness(Arc<Mutex<Option<Option<Ident>>>>);

impl Drop for Witness {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = Some(pythread::current_ident());
    }
}

#[test]
fn current_ident_is_none_once_the_function_has_finished() {
    silence_intended_panics();
    let seen = Arc::new(Mutex::new(None));
    let (open, gate) = mpsc::channel::<()>();
    let witness = Witness(Arc::clone(&seen));
    let handle = pythread::start(move || {
        gate.recv().expect("the gate opens");
        QUIET.with(|quiet| quiet.set(true));
        std::panic::panic_any(witness)
    });
    // Detach before the function finishes: the started thread itself then drops
    // the outcome, and with it the payload, after the function has finished.
    drop(handle);
    open.send(()).unwrap();
    let began = Instant::now();
    let seen = loop {
        if let Some(seen) = *seen.lock().unwrap() {
            break seen;
        }
        assert!(
            began.elapsed() < WATCHDOG,
            "the detached payload was never dropped"
        );
        std::thread::sleep(Duration::from_millis(1));
    };
    assert_eq!(seen, None, "current_ident() after the function finished");
}

//! Helpers shared by the loom suite: a model runner that reports iterations and
//! time, a cell whose unsynchronized accesses loom checks, a drop-counting probe,
//! a one-shot mailbox, a panic hook that keeps expected panics quiet, and the
//! checks of a started function's outcome.
//!
//! Why every outcome is checked, payload included: a loom failure raised inside a
//! started function (a causality violation, a deadlock report) is an ordinary
//! panic there, which the crate's own `catch_unwind` turns into the thread's
//! `Err(Panic)`. A model that only asks "did `f` panic?" would pass on it. So every
//! model checks that an `Ok` is expected, and that every `Err` carries the exact
//! message or payload type `f` panics with on purpose ([`expect_message`],
//! [`expect_payload`]); a detached `f`, whose outcome nobody sees, marks its last
//! act with [`Token::reached`].
//!
//! Everything here is built from loom primitives, so the helpers themselves are
//! part of the model: a wait on the probe or the mailbox is a real (modelled) wait,
//! and a leaked probe is reported by loom's `Arc` leak check.

#![allow(dead_code)] // each test binary uses its own subset of the helpers

use std::any::Any;
use std::fmt::Debug;
use std::sync::Once;
use std::sync::atomic::AtomicUsize as StdAtomicUsize;
use std::sync::atomic::Ordering as StdOrdering;
use std::time::Instant;

use loom::cell::UnsafeCell;
use loom::sync::{Arc, Condvar, Mutex};
use pythread::Panic;

/// The `Panic` of a started function that must have panicked with exactly
/// `message`; any other outcome fails the model, showing what `f` did instead.
#[track_caller]
pub fn expect_message(outcome: Result<(), Panic>, message: &str) -> Panic {
    let panic = outcome.expect_err("f returned, but it panics on purpose");
    assert_eq!(
        panic.message(),
        Some(message),
        "f panicked, but not with its own panic: {panic:?}"
    );
    panic
}

/// The `Panic` of a started function that must have panicked with a payload of
/// type `T` (`panic_any`); any other outcome fails the model.
#[track_caller]
pub fn expect_payload<T: Any>(outcome: Result<(), Panic>) -> Panic {
    let panic = outcome.expect_err("f returned, but it panics on purpose");
    assert!(
        panic.is::<T>(),
        "f panicked, but not with its own {} payload: {panic:?}",
        std::any::type_name::<T>()
    );
    panic
}

/// `f` must have returned; an `Err` fails the model with the `Panic` (a loom
/// failure inside `f` included).
#[track_caller]
pub fn expect_ok<E: Debug>(outcome: Result<(), E>) {
    if let Err(panic) = outcome {
        panic!("f panicked, but it returns: {panic:?}");
    }
}

/// The marker every expected panic message in the suite carries; the panic hook
/// installed by [`check`] stays silent for those (and for the crate's own
/// "cannot join current thread"), so thousands of explored executions do not
/// flood the output. Any other panic is reported by the default hook.
pub const EXPECTED: &str = "[expected]";

/// Runs `model` under loom, exhaustively when `bound` is `None`, otherwise with at
/// most `bound` preemptions per execution (`LOOM_MAX_PREEMPTIONS` overrides the
/// bound given here). Prints the number of executions explored and the time taken
/// (visible with `-- --nocapture`), the figures recorded in `loom_tests/README.md`.
pub fn check<F>(name: &str, bound: Option<usize>, model: F)
where
    F: Fn() + Sync + Send + 'static,
{
    quiet_expected_panics();
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = bound;
    }
    let effective = builder.preemption_bound;
    let iterations = std::sync::Arc::new(StdAtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&iterations);
    let started = Instant::now();
    builder.check(move || {
        counter.fetch_add(1, StdOrdering::Relaxed);
        // A fresh wait-primitive model per execution, outside loom's `lazy_static`s
        // (dropped when this closure returns, while started threads may still be
        // waking their joiners).
        pythread::__loom::reset();
        model();
    });
    let bound = match effective {
        Some(n) => format!("preemption bound {n}"),
        None => "exhaustive".to_owned(),
    };
    eprintln!(
        "loom: {name}: {bound}, {} iterations, {:.2?}",
        iterations.load(StdOrdering::Relaxed),
        started.elapsed()
    );
}

/// Installs (once per test binary) a panic hook that forwards every panic to the
/// default hook except the ones the suite provokes on purpose.
fn quiet_expected_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !is_expected(info.payload()) {
                default(info);
            }
        }));
    });
}

fn is_expected(payload: &(dyn Any + Send)) -> bool {
    if payload.is::<Token>() || payload.is::<Expected>() {
        return true;
    }
    let text = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
    text.is_some_and(|text| text.contains(EXPECTED) || text.contains("cannot join current thread"))
}

/// A custom panic payload (raised with `std::panic::panic_any`), for typed access
/// through `Panic::downcast_cloned`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected(pub u32);

/// A `u32` that may be accessed without synchronization, where loom checks every
/// access: a read that is not ordered after the last write (happens-before) makes
/// loom fail the execution with a causality violation.
#[derive(Debug)]
pub struct RaceCell(UnsafeCell<u32>);

// SAFETY: sharing the cell is exactly what the suite checks. Every access goes
// through loom's `UnsafeCell::with`/`with_mut`, which panic on any access not
// ordered by happens-before with the previous write, before the access is done.
unsafe impl Sync for RaceCell {}

impl RaceCell {
    pub fn new(value: u32) -> Arc<RaceCell> {
        Arc::new(RaceCell(UnsafeCell::new(value)))
    }

    pub fn write(&self, value: u32) {
        // SAFETY: see the `Sync` impl; loom rejects a racing access before it happens.
        self.0.with_mut(|slot| unsafe { *slot = value });
    }

    pub fn read(&self) -> u32 {
        // SAFETY: see the `Sync` impl; loom rejects a racing access before it happens.
        self.0.with(|slot| unsafe { *slot })
    }
}

/// Counts the drops of its [`Token`]s (and, apart, of the tokens marked with
/// [`Token::reached`]), and lets a thread wait until a number of them has been
/// dropped.
#[derive(Clone, Debug)]
pub struct DropProbe(Arc<ProbeState>);

#[derive(Debug, Default)]
struct Counts {
    drops: usize,
    reached: usize,
}

#[derive(Debug)]
struct ProbeState {
    drops: Mutex<Counts>,
    dropped: Condvar,
}

/// A value whose drop is counted by the [`DropProbe`] it came from: captured by a
/// started function, or used as its panic payload.
#[derive(Debug)]
pub struct Token(Arc<ProbeState>, bool);

impl Token {
    /// Marks the token as reaching the last act of `f` (`drop(token.reached())`,
    /// `panic_any(token.reached())`): a token dropped without the mark was dropped
    /// because `f` left early, unwinding from a panic it did not mean (such as a
    /// loom failure inside `f`).
    pub fn reached(mut self) -> Token {
        self.1 = true;
        self
    }
}

impl DropProbe {
    pub fn new() -> DropProbe {
        DropProbe(Arc::new(ProbeState {
            drops: Mutex::new(Counts::default()),
            dropped: Condvar::new(),
        }))
    }

    pub fn token(&self) -> Token {
        Token(Arc::clone(&self.0), false)
    }

    /// The number of tokens dropped so far.
    pub fn drops(&self) -> usize {
        self.0.drops.lock().unwrap().drops
    }

    /// The number of tokens marked with [`Token::reached`] dropped so far.
    pub fn reached(&self) -> usize {
        self.0.drops.lock().unwrap().reached
    }

    /// Blocks until at least `n` tokens have been dropped, then returns the count.
    /// If fewer are ever dropped, loom reports the execution as a deadlock.
    pub fn wait_for_drops(&self, n: usize) -> usize {
        let mut counts = self.0.drops.lock().unwrap();
        while counts.drops < n {
            counts = self.0.dropped.wait(counts).unwrap();
        }
        counts.drops
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        let mut counts = self.0.drops.lock().unwrap();
        counts.drops += 1;
        counts.reached += usize::from(self.1);
        drop(counts);
        self.0.dropped.notify_all();
    }
}

/// A one-shot mailbox: one thread puts a value in, another blocks until it can
/// take it out.
#[derive(Debug)]
pub struct Mailbox<T> {
    slot: Mutex<Option<T>>,
    filled: Condvar,
}

impl<T> Mailbox<T> {
    pub fn new() -> Arc<Mailbox<T>> {
        Arc::new(Mailbox {
            slot: Mutex::new(None),
            filled: Condvar::new(),
        })
    }

    pub fn put(&self, value: T) {
        let mut slot = self.slot.lock().unwrap();
        assert!(slot.is_none(), "mailbox filled twice");
        *slot = Some(value);
        drop(slot);
        self.filled.notify_all();
    }

    pub fn take(&self) -> T {
        let mut slot = self.slot.lock().unwrap();
        loop {
            if let Some(value) = slot.take() {
                return value;
            }
            slot = self.filled.wait(slot).unwrap();
        }
    }
}

/// Spins (with loom's `yield_now`, so that loom lets the others run) until
/// `handle.is_finished()` returns `true`.
pub fn spin_until_finished(handle: &pythread::Handle) {
    while !handle.is_finished() {
        loom::thread::yield_now();
    }
}

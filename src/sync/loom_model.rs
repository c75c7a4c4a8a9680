//! The loom model of the wait primitive and the clock.
//!
//! loom's `Condvar::wait_timeout` ignores its duration and nothing in loom delivers
//! signals, so both are modelled here: one loom `Mutex` + `Condvar` guard a list of
//! the threads blocked in [`wait`] (with the address of their word, as a futex
//! queue does), a model clock that only the loom test moves
//! ([`advance_clock`]), and pending model interrupts that the loom test sends to
//! one thread ([`interrupt`]). Every change notifies all sleepers, which re-check
//! whether they were woken, interrupted or timed out.
//!
//! The model is a futex: `wake_one` wakes exactly one waiter of that word (so a
//! lock that relied on waking more than one is caught), a wake is never lost once
//! the waiter is registered, and the word is compared under the model lock that
//! every waker takes. A model interrupt is sticky: it stays pending until the
//! target thread next blocks in `wait` (a real signal that arrives before the
//! futex call is simply missed; the sticky form makes the model's outcome depend
//! only on the interleaving, and still covers "arrives while asleep").

use std::time::Duration;

use loom::thread::ThreadId;

use super::{AtomicU32, Condvar, Mutex, Ordering, Wake, lock};

/// A point on the model clock, in nanoseconds since the start of the execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Instant(u64);

#[allow(dead_code)] // the subset of std's Instant API the crate may use
impl Instant {
    pub(crate) fn checked_add(self, duration: Duration) -> Option<Instant> {
        let nanos = u64::try_from(duration.as_nanos()).ok()?;
        self.0.checked_add(nanos).map(Instant)
    }

    pub(crate) fn checked_duration_since(self, earlier: Instant) -> Option<Duration> {
        self.0.checked_sub(earlier.0).map(Duration::from_nanos)
    }

    pub(crate) fn saturating_duration_since(self, earlier: Instant) -> Duration {
        self.checked_duration_since(earlier).unwrap_or_default()
    }

    pub(crate) fn duration_since(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl std::ops::Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, duration: Duration) -> Instant {
        self.checked_add(duration)
            .expect("overflow when adding duration to model instant")
    }
}

struct Sleeper {
    address: usize,
    thread: ThreadId,
    woken: bool,
}

#[derive(Default)]
struct State {
    clock: u64,
    sleepers: Vec<Option<Sleeper>>,
    interrupts: Vec<ThreadId>,
}

impl State {
    fn take_interrupt(&mut self, thread: ThreadId) -> bool {
        match self.interrupts.iter().position(|t| *t == thread) {
            Some(i) => {
                self.interrupts.swap_remove(i);
                true
            }
            None => false,
        }
    }

    fn expired(&self, deadline: Option<Instant>) -> bool {
        deadline.is_some_and(|d| self.clock >= d.0)
    }
}

/// The model's shared state: the sleepers, the clock, the pending interrupts.
struct Model {
    state: Mutex<State>,
    changed: Condvar,
}

impl Model {
    fn new() -> std::sync::Arc<Model> {
        std::sync::Arc::new(Model {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        })
    }
}

loom::lazy_static! {
    static ref LAZY: std::sync::Arc<Model> = Model::new();
}

std::thread_local! {
    /// Set by [`reset`]: from then on the model lives in [`CURRENT`], replaced at
    /// the start of every execution, instead of in a loom `lazy_static`. loom drops
    /// its `lazy_static`s as soon as the model's main function returns, while other
    /// model threads may still run: a started thread that wakes its joiners after
    /// `main` has returned (it published the outcome, `main` saw it and ended)
    /// would touch freed state. The loom objects of the current execution stay
    /// valid until the execution ends, so holding them here is sound, and `reset`
    /// replaces them before the next execution uses them.
    ///
    /// Thread-locals of the OS thread that runs the loom model (loom runs every
    /// model thread of an execution on it): the test harness runs several loom
    /// tests of one binary at once, each on its own OS thread.
    static EXPLICIT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static CURRENT: std::cell::RefCell<Option<std::sync::Arc<Model>>> =
        const { std::cell::RefCell::new(None) };
}

fn model() -> std::sync::Arc<Model> {
    if EXPLICIT.get() {
        CURRENT
            .with_borrow(Option::clone)
            .expect("pythread::__loom::reset() starts every execution")
    } else {
        std::sync::Arc::clone(&LAZY)
    }
}

/// Starts a fresh model for the execution that is beginning: call it first thing
/// in every loom execution (the suite's `check` does). Without it the model lives
/// in a `lazy_static`, which is fine as long as no model thread uses the wait
/// primitive after the execution's main function has returned.
pub fn reset() {
    EXPLICIT.set(true);
    CURRENT.set(Some(Model::new()));
}

pub(crate) fn now() -> Instant {
    Instant(lock(&model().state).clock)
}

pub(crate) fn wait(word: &AtomicU32, expected: u32, deadline: Option<Instant>) -> Wake {
    let thread = loom::thread::current().id();
    let model = model();
    let mut state = lock(&model.state);
    if word.load(Ordering::SeqCst) != expected {
        return Wake::Woken;
    }
    if state.expired(deadline) {
        return Wake::TimedOut;
    }
    if state.take_interrupt(thread) {
        return Wake::Interrupted;
    }
    let slot = state.sleepers.len();
    state.sleepers.push(Some(Sleeper {
        address: word as *const AtomicU32 as usize,
        thread,
        woken: false,
    }));
    // For `wait_for_sleepers`.
    model.changed.notify_all();
    loop {
        state = model
            .changed
            .wait(state)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let woken = state.sleepers[slot].as_ref().is_some_and(|s| s.woken);
        let outcome = if woken {
            Wake::Woken
        } else if state.take_interrupt(thread) {
            Wake::Interrupted
        } else if state.expired(deadline) {
            Wake::TimedOut
        } else {
            continue;
        };
        state.sleepers[slot] = None;
        return outcome;
    }
}

fn wake(word: &AtomicU32, all: bool) {
    let address = word as *const AtomicU32 as usize;
    let model = model();
    let mut state = lock(&model.state);
    let mut any = false;
    for sleeper in state.sleepers.iter_mut().flatten() {
        if sleeper.address == address && !sleeper.woken {
            sleeper.woken = true;
            any = true;
            if !all {
                break;
            }
        }
    }
    if any {
        model.changed.notify_all();
    }
}

pub(crate) fn wake_one(word: &AtomicU32) {
    wake(word, false);
}

pub(crate) fn wake_all(word: &AtomicU32) {
    wake(word, true);
}

/// Moves the model clock forward by `by` and lets every sleeper re-check its
/// deadline.
pub fn advance_clock(by: Duration) {
    let model = model();
    let mut state = lock(&model.state);
    let nanos = u64::try_from(by.as_nanos()).expect("model clock overflow");
    state.clock = state
        .clock
        .checked_add(nanos)
        .expect("model clock overflow");
    model.changed.notify_all();
}

/// Sends a model interrupt to `thread`: its current wait, or else its next one,
/// returns `Interrupted` (as if a signal handler without `SA_RESTART` ran on it).
pub fn interrupt(thread: ThreadId) {
    let model = model();
    let mut state = lock(&model.state);
    state.interrupts.push(thread);
    model.changed.notify_all();
}

/// How far the model clock has been advanced in this execution.
pub fn elapsed() -> Duration {
    Duration::from_nanos(lock(&model().state).clock)
}

/// Blocks (a modelled wait, no spinning) until at least `n` threads are blocked
/// in the model wait: "the waiter is really asleep" for a loom test.
pub fn wait_for_sleepers(n: usize) {
    let model = model();
    let mut state = lock(&model.state);
    while state.sleepers.iter().flatten().filter(|s| !s.woken).count() < n {
        state = model
            .changed
            .wait(state)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
    }
}

/// The number of threads blocked in the model wait right now.
pub fn sleepers() -> usize {
    lock(&model().state)
        .sleepers
        .iter()
        .flatten()
        .filter(|s| !s.woken)
        .count()
}

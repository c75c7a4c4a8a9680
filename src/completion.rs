//! The completion cell: the write-once outcome of a started function and the
//! waiting room of everyone who joins it.
//!
//! One atomic byte carries the whole protocol:
//!
//! - `RETURNED` or `PANICKED` is set exactly once, by the started thread, with a
//!   Release read-modify-write after everything the function did (and, for a panic,
//!   after the payload was stored), so that a joiner's Acquire load that sees it sees
//!   all of that too. A finished join is therefore one Acquire load, plus an `Arc`
//!   clone of the stored [`Panic`] when there is one: no lock.
//! - `WAITING` is set by a joiner, under the lock, before it sleeps. The finisher
//!   takes the lock and broadcasts only if it sees `WAITING`, so a thread that is
//!   joined only after it finished (the common case) never touches the lock or the
//!   condition variable. Both sides use read-modify-writes of the same byte, so one
//!   of them always sees the other's bit: either the joiner sees the outcome, or the
//!   finisher sees the joiner and, by taking the lock, waits until it sleeps.

use std::time::{Duration, Instant};

use crate::panic::Panic;
use crate::sync::{lock, AtomicU8, Condvar, Mutex, OnceLock, Ordering};

const WAITING: u8 = 0b001;
const RETURNED: u8 = 0b010;
const PANICKED: u8 = 0b100;

/// What `join` returns.
pub(crate) type Outcome = Result<(), Panic>;

pub(crate) struct Completion {
    state: AtomicU8,
    panic: OnceLock<Panic>,
    lock: Mutex<()>,
    finished: Condvar,
}

impl Completion {
    pub(crate) fn new() -> Completion {
        Completion {
            state: AtomicU8::new(0),
            panic: OnceLock::new(),
            lock: Mutex::new(()),
            finished: Condvar::new(),
        }
    }

    /// Publishes the outcome and wakes every waiting joiner. Called once, by the
    /// started thread, after the function has returned or unwound.
    pub(crate) fn finish(&self, outcome: Outcome) {
        let bit = match outcome {
            Ok(()) => RETURNED,
            Err(panic) => {
                if self.panic.set(panic).is_err() {
                    unreachable!("pythread: a completion cell was finished twice");
                }
                PANICKED
            }
        };
        let before = self.state.fetch_or(bit, Ordering::Release);
        debug_assert_eq!(before & (RETURNED | PANICKED), 0, "finished twice");
        if before & WAITING != 0 {
            // Taking the lock orders this broadcast after the sleeping joiner released
            // it inside `wait`, so the wake-up cannot be lost.
            drop(lock(&self.lock));
            self.finished.notify_all();
        }
    }

    /// The outcome, if the function has finished; never blocks, never locks.
    pub(crate) fn poll(&self) -> Option<Outcome> {
        self.outcome(self.state.load(Ordering::Acquire))
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.state.load(Ordering::Acquire) & (RETURNED | PANICKED) != 0
    }

    /// Blocks until the function has finished.
    pub(crate) fn wait(&self) -> Outcome {
        if let Some(outcome) = self.poll() {
            return outcome;
        }
        let mut guard = lock(&self.lock);
        loop {
            if let Some(outcome) = self.announce_waiting() {
                drop(guard);
                return outcome;
            }
            guard = self
                .finished
                .wait(guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// Blocks until the function has finished or `timeout` has passed; `None` means
    /// it timed out. A zero timeout only polls; a timeout too large to add to the
    /// current instant waits without a deadline.
    pub(crate) fn wait_timeout(&self, timeout: Duration) -> Option<Outcome> {
        if let Some(outcome) = self.poll() {
            return Some(outcome);
        }
        if timeout.is_zero() {
            return None;
        }
        let Some(deadline) = Instant::now().checked_add(timeout) else {
            return Some(self.wait());
        };
        let mut guard = lock(&self.lock);
        loop {
            if let Some(outcome) = self.announce_waiting() {
                drop(guard);
                return Some(outcome);
            }
            // Recomputed on every round: a spurious wake-up only shortens the next
            // sleep, it never ends the wait before the deadline.
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            guard = self
                .finished
                .wait_timeout(guard, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    /// Sets `WAITING` (the caller holds the lock) and returns the outcome if the
    /// function had already finished.
    fn announce_waiting(&self) -> Option<Outcome> {
        self.outcome(self.state.fetch_or(WAITING, Ordering::Acquire))
    }

    fn outcome(&self, state: u8) -> Option<Outcome> {
        if state & RETURNED != 0 {
            Some(Ok(()))
        } else if state & PANICKED != 0 {
            let panic = self
                .panic
                .get()
                .expect("pythread: PANICKED is published after the payload");
            Some(Err(panic.clone()))
        } else {
            None
        }
    }
}

//! The completion cell: the write-once outcome of a started function and the
//! waiting room of everyone who joins it.
//!
//! The outcome, `Result<T, Panic>`, lives in a write-once cell (`OnceLock`) that the
//! started thread fills exactly once; one atomic byte carries the waiting protocol:
//!
//! - The outcome is stored first (the cell's own Release store publishes it, and
//!   with it everything the function did), then `FINISHED` is set with a Release
//!   read-modify-write. A finished join is therefore one Acquire load, the cell's
//!   own "is it set" check, and a borrow of the stored value: no lock, no `Arc`
//!   traffic for a returned value (a clone of the stored [`Panic`] for a panic).
//! - `WAITING` is set by a joiner, under the lock, before it sleeps. The finisher
//!   takes the lock and broadcasts only if it sees `WAITING`, so a thread that is
//!   joined only after it finished (the common case) never touches the lock or the
//!   condition variable. Both sides use read-modify-writes of the same byte, so one
//!   of them always sees the other's bit: either the joiner sees `FINISHED` (and,
//!   through the Acquire that read it, the stored outcome), or the finisher sees the
//!   joiner and, by taking the lock, waits until it sleeps.
//!
//! The value is never moved out while the cell is shared: joiners borrow it, and
//! it is dropped with the cell, when the last `Arc` holding it goes (the last
//! handle, or the started thread itself when every handle was dropped first).

use std::time::{Duration, Instant};

use crate::panic::Panic;
use crate::sync::{lock, AtomicU8, Condvar, Mutex, OnceLock, Ordering};

const WAITING: u8 = 0b01;
const FINISHED: u8 = 0b10;

/// What a started function left: its value, or the panic it raised.
pub(crate) type Outcome<T> = Result<T, Panic>;

pub(crate) struct Completion<T> {
    outcome: OnceLock<Outcome<T>>,
    state: AtomicU8,
    lock: Mutex<()>,
    finished: Condvar,
}

impl<T> Completion<T> {
    pub(crate) fn new() -> Completion<T> {
        Completion {
            outcome: OnceLock::new(),
            state: AtomicU8::new(0),
            lock: Mutex::new(()),
            finished: Condvar::new(),
        }
    }

    /// Publishes the outcome and wakes every waiting joiner. Called once, by the
    /// started thread, after the function has returned or unwound.
    ///
    /// Both checks are real `assert!`s: this is the slow path (once per thread), and
    /// a second `finish` would break the promise that every join sees one outcome,
    /// so it must fail in release builds (and so under the loom suite) too.
    pub(crate) fn finish(&self, outcome: Outcome<T>) {
        assert!(
            self.outcome.set(outcome).is_ok(),
            "pythread: a completion cell was finished twice"
        );
        let before = self.state.fetch_or(FINISHED, Ordering::Release);
        assert_eq!(before & FINISHED, 0, "pythread: FINISHED was set twice");
        if before & WAITING != 0 {
            // Taking the lock orders this broadcast after the sleeping joiner released
            // it inside `wait`, so the wake-up cannot be lost.
            drop(lock(&self.lock));
            self.finished.notify_all();
        }
    }

    /// The outcome, if the function has finished; never blocks, never locks: one
    /// Acquire load (the cell's own), then a borrow.
    ///
    /// `#[inline]`, like `is_finished`, so that `Handle::join`'s fast path inlines
    /// into the caller's crate.
    #[inline]
    pub(crate) fn poll(&self) -> Option<&Outcome<T>> {
        self.outcome.get()
    }

    #[inline]
    pub(crate) fn is_finished(&self) -> bool {
        self.outcome.get().is_some()
    }

    /// Blocks until the function has finished. The lock-free check comes first in
    /// `Handle`; here the outcome is checked under the lock, as `WAITING` is set.
    pub(crate) fn wait(&self) -> &Outcome<T> {
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
    /// it timed out. A timeout too large to add to the current instant waits without
    /// a deadline. (`Handle` answers a zero timeout with a lock-free poll and never
    /// gets here with one.)
    pub(crate) fn wait_timeout(&self, timeout: Duration) -> Option<&Outcome<T>> {
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
    fn announce_waiting(&self) -> Option<&Outcome<T>> {
        let state = self.state.fetch_or(WAITING, Ordering::Acquire);
        if state & FINISHED == 0 {
            return None;
        }
        // The Acquire above read the finisher's Release `fetch_or`, which follows its
        // store of the outcome: the cell is set, and this thread sees it set.
        Some(
            self.outcome
                .get()
                .expect("pythread: FINISHED is published after the outcome"),
        )
    }

    /// The outcome, moved out; `None` only if the function never finished (the
    /// caller owns the only reference, so nothing can race this).
    pub(crate) fn into_outcome(self) -> Option<Outcome<T>> {
        self.outcome.into_inner()
    }
}
/// Spurious wake-ups: the condition variable is notified over and over without the
/// function finishing. A timed wait must still last until its deadline and report a
/// timeout; an untimed wait must not return at all; once `finish` runs, both return
/// the published outcome.
#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::ident::Ident;
    use std::sync::atomic::{AtomicBool, Ordering as StdOrdering};
    use std::sync::{mpsc, Arc as StdArc};
    use std::thread;

    /// Waits (bounded) until some joiner has announced itself and is asleep: the
    /// `WAITING` bit is set under the lock right before sleeping, so once it is seen,
    /// taking the lock means the joiner is inside `Condvar::wait*`.
    fn until_waiting(completion: &Completion<()>) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while completion.state.load(Ordering::Acquire) & WAITING == 0 {
            assert!(
                Instant::now() < deadline,
                "the joiner never started waiting"
            );
            thread::yield_now();
        }
        drop(lock(&completion.lock));
    }

    /// Wakes every sleeper without finishing, `rounds` times, each time after taking
    /// the lock so that the notification reaches a thread that is really asleep.
    fn spurious_wakeups(completion: &Completion<()>, rounds: usize) {
        for _ in 0..rounds {
            drop(lock(&completion.lock));
            completion.finished.notify_all();
            thread::sleep(Duration::from_micros(200));
        }
    }

    #[test]
    fn timed_wait_survives_spurious_wakeups_until_its_deadline() {
        let completion = StdArc::new(Completion::<()>::new());
        let timeout = Duration::from_millis(300);
        let stop = StdArc::new(AtomicBool::new(false));
        let waiter = {
            let completion = StdArc::clone(&completion);
            thread::spawn(move || {
                let began = Instant::now();
                let outcome = completion.wait_timeout(timeout);
                (outcome.is_none(), began.elapsed())
            })
        };
        until_waiting(&completion);
        let notifier = {
            let completion = StdArc::clone(&completion);
            let stop = StdArc::clone(&stop);
            thread::spawn(move || {
                while !stop.load(StdOrdering::Relaxed) {
                    spurious_wakeups(&completion, 1);
                }
            })
        };
        let (timed_out, elapsed) = waiter.join().unwrap();
        stop.store(true, StdOrdering::Relaxed);
        notifier.join().unwrap();
        assert!(
            timed_out,
            "a spurious wake-up ended the wait with an outcome"
        );
        assert!(
            elapsed >= timeout,
            "returned after {elapsed:?}, before the {timeout:?} deadline"
        );
        assert!(!completion.is_finished());
    }

    #[test]
    fn untimed_and_timed_waits_return_only_after_finish() {
        let completion = StdArc::new(Completion::<()>::new());
        let (tx, rx) = mpsc::channel();
        let mut waiters = Vec::new();
        for timed in [false, true] {
            let completion = StdArc::clone(&completion);
            let tx = tx.clone();
            waiters.push(thread::spawn(move || {
                let outcome = if timed {
                    // Far longer than the test: only `finish` can end it in time.
                    completion.wait_timeout(Duration::from_secs(60)).cloned()
                } else {
                    Some(completion.wait().clone())
                };
                tx.send(timed).unwrap();
                outcome
            }));
        }
        drop(tx);
        until_waiting(&completion);
        // Let both joiners reach the condition variable, then hammer it.
        thread::sleep(Duration::from_millis(20));
        spurious_wakeups(&completion, 300);
        assert_eq!(
            rx.try_recv(),
            Err(mpsc::TryRecvError::Empty),
            "a wait returned on a spurious wake-up, before finish"
        );

        let ident = Ident::mint();
        let panic = Panic::new(ident, Box::new("finished"));
        completion.finish(Err(panic.clone()));
        for _ in 0..2 {
            rx.recv_timeout(Duration::from_secs(10))
                .expect("a waiter did not return after finish");
        }
        for waiter in waiters {
            let outcome = waiter.join().unwrap().expect("must not time out");
            let got = outcome.expect_err("finished with a panic");
            assert!(Panic::ptr_eq(&got, &panic), "not the published outcome");
        }
        assert!(completion.is_finished());
    }

    #[test]
    fn returned_outcome_reaches_a_spuriously_woken_waiter() {
        let completion = StdArc::new(Completion::<()>::new());
        let waiter = {
            let completion = StdArc::clone(&completion);
            thread::spawn(move || completion.wait().clone())
        };
        until_waiting(&completion);
        spurious_wakeups(&completion, 100);
        assert!(!waiter.is_finished(), "wait returned before finish");
        completion.finish(Ok(()));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !waiter.is_finished() {
            assert!(
                Instant::now() < deadline,
                "wait did not return after finish"
            );
            thread::sleep(Duration::from_millis(1));
        }
        assert!(waiter.join().unwrap().is_ok());
    }
}

//! The completion cell: the write-once outcome of a started function and the
//! waiting room of everyone who joins it.
//!
//! The outcome lives in two write-once cells (`OnceLock`s), one for the value the
//! function returned and one for the [`Panic`] it raised; the started thread fills
//! exactly one of them, once. One atomic word, `state`, carries the waiting
//! protocol, and is the word joiners block on with the crate's wait primitive
//! ([`crate::sync::wait`]: a futex on Linux):
//!
//! - The outcome is stored first (the cell's own Release store publishes it, and
//!   with it everything the function did), then `FINISHED` is set with a Release
//!   read-modify-write. A finished join of a returned value is therefore one
//!   Acquire load, the value cell's own "is it set" check, and a borrow: no lock,
//!   no `Arc` traffic, no read of `state` at all. (A panicked thread's join reads
//!   the panic cell out of line and clones the `Panic`.)
//! - A joiner that finds nothing sets `WAITING` with an Acquire read-modify-write
//!   and then blocks while the word still holds exactly what it saw. The finisher
//!   wakes every blocked joiner (`wake_all`) only if its `fetch_or` saw `WAITING`,
//!   so a thread that is joined only after it finished (the common case) makes no
//!   system call. Both sides use read-modify-writes of the same word, so one of them
//!   always sees the other's bit: either the joiner sees `FINISHED` (and, through
//!   the Acquire that read it, the stored outcome), or the finisher sees `WAITING`
//!   and wakes; a joiner that had not yet blocked then finds the word changed
//!   (`FINISHED` set) and does not block at all.
//! - `WAITING` is never cleared, not even by a joiner that gives up at its deadline
//!   or on an interruption: another joiner may still be asleep, and clearing the bit
//!   would lose its wake-up. The price is one spare `wake_all` after a timed-out join.
//!
//! The value is never moved out while the cell is shared: joiners borrow it, and
//! it is dropped with the cell, when the last `Arc` holding it goes (the last
//! handle, or the started thread itself when every handle was dropped first).

use crate::panic::Panic;
use crate::sync::{self, AtomicU32, Instant, OnceLock, Ordering, Wake};

const WAITING: u32 = 0b01;
const FINISHED: u32 = 0b10;

/// What a started function left: its value, or the panic it raised.
pub(crate) type Outcome<T> = Result<T, Panic>;

/// A published outcome, borrowed from the cell.
pub(crate) type Published<'a, T> = Result<&'a T, &'a Panic>;

/// How a [`Completion::wait`] ended.
pub(crate) enum Waited<'a, T> {
    Finished(Published<'a, T>),
    TimedOut,
    Interrupted,
}

pub(crate) struct Completion<T> {
    value: OnceLock<T>,
    panic: OnceLock<Panic>,
    state: AtomicU32,
}

impl<T> Completion<T> {
    pub(crate) fn new() -> Completion<T> {
        Completion {
            value: OnceLock::new(),
            panic: OnceLock::new(),
            state: AtomicU32::new(0),
        }
    }

    /// Publishes the outcome and wakes every waiting joiner. Called once, by the
    /// started thread, after the function has returned or unwound.
    ///
    /// The checks are real `assert!`s: this is the slow path (once per thread), and
    /// a second `finish` would break the promise that every join sees one outcome,
    /// so it must fail in release builds (and so under the loom suite) too.
    pub(crate) fn finish(&self, outcome: Outcome<T>) {
        let stored = match outcome {
            Ok(value) => self.value.set(value).is_ok(),
            Err(panic) => self.panic.set(panic).is_ok(),
        };
        assert!(stored, "pythread: a completion cell was finished twice");
        let before = self.state.fetch_or(FINISHED, Ordering::Release);
        assert_eq!(before & FINISHED, 0, "pythread: FINISHED was set twice");
        if before & WAITING != 0 {
            sync::wake_all(&self.state);
        }
    }

    /// The value, if the function has returned; never blocks, never locks: one
    /// Acquire load (the cell's own), then a borrow.
    ///
    /// `#[inline]`, like `is_finished`, so that `Handle::join`'s fast path inlines
    /// into the caller's crate.
    #[inline]
    pub(crate) fn returned(&self) -> Option<&T> {
        self.value.get()
    }

    /// Whether the function has returned or panicked, i.e. whether an outcome is
    /// published: the cells' own Acquire loads (one for a returned value), so that
    /// `true` here means a join returns at once and sees everything `f` did. (Not
    /// `FINISHED`: that is set after the cell, and a join that found the cell set
    /// must never be followed by `is_finished() == false`.)
    #[inline]
    pub(crate) fn is_finished(&self) -> bool {
        self.value.get().is_some() || self.panic.get().is_some()
    }

    /// Whether a joiner has announced that it waits (for the tests that check
    /// that a join of a finished thread only reads).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn has_waiters(&self) -> bool {
        self.state.load(Ordering::SeqCst) & WAITING != 0
    }

    /// The outcome, if the function has finished; never blocks, never locks.
    pub(crate) fn poll(&self) -> Option<Published<'_, T>> {
        if let Some(value) = self.value.get() {
            return Some(Ok(value));
        }
        self.panic.get().map(Err)
    }

    /// Blocks until the function has finished, or `deadline` (`None`: none) has
    /// passed, or, if `interruptible`, a signal handler ran on this thread
    /// (`Interrupted`, Linux futex backend and loom model only). Without
    /// `interruptible`, an interruption only resumes the wait, against the same
    /// deadline. A spurious wake-up never ends it. `TimedOut` is returned only once
    /// the deadline has passed on the crate's clock, and only if the function had
    /// not finished when this last looked.
    pub(crate) fn wait(&self, deadline: Option<Instant>, interruptible: bool) -> Waited<'_, T> {
        let mut state = self.state.fetch_or(WAITING, Ordering::Acquire) | WAITING;
        loop {
            if state & FINISHED != 0 {
                return Waited::Finished(self.published());
            }
            match sync::wait(&self.state, state, deadline) {
                Wake::Woken => {}
                Wake::TimedOut => {
                    // One last look: an outcome published meanwhile is the answer.
                    if self.state.load(Ordering::Acquire) & FINISHED != 0 {
                        return Waited::Finished(self.published());
                    }
                    return Waited::TimedOut;
                }
                Wake::Interrupted if interruptible => return Waited::Interrupted,
                Wake::Interrupted => {}
            }
            state = self.state.load(Ordering::Acquire);
        }
    }

    /// The outcome, for a caller whose Acquire operation on `state` saw `FINISHED`:
    /// the finisher stored it before its Release `fetch_or`, so it is set and visible.
    fn published(&self) -> Published<'_, T> {
        self.poll()
            .expect("pythread: FINISHED is published after the outcome")
    }

    /// The outcome, moved out; `None` only if the function never finished (the
    /// caller owns the only reference, so nothing can race this).
    pub(crate) fn into_outcome(self) -> Option<Outcome<T>> {
        match self.value.into_inner() {
            Some(value) => Some(Ok(value)),
            None => self.panic.into_inner().map(Err),
        }
    }
}

/// Spurious wake-ups: the state word is woken over and over without the function
/// finishing. A timed wait must still last until its deadline and report a
/// timeout; an untimed wait must not return at all; once `finish` runs, both return
/// the published outcome.
#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::ident::Ident;
    use std::sync::atomic::{AtomicBool, Ordering as StdOrdering};
    use std::sync::{Arc as StdArc, mpsc};
    use std::thread;
    use std::time::{Duration, Instant};

    const WATCHDOG: Duration = Duration::from_secs(20);

    /// The calling thread's kernel id (Linux), to see it asleep.
    fn current_tid() -> Option<u32> {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
        stat.split_whitespace().next()?.parse().ok()
    }

    /// Waits (bounded) until the joiners announced themselves (`WAITING`) and, where
    /// the kernel says so (Linux), are asleep in it: seen in state `S` three polls in
    /// a row. Elsewhere the `WAITING` bit is the best available evidence.
    fn until_asleep(completion: &Completion<()>, tids: &[Option<u32>]) {
        let deadline = Instant::now() + WATCHDOG;
        let asleep = |tid: u32| {
            std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).is_ok_and(|stat| {
                stat.rfind(')')
                    .and_then(|end| stat[end + 1..].split_whitespace().next())
                    == Some("S")
            })
        };
        let mut in_a_row = 0;
        while in_a_row < 3 {
            assert!(Instant::now() < deadline, "the joiners never fell asleep");
            let waiting = completion.state.load(Ordering::Acquire) & WAITING != 0;
            let sleeping = tids.iter().flatten().all(|&tid| asleep(tid));
            in_a_row = if waiting && sleeping { in_a_row + 1 } else { 0 };
            thread::yield_now();
        }
    }

    /// Wakes every sleeper without finishing, `rounds` times.
    fn spurious_wakeups(completion: &Completion<()>, rounds: usize) {
        for _ in 0..rounds {
            sync::wake_all(&completion.state);
            // Pacing only (the waiter's outcome must not depend on how many
            // wake-ups it gets): gives the woken waiter time to run between them.
            thread::sleep(Duration::from_micros(200));
        }
    }

    fn finished(waited: Waited<'_, ()>) -> Option<Result<(), Panic>> {
        match waited {
            Waited::Finished(outcome) => Some(outcome.map(|_| ()).map_err(Panic::clone)),
            Waited::TimedOut => None,
            Waited::Interrupted => unreachable!("not interruptible"),
        }
    }

    #[test]
    fn timed_wait_survives_spurious_wakeups_until_its_deadline() {
        let completion = StdArc::new(Completion::<()>::new());
        let timeout = Duration::from_millis(300);
        let stop = StdArc::new(AtomicBool::new(false));
        let (tid_tx, tid_rx) = mpsc::channel();
        let waiter = {
            let completion = StdArc::clone(&completion);
            thread::spawn(move || {
                tid_tx.send(current_tid()).unwrap();
                let began = Instant::now();
                let outcome = finished(completion.wait(Some(began + timeout), false));
                (outcome.is_none(), began.elapsed())
            })
        };
        let tid = tid_rx.recv_timeout(WATCHDOG).unwrap();
        until_asleep(&completion, &[tid]);
        let notifier = {
            let completion = StdArc::clone(&completion);
            let stop = StdArc::clone(&stop);
            thread::spawn(move || {
                while !stop.load(StdOrdering::Relaxed) {
                    spurious_wakeups(&completion, 1);
                }
            })
        };
        let deadline = Instant::now() + WATCHDOG;
        while !waiter.is_finished() {
            assert!(Instant::now() < deadline, "the timed wait never returned");
            thread::yield_now();
        }
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
        let (tid_tx, tid_rx) = mpsc::channel();
        let mut waiters = Vec::new();
        for timed in [false, true] {
            let completion = StdArc::clone(&completion);
            let tx = tx.clone();
            let tid_tx = tid_tx.clone();
            waiters.push(thread::spawn(move || {
                tid_tx.send(current_tid()).unwrap();
                // Far longer than the test: only `finish` can end it in time.
                let deadline = timed.then(|| Instant::now() + Duration::from_secs(60));
                let outcome = finished(completion.wait(deadline, false));
                tx.send(timed).unwrap();
                outcome
            }));
        }
        drop(tx);
        let tids = [
            tid_rx.recv_timeout(WATCHDOG).unwrap(),
            tid_rx.recv_timeout(WATCHDOG).unwrap(),
        ];
        // Both joiners asleep in the kernel, then hammer the word.
        until_asleep(&completion, &tids);
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
            rx.recv_timeout(WATCHDOG)
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
        let (tid_tx, tid_rx) = mpsc::channel();
        let waiter = {
            let completion = StdArc::clone(&completion);
            thread::spawn(move || {
                tid_tx.send(current_tid()).unwrap();
                finished(completion.wait(None, false))
            })
        };
        until_asleep(&completion, &[tid_rx.recv_timeout(WATCHDOG).unwrap()]);
        spurious_wakeups(&completion, 100);
        assert!(!waiter.is_finished(), "wait returned before finish");
        completion.finish(Ok(()));
        let deadline = Instant::now() + WATCHDOG;
        while !waiter.is_finished() {
            assert!(
                Instant::now() < deadline,
                "wait did not return after finish"
            );
            thread::yield_now();
        }
        assert!(waiter.join().unwrap().expect("finished").is_ok());
    }

    /// A timed-out joiner leaves `WAITING` set; an untimed joiner asleep at the same
    /// time is still woken by `finish`.
    #[test]
    fn a_timed_out_joiner_does_not_strand_another() {
        let completion = StdArc::new(Completion::<()>::new());
        let (tid_tx, tid_rx) = mpsc::channel();
        let untimed = {
            let completion = StdArc::clone(&completion);
            thread::spawn(move || {
                tid_tx.send(current_tid()).unwrap();
                finished(completion.wait(None, false))
            })
        };
        until_asleep(&completion, &[tid_rx.recv_timeout(WATCHDOG).unwrap()]);
        let gave_up =
            finished(completion.wait(Some(Instant::now() + Duration::from_millis(20)), false));
        assert!(gave_up.is_none());
        assert_ne!(completion.state.load(Ordering::Acquire) & WAITING, 0);
        completion.finish(Ok(()));
        let deadline = Instant::now() + WATCHDOG;
        while !untimed.is_finished() {
            assert!(Instant::now() < deadline, "the untimed joiner was stranded");
            thread::yield_now();
        }
        assert!(untimed.join().unwrap().expect("finished").is_ok());
    }
}

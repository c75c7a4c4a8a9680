//! `_thread.lock`: CPython's binary semaphore with timed and interruptible
//! acquisition (`PyThread_allocate_lock`, `PyThread_acquire_lock[_timed]`,
//! `PyThread_acquire_lock_timed_with_retries`, `PyThread_release_lock`).
//!
//! # The lock word
//!
//! One `u32`, the futex word of the wait primitive in `crate::sync`:
//!
//! | bit | meaning |
//! |---|---|
//! | `LOCKED` (0) | held |
//! | `PARKED` (1) | a thread is asleep on the word, or about to be: the release that clears it wakes one (only ever set beside `LOCKED`) |
//! | `STARVING` (2) | a waiter has waited more than 1 ms: the next release hands the lock to it instead of unlocking it |
//! | `HANDOFF` (3) | a release handed the lock to the waiter that set `STARVING`: that acquisition is the waiter's; only it clears the bit |
//!
//! Acquisition is a `fetch_or(LOCKED)` (a barging try), then a bounded spin while
//! nobody is parked or starving, then sleeping on the word: a thread about to
//! sleep sets `PARKED` and sleeps with it in the compare value (parking_lot's
//! `PARKED_BIT`, std's futex mutex state 2, CPython's `_Py_HAS_PARKED`). Release
//! is one compare-exchange from a `LOCKED` state (so an unlocked lock is an
//! error), which clears `PARKED` and, only if it was set, makes the one wake
//! system call. The word holds no count, so a thread arriving to sleep does not
//! change it under the sleepers already there (no `EAGAIN` retries from
//! arrivals, which a count in the compare value caused).
//!
//! With one bit and no queue the lock cannot tell whether a second thread still
//! sleeps after it woke one, so a thread that has slept takes the lock (or its
//! handoff) with `PARKED` set, and its release wakes the next sleeper (std's
//! rule): at most one wake call for nobody at the end of a contended stretch. A
//! waiter that gives up (timeout, interruption) was not the one woken (a woken
//! futex wait returns 0 even when a signal or the timeout came at the same
//! time), and it set `PARKED` before that wait, so no wake is lost.
//!
//! The fairness rule is CPython 3.14's `PyMutex`: a waiter that has waited 1 ms,
//! counted from the start of its acquisition (kept across the retries of
//! `acquire_with_retries`), is no longer barged past: it sets `STARVING` (an
//! uninterruptible sleeper wakes when its millisecond is up to do so; an
//! interruptible one, which must not be awake when a signal comes, at its first
//! wake-up after it), and the next release hands the lock to it.
//!
//! # Who gets a handoff, and what it is
//!
//! `PyMutex` parks its waiters in a FIFO queue and hands the lock to the head. A
//! futex word has no queue the lock can see: the kernel wakes its sleepers in
//! arrival order, and a waiter that wakes, loses the race and sleeps again goes
//! to the back. So the handoff belongs to the one waiter that set `STARVING` (one
//! compare-exchange decides it, and that thread remembers it), not to whichever
//! waiter wakes first: a release that hands off wakes every sleeper, the starving
//! waiter claims the lock, the others see it still held and sleep again. Without
//! that rule two threads re-taking the lock in a loop kept a third waiting for
//! about 70 ms on a quiet 2-core machine (`benches/lock.rs`, BENCHMARKS.md): every
//! handoff went to a re-taker that happened to sleep ahead of the starving
//! waiter. The wake-all costs one extra wake-up per sleeper, at most once per
//! handoff, and a handoff needs a waiter passed over for a whole millisecond.
//!
//! The handoff IS that waiter's acquisition (CPython 3.14's rule): the release
//! that makes it ends the previous acquisition, and the waiter returns acquired
//! even if another thread released the lock again before it looked (that second
//! `Ok` ended the waiter's acquisition; the waiter's own later release may then
//! be an `Err`). So every `Ok` release ends exactly one acquisition that
//! returned true. Until the waiter claims it, `HANDOFF` stays in the word (with
//! or without `LOCKED`) and no new request is made; the waiter alone clears
//! `STARVING` or `HANDOFF`: it claims the handoff, or withdraws its request when
//! it gives up (before `pending_calls` runs, so a request is never left standing
//! for a thread that is not waiting).

use std::error::Error;
use std::fmt;
use std::time::Duration;

use crate::TIMEOUT_MAX;
use crate::sync::{self, AtomicU32, Instant, Ordering, Wake, now};

const LOCKED: u32 = 1;
/// A thread is asleep on the word, or about to be (it sets the bit, then sleeps
/// with the bit in the compare value): the release that clears it wakes one.
const PARKED: u32 = 2;
const STARVING: u32 = 4;
const HANDOFF: u32 = 8;
/// A handoff requested or made: the bits a waiter asking for one looks at.
const REQUESTED: u32 = STARVING + HANDOFF; // disjoint bits

/// How long a waiter is barged past before the lock is handed to it
/// (CPython 3.14's `TIME_TO_BE_FAIR_NS`).
const FAIR_AFTER: Duration = Duration::from_millis(1);

/// Spin iterations before parking (`parking_lot`'s `SpinWait`: 3 busy rounds of
/// growing length, then yields). None under loom: spinning only adds states.
const SPINS: u32 = if cfg!(loom) { 0 } else { 10 };

/// Busy-spin rounds (2, 4, 8 `spin_loop` hints) after a wake-up that lost the race.
const WOKEN_SPINS: u32 = if cfg!(loom) { 0 } else { 3 };

/// The result of a timed acquisition: CPython's `PyLockStatus`.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// use pythread::{Lock, LockStatus};
///
/// let lock = Lock::new();
/// assert_eq!(lock.acquire_timed(0, false), LockStatus::Acquired);
/// assert_eq!(lock.acquire_timed(0, false), LockStatus::Failure); // held: no wait
/// assert_eq!(LockStatus::Intr as i32, 2); // PY_LOCK_INTR
/// # });
/// ```
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LockStatus {
    /// Not acquired: the lock was held for the whole timeout (`PY_LOCK_FAILURE`).
    Failure = 0,
    /// Acquired (`PY_LOCK_ACQUIRED`).
    Acquired = 1,
    /// Not acquired: a signal handler ran on the waiting thread and the caller
    /// asked to be told (`intr = true`; `PY_LOCK_INTR`). Only the Linux build can
    /// observe signals; elsewhere the wait cannot be interrupted.
    Intr = 2,
}

/// The error of a release that had nothing to release; its message is CPython's
/// (`RuntimeError`), and [`kind`](ReleaseError::kind) says which of the two it is
/// without comparing strings.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// use pythread::{Lock, RLock, ReleaseErrorKind};
///
/// let err = Lock::new().release().unwrap_err();
/// assert_eq!(err.kind(), ReleaseErrorKind::Unlocked);
/// assert_eq!(err.to_string(), "release unlocked lock");
/// let err = RLock::new().release().unwrap_err();
/// assert_eq!(err.kind(), ReleaseErrorKind::Unacquired);
/// assert_eq!(err.to_string(), "cannot release un-acquired lock");
/// # });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReleaseError {
    kind: ReleaseErrorKind,
}

/// Which release failed: what [`ReleaseError::kind`] returns.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// use pythread::{Lock, ReleaseErrorKind};
///
/// match Lock::new().release() {
///     Err(e) if e.kind() == ReleaseErrorKind::Unlocked => {} // nothing to release
///     other => panic!("{other:?}"),
/// }
/// # });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReleaseErrorKind {
    /// A [`Lock`] that was not locked ("release unlocked lock").
    Unlocked,
    /// An [`RLock`](crate::RLock) the caller does not own: unowned, or owned by
    /// another thread ("cannot release un-acquired lock").
    Unacquired,
}

impl ReleaseError {
    pub(crate) const UNLOCKED: ReleaseError = ReleaseError {
        kind: ReleaseErrorKind::Unlocked,
    };
    pub(crate) const UNACQUIRED: ReleaseError = ReleaseError {
        kind: ReleaseErrorKind::Unacquired,
    };

    /// Which release failed.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use pythread::{RLock, ReleaseErrorKind};
    ///
    /// let err = RLock::new().release_save().unwrap_err();
    /// assert_eq!(err.kind(), ReleaseErrorKind::Unacquired);
    /// # });
    /// ```
    pub fn kind(&self) -> ReleaseErrorKind {
        self.kind
    }
}

impl fmt::Display for ReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            ReleaseErrorKind::Unlocked => "release unlocked lock",
            ReleaseErrorKind::Unacquired => "cannot release un-acquired lock",
        })
    }
}

impl Error for ReleaseError {}

/// CPython's `_thread.lock` (`threading.Lock`): a binary semaphore with timed and
/// interruptible acquisition.
///
/// Unlike [`std::sync::Mutex`] it protects no data and has no owner: any thread
/// may [`release`](Lock::release) it, and a thread that acquires it again blocks
/// (it is not reentrant; see [`RLock`](crate::RLock) for that). Releasing an
/// unlocked lock is an [`Err`], never a double unlock: every release that
/// returns `Ok` ends exactly one acquisition that returned true.
///
/// A blocked thread is never starved: a thread that has waited more than 1 ms
/// (from the start of its acquisition) asks to be handed the lock, and the next
/// release hands it over instead of letting others barge past (CPython 3.14's
/// rule). An uninterruptible waiter asks when its 1 ms ends (it wakes for that);
/// an interruptible one at its first wake-up after it, so that it is asleep
/// whenever a signal may end its wait. That handoff is its
/// acquisition even if another thread releases the lock before the waiter
/// returns (then the waiter's own release may get `Err`, as in CPython 3.14). On Linux a wait ends with [`LockStatus::Intr`] when a signal
/// handler runs on the waiting thread and the caller asked for that; elsewhere the
/// wait is a mutex + condition variable that signals cannot end. The lock is 4
/// bytes; dropping it while held is fine.
///
/// **No poisoning**: the lock guards no data, so a panic while it is held marks
/// nothing; a [`LockGuard`] releases it while the panic unwinds, and a lock taken
/// with [`acquire`](Lock::acquire) stays held until some thread releases it.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// use pythread::Lock;
/// use std::sync::Arc;
///
/// let done = Arc::new(Lock::new());
/// done.acquire();
/// let signal = Arc::clone(&done);
/// let worker = pythread::start(move || {
///     // ... work ...
///     signal.release().unwrap(); // another thread may release it
/// });
/// done.acquire(); // blocks until the worker released it
/// worker.join().unwrap();
/// # });
/// ```
pub struct Lock {
    word: AtomicU32,
}

impl Lock {
    /// Creates an unlocked lock (`PyThread_allocate_lock`).
    ///
    /// A `const fn`, so a lock can be a `static`, as with [`std::sync::Mutex`]. (The
    /// loom build of the crate, `--cfg loom`, has no `const` atomics: there it is a
    /// plain `fn`, and a model builds its locks inside `loom::model`.)
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let lock = pythread::Lock::new();
    /// assert!(!lock.locked());
    /// # });
    /// # pythread::__if_not_loom! {
    /// use pythread::Lock;
    ///
    /// static LOCK: Lock = Lock::new();
    /// LOCK.acquire();
    /// assert!(LOCK.locked());
    /// LOCK.release().unwrap();
    /// # }
    /// ```
    #[cfg(not(loom))]
    pub const fn new() -> Lock {
        Lock {
            word: AtomicU32::new(0),
        }
    }

    /// Creates an unlocked lock (the loom build: not `const`).
    #[cfg(loom)]
    pub fn new() -> Lock {
        Lock {
            word: AtomicU32::new(0),
        }
    }

    /// Makes this a fresh, unlocked lock, whatever it held: CPython's
    /// `_at_fork_reinit` (`_PyThread_at_fork_reinit`). For the child of a `fork()`,
    /// where the threads that held the lock or waited for it do not exist: their
    /// acquisition and their waiter bookkeeping are dropped, not released.
    ///
    /// Call it only where no other thread can be using the lock (in the child
    /// right after `fork()`, only the forking thread exists); on a lock that
    /// threads are waiting for it would strand them.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let lock = pythread::Lock::new();
    /// lock.acquire(); // held by a thread that did not survive fork(), say
    /// lock.reinit_after_fork();
    /// assert!(!lock.locked());
    /// assert!(lock.try_acquire());
    /// # });
    /// ```
    pub fn reinit_after_fork(&self) {
        self.word.store(0, Ordering::Relaxed);
    }

    /// Acquires the lock, waiting as long as it takes (`PyThread_acquire_lock(l, 1)`).
    /// Signals never end this wait.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let lock = pythread::Lock::new();
    /// lock.acquire();
    /// assert!(lock.locked());
    /// lock.release().unwrap();
    /// # });
    /// ```
    #[inline]
    pub fn acquire(&self) {
        if !self.try_lock_word() {
            let status = self.acquire_slow(None, false, now());
            debug_assert_eq!(status, LockStatus::Acquired);
        }
    }

    /// Acquires the lock if it is free, without blocking; returns whether it did
    /// (`PyThread_acquire_lock(l, 0)`).
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let lock = pythread::Lock::new();
    /// assert!(lock.try_acquire());
    /// assert!(!lock.try_acquire()); // not reentrant
    /// # });
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> bool {
        self.try_lock_word()
    }

    /// Acquires the lock, waiting at most `timeout` (measured on the monotonic
    /// clock from the call); returns whether it did. A zero timeout never blocks;
    /// a timeout too large for the clock waits forever. Signals never end the wait
    /// early, and `false` is never returned before `timeout` has passed.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use std::time::{Duration, Instant};
    ///
    /// let lock = pythread::Lock::new();
    /// assert!(lock.acquire_timeout(Duration::from_secs(5))); // free: at once
    /// let start = Instant::now();
    /// assert!(!lock.acquire_timeout(Duration::from_millis(10)));
    /// assert!(start.elapsed() >= Duration::from_millis(10));
    /// # });
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        if self.try_lock_word() {
            return true;
        }
        if timeout.is_zero() {
            return false;
        }
        let entered = now();
        self.acquire_slow(entered.checked_add(timeout), false, entered) == LockStatus::Acquired
    }

    /// `PyThread_acquire_lock_timed`: `microseconds < 0` waits forever, `0` never
    /// blocks, `> 0` waits up to that long (values above [`TIMEOUT_MAX`] are
    /// clamped to it; the deadline is fixed on entry).
    ///
    /// With `intr = true`, a signal handler that runs on this thread during the
    /// wait ends it with [`LockStatus::Intr`] (Linux only: elsewhere signals cannot
    /// end the wait). With `intr = false` the wait resumes against the same
    /// deadline. A spurious wake-up never ends the wait early.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use pythread::{Lock, LockStatus, TIMEOUT_MAX};
    ///
    /// let lock = Lock::new();
    /// assert_eq!(lock.acquire_timed(-1, true), LockStatus::Acquired);
    /// assert_eq!(lock.acquire_timed(1_000, false), LockStatus::Failure); // 1 ms
    /// lock.release().unwrap();
    /// assert_eq!(lock.acquire_timed(TIMEOUT_MAX, false), LockStatus::Acquired);
    /// # });
    /// ```
    pub fn acquire_timed(&self, microseconds: i64, intr: bool) -> LockStatus {
        if self.try_lock_word() {
            return LockStatus::Acquired;
        }
        if microseconds == 0 {
            return LockStatus::Failure;
        }
        // Negative: no deadline. Positive: clamped to TIMEOUT_MAX; a deadline the
        // clock cannot represent is no deadline either.
        let entered = now();
        let deadline = u64::try_from(microseconds).ok().and_then(|us| {
            entered.checked_add(Duration::from_micros(us.min(TIMEOUT_MAX.unsigned_abs())))
        });
        self.acquire_slow(deadline, intr, entered)
    }

    /// `PyThread_acquire_lock_timed_with_retries`: acquires the lock, waiting at
    /// most `timeout` (`None` waits forever; `Some(ZERO)` only tries). On each
    /// interruption (a signal handler ran on this thread; Linux only) it calls
    /// `pending_calls`, the runtime's hook that runs the Python-level signal
    /// handlers: an `Err` ends the wait with that error, `Ok` resumes it against the
    /// SAME deadline (if the deadline has passed meanwhile, that is one last try, as
    /// for any timed-out wait). `Ok(true)`: acquired; `Ok(false)`: timed out.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use std::time::Duration;
    ///
    /// let lock = pythread::Lock::new();
    /// let mut calls = 0;
    /// let got = lock.acquire_with_retries(Some(Duration::from_secs(1)), || {
    ///     calls += 1;
    ///     Ok::<(), &str>(())
    /// });
    /// assert_eq!(got, Ok(true));
    /// assert_eq!(calls, 0); // no signal arrived
    /// assert_eq!(lock.acquire_with_retries(Some(Duration::ZERO), || Err("never called")), Ok(false));
    /// # });
    /// ```
    pub fn acquire_with_retries<E>(
        &self,
        timeout: Option<Duration>,
        mut pending_calls: impl FnMut() -> Result<(), E>,
    ) -> Result<bool, E> {
        if self.try_lock_word() {
            return Ok(true);
        }
        let entered = now();
        let deadline = match timeout {
            Some(timeout) if timeout.is_zero() => return Ok(false),
            Some(timeout) => entered.checked_add(timeout),
            None => None,
        };
        loop {
            // The 1 ms after which this thread asks for a handoff runs from
            // `entered` across the retries (an interrupted wait withdrew its request).
            match self.acquire_slow(deadline, true, entered) {
                LockStatus::Acquired => return Ok(true),
                LockStatus::Failure => return Ok(false),
                // Resumed against the same deadline: once it has passed, the wait
                // times out at once and takes the lock only if it is free.
                LockStatus::Intr => pending_calls()?,
            }
        }
    }

    /// Releases the lock, whichever thread acquired it (`PyThread_release_lock`).
    /// Releasing an unlocked lock is an error (CPython's `RuntimeError`), and one
    /// atomic step decides it: every `Ok` ends exactly one acquisition that
    /// returned true, so of two threads racing to release one held lock, exactly
    /// one gets `Ok`.
    ///
    /// # Errors
    ///
    /// [`ReleaseError`] "release unlocked lock" when the lock is not held.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let lock = pythread::Lock::new();
    /// lock.acquire();
    /// assert!(lock.release().is_ok());
    /// assert!(lock.release().is_err());
    /// # });
    /// ```
    #[inline]
    pub fn release(&self) -> Result<(), ReleaseError> {
        // Uncontended: held, nobody registered.
        if self
            .word
            .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
            .is_ok()
        {
            return Ok(());
        }
        self.release_slow()
    }

    #[cold]
    fn release_slow(&self) -> Result<(), ReleaseError> {
        let mut state = self.word.load(Ordering::Relaxed);
        loop {
            if state & LOCKED == 0 {
                return Err(ReleaseError::UNLOCKED);
            }
            // Arithmetic on bits each branch knows (the unit tests see the exact
            // word). PARKED is cleared either way: the sleeper woken below sets
            // it again if it sleeps again or takes the lock (see `wait`).
            let next = if state & STARVING != 0 {
                // Hand it to the starving waiter: it stays LOCKED, no barging in
                // between, and that is the waiter's acquisition from now on.
                state - STARVING + HANDOFF - (state & PARKED)
            } else {
                // A pending HANDOFF stays: released before the starving waiter
                // looked, the lock is free, and the acquisition this release ended
                // is still that waiter's to return.
                state - LOCKED - (state & PARKED)
            };
            match self
                .word
                .compare_exchange_weak(state, next, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => {
                    if state & PARKED != 0 {
                        #[cfg(all(test, not(loom)))]
                        tests::WAKES.with(|n| n.set(n.get() + 1));
                        if state & STARVING != 0 {
                            // Only the starving waiter may claim it, and the
                            // kernel wakes in its own order: wake them all.
                            sync::wake_all(&self.word);
                        } else {
                            sync::wake_one(&self.word);
                        }
                    }
                    return Ok(());
                }
                Err(actual) => state = actual,
            }
        }
    }

    /// Whether the lock is held by some thread right now (`lock.locked()`).
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let lock = pythread::Lock::new();
    /// assert!(!lock.locked());
    /// lock.acquire();
    /// assert!(lock.locked());
    /// # });
    /// ```
    #[inline]
    pub fn locked(&self) -> bool {
        self.word.load(Ordering::Relaxed) & LOCKED != 0
    }

    /// Acquires the lock like [`acquire`](Lock::acquire) and returns a guard that
    /// releases it when dropped (Python's `with lock:`).
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let lock = pythread::Lock::new();
    /// {
    ///     let _guard = lock.lock();
    ///     assert!(lock.locked());
    /// }
    /// assert!(!lock.locked());
    /// # });
    /// ```
    pub fn lock(&self) -> LockGuard<'_> {
        self.acquire();
        LockGuard { lock: self }
    }

    /// Acquires the lock if it is free, without blocking, and returns a guard that
    /// releases it when dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let lock = pythread::Lock::new();
    /// let guard = lock.try_lock().expect("free");
    /// assert!(lock.try_lock().is_none());
    /// drop(guard);
    /// assert!(lock.try_lock().is_some());
    /// # });
    /// ```
    pub fn try_lock(&self) -> Option<LockGuard<'_>> {
        // `then`, not `then_some`: an eagerly built guard would release on drop.
        self.try_acquire().then(|| LockGuard { lock: self })
    }

    /// Acquires the lock like [`acquire_timeout`](Lock::acquire_timeout) and
    /// returns a guard that releases it when dropped, or `None` on timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use std::time::Duration;
    ///
    /// let lock = pythread::Lock::new();
    /// let guard = lock.lock_timeout(Duration::from_secs(1)).expect("free");
    /// assert!(lock.lock_timeout(Duration::from_millis(1)).is_none());
    /// drop(guard);
    /// # });
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> Option<LockGuard<'_>> {
        self.acquire_timeout(timeout)
            .then(|| LockGuard { lock: self })
    }

    /// One barging attempt: a single `fetch_or`, which is also the fast path.
    #[inline]
    fn try_lock_word(&self) -> bool {
        self.word.fetch_or(LOCKED, Ordering::Acquire) & LOCKED == 0
    }

    /// Takes the lock from `state` if it is free, setting `parked` (`PARKED` for
    /// a thread that has slept, see [`Lock::wait`], else 0) with it. `None` when
    /// it is held.
    fn claim_free(&self, state: u32, parked: u32) -> Option<bool> {
        if state & LOCKED != 0 {
            return None;
        }
        // Free implies PARKED clear (every release clears it), so `+` only sets bits.
        Some(
            self.word
                .compare_exchange(
                    state,
                    state + LOCKED + parked,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
                .is_ok(),
        )
    }

    /// Claims the handoff in `state` (`HANDOFF` set; only the starving waiter
    /// calls this): the acquisition the release made for this thread, which it
    /// returns even if another release has ended it since (CPython 3.14's rule).
    /// Returns whether the compare-exchange succeeded (else: look again).
    fn claim_handoff(&self, state: u32, parked: u32) -> bool {
        let held = state & LOCKED != 0;
        // Still held: this thread holds it now, and a thread that has slept sets
        // PARKED with it (see `wait`). Released meanwhile: PARKED stays clear (it
        // is only ever set beside LOCKED).
        let next = state - HANDOFF + if held { parked & !state } else { 0 };
        if self
            .word
            .compare_exchange(state, next, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        if !held && parked != 0 {
            // This thread may be the one a release woke in place of the PARKED it
            // cleared: with the lock free and nothing to release later, pass that
            // wake on.
            #[cfg(all(test, not(loom)))]
            tests::WAKES.with(|n| n.set(n.get() + 1));
            sync::wake_one(&self.word);
        }
        true
    }

    /// The slow path of every blocking acquisition: `entered` is when the
    /// acquisition began (the start of the 1 ms after which this thread asks for
    /// a handoff), kept across the retries of `acquire_with_retries`.
    #[cold]
    fn acquire_slow(&self, deadline: Option<Instant>, intr: bool, entered: Instant) -> LockStatus {
        #[cfg(all(test, not(loom)))]
        tests::SLOW_PATHS.with(|n| n.set(n.get() + 1));
        if self.spin_before_parking() {
            return LockStatus::Acquired;
        }
        self.wait(deadline, intr, entered + FAIR_AFTER)
    }

    /// Spins while nobody is parked and no handoff is asked for or made (the
    /// holder is likely to release soon, and the release will not hand the lock to
    /// somebody else; once it does, the starving waiter needs a CPU more than a
    /// spinner does: with spinners, the worst wait under two re-takers was 1 ms
    /// longer more often) and returns whether a barging try took the lock
    /// meanwhile. Only a matter of speed: how long, or whether at all, a thread
    /// spins changes no outcome (under loom it
    /// never spins), so its mutants are excluded by name in `.cargo/mutants.toml`
    /// (TESTING.md).
    fn spin_before_parking(&self) -> bool {
        let mut spin = 0;
        #[allow(clippy::absurd_extreme_comparisons)] // SPINS is 0 under loom
        while spin < SPINS {
            let state = self.word.load(Ordering::Relaxed);
            if state & LOCKED == 0 {
                if self.try_lock_word() {
                    return true;
                }
            } else if state & (PARKED | REQUESTED) != 0 {
                break;
            }
            if spin < 3 {
                pause(spin);
            } else {
                std::thread::yield_now();
            }
            spin += 1;
        }
        false
    }

    /// Waits until this thread holds the lock or gives up (`deadline`, or an
    /// interruption with `intr`); from `fair_at` on, it asks for a handoff.
    fn wait(&self, deadline: Option<Instant>, intr: bool, fair_at: Instant) -> LockStatus {
        // `PARKED` once this thread has slept: from then on it may be the thread
        // a release woke in place of the `PARKED` it cleared (other sleepers may
        // remain), so whatever it takes, it takes with `PARKED` (std's futex
        // mutex: state 2 after a sleep; CPython: `_Py_HAS_PARKED` from the queue).
        let mut parked = 0;
        // This thread set `STARVING`: the `HANDOFF` it turns into is its own
        // acquisition. Nobody else clears either bit (see the module doc).
        let mut starving = false;
        // Spinning happened before the first sleep; again after each wake-up.
        let mut woken_spins = WOKEN_SPINS;
        loop {
            let state = self.word.load(Ordering::Relaxed);
            if starving && state & HANDOFF != 0 {
                if self.claim_handoff(state, parked) {
                    return LockStatus::Acquired;
                }
                continue;
            }
            match self.claim_free(state, parked) {
                Some(true) => return LockStatus::Acquired,
                Some(false) => continue,
                None => {}
            }
            // Held. Freshly woken and passed over: spin a little (no yields: on a
            // busy machine a yield can give the CPU away for a whole time slice)
            // before sleeping again; the holder's critical section is probably short.
            if spin_after_wake(&mut woken_spins) {
                continue;
            }
            // Passed over since `fair_at`, and nobody else's request pending: ask
            // for the handoff (checked once per sleep, not per spin).
            if !starving && state & REQUESTED == 0 && now() >= fair_at {
                starving = self
                    .word
                    .compare_exchange(
                        state,
                        state + STARVING,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    )
                    .is_ok();
                continue;
            }
            // About to sleep: say so in the word, so that the next release wakes
            // a sleeper (and, with the bit in the compare value, a release that
            // clears it first makes this wait return at once).
            if state & PARKED == 0
                && self
                    .word
                    .compare_exchange(state, state + PARKED, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            // Until it has asked, an uninterruptible sleeper also wakes when its
            // millisecond is up, to ask: otherwise it would ask only once some
            // release woke it, and a release wakes one sleeper of several (the
            // re-takers sleep too). An interruptible one does not: a signal that
            // arrives while it is awake finds no system call to end with `EINTR`
            // and is lost until the next wake-up, and a wake-up 1 ms after entry
            // is just when a caller who saw it block would signal it (the signal
            // benchmark hung on exactly that). It asks at its first wake-up.
            let until = match deadline {
                Some(d) if d <= fair_at => deadline,
                // (Once it has asked, `fair_at` has passed: no `!starving` needed.)
                _ if !intr && now() < fair_at => Some(fair_at),
                _ => deadline,
            };
            let woke = sync::wait(&self.word, state | PARKED, until);
            parked = PARKED;
            match woke {
                Wake::Woken => woken_spins = 0,
                // Its millisecond is up: ask (above), spinning a little first, as
                // after a wake-up.
                Wake::TimedOut if until != deadline => woken_spins = 0,
                Wake::TimedOut => return self.leave(LockStatus::Failure, starving, parked),
                Wake::Interrupted if intr => return self.leave(LockStatus::Intr, starving, parked),
                Wake::Interrupted => {}
            }
        }
    }

    /// Ends the wait of a thread that gives up with `status` (a timeout or an
    /// interruption). The starving waiter claims its handoff if it was made
    /// (that acquisition is already its own), else withdraws its request before
    /// returning (an interrupted waiter runs `pending_calls` next: a request left
    /// standing meanwhile would hand the lock to nobody); a timed-out waiter takes
    /// a free lock (one last try at the deadline).
    ///
    /// `PARKED` stays as it is: this thread set it before the wait that ended,
    /// and a waiter that gives up was not the one woken (a woken futex wait
    /// returns 0 even when a signal or the timeout came too, and the loom model
    /// gives a wake priority over both), so no wake is lost; at worst the next
    /// release makes one wake system call for nobody.
    #[cold]
    fn leave(&self, status: LockStatus, starving: bool, parked: u32) -> LockStatus {
        loop {
            let state = self.word.load(Ordering::Relaxed);
            if starving && state & HANDOFF != 0 {
                if self.claim_handoff(state, parked) {
                    return LockStatus::Acquired;
                }
                continue;
            }
            if status == LockStatus::Failure {
                match self.claim_free(state, parked) {
                    Some(true) => return LockStatus::Acquired,
                    Some(false) => continue,
                    None => {}
                }
            }
            if !starving {
                return status;
            }
            // STARVING is set (it is this thread's, and only a handoff, seen
            // above, replaces it).
            if self
                .word
                .compare_exchange(
                    state,
                    state - STARVING,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                return status;
            }
        }
    }
}

/// One more round of spinning after a wake-up that lost the race, while rounds
/// are left (then `true`: look at the word again), or `false`: sleep. Only a
/// matter of speed, like `Lock::spin_before_parking` (its mutants that change
/// how much it spins are excluded by name).
#[inline]
fn spin_after_wake(round: &mut u32) -> bool {
    #[allow(clippy::absurd_extreme_comparisons)] // WOKEN_SPINS is 0 under loom
    if *round < WOKEN_SPINS {
        pause(*round);
        *round += 1;
        return true;
    }
    false
}

/// `2 << round` spin-loop hints: a short busy wait that grows with each round.
/// Only a matter of speed, like `Lock::spin_before_parking` (its mutants are
/// excluded by name).
#[inline]
fn pause(round: u32) {
    for _ in 0..(2 << round) {
        std::hint::spin_loop();
    }
}

impl Default for Lock {
    /// An unlocked lock, as [`Lock::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let lock = pythread::Lock::default();
    /// assert!(!lock.locked());
    /// # });
    /// ```
    fn default() -> Lock {
        Lock::new()
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.locked())
            .finish()
    }
}

/// Releases its [`Lock`] when dropped; made by [`Lock::lock`], [`Lock::try_lock`]
/// and [`Lock::lock_timeout`].
///
/// A `Lock` has no owner, so someone else may release it while the guard lives;
/// the guard's own release then finds it unlocked and does nothing (or, if it
/// was re-acquired meanwhile, releases that acquisition, as CPython's
/// `with lock:` would). The guard may be sent to and dropped on another thread.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// let lock = pythread::Lock::new();
/// let guard = lock.lock();
/// assert!(lock.locked());
/// drop(guard);
/// assert!(!lock.locked());
/// # });
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        let _ = self.lock.release();
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("lock", self.lock)
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests;

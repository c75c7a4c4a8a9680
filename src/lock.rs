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
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, mpsc};

    const WATCHDOG: Duration = Duration::from_secs(20);

    std::thread_local! {
        /// How many times this thread entered `acquire_slow`.
        pub(super) static SLOW_PATHS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
        /// How many wake system calls this thread's releases and handoff claims made.
        pub(super) static WAKES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// A release makes a wake system call only when `PARKED` says a thread is
    /// asleep (or about to be): never for a request, a pending handoff or a plain
    /// unlock (issue 17 §4). A handoff claimed after the lock was released again
    /// passes a wake on only for a thread that has slept.
    #[test]
    fn wake_calls_only_for_parked_threads() {
        let lock = Lock::new();
        for (word, wakes) in [
            (LOCKED, 0),
            (LOCKED | STARVING, 0),
            (LOCKED | HANDOFF, 0),
            (LOCKED | PARKED, 1),
            (LOCKED | PARKED | STARVING, 1),
            (LOCKED | PARKED | HANDOFF, 1),
        ] {
            lock.word.store(word, Ordering::SeqCst);
            let before = WAKES.get();
            assert_eq!(lock.release(), Ok(()));
            assert_eq!(WAKES.get() - before, wakes, "release from {word:#06b}");
        }
        for (parked, wakes) in [(0, 0), (PARKED, 1)] {
            lock.word.store(HANDOFF, Ordering::SeqCst);
            let before = WAKES.get();
            assert!(lock.claim_handoff(HANDOFF, parked));
            assert_eq!(WAKES.get() - before, wakes, "claim, parked {parked}");
        }
        // The guards take a free lock too.
        assert!(lock.try_lock().is_some());
        assert!(lock.lock_timeout(Duration::ZERO).is_some());
        assert!(!lock.locked());
    }

    /// A zero timeout only tries: on a held lock no form of it spins, registers
    /// or sleeps (the slow path's first act is to count itself here).
    #[test]
    fn zero_timeouts_never_enter_the_slow_path() {
        let lock = Lock::new();
        lock.acquire();
        let before = SLOW_PATHS.get();
        assert!(!lock.acquire_timeout(Duration::ZERO));
        assert_eq!(lock.acquire_timed(0, true), LockStatus::Failure);
        assert_eq!(
            lock.acquire_with_retries(Some(Duration::ZERO), || Err("no wait, no signal")),
            Ok(false)
        );
        assert_eq!(SLOW_PATHS.get(), before);
        // The counter counts: a 1 us wait is one entry.
        assert_eq!(lock.acquire_timed(1, true), LockStatus::Failure);
        assert_eq!(SLOW_PATHS.get(), before + 1);
        assert_eq!(state(&lock) & !PARKED, LOCKED);
    }

    fn state(lock: &Lock) -> u32 {
        lock.word.load(Ordering::SeqCst)
    }

    #[test]
    fn release_transitions() {
        let lock = Lock::new();
        // A starving waiter: handed off, still locked, no barging; PARKED cleared
        // (every sleeper is woken).
        lock.word
            .store(LOCKED | PARKED | STARVING, Ordering::SeqCst);
        assert_eq!(lock.release(), Ok(()));
        assert_eq!(state(&lock), LOCKED | HANDOFF);
        assert!(!lock.try_acquire());
        assert!(lock.locked());
        // Released again before the waiter claimed it: free, and the handoff
        // stays for the waiter to claim (that acquisition is its own).
        assert_eq!(lock.release(), Ok(()));
        assert_eq!(state(&lock), HANDOFF);
        assert!(!lock.locked());
        assert_eq!(lock.release(), Err(ReleaseError::UNLOCKED));
        assert_eq!(state(&lock), HANDOFF);
        // A barging try takes it meanwhile; its release keeps the handoff too.
        assert!(lock.try_acquire());
        assert_eq!(state(&lock), LOCKED | HANDOFF);
        lock.word.store(LOCKED | HANDOFF | PARKED, Ordering::SeqCst);
        assert_eq!(lock.release(), Ok(()));
        assert_eq!(state(&lock), HANDOFF);
        // A sleeper: plain unlock, PARKED cleared (the woken sleeper sets it again).
        lock.word.store(LOCKED | PARKED, Ordering::SeqCst);
        assert_eq!(lock.release(), Ok(()));
        assert_eq!(state(&lock), 0);
        // A barging try takes a free lock.
        assert!(lock.try_acquire());
        assert_eq!(state(&lock), LOCKED);
        assert_eq!(lock.release(), Ok(()));
        assert_eq!(state(&lock), 0);
    }

    #[test]
    fn leave_claims_a_handoff_and_times_out_cleanly() {
        let lock = Lock::new();
        // The starving waiter claims its handoff even when interrupted, with
        // PARKED once it has slept.
        lock.word.store(LOCKED | HANDOFF, Ordering::SeqCst);
        assert_eq!(
            lock.leave(LockStatus::Intr, true, PARKED),
            LockStatus::Acquired
        );
        assert_eq!(state(&lock), LOCKED | PARKED);
        // A handoff released meanwhile is still its acquisition; the lock stays free.
        lock.word.store(HANDOFF, Ordering::SeqCst);
        assert_eq!(
            lock.leave(LockStatus::Failure, true, 0),
            LockStatus::Acquired
        );
        assert_eq!(state(&lock), 0);
        // Another waiter leaves a handoff that is not its own where it is.
        lock.word.store(LOCKED | HANDOFF, Ordering::SeqCst);
        assert_eq!(
            lock.leave(LockStatus::Failure, false, PARKED),
            LockStatus::Failure
        );
        assert_eq!(
            lock.leave(LockStatus::Intr, false, PARKED),
            LockStatus::Intr
        );
        assert_eq!(state(&lock), LOCKED | HANDOFF);
        // An interrupted waiter leaves a free lock free: only a timed-out one
        // makes a last try (with PARKED: it has slept).
        lock.word.store(0, Ordering::SeqCst);
        assert_eq!(
            lock.leave(LockStatus::Intr, false, PARKED),
            LockStatus::Intr
        );
        assert_eq!(state(&lock), 0);
        assert_eq!(
            lock.leave(LockStatus::Failure, false, PARKED),
            LockStatus::Acquired
        );
        assert_eq!(state(&lock), LOCKED | PARKED);
        // The starving waiter withdraws its request, whatever its status; PARKED
        // stays.
        for status in [LockStatus::Failure, LockStatus::Intr] {
            lock.word
                .store(LOCKED | PARKED | STARVING, Ordering::SeqCst);
            assert_eq!(lock.leave(status, true, PARKED), status);
            assert_eq!(state(&lock), LOCKED | PARKED);
        }
        // Another waiter's request stays while that waiter waits.
        lock.word
            .store(LOCKED | PARKED | STARVING, Ordering::SeqCst);
        assert_eq!(
            lock.leave(LockStatus::Intr, false, PARKED),
            LockStatus::Intr
        );
        assert_eq!(state(&lock), LOCKED | PARKED | STARVING);
    }

    /// The word after each kind of claim.
    #[test]
    fn claims_set_exactly_their_bits() {
        let lock = Lock::new();
        let handed = LOCKED | HANDOFF | PARKED;
        lock.word.store(handed, Ordering::SeqCst);
        assert!(lock.claim_handoff(handed, PARKED));
        assert_eq!(state(&lock), LOCKED | PARKED);
        // A stale state: the compare-exchange fails and nothing changes.
        assert!(!lock.claim_handoff(handed, PARKED));
        assert_eq!(state(&lock), LOCKED | PARKED);
        // Held, PARKED clear: a thread that has slept sets it, one that has not
        // leaves it clear.
        for (parked, after) in [(PARKED, LOCKED | PARKED), (0, LOCKED)] {
            lock.word.store(LOCKED | HANDOFF, Ordering::SeqCst);
            assert!(lock.claim_handoff(LOCKED | HANDOFF, parked));
            assert_eq!(state(&lock), after);
        }
        // Released meanwhile: still the claimer's acquisition, the lock stays free.
        lock.word.store(HANDOFF, Ordering::SeqCst);
        assert!(lock.claim_handoff(HANDOFF, PARKED));
        assert_eq!(state(&lock), 0);
        // A free lock is anybody's (a pending handoff stays); a held one nobody's.
        assert_eq!(lock.claim_free(0, PARKED), Some(true));
        assert_eq!(state(&lock), LOCKED | PARKED);
        assert_eq!(lock.claim_free(LOCKED | PARKED, 0), None);
        assert_eq!(lock.claim_free(0, 0), Some(false)); // stale
        lock.word.store(HANDOFF, Ordering::SeqCst);
        assert_eq!(lock.claim_free(HANDOFF, 0), Some(true));
        assert_eq!(state(&lock), LOCKED | HANDOFF);
    }

    /// Starts a waiter whose 1 ms has passed when it enters: it asks for the
    /// handoff before it first sleeps. It flags when it holds the lock and
    /// returns the wait's status.
    fn starving_waiter(lock: &Arc<Lock>) -> (Arc<AtomicBool>, std::thread::JoinHandle<LockStatus>) {
        let acquired = Arc::new(AtomicBool::new(false));
        let (l, a) = (Arc::clone(lock), Arc::clone(&acquired));
        let waiter = std::thread::spawn(move || {
            let status = l.acquire_slow(None, false, now() - FAIR_AFTER);
            a.store(true, Ordering::SeqCst);
            status
        });
        (acquired, waiter)
    }

    /// A second release racing the handoff (before or after the starving waiter
    /// claims it) ends the waiter's acquisition: the waiter still returns
    /// `Acquired`, both releases are `Ok`, and the lock is free afterwards with
    /// no bit left behind.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_release_racing_a_handoff_ends_the_waiters_acquisition() {
        for _ in 0..20 {
            let lock = Arc::new(Lock::new());
            lock.acquire();
            let (acquired, waiter) = starving_waiter(&lock);
            wait_for("the starving waiter asleep", || {
                sleeping_waiters(&lock) == 1 && state(&lock) & STARVING != 0
            });
            assert_eq!(lock.release(), Ok(()), "the handoff");
            assert_eq!(lock.release(), Ok(()), "ends the waiter's acquisition");
            assert_eq!(waiter.join().unwrap(), LockStatus::Acquired);
            assert!(acquired.load(Ordering::SeqCst));
            assert_eq!(state(&lock), 0);
            assert_eq!(lock.release(), Err(ReleaseError::UNLOCKED));
        }
    }

    /// How many threads of this process are asleep in `futex` on `lock`'s word
    /// (`/proc/self/task/*/syscall`: the system call number, then its first
    /// argument, the word's address; and `stat`'s state `S`: a thread preempted
    /// inside the system call before it slept shows the same `syscall` line, and
    /// would count its sleep as a context switch after the caller looked).
    fn sleeping_waiters(lock: &Lock) -> usize {
        if cfg!(pythread_generic) {
            return sync::generic_sleepers(&lock.word); // each on its own condvar
        }
        let futex = libc::SYS_futex.to_string();
        let address = format!("{:#x}", &lock.word as *const AtomicU32 as usize);
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|task| {
                let path = task.ok()?.path();
                let syscall = std::fs::read_to_string(path.join("syscall")).ok()?;
                let stat = std::fs::read_to_string(path.join("stat")).ok()?;
                Some((syscall, stat))
            })
            .filter(|(syscall, stat)| {
                let mut fields = syscall.split_whitespace();
                // `stat`: "pid (comm) S ..."; comm may hold spaces, so after the last ')'.
                let state = stat
                    .rsplit(')')
                    .next()
                    .and_then(|rest| rest.split_whitespace().next());
                fields.next() == Some(futex.as_str())
                    && fields.next() == Some(address.as_str())
                    && state == Some("S")
            })
            .count()
    }

    /// Runs `body` on a new thread; returns the thread's kernel id (once it runs)
    /// and its handle.
    #[cfg(target_os = "linux")]
    fn spawn_with_tid<T: Send + 'static>(
        body: impl FnOnce() -> T + Send + 'static,
    ) -> (i32, std::thread::JoinHandle<T>) {
        let (tid_tx, tid_rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            tid_tx
                .send(rustix::thread::gettid().as_raw_nonzero().get())
                .unwrap();
            body()
        });
        (tid_rx.recv_timeout(WATCHDOG).unwrap(), thread)
    }

    #[cfg(target_os = "linux")]
    use crate::sync::tests::voluntary_switches;

    /// A plain release (nobody starving) wakes one sleeper, not all of them: the
    /// waiter it does not wake stays asleep without a single context switch.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_plain_release_wakes_one_sleeper() {
        let lock = Arc::new(Lock::new());
        lock.acquire();
        let mut waiters = Vec::new();
        for sleeping in 1..=2 {
            let (done, done_rx) = mpsc::channel::<()>();
            let acquired = Arc::new(AtomicBool::new(false));
            let (l, a) = (Arc::clone(&lock), Arc::clone(&acquired));
            let (tid, thread) = spawn_with_tid(move || {
                // Patient: on a loaded machine the spin before the first sleep can
                // pass its 1 ms, and a request would make the release a handoff.
                let entered = now() + Duration::from_secs(3600);
                assert_eq!(l.acquire_slow(None, false, entered), LockStatus::Acquired);
                a.store(true, Ordering::SeqCst);
                let _ = done_rx.recv_timeout(WATCHDOG);
                l.release().unwrap();
            });
            wait_for("the waiter asleep", || sleeping_waiters(&lock) == sleeping);
            waiters.push((tid, acquired, done, thread));
        }
        let before: Vec<u64> = waiters.iter().map(|w| voluntary_switches(w.0)).collect();
        lock.release().unwrap();
        wait_for("a waiter acquired", || {
            waiters.iter().any(|w| w.1.load(Ordering::SeqCst))
        });
        let other = waiters
            .iter()
            .position(|w| !w.1.load(Ordering::SeqCst))
            .unwrap();
        wait_for("the other waiter asleep", || sleeping_waiters(&lock) == 1);
        assert_eq!(
            voluntary_switches(waiters[other].0),
            before[other],
            "the waiter that was not woken woke up"
        );
        let threads: Vec<_> = waiters.into_iter().map(|w| w.3).collect(); // drops `done`s
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(state(&lock), 0);
    }

    /// A release that hands the lock off wakes every sleeper, not one: the kernel
    /// would pick the waiter that slept first, and the handoff is the starving
    /// waiter's. Two plain waiters sleep ahead of the starving one here.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_handoff_wakes_the_starving_waiter_behind_others() {
        let lock = Arc::new(Lock::new());
        lock.acquire();
        // Patient: a spurious wake-up (allowed; other tests' threads make them)
        // must not make them ask for the handoff first.
        let (first, done_first, first_waiter) = parked_waiter(&lock, 1, true);
        let (second, done_second, second_waiter) = parked_waiter(&lock, 2, true);
        // The third waiter is the starving one: it sleeps last.
        let (starving_acquired, starving) = starving_waiter(&lock);
        wait_for("the starving waiter asleep", || {
            sleeping_waiters(&lock) == 3
        });
        lock.release().unwrap();
        wait_for("the handoff was claimed", || {
            starving_acquired.load(Ordering::SeqCst)
        });
        assert_eq!(starving.join().unwrap(), LockStatus::Acquired);
        assert!(!first.load(Ordering::SeqCst) && !second.load(Ordering::SeqCst));
        lock.release().unwrap();
        wait_for("a plain waiter acquired", || {
            first.load(Ordering::SeqCst) || second.load(Ordering::SeqCst)
        });
        drop((done_first, done_second));
        first_waiter.join().unwrap();
        second_waiter.join().unwrap();
        assert_eq!(state(&lock), 0);
    }

    /// A waiter that times out leaves no request behind (a request left
    /// standing would hand the lock to nobody at the next release and keep it
    /// locked forever). These waiters ask for one: their futex wait returns at
    /// the kernel's timeout, and 5 ms is past their 1 ms, before their own
    /// clock says the deadline has passed. `PARKED` stays (they slept).
    #[test]
    fn timed_out_waiters_leave_no_request() {
        let lock = Arc::new(Lock::new());
        lock.acquire();
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let lock = Arc::clone(&lock);
                std::thread::spawn(move || {
                    (
                        lock.acquire_timeout(Duration::from_millis(5)),
                        lock.acquire_timed(5_000, true),
                        lock.acquire_with_retries(Some(Duration::from_millis(5)), || Err(())),
                    )
                })
            })
            .collect();
        for waiter in waiters {
            assert_eq!(
                waiter.join().unwrap(),
                (false, LockStatus::Failure, Ok(false))
            );
        }
        assert_eq!(state(&lock), LOCKED | PARKED);
        lock.release().unwrap();
        assert_eq!(state(&lock), 0);
    }

    /// Starts a waiter that acquires `lock`, flags it, and holds it until the
    /// returned sender is dropped. Returns once `sleeping` threads (this one
    /// included) are asleep on the lock. A `patient` waiter never asks for a
    /// handoff (its 1 ms ends in an hour).
    fn parked_waiter(
        lock: &Arc<Lock>,
        sleeping: usize,
        patient: bool,
    ) -> (
        Arc<AtomicBool>,
        mpsc::Sender<()>,
        std::thread::JoinHandle<()>,
    ) {
        let acquired = Arc::new(AtomicBool::new(false));
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let (l, a) = (Arc::clone(lock), Arc::clone(&acquired));
        let waiter = std::thread::spawn(move || {
            if patient {
                let entered = now() + Duration::from_secs(3600);
                assert_eq!(l.acquire_slow(None, false, entered), LockStatus::Acquired);
            } else {
                l.acquire();
            }
            a.store(true, Ordering::SeqCst);
            let _ = done_rx.recv_timeout(WATCHDOG);
            l.release().unwrap();
        });
        wait_for("the waiter asleep", || sleeping_waiters(lock) == sleeping);
        (acquired, done_tx, waiter)
    }

    fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
        let start = std::time::Instant::now();
        while !condition() {
            assert!(start.elapsed() < WATCHDOG, "watchdog: {what}");
            std::thread::yield_now();
        }
    }

    /// The starving waiter is handed the lock at the next release: the releaser's
    /// immediate re-take fails, and the waiter gets it.
    #[test]
    fn a_starving_waiter_is_handed_the_lock() {
        let lock = Arc::new(Lock::new());
        lock.acquire();
        let (acquired, waiter) = starving_waiter(&lock);
        wait_for("the waiter registered", || state(&lock) & STARVING != 0);
        lock.release().unwrap();
        assert!(!lock.try_acquire(), "barged past a starving waiter");
        wait_for("the handoff was claimed", || {
            acquired.load(Ordering::SeqCst)
        });
        assert_eq!(waiter.join().unwrap(), LockStatus::Acquired);
        assert_eq!(
            state(&lock) & !PARKED,
            LOCKED,
            "claimed: no HANDOFF, no STARVING"
        );
        lock.release().unwrap();
        assert_eq!(state(&lock), 0);
    }

    /// A waiter that keeps waking (spurious wake-ups here) while the lock stays
    /// held asks for a handoff once it has waited 1 ms since it entered, not
    /// before.
    #[test]
    fn a_passed_over_waiter_sets_starving_after_a_millisecond() {
        let lock = Arc::new(Lock::new());
        lock.acquire();
        let before = std::time::Instant::now(); // before the waiter enters
        let (acquired, done, waiter) = parked_waiter(&lock, 1, false);
        while state(&lock) & STARVING == 0 {
            assert!(
                before.elapsed() < WATCHDOG,
                "the waiter never asked for a handoff"
            );
            sync::wake_one(&lock.word);
        }
        assert!(before.elapsed() >= FAIR_AFTER, "STARVING before 1 ms");
        assert!(!acquired.load(Ordering::SeqCst));
        lock.release().unwrap();
        assert!(!lock.try_acquire(), "barged past a starving waiter");
        wait_for("the handoff was claimed", || {
            acquired.load(Ordering::SeqCst)
        });
        drop(done);
        waiter.join().unwrap();
    }

    /// No request before 1 ms has passed since the waiter entered: a waiter that
    /// is asleep within that 1 ms has not asked. (Seen asleep 1 ms or more after
    /// it entered, as on a loaded machine, a case decides nothing and another is
    /// tried.)
    #[cfg(target_os = "linux")]
    #[test]
    fn no_request_before_a_millisecond() {
        let mut decided = 0;
        for _ in 0..50 {
            let lock = Arc::new(Lock::new());
            lock.acquire();
            let l = Arc::clone(&lock);
            let entered = now();
            let waiter = std::thread::spawn(move || l.acquire_slow(None, false, entered));
            wait_for("the waiter asleep", || sleeping_waiters(&lock) == 1);
            let asked = state(&lock) & STARVING != 0;
            if entered.elapsed() < FAIR_AFTER {
                assert!(!asked, "asked for the handoff before 1 ms");
                decided += 1;
            }
            lock.release().unwrap();
            assert_eq!(waiter.join().unwrap(), LockStatus::Acquired);
            lock.release().unwrap();
            if decided == 5 {
                return;
            }
        }
        eprintln!("no_request_before_a_millisecond: only {decided} of 50 cases decided");
    }

    /// A waiter asleep when its millisecond ends wakes by itself to ask for the
    /// handoff: no release and no other wake-up comes here, and the request
    /// appears (once: the waiter then sleeps again without polling), not before
    /// its millisecond. Its acquisition is dated 100 ms ahead, so that it is seen
    /// asleep before it may ask (a case where it asked before it was seen asleep,
    /// as on a machine too loaded to run it within 100 ms, decides nothing and is
    /// retried; five such cases in a row are reported, not failed).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_sleeper_asks_when_its_millisecond_is_up() {
        // Untimed, and timed with a deadline far past its millisecond.
        for timed in [false, true] {
            let mut decided = false;
            for _ in 0..5 {
                let lock = Arc::new(Lock::new());
                lock.acquire();
                let entered = now() + 100 * FAIR_AFTER;
                let fair_at = entered + FAIR_AFTER;
                let deadline = timed.then(|| now() + WATCHDOG);
                let l = Arc::clone(&lock);
                let (tid, waiter) =
                    spawn_with_tid(move || l.acquire_slow(deadline, false, entered));
                wait_for("the waiter asleep", || sleeping_waiters(&lock) == 1);
                let asked_early = state(&lock) & STARVING != 0;
                if !asked_early {
                    wait_for("the waiter asked for the handoff, asleep", || {
                        state(&lock) & STARVING != 0
                    });
                    assert!(now() >= fair_at, "asked before its millisecond");
                    wait_for("the waiter asleep again", || sleeping_waiters(&lock) == 1);
                    let switches = voluntary_switches(tid);
                    let asleep = std::time::Instant::now();
                    // The span measured, not a synchronization: no more wake-ups.
                    wait_for("20 ms to pass", || asleep.elapsed() >= 20 * FAIR_AFTER);
                    assert_eq!(voluntary_switches(tid), switches, "polled while starving");
                }
                lock.release().unwrap();
                if !asked_early {
                    assert!(!lock.try_acquire(), "barged past a starving waiter");
                }
                assert_eq!(waiter.join().unwrap(), LockStatus::Acquired);
                lock.release().unwrap();
                assert_eq!(state(&lock), 0);
                if !asked_early {
                    decided = true;
                    break;
                }
            }
            if !decided {
                eprintln!("a_sleeper_asks: timed {timed}: 5 cases, none decided (loaded machine)");
            }
        }
    }

    /// An interruptible waiter does not wake by itself (a signal must find it
    /// asleep): asleep through its 1 ms, it has not asked, and it asks at its
    /// first wake-up after it (a spurious one here). Its acquisition is dated
    /// 50 ms ahead, so that it is seen asleep before its 1 ms ends (a case where
    /// it was not, on a loaded machine, decides nothing and is retried; five such
    /// cases in a row are reported, not failed).
    #[cfg(target_os = "linux")]
    #[test]
    fn an_interruptible_sleeper_asks_at_its_first_wake_up() {
        for _ in 0..5 {
            let lock = Arc::new(Lock::new());
            lock.acquire();
            let entered = now() + 50 * FAIR_AFTER;
            let fair_at = entered + FAIR_AFTER;
            let l = Arc::clone(&lock);
            let (tid, waiter) = spawn_with_tid(move || l.acquire_slow(None, true, entered));
            wait_for("the waiter asleep", || sleeping_waiters(&lock) == 1);
            let decided = now() < fair_at;
            if decided {
                // Time, not synchronization: its 1 ms must have passed.
                wait_for("its 1 ms to pass", || now() >= fair_at + FAIR_AFTER);
                let switches = voluntary_switches(tid);
                assert_eq!(state(&lock) & STARVING, 0, "asked without a wake-up");
                assert_eq!(voluntary_switches(tid), switches, "woke by itself");
                sync::wake_one(&lock.word); // one spurious wake-up
                wait_for("the waiter asleep again", || {
                    voluntary_switches(tid) > switches && sleeping_waiters(&lock) == 1
                });
                assert_ne!(
                    state(&lock) & STARVING,
                    0,
                    "no request at its first wake-up"
                );
            }
            lock.release().unwrap();
            if decided {
                assert!(!lock.try_acquire(), "barged past a starving waiter");
            }
            assert_eq!(waiter.join().unwrap(), LockStatus::Acquired);
            lock.release().unwrap();
            assert_eq!(state(&lock), 0);
            if decided {
                return;
            }
        }
        eprintln!("an_interruptible_sleeper_asks: 5 cases, none decided (loaded machine)");
    }

    /// A deadline that comes before the waiter's millisecond ends the wait: the
    /// waiter does not sleep on to its millisecond (an hour away here) to ask.
    #[test]
    fn a_deadline_before_the_millisecond_ends_the_wait() {
        let lock = Arc::new(Lock::new());
        lock.acquire();
        let start = now();
        let deadline = start + Duration::from_millis(20);
        let (tx, rx) = mpsc::channel();
        let l = Arc::clone(&lock);
        std::thread::spawn(move || {
            let status = l.acquire_slow(Some(deadline), false, start + Duration::from_secs(3600));
            tx.send((status, now())).unwrap();
        });
        let (status, returned) = rx
            .recv_timeout(WATCHDOG)
            .expect("watchdog: a wait with a 20 ms deadline did not end");
        assert_eq!(status, LockStatus::Failure);
        assert!(returned >= deadline, "returned before its deadline");
        lock.release().unwrap();
    }
}

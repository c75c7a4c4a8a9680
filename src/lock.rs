//! `_thread.lock`: CPython's binary semaphore with timed and interruptible
//! acquisition (`PyThread_allocate_lock`, `PyThread_acquire_lock[_timed]`,
//! `PyThread_acquire_lock_timed_with_retries`, `PyThread_release_lock`).
//!
//! # The lock word
//!
//! One `u32`, the futex word of the wait primitive in `crate::sync`:
//!
//! | bits | meaning |
//! |---|---|
//! | `LOCKED` (bit 0) | held |
//! | `HANDOFF` (bit 1) | a release handed the lock to the starving waiter: it stays `LOCKED`, and only that waiter may claim it |
//! | `STARVING` (bit 2) | a waiter has been passed over for more than 1 ms: the next release hands the lock to it instead of unlocking it |
//! | bits 3.. | the number of threads in the slow path, registered as waiters |
//!
//! Acquisition is a `fetch_or(LOCKED)` (a barging try), then a bounded spin while
//! nobody is parked, then registration as a waiter and sleeping on the word.
//! Release is one compare-exchange from a `LOCKED` state (so an unlocked lock is an
//! error and two racing releases give exactly one `Ok`), then one wake if anyone is
//! registered. A waiter that leaves without the lock (timeout, interruption) just
//! deregisters: it was not the one woken (a wait that was woken reports it, even
//! when a signal or the timeout came at the same time), so no wake is lost.
//! The fairness rule is CPython 3.14's `PyMutex`: after 1 ms a waiter is no longer
//! barged past, it is handed the lock.
//!
//! # Who gets a handoff
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

use std::error::Error;
use std::fmt;
use std::time::Duration;

use crate::sync::{self, deadline_after, now, AtomicU32, Instant, Ordering, Wake};
use crate::TIMEOUT_MAX;

const LOCKED: u32 = 1;
const HANDOFF: u32 = 2;
const STARVING: u32 = 4;
const WAITER: u32 = 8;
/// A handoff requested or made: the bits a waiter asking for one looks at.
const REQUESTED: u32 = STARVING + HANDOFF; // disjoint bits

/// The number of registered waiters in a lock word.
#[inline]
fn waiters(state: u32) -> u32 {
    state / WAITER
}

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
/// unlocked lock is an [`Err`], never a double unlock, and of two threads racing
/// to release one held lock exactly one gets `Ok`.
///
/// A blocked thread is never starved: a thread that has waited more than 1 ms is
/// handed the lock at the next release instead of being barged past (CPython
/// 3.14's rule). On Linux a wait ends with [`LockStatus::Intr`] when a signal
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
            let status = self.acquire_slow(None, false);
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
        self.acquire_slow(deadline_after(timeout), false) == LockStatus::Acquired
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
        let deadline = u64::try_from(microseconds).ok().and_then(|us| {
            deadline_after(Duration::from_micros(us.min(TIMEOUT_MAX.unsigned_abs())))
        });
        self.acquire_slow(deadline, intr)
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
        let deadline = match timeout {
            Some(timeout) if timeout.is_zero() => return Ok(false),
            Some(timeout) => deadline_after(timeout),
            None => None,
        };
        loop {
            match self.acquire_slow(deadline, true) {
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
    /// atomic step decides it: of two threads racing to release one held lock,
    /// exactly one gets `Ok`.
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
            // Each branch clears or sets bits it knows the state of, by arithmetic
            // (which says so: a bit that was not as assumed would carry or borrow
            // into the waiter count, and the tests see the exact word).
            let next = if state & HANDOFF != 0 {
                // Released before the starving waiter claimed the handoff: it is
                // simply free (a binary semaphore: any thread may release it).
                state - LOCKED - HANDOFF
            } else if state & STARVING != 0 && state >= WAITER {
                // Hand it to the starving waiter: it stays LOCKED, no barging in
                // between.
                state - STARVING + HANDOFF
            } else {
                state - LOCKED - (state & STARVING)
            };
            match self
                .word
                .compare_exchange_weak(state, next, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => {
                    if next & HANDOFF != 0 {
                        // Only the starving waiter may claim it, and the kernel
                        // wakes in its own order: wake them all.
                        sync::wake_all(&self.word);
                    } else if next >= WAITER {
                        sync::wake_one(&self.word);
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

    /// Claims the lock from `state` if it is free, or handed off and this thread
    /// is the starving waiter it was handed to (`starving`), leaving the waiters
    /// (`leaving` = this thread deregisters). `None` when it is held (a handoff to
    /// another waiter is held too).
    fn claim(&self, state: u32, leaving: bool, starving: bool) -> Option<bool> {
        let registered = if leaving { WAITER } else { 0 };
        // Arithmetic on bits each branch knows (as in `release_slow`). `STARVING`
        // is never set beside `HANDOFF`: the release that sets one clears the
        // other, and a request is made only from a word with neither (`REQUESTED`).
        let next = if state & HANDOFF != 0 && starving {
            state - HANDOFF - registered
        } else if state & LOCKED == 0 {
            state + LOCKED - registered
        } else {
            return None;
        };
        Some(
            self.word
                .compare_exchange(state, next, Ordering::Acquire, Ordering::Relaxed)
                .is_ok(),
        )
    }

    #[cold]
    fn acquire_slow(&self, deadline: Option<Instant>, intr: bool) -> LockStatus {
        #[cfg(all(test, not(loom)))]
        tests::SLOW_PATHS.with(|n| n.set(n.get() + 1));
        if self.spin_before_parking() {
            return LockStatus::Acquired;
        }
        self.word.fetch_add(WAITER, Ordering::Relaxed);
        self.wait_registered(deadline, intr, false)
    }

    /// Spins while nobody is parked (the holder is likely to release soon) and
    /// returns whether a barging try took the lock meanwhile. Only a matter of
    /// speed: how long, or whether at all, a thread spins before it registers
    /// changes no outcome (under loom it never spins), so its mutants are excluded
    /// by name in `.cargo/mutants.toml` (TESTING.md).
    fn spin_before_parking(&self) -> bool {
        let mut spin = 0;
        #[allow(clippy::absurd_extreme_comparisons)] // SPINS is 0 under loom
        while spin < SPINS {
            let state = self.word.load(Ordering::Relaxed);
            if state & LOCKED == 0 {
                if self.try_lock_word() {
                    return true;
                }
            } else if state >= WAITER {
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

    /// The wait of a thread registered as a waiter, until it holds the lock or
    /// gives up. `starving`: this thread set `STARVING`, so the handoff that
    /// request turns into is this thread's.
    fn wait_registered(
        &self,
        deadline: Option<Instant>,
        intr: bool,
        mut starving: bool,
    ) -> LockStatus {
        let mut fair_at = None;
        // Spinning happened before registering; again after each wake-up.
        let mut woken_spins = WOKEN_SPINS;
        loop {
            let state = self.word.load(Ordering::Relaxed);
            if state & REQUESTED == 0 {
                // Neither request nor handoff is pending (the handoff was released
                // unclaimed, or taken by a waiter that read a later request as its
                // own): this thread asks again below.
                starving = false;
            }
            match self.claim(state, true, starving) {
                Some(true) => return LockStatus::Acquired,
                Some(false) => continue,
                None => {}
            }
            // Held. After a wake-up that lost the race for the lock, a waiter that
            // has waited long enough asks for a handoff.
            if state & REQUESTED == 0 {
                if let Some(fair_at) = fair_at {
                    if now() >= fair_at {
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
                }
            }
            // Freshly woken and passed over: spin a little (no yields: on a busy
            // machine a yield can give the CPU away for a whole time slice) before
            // sleeping again; the holder's critical section is probably short.
            if spin_after_wake(&mut woken_spins) {
                continue;
            }
            match sync::wait(&self.word, state, deadline) {
                Wake::Woken => woken_spins = 0,
                Wake::TimedOut => return self.leave(LockStatus::Failure, starving),
                Wake::Interrupted if intr => return self.leave(LockStatus::Intr, starving),
                Wake::Interrupted => {}
            }
            if fair_at.is_none() {
                fair_at = now().checked_add(FAIR_AFTER);
            }
        }
    }

    /// Deregisters a waiter that gives up with `status` (a timeout or an
    /// interruption). The starving waiter claims its handoff rather than dropping
    /// it, and withdraws its request; a timed-out waiter takes a free lock (one
    /// last try at the deadline).
    #[cold]
    fn leave(&self, status: LockStatus, starving: bool) -> LockStatus {
        loop {
            let state = self.word.load(Ordering::Relaxed);
            if (starving && state & HANDOFF != 0) || status == LockStatus::Failure {
                match self.claim(state, true, starving) {
                    Some(true) => return LockStatus::Acquired,
                    Some(false) => continue,
                    None => {}
                }
            }
            let mut next = state - WAITER;
            if starving || waiters(next) == 0 {
                next -= next & STARVING;
            }
            // No wake to pass on: a waiter that gives up was not woken (a woken
            // futex wait returns 0 even when a signal or the timeout came too, and
            // the loom model gives a wake priority over both), and a waiter that
            // was woken earlier and lost took its turn.
            if self
                .word
                .compare_exchange(state, next, Ordering::Relaxed, Ordering::Relaxed)
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
    use std::sync::{mpsc, Arc};

    const WATCHDOG: Duration = Duration::from_secs(20);

    std::thread_local! {
        /// How many times this thread entered `acquire_slow`.
        pub(super) static SLOW_PATHS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
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
        assert_eq!(state(&lock), LOCKED);
    }

    fn state(lock: &Lock) -> u32 {
        lock.word.load(Ordering::SeqCst)
    }

    #[test]
    fn release_transitions() {
        let lock = Lock::new();
        // Starving waiters registered: handed off, still locked, no barging.
        lock.word
            .store(LOCKED | STARVING | (2 * WAITER), Ordering::SeqCst);
        assert_eq!(lock.release(), Ok(()));
        assert_eq!(state(&lock), LOCKED | HANDOFF | (2 * WAITER));
        assert!(!lock.try_acquire());
        assert!(lock.locked());
        // Released again before a waiter claimed it: simply free.
        assert_eq!(lock.release(), Ok(()));
        assert_eq!(state(&lock), 2 * WAITER);
        assert_eq!(lock.release(), Err(ReleaseError::UNLOCKED));
        // STARVING left behind without waiters: plain unlock, flag cleared.
        lock.word.store(LOCKED | STARVING, Ordering::SeqCst);
        assert_eq!(lock.release(), Ok(()));
        assert_eq!(state(&lock), 0);
        // Waiters but nobody starving: plain unlock, count kept.
        lock.word.store(LOCKED | WAITER, Ordering::SeqCst);
        assert_eq!(lock.release(), Ok(()));
        assert_eq!(state(&lock), WAITER);
        // A barging try takes it although a waiter is registered.
        assert!(lock.try_acquire());
        assert_eq!(state(&lock), LOCKED | WAITER);
    }

    #[test]
    fn leave_claims_a_handoff_and_times_out_cleanly() {
        let lock = Lock::new();
        // The starving waiter claims its handoff even when interrupted.
        lock.word.store(LOCKED | HANDOFF | WAITER, Ordering::SeqCst);
        assert_eq!(lock.leave(LockStatus::Intr, true), LockStatus::Acquired);
        assert_eq!(state(&lock), LOCKED);
        // Another waiter leaves a handoff that is not its own where it is.
        lock.word
            .store(LOCKED | HANDOFF | (2 * WAITER), Ordering::SeqCst);
        assert_eq!(lock.leave(LockStatus::Failure, false), LockStatus::Failure);
        assert_eq!(state(&lock), LOCKED | HANDOFF | WAITER);
        assert_eq!(lock.leave(LockStatus::Intr, false), LockStatus::Intr);
        assert_eq!(state(&lock), LOCKED | HANDOFF);
        // An interrupted starving waiter leaves a free lock free: only a
        // timed-out one makes a last try.
        lock.word.store(WAITER, Ordering::SeqCst);
        assert_eq!(lock.leave(LockStatus::Intr, true), LockStatus::Intr);
        assert_eq!(state(&lock), 0);
        // The starving waiter withdraws its request; other waiters stay.
        lock.word
            .store(LOCKED | STARVING | (2 * WAITER), Ordering::SeqCst);
        assert_eq!(lock.leave(LockStatus::Failure, true), LockStatus::Failure);
        assert_eq!(state(&lock), LOCKED | WAITER);
        // A request nobody withdrew goes with the last waiter.
        lock.word
            .store(LOCKED | STARVING | WAITER, Ordering::SeqCst);
        assert_eq!(lock.leave(LockStatus::Failure, false), LockStatus::Failure);
        assert_eq!(state(&lock), LOCKED, "last waiter clears STARVING");
        // Another waiter's request stays while that waiter waits.
        lock.word
            .store(LOCKED | STARVING | (2 * WAITER), Ordering::SeqCst);
        assert_eq!(lock.leave(LockStatus::Intr, false), LockStatus::Intr);
        assert_eq!(state(&lock), LOCKED | STARVING | WAITER);
        lock.word.store(WAITER, Ordering::SeqCst);
        assert_eq!(lock.leave(LockStatus::Failure, false), LockStatus::Acquired);
        lock.word.store(2 * WAITER, Ordering::SeqCst);
        assert_eq!(lock.leave(LockStatus::Intr, false), LockStatus::Intr);
        assert_eq!(state(&lock), WAITER);
    }

    /// Starts a waiter in the state the slow path reaches after being passed over
    /// for 1 ms: registered, with the `STARVING` request its own. It flags when it
    /// holds the lock and returns the wait's status.
    fn starving_waiter(lock: &Arc<Lock>) -> (Arc<AtomicBool>, std::thread::JoinHandle<LockStatus>) {
        let acquired = Arc::new(AtomicBool::new(false));
        let (l, a) = (Arc::clone(lock), Arc::clone(&acquired));
        let waiter = std::thread::spawn(move || {
            l.word.fetch_add(WAITER, Ordering::SeqCst);
            l.word.fetch_or(STARVING, Ordering::SeqCst);
            let status = l.wait_registered(None, false, true);
            a.store(true, Ordering::SeqCst);
            status
        });
        (acquired, waiter)
    }

    /// A waiter whose request is gone (its handoff was released unclaimed, and
    /// the lock re-taken before it looked) stops treating handoffs as its own: a
    /// later handoff, made for another waiter, is not claimed by it.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_request_that_is_gone_does_not_claim_a_later_handoff() {
        let lock = Arc::new(Lock::new());
        lock.acquire();
        let acquired = Arc::new(AtomicBool::new(false));
        let (l, a) = (Arc::clone(&lock), Arc::clone(&acquired));
        let (tid, waiter) = spawn_with_tid(move || {
            l.word.fetch_add(WAITER, Ordering::SeqCst);
            l.word.fetch_or(STARVING, Ordering::SeqCst);
            let status = l.wait_registered(None, false, true);
            a.store(true, Ordering::SeqCst);
            status
        });
        wait_for("the waiter asleep", || sleeping_waiters(&lock) == 1);
        // Wakes the waiter and waits until it has looked and slept again.
        let nudge = || {
            let before = voluntary_switches(tid);
            sync::wake_all(&lock.word);
            wait_for("the waiter asleep again", || {
                voluntary_switches(tid) > before && sleeping_waiters(&lock) == 1
            });
        };
        lock.word.fetch_sub(STARVING, Ordering::SeqCst); // the request is gone
        nudge();
        // Its first look after a wake-up comes well before its own 1 ms: if a
        // scheduling delay let it ask again, the scenario cannot be built.
        let scenario = lock
            .word
            .compare_exchange(
                LOCKED | WAITER,
                LOCKED | HANDOFF | (2 * WAITER), // for a second waiter
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .is_ok();
        if scenario {
            nudge();
            assert!(
                !acquired.load(Ordering::SeqCst),
                "claimed another's handoff"
            );
            assert_eq!(state(&lock), LOCKED | HANDOFF | (2 * WAITER));
            lock.word.store(LOCKED | WAITER, Ordering::SeqCst); // undo the fake
        } else {
            eprintln!("scenario void: the waiter asked for a handoff again");
        }
        lock.release().unwrap();
        assert_eq!(waiter.join().unwrap(), LockStatus::Acquired);
        lock.release().unwrap();
        assert_eq!(state(&lock), 0);
    }

    /// How many threads of this process are asleep in `futex` on `lock`'s word
    /// (`/proc/self/task/*/syscall`: the system call number, then its first
    /// argument, the word's address).
    fn sleeping_waiters(lock: &Lock) -> usize {
        let futex = libc::SYS_futex.to_string();
        let address = format!("{:#x}", &lock.word as *const AtomicU32 as usize);
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("syscall")).ok())
            .filter(|text| {
                let mut fields = text.split_whitespace();
                fields.next() == Some(futex.as_str()) && fields.next() == Some(address.as_str())
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

    /// The kernel's count of the times thread `tid` blocked (it went to sleep,
    /// woke and slept again: each sleep after the first is one more).
    #[cfg(target_os = "linux")]
    fn voluntary_switches(tid: i32) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|n| n.trim().parse().ok())
            .expect("voluntary_ctxt_switches in /proc status")
    }

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
                l.acquire();
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

    /// A handoff belongs to the starving waiter: any other waiter finds the lock
    /// held. A free lock is anybody's.
    #[test]
    fn only_the_starving_waiter_claims_a_handoff() {
        let lock = Lock::new();
        let handed = LOCKED | HANDOFF | (2 * WAITER);
        lock.word.store(handed, Ordering::SeqCst);
        assert_eq!(lock.claim(handed, true, false), None);
        assert_eq!(state(&lock), handed);
        assert_eq!(lock.claim(handed, true, true), Some(true));
        assert_eq!(state(&lock), LOCKED | WAITER);
        // A stale state: the compare-exchange fails and nothing changes.
        assert_eq!(lock.claim(handed, true, true), Some(false));
        assert_eq!(state(&lock), LOCKED | WAITER);
        // Free: claimed whoever asks; held without a handoff: nobody's.
        lock.word.store(WAITER, Ordering::SeqCst);
        assert_eq!(lock.claim(LOCKED | WAITER, true, true), None);
        assert_eq!(lock.claim(WAITER, true, false), Some(true));
        assert_eq!(state(&lock), LOCKED);
    }

    /// A release that hands the lock off wakes every sleeper, not one: the kernel
    /// would pick the waiter that slept first, and the handoff is the starving
    /// waiter's. Two plain waiters sleep ahead of the starving one here.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_handoff_wakes_the_starving_waiter_behind_others() {
        let lock = Arc::new(Lock::new());
        lock.acquire();
        let (first, done_first, first_waiter) = parked_waiter(&lock);
        wait_for("the first waiter asleep", || sleeping_waiters(&lock) == 1);
        let (second, done_second, second_waiter) = parked_waiter(&lock);
        wait_for("the second waiter asleep", || sleeping_waiters(&lock) == 2);
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

    /// A waiter that times out leaves the word exactly as it found it: no waiter
    /// count leaks (a leaked count with a STARVING bit would later hand the lock
    /// to nobody and keep it locked forever).
    #[test]
    fn timed_out_waiters_deregister() {
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
        assert_eq!(state(&lock), LOCKED);
        lock.release().unwrap();
        assert_eq!(state(&lock), 0);
    }

    /// Starts a waiter that acquires `lock`, flags it, and holds it until the
    /// returned sender is dropped. Returns once the waiter is registered.
    fn parked_waiter(
        lock: &Arc<Lock>,
    ) -> (
        Arc<AtomicBool>,
        mpsc::Sender<()>,
        std::thread::JoinHandle<()>,
    ) {
        let acquired = Arc::new(AtomicBool::new(false));
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let (l, a) = (Arc::clone(lock), Arc::clone(&acquired));
        let waiter = std::thread::spawn(move || {
            l.acquire();
            a.store(true, Ordering::SeqCst);
            let _ = done_rx.recv_timeout(WATCHDOG);
            l.release().unwrap();
        });
        wait_for("the waiter registered", || state(lock) >= WAITER);
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
            state(&lock),
            LOCKED,
            "claimed: no HANDOFF, no STARVING, no waiter"
        );
        lock.release().unwrap();
        assert_eq!(state(&lock), 0);
    }

    /// A waiter that keeps waking (here: other waiters coming and going) while the
    /// lock stays held asks for a handoff once it has been passed over for 1 ms.
    #[test]
    fn a_passed_over_waiter_sets_starving_after_a_millisecond() {
        let lock = Arc::new(Lock::new());
        lock.acquire();
        let (acquired, done, waiter) = parked_waiter(&lock);
        let start = std::time::Instant::now();
        while state(&lock) & STARVING == 0 {
            assert!(
                start.elapsed() < WATCHDOG,
                "the waiter never asked for a handoff"
            );
            // A second waiter arriving and leaving, without releasing the lock.
            lock.word.fetch_add(WAITER, Ordering::SeqCst);
            lock.word.fetch_sub(WAITER, Ordering::SeqCst);
            sync::wake_one(&lock.word);
        }
        assert!(start.elapsed() >= FAIR_AFTER, "STARVING before 1 ms");
        assert!(!acquired.load(Ordering::SeqCst));
        lock.release().unwrap();
        assert!(!lock.try_acquire(), "barged past a starving waiter");
        wait_for("the handoff was claimed", || {
            acquired.load(Ordering::SeqCst)
        });
        drop(done);
        waiter.join().unwrap();
    }
}

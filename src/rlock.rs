//! `_thread.RLock`: a reentrant lock owned by the thread ([`get_ident`]) that
//! holds it, built on [`Lock`].

use std::fmt;
use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::time::Duration;

use crate::ident::{Ident, get_ident};
use crate::lock::{Lock, LockStatus, ReleaseError};
use crate::sync::{AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};

/// What [`RLock::release_save`] took from the lock and
/// [`RLock::acquire_restore`] puts back: the recursion count and the owner
/// (CPython's `(count, owner)` tuple, used by `threading.Condition.wait`).
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// let lock = pythread::RLock::new();
/// lock.acquire();
/// lock.acquire();
/// let state = lock.release_save().unwrap();
/// assert_eq!(state.count(), 2);
/// assert_eq!(state.owner(), pythread::get_ident());
/// lock.acquire_restore(state);
/// assert_eq!(lock.recursion_count(), 2);
/// # });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RLockState {
    count: NonZeroUsize,
    owner: Ident,
}

impl RLockState {
    /// A state with the given count and owner, as CPython's `_acquire_restore`
    /// accepts any `(count, owner)` pair. Restoring it makes `owner` the owner,
    /// whichever thread calls [`RLock::acquire_restore`], as in CPython: with
    /// another thread's ident, that thread may then release the lock and the
    /// caller may not. An owner is any [`Ident`], such as one rebuilt from an
    /// integer by [`Ident::from_u64`].
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use std::num::NonZeroUsize;
    ///
    /// let me = pythread::get_ident();
    /// let lock = pythread::RLock::new();
    /// lock.acquire_restore(pythread::RLockState::new(NonZeroUsize::new(3).unwrap(), me));
    /// assert_eq!(lock.recursion_count(), 3);
    /// # });
    /// ```
    pub fn new(count: NonZeroUsize, owner: Ident) -> RLockState {
        RLockState { count, owner }
    }

    /// How many times the owner had acquired the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let lock = pythread::RLock::new();
    /// lock.acquire();
    /// assert_eq!(lock.release_save().unwrap().count(), 1);
    /// # });
    /// ```
    pub fn count(&self) -> usize {
        self.count.get()
    }

    /// The thread that owned the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let lock = pythread::RLock::new();
    /// lock.acquire();
    /// assert_eq!(lock.release_save().unwrap().owner(), pythread::get_ident());
    /// # });
    /// ```
    pub fn owner(&self) -> Ident {
        self.owner
    }
}

/// CPython's `_thread.RLock` (`threading.RLock`): a lock that the thread holding
/// it may acquire again; it is free once that thread has released it as many
/// times as it acquired it.
///
/// The owner is the [`get_ident`] of the thread that acquired it. Only the owner
/// may [`release`](RLock::release) it (anyone else gets [`ReleaseError`]
/// "cannot release un-acquired lock"). Waiting, timeouts, interruption and
/// fairness are those of [`Lock`], which it is built on.
///
/// **Count overflow**: acquiring it `usize::MAX + 1` times panics with
/// "Internal lock count overflowed" (CPython's `OverflowError` message) and leaves
/// the lock as it was; it never wraps around.
///
/// **No poisoning**: like [`Lock`] it guards no data, so a panic while it is held
/// marks nothing. An [`RLockGuard`] releases its level while the panic unwinds;
/// a level taken with [`acquire`](RLock::acquire) and never released stays held.
///
/// Another thread sees the owner and count together, never torn, through
/// [`state`](RLock::state) (what the Python module's `repr` shows).
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// use pythread::RLock;
/// use std::sync::Arc;
///
/// let lock = Arc::new(RLock::new());
/// lock.acquire();
/// lock.acquire(); // reentrant
/// assert_eq!(lock.recursion_count(), 2);
///
/// let other = Arc::clone(&lock);
/// let thread = pythread::start(move || {
///     assert!(!other.try_acquire()); // held by main
///     assert!(other.release().is_err()); // not the owner
/// });
/// thread.join().unwrap();
/// lock.release().unwrap();
/// lock.release().unwrap();
/// assert!(!lock.locked());
/// # });
/// ```
pub struct RLock {
    lock: Lock,
    /// The owner's ident, 0 when unowned.
    owner: AtomicU64,
    /// Written only by the owner (or by a thread that holds `lock`).
    count: AtomicUsize,
    /// A sequence lock over `owner` and `count`, so that [`RLock::state`] reads
    /// them as one: odd while the one thread allowed to write them (the holder of
    /// `lock`) is changing them, bumped to the next even value after.
    version: AtomicU32,
}

impl RLock {
    /// Creates an unowned lock.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let lock = pythread::RLock::new();
    /// assert!(!lock.locked() && !lock.is_owned());
    /// # });
    /// ```
    #[cfg(not(loom))]
    pub const fn new() -> RLock {
        RLock {
            lock: Lock::new(),
            owner: AtomicU64::new(0),
            count: AtomicUsize::new(0),
            version: AtomicU32::new(0),
        }
    }

    /// Creates an unowned lock (the loom build: not `const`, as [`Lock::new`]).
    #[cfg(loom)]
    pub fn new() -> RLock {
        RLock {
            lock: Lock::new(),
            owner: AtomicU64::new(0),
            count: AtomicUsize::new(0),
            version: AtomicU32::new(0),
        }
    }

    /// Sets the owner and the count, as one change for [`RLock::state`]. Only the
    /// thread that holds the inner lock writes them (and the inner lock's release
    /// and acquire order one holder's writes before the next one's), so a plain
    /// load and store of `version` suffice: there is one writer at a time.
    fn set(&self, owner: u64, count: usize) {
        let version = self.version.load(Ordering::Relaxed);
        self.version
            .store(version.wrapping_add(1), Ordering::Relaxed);
        // Orders the odd version before the data: a reader that sees any of the
        // new data then sees the version odd or moved on, and retries.
        fence(Ordering::Release);
        self.owner.store(owner, Ordering::Relaxed);
        self.count.store(count, Ordering::Relaxed);
        self.version
            .store(version.wrapping_add(2), Ordering::Release);
    }

    /// The owner's own change of its count (a nested acquire or release), without
    /// the version: the owner stays, and either count is the owner's, so a reader
    /// pairs it with the right owner whichever it sees. A reader that saw the
    /// version of the `set` that made this thread the owner sees that `set`'s count
    /// or a later one (the version's release and acquire order them), never the
    /// previous owner's. This keeps the reentrant paths to one store.
    fn set_count(&self, count: usize) {
        self.count.store(count, Ordering::Relaxed);
    }

    /// The owner and its recursion count, read as one by any thread: `None` when
    /// the lock is unowned. Never a count paired with another owner, never an
    /// owner with a count of 0. (CPython's `RLock.__repr__` shows these.)
    ///
    /// The two can only be torn if two threads change the lock at once, which only
    /// [`release_save_any_thread`](RLock::release_save_any_thread) by a thread that
    /// does not own the lock can do: that is a bug of the caller, in CPython 3.13 too.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use std::sync::Arc;
    ///
    /// let lock = Arc::new(pythread::RLock::new());
    /// assert_eq!(lock.state(), None);
    /// lock.acquire();
    /// lock.acquire();
    /// let me = pythread::get_ident();
    /// let seen = Arc::clone(&lock);
    /// let state = pythread::start(move || seen.state()).join().unwrap().unwrap();
    /// assert_eq!((state.owner(), state.count()), (me, 2));
    /// # });
    /// ```
    pub fn state(&self) -> Option<RLockState> {
        loop {
            let before = self.version.load(Ordering::Acquire);
            let owner = self.owner.load(Ordering::Relaxed);
            let count = self.count.load(Ordering::Relaxed);
            // Orders the data loads before the second look at the version.
            fence(Ordering::Acquire);
            if before % 2 == 0 && self.version.load(Ordering::Relaxed) == before {
                return Some(RLockState {
                    count: NonZeroUsize::new(count)?,
                    owner: Ident::from_u64(owner)?,
                });
            }
            // The holder is between its two stores: a few instructions.
            crate::sync::thread::yield_now();
        }
    }

    /// The calling thread's recursion count if it owns the lock.
    fn own_count(&self, me: Ident) -> Option<usize> {
        let count = self.count.load(Ordering::Relaxed);
        (count > 0 && self.owner.load(Ordering::Relaxed) == me.as_u64()).then_some(count)
    }

    /// The owner acquiring again: count + 1, never wrapping. `false` if the caller
    /// does not own the lock.
    fn reenter(&self, me: Ident) -> bool {
        match self.own_count(me) {
            Some(count) => {
                let count = count
                    .checked_add(1)
                    .unwrap_or_else(|| panic!("Internal lock count overflowed"));
                self.set_count(count);
                true
            }
            None => false,
        }
    }

    fn took(&self, me: Ident, count: usize) {
        self.set(me.as_u64(), count);
    }

    /// Acquires the lock, waiting as long as it takes; returns at once (count + 1)
    /// if the caller owns it. Signals never end this wait.
    ///
    /// # Panics
    ///
    /// "Internal lock count overflowed" if the count would pass `usize::MAX`.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let lock = pythread::RLock::new();
    /// lock.acquire();
    /// lock.acquire();
    /// assert_eq!(lock.recursion_count(), 2);
    /// # });
    /// ```
    pub fn acquire(&self) {
        let me = get_ident();
        if !self.reenter(me) {
            self.lock.acquire();
            self.took(me, 1);
        }
    }

    /// Acquires the lock if it is free or the caller owns it, without blocking;
    /// returns whether it did.
    ///
    /// # Panics
    ///
    /// "Internal lock count overflowed" if the count would pass `usize::MAX`.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let lock = pythread::RLock::new();
    /// assert!(lock.try_acquire());
    /// assert!(lock.try_acquire()); // the owner: count 2
    /// # });
    /// ```
    pub fn try_acquire(&self) -> bool {
        self.acquire_timed(0, false) == LockStatus::Acquired
    }

    /// Acquires the lock, waiting at most `timeout`; returns whether it did. The
    /// owner gets it at once. Otherwise as [`Lock::acquire_timeout`].
    ///
    /// # Panics
    ///
    /// "Internal lock count overflowed" if the count would pass `usize::MAX`.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use std::time::Duration;
    ///
    /// let lock = pythread::RLock::new();
    /// assert!(lock.acquire_timeout(Duration::from_millis(10)));
    /// assert!(lock.acquire_timeout(Duration::ZERO)); // reentrant
    /// # });
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        let me = get_ident();
        if self.reenter(me) {
            return true;
        }
        let acquired = self.lock.acquire_timeout(timeout);
        if acquired {
            self.took(me, 1);
        }
        acquired
    }

    /// `PyThread_acquire_lock_timed` for an `RLock`: the owner gets it at once;
    /// otherwise as [`Lock::acquire_timed`] (`< 0` forever, `0` try, `> 0` up to
    /// that many microseconds; `intr` as there).
    ///
    /// # Panics
    ///
    /// "Internal lock count overflowed" if the count would pass `usize::MAX`.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use pythread::{LockStatus, RLock};
    ///
    /// let lock = RLock::new();
    /// assert_eq!(lock.acquire_timed(-1, true), LockStatus::Acquired);
    /// assert_eq!(lock.acquire_timed(0, true), LockStatus::Acquired);
    /// assert_eq!(lock.recursion_count(), 2);
    /// # });
    /// ```
    pub fn acquire_timed(&self, microseconds: i64, intr: bool) -> LockStatus {
        let me = get_ident();
        if self.reenter(me) {
            return LockStatus::Acquired;
        }
        let status = self.lock.acquire_timed(microseconds, intr);
        if status == LockStatus::Acquired {
            self.took(me, 1);
        }
        status
    }

    /// `PyThread_acquire_lock_timed_with_retries` for an `RLock`: the owner gets
    /// it at once; otherwise as [`Lock::acquire_with_retries`].
    ///
    /// # Errors
    ///
    /// The first `Err` that `pending_calls` returns.
    ///
    /// # Panics
    ///
    /// "Internal lock count overflowed" if the count would pass `usize::MAX`.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let lock = pythread::RLock::new();
    /// assert_eq!(lock.acquire_with_retries(None, || Ok::<(), ()>(())), Ok(true));
    /// assert_eq!(lock.recursion_count(), 1);
    /// # });
    /// ```
    pub fn acquire_with_retries<E>(
        &self,
        timeout: Option<Duration>,
        pending_calls: impl FnMut() -> Result<(), E>,
    ) -> Result<bool, E> {
        let me = get_ident();
        if self.reenter(me) {
            return Ok(true);
        }
        let acquired = self.lock.acquire_with_retries(timeout, pending_calls)?;
        if acquired {
            self.took(me, 1);
        }
        Ok(acquired)
    }

    /// Releases one level of the caller's ownership; the lock is free once the
    /// count reaches 0.
    ///
    /// # Errors
    ///
    /// [`ReleaseError`] "cannot release un-acquired lock" if the caller does not
    /// own the lock (unowned, or owned by another thread).
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let lock = pythread::RLock::new();
    /// lock.acquire();
    /// assert!(lock.release().is_ok());
    /// assert_eq!(lock.release().unwrap_err().to_string(), "cannot release un-acquired lock");
    /// # });
    /// ```
    pub fn release(&self) -> Result<(), ReleaseError> {
        let me = get_ident();
        let count = self.own_count(me).ok_or(ReleaseError::UNACQUIRED)?;
        if count == 1 {
            self.set(0, 0);
            self.release_inner();
        } else {
            self.set_count(count - 1);
        }
        Ok(())
    }

    fn release_inner(&self) {
        let released = self.lock.release();
        debug_assert!(released.is_ok(), "an owned RLock's inner lock is held");
    }

    /// Whether the calling thread owns the lock (`_is_owned`).
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use std::sync::Arc;
    ///
    /// let lock = Arc::new(pythread::RLock::new());
    /// lock.acquire();
    /// assert!(lock.is_owned());
    /// let other = Arc::clone(&lock);
    /// pythread::start(move || assert!(!other.is_owned())).join().unwrap();
    /// # });
    /// ```
    pub fn is_owned(&self) -> bool {
        self.own_count(get_ident()).is_some()
    }

    /// The calling thread's recursion count: how many times it acquired the lock
    /// without releasing it; 0 if it does not own it (`_recursion_count`).
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let lock = pythread::RLock::new();
    /// assert_eq!(lock.recursion_count(), 0);
    /// lock.acquire();
    /// lock.acquire();
    /// assert_eq!(lock.recursion_count(), 2);
    /// # });
    /// ```
    pub fn recursion_count(&self) -> usize {
        self.own_count(get_ident()).unwrap_or(0)
    }

    /// Whether some thread holds the lock (3.14's `RLock.locked()`).
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let lock = pythread::RLock::new();
    /// assert!(!lock.locked());
    /// lock.acquire();
    /// assert!(lock.locked());
    /// # });
    /// ```
    pub fn locked(&self) -> bool {
        self.lock.locked()
    }

    /// Releases the lock completely, whatever the count, and returns the count and
    /// owner to restore later with [`acquire_restore`](RLock::acquire_restore)
    /// (`_release_save`, what `threading.Condition.wait` does around its wait).
    ///
    /// # Errors
    ///
    /// [`ReleaseError`] "cannot release un-acquired lock" if the caller does not
    /// own the lock: CPython 3.14's rule (3.13 let a non-owner through).
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let lock = pythread::RLock::new();
    /// assert!(lock.release_save().is_err());
    /// lock.acquire();
    /// lock.acquire();
    /// let state = lock.release_save().unwrap();
    /// assert!(!lock.locked());
    /// lock.acquire_restore(state);
    /// assert_eq!(lock.recursion_count(), 2);
    /// # });
    /// ```
    pub fn release_save(&self) -> Result<RLockState, ReleaseError> {
        let me = get_ident();
        let count = self.own_count(me).ok_or(ReleaseError::UNACQUIRED)?;
        let count = NonZeroUsize::new(count).ok_or(ReleaseError::UNACQUIRED)?;
        self.set(0, 0);
        self.release_inner();
        Ok(RLockState { count, owner: me })
    }

    /// [`release_save`](RLock::release_save) under CPython 3.11-3.13's rule: any
    /// thread may release a held lock completely and save its state, owner or not
    /// (3.14 refuses a non-owner). The returned state names the owner, not the
    /// caller. A Python runtime picks the method of the version it follows.
    ///
    /// # Errors
    ///
    /// [`ReleaseError`] "cannot release un-acquired lock" if the lock is unowned.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use std::sync::Arc;
    ///
    /// let lock = Arc::new(pythread::RLock::new());
    /// assert!(lock.release_save_any_thread().is_err());
    /// lock.acquire();
    /// let me = pythread::get_ident();
    /// let other = Arc::clone(&lock);
    /// let state = pythread::start(move || {
    ///     assert!(other.release_save().is_err()); // 3.14: not the owner
    ///     other.release_save_any_thread().unwrap() // 3.13: allowed
    /// })
    /// .join()
    /// .unwrap();
    /// assert_eq!((state.owner(), state.count()), (me, 1));
    /// assert!(!lock.locked());
    /// # });
    /// ```
    pub fn release_save_any_thread(&self) -> Result<RLockState, ReleaseError> {
        let state = self.state().ok_or(ReleaseError::UNACQUIRED)?;
        self.set(0, 0);
        // Not `release_inner`: racing the owner (a bug of the caller, as in
        // CPython 3.13) can find the inner lock released already.
        let _ = self.lock.release();
        Ok(state)
    }

    /// Takes the lock back, waiting as long as it takes (signals never end this
    /// wait), and sets the count and owner from `state` (`_acquire_restore`).
    ///
    /// Like CPython it blocks on the underlying lock even if the caller already
    /// holds it: call it only after [`release_save`](RLock::release_save).
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let lock = pythread::RLock::new();
    /// lock.acquire();
    /// let state = lock.release_save().unwrap();
    /// lock.acquire_restore(state);
    /// assert!(lock.is_owned());
    /// # });
    /// ```
    pub fn acquire_restore(&self, state: RLockState) {
        self.lock.acquire();
        self.set(state.owner.as_u64(), state.count.get());
    }

    /// Makes this a fresh, unowned, unlocked lock, whatever it held: CPython's
    /// `RLock._at_fork_reinit`, for the child of a `fork()` (see
    /// [`Lock::reinit_after_fork`]). Call it only where no other thread can be
    /// using the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let lock = pythread::RLock::new();
    /// lock.acquire();
    /// lock.reinit_after_fork();
    /// assert!(!lock.locked());
    /// assert_eq!(lock.state(), None);
    /// # });
    /// ```
    pub fn reinit_after_fork(&self) {
        // A writer that vanished mid-change would have left the version odd.
        self.version.store(0, Ordering::Relaxed);
        self.owner.store(0, Ordering::Relaxed);
        self.count.store(0, Ordering::Relaxed);
        self.lock.reinit_after_fork();
    }

    /// Acquires the lock like [`acquire`](RLock::acquire) and returns a guard
    /// that releases one level when dropped.
    ///
    /// # Panics
    ///
    /// "Internal lock count overflowed" if the count would pass `usize::MAX`.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let lock = pythread::RLock::new();
    /// let outer = lock.lock();
    /// let inner = lock.lock();
    /// assert_eq!(lock.recursion_count(), 2);
    /// drop(inner);
    /// drop(outer);
    /// assert!(!lock.locked());
    /// # });
    /// ```
    pub fn lock(&self) -> RLockGuard<'_> {
        self.acquire();
        RLockGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }

    /// Acquires the lock if it is free or the caller owns it, without blocking,
    /// and returns a guard that releases one level when dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use std::sync::Arc;
    ///
    /// let lock = Arc::new(pythread::RLock::new());
    /// let _guard = lock.try_lock().expect("free");
    /// let other = Arc::clone(&lock);
    /// pythread::start(move || assert!(other.try_lock().is_none())).join().unwrap();
    /// # });
    /// ```
    pub fn try_lock(&self) -> Option<RLockGuard<'_>> {
        // `then`, not `then_some`: an eagerly built guard would release on drop.
        self.try_acquire().then(|| RLockGuard {
            lock: self,
            _not_send: PhantomData,
        })
    }

    /// Acquires the lock like [`acquire_timeout`](RLock::acquire_timeout) and
    /// returns a guard that releases one level when dropped, or `None` on timeout.
    ///
    /// # Panics
    ///
    /// "Internal lock count overflowed" if the count would pass `usize::MAX`.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// let lock = Arc::new(pythread::RLock::new());
    /// let guard = lock.lock_timeout(Duration::from_secs(1)).expect("free");
    /// let other = Arc::clone(&lock);
    /// let waited = pythread::start(move || other.lock_timeout(Duration::from_millis(5)).is_none());
    /// assert!(waited.join().unwrap()); // held by this thread for the whole 5 ms
    /// drop(guard);
    /// assert!(!lock.locked());
    /// # });
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> Option<RLockGuard<'_>> {
        self.acquire_timeout(timeout).then(|| RLockGuard {
            lock: self,
            _not_send: PhantomData,
        })
    }
}

impl Default for RLock {
    /// An unowned lock, as [`RLock::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// assert!(!pythread::RLock::default().locked());
    /// # });
    /// ```
    fn default() -> RLock {
        RLock::new()
    }
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("RLock")
            .field("locked", &self.locked())
            .field("owner", &state.map_or(0, |s| s.owner().as_u64()))
            .field("count", &state.map_or(0, |s| s.count()))
            .finish()
    }
}

/// Releases one level of an [`RLock`] when dropped; made by [`RLock::lock`] and
/// [`RLock::try_lock`]. Not `Send`: it must be dropped by the owning thread.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// let lock = pythread::RLock::new();
/// let guard = lock.lock();
/// assert!(lock.is_owned());
/// drop(guard);
/// assert!(!lock.is_owned());
/// # });
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RLockGuard<'a> {
    lock: &'a RLock,
    _not_send: PhantomData<*const ()>,
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        let _ = self.lock.release();
    }
}

impl fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLockGuard")
            .field("lock", self.lock)
            .finish()
    }
}

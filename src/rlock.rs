//! `_thread.RLock`: a reentrant lock owned by the thread ([`get_ident`]) that
//! holds it, built on [`Lock`].

use std::fmt;
use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::time::Duration;

use crate::ident::{get_ident, Ident};
use crate::lock::{Lock, LockStatus, ReleaseError};
use crate::sync::{AtomicU64, AtomicUsize, Ordering};

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
    /// accepts any `(count, owner)` pair.
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
    pub fn new() -> RLock {
        RLock {
            lock: Lock::new(),
            owner: AtomicU64::new(0),
            count: AtomicUsize::new(0),
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
                self.count.store(count, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    fn took(&self, me: Ident, count: usize) {
        self.owner.store(me.as_u64(), Ordering::Relaxed);
        self.count.store(count, Ordering::Relaxed);
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
        self.count.store(count - 1, Ordering::Relaxed);
        if count == 1 {
            self.owner.store(0, Ordering::Relaxed);
            self.release_inner();
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
        self.count.store(0, Ordering::Relaxed);
        self.owner.store(0, Ordering::Relaxed);
        self.release_inner();
        Ok(RLockState { count, owner: me })
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
        self.owner.store(state.owner.as_u64(), Ordering::Relaxed);
        self.count.store(state.count.get(), Ordering::Relaxed);
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
        let count = self.count.load(Ordering::Relaxed);
        let owner = self.owner.load(Ordering::Relaxed);
        f.debug_struct("RLock")
            .field("locked", &self.locked())
            .field("owner", &owner)
            .field("count", &count)
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

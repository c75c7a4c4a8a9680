//! `_thread.lock` (`lockobject`) and `_thread.RLock` (`rlockobject`): CPython's acquire (a try
//! with the interpreter lock held, then the interruptible wait with it released), the
//! 3.11-3.13 `locked` flag beside the lock, and the RLock's owner kept as the host's ident.

use std::time::Duration;

use pythread::__sync::{AtomicU32, AtomicU64, Ordering};

use crate::{Error, Runtime, interrupted, wait_interruptibly};

/// What `lock.locked()` reports.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// use threadmodule::{LockObject, LockedReport};
///
/// let lock = LockObject::new();
/// assert!(!lock.locked(LockedReport::Flag));
/// assert!(!lock.locked(LockedReport::Lock));
/// # });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockedReport {
    /// CPython 3.11 to 3.13.0: the flag (`lockobject.locked`), set by an acquisition once its
    /// thread holds the interpreter lock again, cleared by a release just before the lock is.
    /// A thread holding the interpreter lock never sees a waiter's acquisition before that
    /// waiter runs Python code again (threading's `_shutdown` asserts `not lock.locked()`
    /// right after releasing the main thread's `_tstate_lock`).
    Flag,
    /// CPython 3.13.x later patch releases and 3.14 (a `PyMutex`), and RustPython: the lock.
    Lock,
}

/// `_thread.lock`: the crate's `Lock` and the `locked` flag CPython 3.11-3.13 keep beside it.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// use threadmodule::minihost::MiniInterpreter;
/// use threadmodule::{Error, LockObject, LockedReport};
///
/// let interp = MiniInterpreter::new();
/// let host = interp.attach();
/// let lock = LockObject::new();
/// assert_eq!(lock.acquire(&host, None), Ok(true));
/// assert!(lock.locked(LockedReport::Flag));
/// assert_eq!(lock.acquire(&host, Some(std::time::Duration::ZERO)), Ok(false));
/// lock.release().unwrap();
/// assert_eq!(lock.release(), Err(Error::ReleaseUnlocked));
/// # });
/// ```
#[derive(Debug)]
pub struct LockObject {
    lock: pythread::Lock,
    held: AtomicU32,
}

impl LockObject {
    /// An unlocked lock (`allocate_lock()`).
    ///
    /// # Examples
    ///
    /// See [`LockObject`].
    #[inline]
    pub fn new() -> LockObject {
        LockObject {
            lock: pythread::Lock::new(),
            held: AtomicU32::new(0),
        }
    }

    /// The crate's lock inside.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// assert!(!threadmodule::LockObject::new().lock().locked());
    /// # });
    /// ```
    #[inline]
    pub fn lock(&self) -> &pythread::Lock {
        &self.lock
    }

    /// `acquire(blocking, timeout)` (`lock_PyThread_acquire_lock`), the arguments already
    /// converted ([`acquire_timeout`](crate::acquire_timeout)): `None` waits forever,
    /// `Some(ZERO)` only tries. A try with the interpreter lock held, then the interruptible
    /// wait with it released; what a pending call raises ends the wait.
    ///
    /// # Examples
    ///
    /// See [`LockObject`].
    #[inline]
    pub fn acquire<R: Runtime>(
        &self,
        rt: &R,
        timeout: Option<Duration>,
    ) -> Result<bool, R::Exception> {
        let acquired = self.lock.try_acquire()
            || (timeout != Some(Duration::ZERO)
                && wait_interruptibly(rt, timeout, |t| {
                    self.lock.acquire_with_retries(t, interrupted)
                })?);
        if acquired {
            self.held.store(1, Ordering::Relaxed);
        }
        Ok(acquired)
    }

    /// `release()`: the flag first (`lock_PyThread_release_lock`'s order), so that an
    /// acquisition the release lets in is never cleared by it.
    ///
    /// # Examples
    ///
    /// See [`LockObject`].
    #[inline]
    pub fn release(&self) -> Result<(), Error> {
        self.held.store(0, Ordering::Relaxed);
        self.lock.release().map_err(|_| Error::ReleaseUnlocked)
    }

    /// Releases the lock if it is held (a thread's `_set_sentinel` lock at the thread's end:
    /// CPython's `release_sentinel`). An unlocked lock stays so.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let lock = threadmodule::LockObject::new();
    /// lock.release_if_held();
    /// lock.lock().acquire();
    /// lock.release_if_held();
    /// assert!(!lock.lock().locked());
    /// # });
    /// ```
    pub fn release_if_held(&self) {
        if self.lock.locked() {
            let _ = self.release();
        }
    }

    /// `locked()`, by the running interpreter's rule.
    ///
    /// # Examples
    ///
    /// See [`LockedReport`].
    #[inline]
    pub fn locked(&self, report: LockedReport) -> bool {
        match report {
            LockedReport::Flag => self.held.load(Ordering::Relaxed) != 0,
            LockedReport::Lock => self.lock.locked(),
        }
    }

    /// `_at_fork_reinit()`: unlocked, and the flag with it.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use threadmodule::{LockObject, LockedReport};
    /// let lock = LockObject::new();
    /// lock.lock().acquire();
    /// lock.at_fork_reinit();
    /// assert!(!lock.locked(LockedReport::Lock));
    /// # });
    /// ```
    pub fn at_fork_reinit(&self) {
        self.lock.reinit_after_fork();
        self.held.store(0, Ordering::Relaxed);
    }
}

impl Default for LockObject {
    fn default() -> LockObject {
        LockObject::new()
    }
}

impl Default for RLockObject {
    fn default() -> RLockObject {
        RLockObject::new()
    }
}

/// Which threads `RLock._release_save()` lets release the lock.
///
/// # Examples
///
/// ```
/// assert_ne!(threadmodule::ReleaseSaveRule::AnyThread, threadmodule::ReleaseSaveRule::Owner);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReleaseSaveRule {
    /// CPython 3.11 to 3.13: any thread may release and save a held lock.
    AnyThread,
    /// CPython 3.14 (and RustPython's `threading`): only its owner.
    Owner,
}

/// `_thread.RLock` (`rlockobject`): a `Lock`, the owner's host ident and the count, with
/// CPython's rules: the caller owns it when the owner equals its host ident
/// ([`Runtime::get_ident`]), whoever took the lock; `_acquire_restore` stores the owner it is
/// given, unchecked.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// use threadmodule::minihost::{MiniHost, MiniInterpreter};
/// use threadmodule::{ReleaseSaveRule, RLockObject, Runtime};
///
/// let interp = MiniInterpreter::new();
/// let host = interp.attach();
/// let rlock = RLockObject::new();
/// rlock.acquire(&host, None).unwrap();
/// rlock.acquire(&host, None).unwrap();
/// assert_eq!(rlock.recursion_count::<MiniHost>(), 2);
/// let saved = rlock.release_save::<MiniHost>(ReleaseSaveRule::Owner).unwrap();
/// assert_eq!(saved, (2, MiniHost::get_ident()));
/// assert!(!rlock.is_owned::<MiniHost>());
/// rlock.acquire_restore(&host, saved).unwrap();
/// assert!(rlock.is_owned::<MiniHost>());
/// # });
/// ```
#[derive(Debug)]
pub struct RLockObject {
    lock: pythread::Lock,
    /// The owner's host ident, 0 = none (`rlock_owner`).
    owner: AtomicU64,
    /// `rlock_count`: written by the owner only (and by `_release_save` of any thread on
    /// 3.11-3.13), with the lock held.
    count: AtomicU64,
}

impl RLockObject {
    /// An unlocked `RLock`.
    ///
    /// # Examples
    ///
    /// See [`RLockObject`].
    #[inline]
    pub fn new() -> RLockObject {
        RLockObject {
            lock: pythread::Lock::new(),
            owner: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    #[inline]
    fn is_owned_by(&self, tid: u64) -> bool {
        self.owner.load(Ordering::Relaxed) == tid && self.count.load(Ordering::Relaxed) > 0
    }

    /// `acquire(blocking, timeout)` (`rlock_acquire`): the owner counts up (an overflow is
    /// [`Error::LockCountOverflow`]); any other thread waits as [`LockObject::acquire`] does.
    ///
    /// # Examples
    ///
    /// See [`RLockObject`].
    #[inline]
    pub fn acquire<R: Runtime>(
        &self,
        rt: &R,
        timeout: Option<Duration>,
    ) -> Result<bool, R::Exception> {
        let tid = R::get_ident();
        if self.is_owned_by(tid) {
            let count = self.count.load(Ordering::Relaxed);
            let Some(count) = count.checked_add(1) else {
                return Err(rt.new_exception(Error::LockCountOverflow));
            };
            self.count.store(count, Ordering::Relaxed);
            return Ok(true);
        }
        let acquired = self.lock.try_acquire()
            || (timeout != Some(Duration::ZERO)
                && wait_interruptibly(rt, timeout, |t| {
                    self.lock.acquire_with_retries(t, interrupted)
                })?);
        if acquired {
            self.owner.store(tid, Ordering::Relaxed);
            self.count.store(1, Ordering::Relaxed);
        }
        Ok(acquired)
    }

    /// `release()` (`rlock_release`): only by the owner; the last release frees the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use threadmodule::minihost::MiniHost;
    /// use threadmodule::{Error, RLockObject};
    /// assert_eq!(RLockObject::new().release::<MiniHost>(), Err(Error::ReleaseUnacquired));
    /// # });
    /// ```
    #[inline]
    pub fn release<R: Runtime>(&self) -> Result<(), Error> {
        if !self.is_owned_by(R::get_ident()) {
            return Err(Error::ReleaseUnacquired);
        }
        let count = self.count.load(Ordering::Relaxed) - 1;
        self.count.store(count, Ordering::Relaxed);
        if count == 0 {
            self.owner.store(0, Ordering::Relaxed);
            let _ = self.lock.release();
        }
        Ok(())
    }

    /// `_release_save()`: releases the lock fully and returns `(count, owner)` for
    /// [`acquire_restore`](RLockObject::acquire_restore), by `rule`.
    ///
    /// # Examples
    ///
    /// See [`RLockObject`].
    #[inline]
    pub fn release_save<R: Runtime>(&self, rule: ReleaseSaveRule) -> Result<(u64, u64), Error> {
        let count = self.count.load(Ordering::Relaxed);
        let allowed = match rule {
            ReleaseSaveRule::AnyThread => count > 0,
            ReleaseSaveRule::Owner => self.is_owned_by(R::get_ident()),
        };
        if !allowed {
            return Err(Error::ReleaseUnacquired);
        }
        let owner = self.owner.load(Ordering::Relaxed);
        self.count.store(0, Ordering::Relaxed);
        self.owner.store(0, Ordering::Relaxed);
        let _ = self.lock.release();
        Ok((count, owner))
    }

    /// `_acquire_restore((count, owner))`: takes the lock back (a try, then a wait with the
    /// interpreter lock released, not interruptible) and stores `count` and `owner` as given
    /// (an owner that is not the caller's ident makes the lock that thread's). A count of 0
    /// is refused before the lock is taken ([`Error::CouldntAcquireLock`]): CPython would
    /// store a held lock that no release can free.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use threadmodule::minihost::{MiniHost, MiniInterpreter};
    /// use threadmodule::RLockObject;
    ///
    /// let interp = MiniInterpreter::new();
    /// let host = interp.attach();
    /// let rlock = RLockObject::new();
    /// rlock.acquire_restore(&host, (1, 424242)).unwrap(); // another thread's ident
    /// assert!(!rlock.is_owned::<MiniHost>());
    /// assert_eq!(rlock.state(), (424242, 1));
    /// # });
    /// ```
    pub fn acquire_restore<R: Runtime>(
        &self,
        rt: &R,
        (count, owner): (u64, u64),
    ) -> Result<(), R::Exception> {
        if count == 0 {
            return Err(rt.new_exception(Error::CouldntAcquireLock));
        }
        if !self.lock.try_acquire() {
            rt.allow_threads(|| self.lock.acquire());
        }
        self.owner.store(owner, Ordering::Relaxed);
        self.count.store(count, Ordering::Relaxed);
        Ok(())
    }

    /// `_is_owned()`.
    ///
    /// # Examples
    ///
    /// See [`RLockObject`].
    #[inline]
    pub fn is_owned<R: Runtime>(&self) -> bool {
        self.is_owned_by(R::get_ident())
    }

    /// `_recursion_count()`: the count if the caller owns the lock, else 0.
    ///
    /// # Examples
    ///
    /// See [`RLockObject`].
    #[inline]
    pub fn recursion_count<R: Runtime>(&self) -> u64 {
        if self.is_owned::<R>() {
            self.count.load(Ordering::Relaxed)
        } else {
            0
        }
    }

    /// `locked()` (3.14): whether any thread holds it.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// assert!(!threadmodule::RLockObject::new().locked());
    /// # });
    /// ```
    #[inline]
    pub fn locked(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    /// `(owner, count)` for the repr (`<locked _thread.RLock object owner=... count=...>`),
    /// read from any thread as CPython reads them (unsynchronized with the owner).
    ///
    /// # Examples
    ///
    /// See [`RLockObject::acquire_restore`].
    #[inline]
    pub fn state(&self) -> (u64, u64) {
        (
            self.owner.load(Ordering::Relaxed),
            self.count.load(Ordering::Relaxed),
        )
    }

    /// `_at_fork_reinit()`: unlocked and unowned.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let rlock = threadmodule::RLockObject::new();
    /// rlock.at_fork_reinit();
    /// assert!(!rlock.locked());
    /// # });
    /// ```
    pub fn at_fork_reinit(&self) {
        self.lock.reinit_after_fork();
        self.owner.store(0, Ordering::Relaxed);
        self.count.store(0, Ordering::Relaxed);
    }
}

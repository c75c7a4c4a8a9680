//! `_set_sentinel()` (CPython 3.11 and 3.12; 3.13 joins through `_ThreadHandle` instead): a
//! lock that the calling thread then acquires, released (if held) when that thread's state
//! goes away: what 3.11/3.12's `threading.Thread.join` waits for (`_tstate_lock`).
//!
//! The lock is kept in a thread-local, inside a value whose `Drop` releases it: a thread
//! started by the module releases it attached, from
//! [`Runtime::thread_exiting`](crate::Runtime::thread_exiting) ([`release_thread_sentinel`]);
//! any other thread with its thread-local destructors. No other thread ever reads it, so there
//! is no lock to take, and nothing a fork could leave held.

use std::cell::RefCell;

use crate::LockObject;

/// The host's lock object as `_set_sentinel` keeps it: a reference to the host's `_thread.lock`
/// object (so that the object lives as long as the sentinel does), which releases the
/// [`LockObject`] inside if it is held.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// use std::sync::Arc;
/// use threadmodule::{LockObject, Sentinel};
///
/// let lock = Arc::new(LockObject::new());
/// lock.lock().acquire();
/// lock.release_if_held();
/// assert!(!lock.lock().locked());
/// lock.release_if_held(); // an unlocked lock stays so
/// # });
/// ```
pub trait Sentinel: 'static {
    /// Releases the lock if it is held (CPython's `release_sentinel` checks `locked` first):
    /// [`LockObject::release_if_held`].
    fn release_if_held(&self);
}

impl Sentinel for std::sync::Arc<LockObject> {
    fn release_if_held(&self) {
        LockObject::release_if_held(self);
    }
}

/// A thread's sentinel: releases its lock when dropped, unless it was taken out (replaced).
struct Armed<S: Sentinel>(Option<S>);

impl<S: Sentinel> Drop for Armed<S> {
    fn drop(&mut self) {
        if let Some(lock) = self.0.take() {
            lock.release_if_held();
        }
    }
}

/// The per-thread slot of `_set_sentinel`, for a host that keeps it in a `thread_local!` of
/// its own with its concrete sentinel type (no box per thread, as [`set_sentinel`] makes).
/// Its `Drop` (the thread-local's destructor) releases an armed sentinel.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// use std::sync::Arc;
/// use threadmodule::{LockObject, SentinelSlot};
///
/// std::thread_local! {
///     static SENTINEL: SentinelSlot<Arc<LockObject>> = const { SentinelSlot::new() };
/// }
/// let lock = Arc::new(LockObject::new());
/// SENTINEL.with(|slot| slot.set(Arc::clone(&lock)));
/// lock.lock().acquire();
/// SENTINEL.with(SentinelSlot::release); // the thread's end
/// assert!(!lock.lock().locked());
/// # });
/// ```
#[derive(Debug)]
pub struct SentinelSlot<S: Sentinel>(RefCell<Option<Armed<S>>>);

impl<S: Sentinel> std::fmt::Debug for Armed<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Armed"
        } else {
            "Disarmed"
        })
    }
}

impl<S: Sentinel> SentinelSlot<S> {
    /// An empty slot (`const`, for a `thread_local!`).
    ///
    /// # Examples
    ///
    /// See [`SentinelSlot`].
    pub const fn new() -> SentinelSlot<S> {
        SentinelSlot(RefCell::new(None))
    }

    /// `_set_sentinel()`: `lock` becomes the thread's sentinel; a sentinel set before is
    /// forgotten, never released, as CPython forgets it. Anything dropped here is dropped
    /// outside the slot's borrow.
    ///
    /// # Examples
    ///
    /// See [`SentinelSlot`].
    #[inline]
    pub fn set(&self, lock: S) {
        let old = self.0.borrow_mut().replace(Armed(Some(lock)));
        if let Some(mut old) = old {
            drop(old.0.take()); // forgotten, not released
        }
    }

    /// Releases the sentinel now, if one is armed (the thread's end, attached).
    ///
    /// # Examples
    ///
    /// See [`SentinelSlot`].
    #[inline]
    pub fn release(&self) {
        let armed = self.0.borrow_mut().take();
        drop(armed);
    }
}

impl<S: Sentinel> Default for SentinelSlot<S> {
    fn default() -> SentinelSlot<S> {
        SentinelSlot::new()
    }
}

std::thread_local! {
    /// This thread's sentinel, from its last [`set_sentinel`].
    static SENTINEL: SentinelSlot<Box<dyn Sentinel>> = const { SentinelSlot::new() };
}

impl Sentinel for Box<dyn Sentinel> {
    fn release_if_held(&self) {
        (**self).release_if_held();
    }
}

/// `_set_sentinel()`: `lock` (a new, unlocked lock the caller returns to Python) becomes the
/// calling thread's sentinel, released if held when the thread ends. A second call (threading
/// re-creates the main thread's in a forked child) replaces the first, which is then forgotten,
/// never released, as CPython forgets it. `Err(lock)` on a thread already running its
/// thread-local destructors (the host raises). [`SentinelSlot`] is the same in a host's own
/// thread-local, without the box this one makes.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// use std::sync::Arc;
/// use threadmodule::LockObject;
///
/// let lock = Arc::new(LockObject::new());
/// assert!(threadmodule::set_sentinel(Arc::clone(&lock)).is_ok());
/// lock.lock().acquire(); // what threading's `Thread._bootstrap` does with it
/// threadmodule::release_thread_sentinel(); // the thread's end
/// assert!(!lock.lock().locked());
/// # });
/// ```
pub fn set_sentinel<S: Sentinel>(lock: S) -> Result<(), S> {
    let mut lock = Some(lock);
    let set = SENTINEL.try_with(|slot| {
        slot.set(Box::new(lock.take().expect("taken once")) as Box<dyn Sentinel>);
    });
    match set {
        Ok(()) => Ok(()),
        Err(_) => Err(lock.expect("not moved: the thread-local is gone")),
    }
}

/// Releases the calling thread's sentinel now, if it has one: a thread started by the module
/// calls it last, attached ([`Runtime::thread_exiting`](crate::Runtime::thread_exiting)).
///
/// # Examples
///
/// See [`set_sentinel`].
pub fn release_thread_sentinel() {
    let _ = SENTINEL.try_with(SentinelSlot::release);
}

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
struct Armed(Option<Box<dyn Sentinel>>);

impl Drop for Armed {
    fn drop(&mut self) {
        if let Some(lock) = self.0.take() {
            lock.release_if_held();
        }
    }
}

std::thread_local! {
    /// This thread's sentinel, from its last `_set_sentinel()`.
    static SENTINEL: RefCell<Option<Armed>> = const { RefCell::new(None) };
}

/// `_set_sentinel()`: `lock` (a new, unlocked lock the caller returns to Python) becomes the
/// calling thread's sentinel, released if held when the thread ends. A second call (threading
/// re-creates the main thread's in a forked child) replaces the first, which is then forgotten,
/// never released, as CPython forgets it. `Err(lock)` on a thread already running its
/// thread-local destructors (the host raises).
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
    let replaced = SENTINEL.try_with(|slot| {
        let armed = Armed(Some(
            Box::new(lock.take().expect("taken once")) as Box<dyn Sentinel>
        ));
        slot.borrow_mut().replace(armed)
    });
    match replaced {
        Ok(old) => {
            if let Some(mut old) = old {
                drop(old.0.take()); // forgotten, not released
            }
            Ok(())
        }
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
    let armed = SENTINEL
        .try_with(|slot| slot.borrow_mut().take())
        .ok()
        .flatten();
    drop(armed);
}

//! `_set_sentinel()` (3.11 and 3.12; 3.13 joins through `_ThreadHandle` instead): a new
//! `_thread.lock`, which the calling thread then acquires, and which is released (if held) when
//! that thread's state goes away: what 3.11/3.12's `threading.Thread.join` waits for
//! (`_tstate_lock`).
//!
//! The lock is kept in a thread-local, inside a value whose `Drop` releases it: a thread of
//! this module drops it, with the GIL held, after its `_local` dicts and before it detaches
//! for the last time ([`release_thread_sentinel`]); any other thread drops it with its
//! thread-local destructors. A plain `thread_local!` (no other thread ever reads it, so no lock
//! and no fork gate: it is set and taken with the GIL held, never detached).

use std::cell::RefCell;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::lock::Lock;

/// A thread's sentinel: releases its lock, if held, when dropped.
struct Sentinel(Option<Py<Lock>>);

impl Drop for Sentinel {
    fn drop(&mut self) {
        if let Some(lock) = self.0.take() {
            // `frozen`: the lock is reachable without the GIL. An unlocked one stays so
            // (CPython's `release_sentinel` checks `locked` too).
            let _ = lock.get().lock.release();
        }
    }
}

thread_local! {
    /// This thread's sentinel, from its last `_set_sentinel()`.
    static SENTINEL: RefCell<Option<Sentinel>> = const { RefCell::new(None) };
}

/// Releases the calling thread's sentinel now, with the GIL held: the module's threads call it
/// at their end.
pub(crate) fn release_thread_sentinel(_py: Python<'_>) {
    let sentinel = SENTINEL.try_with(|s| s.borrow_mut().take()).ok().flatten();
    drop(sentinel);
}

/// _set_sentinel() -> lock: a new (unlocked) lock, released if held when this thread ends. A second
/// call (threading's re-creation in a forked child) replaces the first, which is then never
/// released, as CPython forgets it.
#[pyfunction]
fn _set_sentinel(py: Python<'_>) -> PyResult<Py<Lock>> {
    let lock = Py::new(py, Lock::new())?;
    let sentinel = Sentinel(Some(lock.clone_ref(py)));
    let old = SENTINEL
        .try_with(|s| s.borrow_mut().replace(sentinel))
        .map_err(|_| PyRuntimeError::new_err("_set_sentinel: the thread is exiting"))?;
    if let Some(mut old) = old {
        // Forgotten, not released.
        drop(old.0.take());
    }
    Ok(lock)
}

/// `_set_sentinel` exists only where CPython's `_thread` has it (before 3.13).
pub(crate) fn register(m: &Bound<'_, PyModule>, home: &Bound<'_, PyModule>) -> PyResult<()> {
    if m.py().version_info() < (3, 13) {
        m.add_function(wrap_pyfunction!(_set_sentinel, home)?)?;
    }
    Ok(())
}

//! `_set_sentinel()` (3.11 and 3.12; 3.13 joins through `_ThreadHandle` instead): a new
//! `_thread.lock`, which the calling thread then acquires, and which is released (if held) when
//! that thread's state goes away: what 3.11/3.12's `threading.Thread.join` waits for
//! (`_tstate_lock`).
//!
//! The lock is kept in a crate `Tss`, inside a value whose `Drop` releases it: a thread of
//! this module drops it, with the GIL held, after its `_local` dicts and before it detaches
//! for the last time ([`release_thread_sentinel`]); any other thread drops it with its
//! thread-local destructors.

use std::sync::OnceLock;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::lock::Lock;

/// A thread's sentinel: releases its lock, if held, when dropped, unless disarmed.
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

fn sentinels() -> &'static pythread::Tss<Sentinel> {
    static SENTINELS: OnceLock<pythread::Tss<Sentinel>> = OnceLock::new();
    SENTINELS.get_or_init(|| {
        let key = pythread::Tss::new();
        key.create();
        key
    })
}

/// Releases the calling thread's sentinel now: the module's threads call it at their end.
pub(crate) fn release_thread_sentinel() {
    drop(sentinels().take());
}

/// _set_sentinel() -> lock: a new (unlocked) lock, released if held when this thread ends. A second
/// call (threading's re-creation in a forked child) replaces the first, which is then never
/// released, as CPython forgets it.
#[pyfunction]
fn _set_sentinel(py: Python<'_>) -> PyResult<Py<Lock>> {
    let lock = Py::new(py, Lock::new())?;
    match sentinels().set(Sentinel(Some(lock.clone_ref(py)))) {
        Ok(Some(mut old)) => drop(old.0.take()),
        Ok(None) => {}
        Err(_) => {
            return Err(PyRuntimeError::new_err(
                "_set_sentinel: the thread is exiting",
            ))
        }
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

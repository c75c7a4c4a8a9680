//! `_set_sentinel()` (3.11 and 3.12; 3.13 joins through `_ThreadHandle` instead): a new
//! `_thread.lock`, which the calling thread then acquires, and which is released (if held) when
//! that thread's state goes away: what 3.11/3.12's `threading.Thread.join` waits for
//! (`_tstate_lock`).
//!
//! The lock is kept in a crate `Tss`, inside a value whose `Drop` releases it: a thread of
//! this module drops it, with the GIL held, after its `_local` dicts and before it detaches
//! for the last time ([`release_thread_sentinel`]); any other thread drops it with its
//! thread-local destructors.

use std::cell::Cell;
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

thread_local! {
    /// This thread called `_set_sentinel`: only then does its end touch the key. The key's
    /// operations wait for the crate's fork gate, so they run detached: a thread that waited
    /// there attached would keep the GIL from a forker that waits for the import lock
    /// (lifecycle.py's `fork-import-lock` deadlocked so).
    static HAS_SENTINEL: Cell<bool> = const { Cell::new(false) };
}

/// Releases the calling thread's sentinel now: the module's threads call it at their end.
/// The key is used detached (see `HAS_SENTINEL`); the value is dropped attached.
pub(crate) fn release_thread_sentinel(py: Python<'_>) {
    if HAS_SENTINEL.with(|h| h.replace(false)) {
        let sentinel = py.detach(|| sentinels().take());
        drop(sentinel);
    }
}

/// _set_sentinel() -> lock: a new (unlocked) lock, released if held when this thread ends. A second
/// call (threading's re-creation in a forked child) replaces the first, which is then never
/// released, as CPython forgets it.
#[pyfunction]
fn _set_sentinel(py: Python<'_>) -> PyResult<Py<Lock>> {
    let lock = Py::new(py, Lock::new())?;
    HAS_SENTINEL.with(|h| h.set(true));
    // Detached: the key's operations may wait for a fork in progress (see `HAS_SENTINEL`).
    let sentinel = Sentinel(Some(lock.clone_ref(py)));
    match py.detach(move || sentinels().set(sentinel)) {
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

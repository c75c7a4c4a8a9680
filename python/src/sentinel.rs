//! `_set_sentinel()` (3.11 and 3.12; 3.13 joins through `_ThreadHandle` instead): a new
//! `_thread.lock`, which the calling thread then acquires, and which is released (if held) when
//! that thread's state goes away: what 3.11/3.12's `threading.Thread.join` waits for
//! (`_tstate_lock`). The layer's `SentinelSlot` keeps it, in this module's thread-local; a
//! thread of this module releases it attached, after its `_local` dicts
//! ([`release_thread_sentinel`], from runtime.rs's `thread_exiting`), any other thread with its
//! thread-local destructors.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use threadmodule::SentinelSlot;

use crate::lock::Lock;

/// The lock object as the layer keeps it: the reference keeps the Python object alive as long
/// as the sentinel is armed. `frozen`: the lock inside is reachable without the GIL.
pub(crate) struct LockSentinel(Py<Lock>);

impl threadmodule::Sentinel for LockSentinel {
    fn release_if_held(&self) {
        self.0.get().lock.release_if_held();
    }
}

thread_local! {
    /// This thread's sentinel, from its last `_set_sentinel()`.
    static SENTINEL: SentinelSlot<LockSentinel> = const { SentinelSlot::new() };
}

/// Releases the calling thread's sentinel now, with the GIL held: the module's threads call it
/// at their end.
pub(crate) fn release_thread_sentinel(_py: Python<'_>) {
    let _ = SENTINEL.try_with(SentinelSlot::release);
}

/// _set_sentinel() -> lock: a new (unlocked) lock, released if held when this thread ends. A second
/// call (threading's re-creation in a forked child) replaces the first, which is then never
/// released, as CPython forgets it.
#[pyfunction]
fn _set_sentinel(py: Python<'_>) -> PyResult<Py<Lock>> {
    let lock = Py::new(py, Lock::new())?;
    let sentinel = LockSentinel(lock.clone_ref(py));
    SENTINEL
        .try_with(|slot| slot.set(sentinel))
        .map_err(|_| PyRuntimeError::new_err("_set_sentinel: the thread is exiting"))?;
    Ok(lock)
}

/// `_set_sentinel` exists only where CPython's `_thread` has it (before 3.13).
pub(crate) fn register(m: &Bound<'_, PyModule>, home: &Bound<'_, PyModule>) -> PyResult<()> {
    if m.py().version_info() < (3, 13) {
        m.add_function(wrap_pyfunction!(_set_sentinel, home)?)?;
    }
    Ok(())
}

//! `_set_sentinel()` (3.11 and 3.12; 3.13 joins through `_ThreadHandle` instead): a new
//! `_thread.lock`, which the calling thread then acquires, and which is released (if held) when
//! that thread's state goes away: what 3.11/3.12's `threading.Thread.join` waits for
//! (`_tstate_lock`). The layer keeps it (`threadmodule::set_sentinel`); a thread of this module
//! releases it attached, after its `_local` dicts (runtime.rs's `thread_exiting`).

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::lock::Lock;

/// The lock object as the layer keeps it: the reference keeps the Python object alive as long
/// as the sentinel is armed. `frozen`: the lock inside is reachable without the GIL.
struct LockSentinel(Py<Lock>);

impl threadmodule::Sentinel for LockSentinel {
    fn release_if_held(&self) {
        self.0.get().lock.release_if_held();
    }
}

/// _set_sentinel() -> lock: a new (unlocked) lock, released if held when this thread ends. A second
/// call (threading's re-creation in a forked child) replaces the first, which is then never
/// released, as CPython forgets it.
#[pyfunction]
fn _set_sentinel(py: Python<'_>) -> PyResult<Py<Lock>> {
    let lock = Py::new(py, Lock::new())?;
    threadmodule::set_sentinel(LockSentinel(lock.clone_ref(py)))
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

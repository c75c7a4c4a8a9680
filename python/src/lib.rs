//! `_pythread`: CPython 3.13's `_thread` module on the `pythread` crate.
//!
//! Every thread, lock and join of this module is the crate's; the module adds only what the
//! Python object model needs: argument parsing with CPython's types and messages, reprs, the GIL
//! released around every blocking call (`Python::detach`), and CPython's interruption rule (on an
//! interrupted wait, run the interpreter's signal handlers: raise what they raise, or resume
//! against the same deadline), which is exactly the crate's `*_with_retries` with
//! `pending_calls = check_signals`. CONFORMANCE.md says how CPython's own tests run against it.
//! The module's only `unsafe` is guard.rs: calls into Python that CPython may end with
//! `pthread_exit` at finalization, which must park the thread instead of unwinding through Rust.
#![deny(unsafe_code)]

mod functions;
#[allow(unsafe_code)]
mod guard;
mod hooks;
mod local;
mod lock;
mod sentinel;
mod thread;
mod timeout;

use pyo3::prelude::*;

/// The interpreter's signal handlers, run from inside a detached wait: the `pending_calls` of
/// the crate's `acquire_with_retries` / `join_with_retries`. Off the main thread this is a
/// no-op that returns `Ok`, so the wait resumes (as in CPython); so it is while the interpreter
/// is finalizing (no handler runs then).
pub(crate) fn check_signals() -> PyResult<()> {
    Python::try_attach(|py| py.check_signals()).unwrap_or(Ok(()))
}

/// What a thread started by this module does last while attached: its `_local` dicts, then
/// its `_set_sentinel` lock, go with the GIL held (CPython clears the thread state, then
/// releases the sentinel).
pub(crate) fn thread_exiting(py: Python<'_>) {
    local::release_thread_dicts(py);
    sentinel::release_thread_sentinel(py);
}

#[pymodule]
fn _pythread(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add(
        "__doc__",
        "CPython 3.13's _thread module on the pythread crate (Rust).",
    )?;
    m.add("error", py.get_type::<pyo3::exceptions::PyRuntimeError>())?;
    m.add("TIMEOUT_MAX", pythread::TIMEOUT_MAX_SECS)?;
    // The functions' `__module__` is `_thread`, as the classes' is: the module stands in for
    // it (threading's `__all__` check, pickling by name and reprs look at it).
    let home = PyModule::new(py, "_thread")?;
    timeout::init(py);
    guard::init(py);
    // Where CPython's `_thread` changed within a minor version, the module follows the running
    // interpreter's own (builtin) `_thread`, read once here.
    timeout::probe(py);
    lock::register(m, &home)?;
    thread::register(m, &home)?;
    local::register(m)?;
    // Every lazily made name and object, made now (see `local::init_cached`).
    local::init_cached(py)?;
    thread::init_cached(py)?;
    // `_thread._local` is immutable too (local.rs defines it).
    guard::make_immutable(m.getattr("_local")?.cast::<pyo3::types::PyType>()?)?;
    sentinel::register(m, &home)?;
    functions::register(m, &home)?;
    hooks::register(m, &home)?;
    Ok(())
}

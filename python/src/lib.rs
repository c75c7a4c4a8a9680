//! `_pythread`: CPython 3.13's `_thread` module on the `pythread` crate.
//!
//! The logic of `_threadmodule.c` is the `threadmodule` layer's (the handle's states, the
//! start, the module state, the lock objects, the interruptible waits); runtime.rs is this
//! host's `threadmodule::Runtime` (its ident, the GIL released around every blocking call,
//! `PyErr_CheckSignals` between interruptions, the exceptions). The module adds what the Python
//! object model needs: argument parsing with CPython's types and messages, reprs, the types.
//! CONFORMANCE.md says how CPython's own tests run against it.
//! The module's only `unsafe` is guard.rs: calls into Python that CPython may end with
//! `pthread_exit` at finalization, which must park the thread instead of unwinding through Rust.
#![deny(unsafe_code)]

mod functions;
#[allow(unsafe_code)]
mod guard;
mod hooks;
mod local;
mod lock;
mod runtime;
mod sentinel;
mod thread;
mod timeout;

use pyo3::prelude::*;

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
    runtime::init_cached(py)?;
    // `_thread._local` is immutable too (local.rs defines it).
    guard::make_immutable(m.getattr("_local")?.cast::<pyo3::types::PyType>()?)?;
    sentinel::register(m, &home)?;
    functions::register(m, &home)?;
    hooks::register(m, &home)?;
    Ok(())
}

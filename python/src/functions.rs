//! `exit()`, `exit_thread()` and `interrupt_main(signum=SIGINT, /)`: the module functions that
//! end a thread's Python code or simulate a signal, with CPython's checks and messages.

use pyo3::exceptions::{PyOverflowError, PySystemExit, PyValueError};
use pyo3::prelude::*;

use crate::guard;

/// exit(): raises SystemExit, which ends the calling thread silently (`thread_run` ignores it).
#[pyfunction]
fn exit() -> PyResult<()> {
    Err(PySystemExit::new_err(()))
}

/// exit_thread(): the same as `exit()` (its old name).
#[pyfunction]
fn exit_thread() -> PyResult<()> {
    Err(PySystemExit::new_err(()))
}

/// interrupt_main(signum=signal.SIGINT, /): simulates the arrival of `signum` for the main
/// thread, as CPython does, with `PyErr_SetInterruptEx` ([`guard::set_interrupt`]): out of
/// `1..NSIG` is ValueError("signal number out of range"); a signal that Python does not handle
/// (`SIG_DFL`, `SIG_IGN`) is ignored; otherwise the signal's Python handler runs in the main
/// thread at its next check. No signal is sent, so no thread's system call sees `EINTR`.
#[pyfunction]
#[pyo3(signature = (signum = None, /))]
fn interrupt_main(py: Python<'_>, signum: Option<i64>) -> PyResult<()> {
    let signum = match signum {
        // `i`: a C int, with getargs' messages.
        Some(s) if s > i64::from(i32::MAX) => {
            return Err(PyOverflowError::new_err(
                "signed integer is greater than maximum",
            ))
        }
        Some(s) if s < i64::from(i32::MIN) => {
            return Err(PyOverflowError::new_err(
                "signed integer is less than minimum",
            ))
        }
        Some(s) => s as i32,
        None => py.import("signal")?.getattr("SIGINT")?.extract()?,
    };
    if !guard::set_interrupt(py, signum) {
        return Err(PyValueError::new_err("signal number out of range"));
    }
    Ok(())
}

pub(crate) fn register(m: &Bound<'_, PyModule>, home: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(exit, home)?)?;
    m.add_function(wrap_pyfunction!(exit_thread, home)?)?;
    m.add_function(wrap_pyfunction!(interrupt_main, home)?)?;
    Ok(())
}

//! `exit()`, `exit_thread()` and `interrupt_main(signum=SIGINT, /)`: the module functions that
//! end a thread's Python code or simulate a signal, with CPython's checks and messages.

use pyo3::exceptions::{PyOverflowError, PySystemExit, PyValueError};
use pyo3::prelude::*;

use pyo3::types::{PyDict, PyTuple};

use crate::{guard, timeout};

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

/// `SIGINT` (2 on every POSIX system CPython runs on): `interrupt_main()`'s default, a constant
/// as in CPython, which never imports `signal` for it (it may run during finalization, where
/// an import fails).
const SIGINT: i32 = 2;

/// interrupt_main(signum=signal.SIGINT, /): simulates the arrival of `signum` for the main
/// thread, as CPython does, with `PyErr_SetInterruptEx` ([`guard::set_interrupt`]): out of
/// `1..NSIG` is ValueError("signal number out of range"); a signal that Python does not handle
/// (`SIG_DFL`, `SIG_IGN`) is ignored; otherwise the signal's Python handler runs in the main
/// thread at its next check (during finalization, with no handler left, that check reports
/// "Signal 2 ignored due to race condition", as CPython's does). No signal is sent, so no
/// thread's system call sees `EINTR`. Arguments as CPython's `"|i:signum"`.
#[pyfunction]
#[pyo3(signature = (*args, **kwargs))]
fn interrupt_main(
    py: Python<'_>,
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<()> {
    timeout::no_keywords("interrupt_main", kwargs)?;
    timeout::at_most_one("signum", args.len())?;
    let signum = match args.iter().next() {
        // `i`: PyLong_AsLong (which takes `__index__`), then the C int range.
        Some(s) => {
            let s: i64 = guard::index(&s)?.extract()?;
            if s > i64::from(i32::MAX) {
                return Err(PyOverflowError::new_err(
                    "signed integer is greater than maximum",
                ));
            }
            if s < i64::from(i32::MIN) {
                return Err(PyOverflowError::new_err(
                    "signed integer is less than minimum",
                ));
            }
            s as i32
        }
        None => SIGINT,
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

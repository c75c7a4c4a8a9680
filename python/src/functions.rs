//! `exit()`, `exit_thread()` and `interrupt_main(signum=SIGINT, /)`: the module functions that
//! end a thread's Python code or simulate a signal, with CPython's checks and messages.

use pyo3::exceptions::{PyOverflowError, PySystemExit, PyValueError};
use pyo3::prelude::*;

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
/// thread, as `PyErr_SetInterruptEx` does: out of `1..NSIG` is ValueError("signal number out of
/// range"); a signal that Python does not handle (`SIG_DFL`, `SIG_IGN`, or a handler installed
/// outside Python) is ignored; otherwise the signal's Python handler runs in the main thread at
/// its next check, as for a real signal.
///
/// CPython sets the signal's "tripped" flag directly, without a signal; the module has no
/// `unsafe` to reach that C function, so it delivers the signal to the calling thread
/// (`signal.raise_signal`, C `raise`): the interpreter's C handler then trips the same flag (and
/// writes the wakeup fd), and no other thread is disturbed. Only the calling thread's system
/// call in progress, if any, could see `EINTR`, and the caller is here, not in a system call.
/// Called on the main thread, the handler runs before this returns, as in CPython ("raised
/// instantly").
#[pyfunction]
#[pyo3(signature = (signum = None, /))]
fn interrupt_main(py: Python<'_>, signum: Option<i64>) -> PyResult<()> {
    let signal = py.import("signal")?;
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
        Some(s) => s,
        None => signal.getattr("SIGINT")?.extract()?,
    };
    let nsig: i64 = signal.getattr("NSIG")?.extract()?;
    if signum < 1 || signum >= nsig {
        return Err(PyValueError::new_err("signal number out of range"));
    }
    let handler = signal.call_method1("getsignal", (signum,))?;
    if handler.is_none()
        || handler.eq(signal.getattr("SIG_DFL")?)?
        || handler.eq(signal.getattr("SIG_IGN")?)?
    {
        return Ok(());
    }
    signal.call_method1("raise_signal", (signum,))?;
    Ok(())
}

pub(crate) fn register(m: &Bound<'_, PyModule>, home: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(exit, home)?)?;
    m.add_function(wrap_pyfunction!(exit_thread, home)?)?;
    m.add_function(wrap_pyfunction!(interrupt_main, home)?)?;
    Ok(())
}

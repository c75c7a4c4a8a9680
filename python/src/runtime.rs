//! The module's `threadmodule::Runtime`: what the host-neutral `_threadmodule.c` layer needs
//! from CPython, through PyO3 ([`Host`], a `Python<'py>` token), with the exceptions
//! ([`Raised`]) and the function objects ([`Call`]) it hands around. Every call into Python
//! code and every drop of a reference that may be the last goes through guard.rs, as
//! everywhere in the module.

use std::cell::Cell;

use pyo3::exceptions::{PyOverflowError, PyRuntimeError, PySystemExit, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple};
use threadmodule::{Error, ErrorKind};

use crate::{guard, timeout};

/// The attached thread, as the layer sees the interpreter (a `Python<'py>`: free to copy).
#[derive(Clone, Copy)]
pub(crate) struct Host<'py>(pub(crate) Python<'py>);

/// A Python exception on its way through the layer. Its last reference may be a traceback
/// whose frames' finalizers run Python code, so it is dropped through guard.rs; turned into
/// a `PyErr` (`?`) it leaves the layer for PyO3.
pub(crate) struct Raised<'py> {
    py: Python<'py>,
    err: Option<PyErr>,
}

impl<'py> Raised<'py> {
    fn new(py: Python<'py>, err: PyErr) -> Raised<'py> {
        Raised { py, err: Some(err) }
    }

    fn take(&mut self) -> PyErr {
        self.err
            .take()
            .expect("a Raised holds its error until taken")
    }
}

impl Drop for Raised<'_> {
    fn drop(&mut self) {
        if let Some(err) = self.err.take() {
            guard::release(err.into_value(self.py).into_bound(self.py));
        }
    }
}

impl From<Raised<'_>> for PyErr {
    fn from(mut raised: Raised<'_>) -> PyErr {
        raised.take()
    }
}

/// `function(*args, **kwargs)` of a thread start, moved to the new thread. The arguments go
/// right after a call that returned (the result, then the arguments), or after the report of
/// the exception it raised (the order of `thread_run` in CPython); after a `SystemExit`, with
/// the function. The function goes last, when the layer drops this, attached (after the
/// thread's `_local` dicts and its sentinel).
pub(crate) struct Call {
    func: Option<Py<PyAny>>,
    args: Cell<Option<Py<PyTuple>>>,
    kwargs: Cell<Option<Py<PyDict>>>,
}

impl Call {
    pub(crate) fn new(func: Py<PyAny>, args: Py<PyTuple>, kwargs: Option<Py<PyDict>>) -> Call {
        Call {
            func: Some(func),
            args: Cell::new(Some(args)),
            kwargs: Cell::new(kwargs),
        }
    }

    fn release_arguments(&self, py: Python<'_>) {
        if let Some(args) = self.args.take() {
            guard::release(args.into_bound(py));
        }
        if let Some(kwargs) = self.kwargs.take() {
            guard::release(kwargs.into_bound(py));
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // The layer drops it at the end of `thread_run`, attached: `attach` only counts.
        Python::attach(|py| {
            self.release_arguments(py);
            if let Some(func) = self.func.take() {
                guard::release(func.into_bound(py));
            }
        });
    }
}

/// `sys.is_finalizing`, looked up once (an import per start cost more than the rest of it).
static IS_FINALIZING: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn is_finalizing_function(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    IS_FINALIZING
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("sys")?.getattr("is_finalizing")?.unbind())
        })
        .map(|f| f.bind(py))
}

/// The Python halves of the thread reports (`hooks.py`), run once at import.
static HOOKS: PyOnceLock<Py<PyDict>> = PyOnceLock::new();

pub(crate) fn hook<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    let hooks = HOOKS
        .get_or_try_init(py, || {
            let globals = PyDict::new(py);
            py.run(
                &std::ffi::CString::new(include_str!("hooks.py"))?,
                Some(&globals),
                None,
            )?;
            Ok::<_, PyErr>(globals.unbind())
        })?
        .bind(py);
    hooks
        .get_item(name)?
        .ok_or_else(|| PyRuntimeError::new_err(format!("hooks.py has no {name}")))
}

/// Fills this file's `PyOnceLock`s at import, so that none is ever being filled when a thread
/// forks (see `local::init_cached`), and hooks.py runs on the importing thread, never later on
/// a module thread (where its Python code would run unguarded).
pub(crate) fn init_cached(py: Python<'_>) -> PyResult<()> {
    is_finalizing_function(py)?;
    hook(py, "excepthook")?;
    Ok(())
}

/// A module error as the running interpreter raises it: `_thread.error` is `RuntimeError`;
/// the timeout messages that changed within a minor version are the running interpreter's
/// (timeout.rs); `PythonFinalizationError` exists from 3.13, a `RuntimeError` before.
pub(crate) fn exception(py: Python<'_>, error: Error) -> PyErr {
    match error {
        Error::AcquireArgs(e) => timeout::acquire_args_error(py, e),
        Error::TimestampOutOfRange => timeout::float_overflow(py),
        error => {
            let msg = error.message();
            match error.kind() {
                ErrorKind::RuntimeError => PyRuntimeError::new_err(msg),
                ErrorKind::ValueError => PyValueError::new_err(msg),
                ErrorKind::OverflowError => PyOverflowError::new_err(msg),
                ErrorKind::TypeError => PyTypeError::new_err(msg),
                ErrorKind::PythonFinalizationError => {
                    match py
                        .import("builtins")
                        .and_then(|b| b.getattr("PythonFinalizationError"))
                    {
                        Ok(t) => t.call1((msg,)).map_or_else(|e| e, |v| PyErr::from_value(v)),
                        Err(_) => PyRuntimeError::new_err(msg),
                    }
                }
            }
        }
    }
}

impl<'py> threadmodule::Runtime for Host<'py> {
    type Exception = Raised<'py>;
    type Function = Call;

    /// `PyThread_get_thread_ident()`.
    #[inline]
    fn get_ident() -> u64 {
        guard::host_ident()
    }

    /// The `pthread_t`, as `PyThread_start_joinable_thread` computes the ident in the starting
    /// thread: a start does not wait for the new thread to be scheduled.
    #[inline]
    fn ident_of(thread: &pythread::Handle) -> Option<u64> {
        thread.pthread_t()
    }

    #[inline]
    fn allow_threads<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        self.0.detach(f)
    }

    /// `PyErr_CheckSignals`: the signal handlers, on the main thread (a no-op elsewhere).
    fn make_pending_calls(&self) -> Result<(), Raised<'py>> {
        self.0.check_signals().map_err(|e| Raised::new(self.0, e))
    }

    /// `sys.is_finalizing()` (not in the limited API before 3.13); a failing call reads as not
    /// finalizing.
    fn is_finalizing(&self) -> bool {
        let py = self.0;
        is_finalizing_function(py)
            .and_then(|f| f.call0())
            .and_then(|v| v.is_truthy())
            .unwrap_or(false)
    }

    fn new_exception(&self, error: Error) -> Raised<'py> {
        Raised::new(self.0, exception(self.0, error))
    }

    /// The call, guarded; a result goes at once, and with it the arguments.
    fn call(&self, function: &Call) -> Result<(), Raised<'py>> {
        let py = self.0;
        let func = function
            .func
            .as_ref()
            .expect("dropped only at the end")
            .bind(py);
        let args = function.args.take().expect("called once").into_bound(py);
        let kwargs = function.kwargs.take().map(|k| k.into_bound(py));
        let result = guard::call(func, &args, kwargs.as_ref());
        match result {
            Ok(result) => {
                guard::release(result);
                guard::release(args);
                if let Some(kwargs) = kwargs {
                    guard::release(kwargs);
                }
                Ok(())
            }
            Err(err) => {
                // Kept until the exception is reported (`thread_run`'s order).
                function.args.set(Some(args.unbind()));
                function.kwargs.set(kwargs.map(Bound::unbind));
                Err(Raised::new(py, err))
            }
        }
    }

    fn is_system_exit(&self, exception: &Raised<'py>) -> bool {
        exception
            .err
            .as_ref()
            .is_some_and(|e| e.is_instance_of::<PySystemExit>(self.0))
    }

    /// hooks.py's `report_thread_error`: the running interpreter's message, through
    /// `sys.unraisablehook`. A report that fails is dropped, as CPython ignores the default
    /// hook's failure. Then the exception and the call's arguments go.
    fn report_thread_exception(&self, mut exception: Raised<'py>, function: &Call) {
        let py = self.0;
        let exc = exception.take().into_value(py).into_bound(py).into_any();
        let func = function
            .func
            .as_ref()
            .expect("dropped only at the end")
            .bind(py);
        let reported = hook(py, "report_thread_error").and_then(|report| {
            let args = PyTuple::new(py, [&exc, func])?;
            let result = guard::call(&report, &args, None);
            guard::release(args);
            result
        });
        match reported {
            Ok(none) => guard::release(none),
            Err(err) => guard::release(err.into_value(py).into_bound(py)),
        }
        guard::release(exc);
        function.release_arguments(py);
    }

    /// `PyErr_WriteUnraisable(NULL)`.
    fn write_unraisable(&self, mut exception: Raised<'py>) {
        exception.take().write_unraisable(self.0, None);
    }

    /// The thread's `_local` dicts, then its `_set_sentinel` lock, go with the GIL held
    /// (CPython clears the thread state, then releases the sentinel).
    fn thread_exiting(&self) {
        crate::local::release_thread_dicts(self.0);
        crate::sentinel::release_thread_sentinel(self.0);
    }
}

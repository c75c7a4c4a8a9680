//! Threads: `start_new_thread`, `start_joinable_thread`, `_ThreadHandle` and the module-level
//! functions of `_thread` that the crate backs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use pyo3::exceptions::{PyOverflowError, PyRuntimeError, PySystemExit, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::timeout;

/// CPython's THREAD_STACK_MIN: `stack_size()` refuses anything smaller (except 0).
const THREAD_STACK_MIN: isize = 0x8000;

/// `stack_size()`: the size new threads get, 0 = the platform default (per interpreter in
/// CPython; this module lives in one interpreter).
static STACK_SIZE: Mutex<usize> = Mutex::new(0);

/// `_get_main_thread_ident()`: the crate's ident of the thread that imported the module, and
/// in a forked child the thread that forked (CPython's runtime makes it the main thread).
static MAIN_IDENT: AtomicU64 = AtomicU64::new(0);

/// The `set_done` flags of the handles of started threads, by ident: in a forked child every
/// thread but the forking one is gone, and CPython marks their handles done there.
#[allow(clippy::type_complexity)]
static STARTED: Mutex<Vec<(u64, Weak<AtomicBool>)>> = Mutex::new(Vec::new());

fn track(ident: u64, flag: &Arc<AtomicBool>) {
    let mut started = STARTED.lock().unwrap_or_else(|e| e.into_inner());
    if started.len() >= 64 && started.len().is_power_of_two() {
        started.retain(|(_, w)| w.strong_count() > 0);
    }
    started.push((ident, Arc::downgrade(flag)));
}

/// Registered with `os.register_at_fork(after_in_child=...)`.
#[pyfunction]
fn _after_fork_child() {
    let me = pythread::get_ident().as_u64();
    MAIN_IDENT.store(me, Ordering::Release);
    let started = STARTED.lock().unwrap_or_else(|e| e.into_inner());
    for (ident, flag) in started.iter() {
        if let Some(flag) = flag.upgrade().filter(|_| *ident != me) {
            flag.store(true, Ordering::Release);
        }
    }
}

fn stack_size_now() -> usize {
    *STACK_SIZE.lock().unwrap_or_else(|e| e.into_inner())
}

fn cant_start() -> PyErr {
    PyRuntimeError::new_err("can't start new thread")
}

/// CPython 3.12+ refuses to start a thread once the interpreter is finalizing
/// (`PythonFinalizationError` from 3.13, a RuntimeError before). Its flag
/// (`interp->finalizing`) is set just before `threading._shutdown()` runs, which sets
/// `threading._SHUTTING_DOWN`: the module reads that (atexit handlers run after it, while
/// `sys.is_finalizing()` is still False on 3.12), or `sys.is_finalizing()`.
fn refuse_at_shutdown(py: Python<'_>) -> PyResult<()> {
    if py.version_info() < (3, 12) {
        return Ok(());
    }
    let sys = py.import("sys")?;
    let shutting_down = match sys.getattr("modules")?.get_item("threading") {
        Ok(threading) => threading
            .getattr_opt("_SHUTTING_DOWN")?
            .is_some_and(|f| f.is_truthy().unwrap_or(false)),
        Err(_) => false,
    };
    if !shutting_down && !sys.call_method0("is_finalizing")?.is_truthy()? {
        return Ok(());
    }
    let msg = "can't create new thread at interpreter shutdown";
    match py.import("builtins")?.getattr("PythonFinalizationError") {
        Ok(t) => Err(PyErr::from_value(t.call1((msg,))?)),
        Err(_) => Err(PyRuntimeError::new_err(msg)),
    }
}

/// Starts `func(*args, **kwargs)` on a crate thread, the callable run attached to the
/// interpreter; an exception is reported through `sys.unraisablehook` as `_thread` does
/// (`SystemExit` silently ends the thread).
fn spawn(
    func: Py<PyAny>,
    args: Py<PyTuple>,
    kwargs: Option<Py<PyDict>>,
    daemon: bool,
) -> std::io::Result<pythread::Handle> {
    pythread::Builder::new()
        .daemon(daemon)
        .stack_size(stack_size_now())
        .try_start(move || {
            // Not once the interpreter is finalizing: attaching then would end the OS thread
            // under Rust's feet (CPython 3.11-3.13 call pthread_exit there). The references
            // are then released by PyO3 whenever the interpreter next allows it.
            Python::try_attach(move |py| {
                let f = func.bind(py);
                let result = f.call(args.bind(py), kwargs.as_ref().map(|k| k.bind(py)));
                if let Err(err) = result {
                    if !err.is_instance_of::<PySystemExit>(py) {
                        crate::hooks::report_unraisable(py, err, f);
                    }
                }
                // Every Python reference goes while the thread is still attached: the
                // thread's `_local` dicts and its sentinel too (issue 19's hook).
                crate::thread_exiting(py);
                drop((args, kwargs, func));
            });
        })
}

/// A timeout of `_ThreadHandle.join`: None or negative = forever, else seconds (rounded up to
/// whole nanoseconds, as `_PyTime_ROUND_TIMEOUT`).
fn join_timeout(timeout: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Duration>> {
    let Some(t) = timeout.filter(|t| !t.is_none()) else {
        return Ok(None);
    };
    let secs = timeout::seconds(t)?;
    if secs.is_nan() {
        return Err(PyValueError::new_err("Invalid value NaN (not a number)"));
    }
    if secs < 0.0 {
        return Ok(None);
    }
    let ns = (secs * 1e9).ceil();
    if ns >= i64::MAX as f64 {
        return Err(PyOverflowError::new_err(
            "timestamp out of range for platform time_t",
        ));
    }
    Ok(Some(Duration::from_nanos(ns as u64)))
}

enum State {
    NotStarted,
    /// A thread started by this module.
    Started(pythread::Handle),
    /// `_make_thread_handle(ident)`: a thread this module did not start (the main thread); it
    /// is "done" when `_set_done` releases `exiting`.
    Foreign {
        ident: u64,
        exiting: Arc<pythread::Lock>,
    },
    /// The start failed: done, ident 0.
    Failed,
}

/// `_thread._ThreadHandle`: the joinable handle of `start_joinable_thread`.
#[pyclass(name = "_ThreadHandle", module = "_thread", frozen, weakref)]
pub(crate) struct ThreadHandle {
    state: Mutex<State>,
    /// `_set_done()` was called: the handle reads as done and `join` returns at once (after a
    /// fork, or for a foreign thread that threading saw exit).
    set_done: Arc<AtomicBool>,
}

impl ThreadHandle {
    fn with_state(state: State) -> ThreadHandle {
        ThreadHandle {
            state: Mutex::new(state),
            set_done: Arc::new(AtomicBool::new(false)),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[pymethods]
impl ThreadHandle {
    #[new]
    fn py_new() -> Self {
        ThreadHandle::with_state(State::NotStarted)
    }

    #[getter]
    fn ident(&self) -> u64 {
        match &*self.state() {
            State::Started(h) => h.ident().as_u64(),
            State::Foreign { ident, .. } => *ident,
            State::NotStarted | State::Failed => 0,
        }
    }

    /// join(timeout=None, /): waits (interruptibly, the GIL released) until the thread is done
    /// or the timeout passes; always returns None (see `is_done`).
    #[pyo3(signature = (*args, **kwargs))]
    fn join(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        if kwargs.is_some_and(|k| !k.is_empty()) {
            return Err(PyTypeError::new_err(
                "_ThreadHandle.join() takes no keyword arguments",
            ));
        }
        let [timeout] = timeout::optional_args("join", ["timeout"], args, None)?;
        let wait = join_timeout(timeout.as_ref())?;
        enum Target {
            Thread(pythread::Handle),
            Foreign(u64, Arc<pythread::Lock>),
        }
        let target = match &*self.state() {
            State::NotStarted => return Err(PyRuntimeError::new_err("thread not started")),
            State::Failed => return Ok(()),
            _ if self.set_done.load(Ordering::Acquire) => return Ok(()),
            State::Started(h) => Target::Thread(h.clone()),
            State::Foreign { ident, exiting } => Target::Foreign(*ident, exiting.clone()),
        };
        match target {
            Target::Thread(h) => {
                if !h.is_finished() && h.ident() == pythread::get_ident() {
                    return Err(PyRuntimeError::new_err("Cannot join current thread"));
                }
                let done = py.detach(|| h.join_with_retries(wait, crate::check_signals))?;
                if done.is_some() {
                    // CPython's once-only pthread_join: the OS thread is gone when join returns.
                    let _ = py.detach(|| h.join_thread());
                }
                Ok(())
            }
            Target::Foreign(ident, exiting) => {
                if ident == pythread::get_ident().as_u64() {
                    return Err(PyRuntimeError::new_err("Cannot join current thread"));
                }
                // Done = `exiting` released by `_set_done`: take it and give it back at once.
                if exiting.try_acquire()
                    || (wait != Some(Duration::ZERO)
                        && py
                            .detach(|| exiting.acquire_with_retries(wait, crate::check_signals))?)
                {
                    let _ = exiting.release();
                }
                Ok(())
            }
        }
    }

    fn is_done(&self) -> bool {
        match &*self.state() {
            State::NotStarted => false,
            State::Failed => true,
            _ if self.set_done.load(Ordering::Acquire) => true,
            State::Started(h) => h.is_finished(),
            State::Foreign { .. } => false,
        }
    }

    fn _set_done(&self) -> PyResult<()> {
        let state = self.state();
        match &*state {
            State::NotStarted => Err(PyRuntimeError::new_err("thread not started")),
            State::Started(_) | State::Failed => {
                self.set_done.store(true, Ordering::Release);
                Ok(())
            }
            State::Foreign { exiting, .. } => {
                if !self.set_done.swap(true, Ordering::AcqRel) {
                    let _ = exiting.release();
                }
                Ok(())
            }
        }
    }

    fn __repr__(&self) -> String {
        format!("<_thread._ThreadHandle object: ident={}>", self.ident())
    }
}

/// `home` is the module object the functions name as their `__module__` (`_thread`).
pub(crate) fn register(m: &Bound<'_, PyModule>, home: &Bound<'_, PyModule>) -> PyResult<()> {
    MAIN_IDENT.store(pythread::get_ident().as_u64(), Ordering::Release);
    let after_fork = wrap_pyfunction!(_after_fork_child, home)?;
    let kwargs = PyDict::new(m.py());
    kwargs.set_item("after_in_child", after_fork)?;
    m.py()
        .import("os")?
        .getattr("register_at_fork")?
        .call((), Some(&kwargs))?;
    m.add_class::<ThreadHandle>()?;
    m.add_function(wrap_pyfunction!(start_new_thread, home)?)?;
    m.add("start_new", m.getattr("start_new_thread")?)?;
    m.add_function(wrap_pyfunction!(start_joinable_thread, home)?)?;
    m.add_function(wrap_pyfunction!(_make_thread_handle, home)?)?;
    m.add_function(wrap_pyfunction!(_get_main_thread_ident, home)?)?;
    m.add_function(wrap_pyfunction!(_shutdown, home)?)?;
    m.add_function(wrap_pyfunction!(_count, home)?)?;
    m.add_function(wrap_pyfunction!(daemon_threads_allowed, home)?)?;
    m.add_function(wrap_pyfunction!(_is_main_interpreter, home)?)?;
    m.add_function(wrap_pyfunction!(get_ident, home)?)?;
    m.add_function(wrap_pyfunction!(get_native_id, home)?)?;
    m.add_function(wrap_pyfunction!(stack_size, home)?)?;
    Ok(())
}

/// start_new_thread(function, args, kwargs=None) -> ident
#[pyfunction]
#[pyo3(signature = (function, args, kwargs = None, /))]
fn start_new_thread(
    function: &Bound<'_, PyAny>,
    args: &Bound<'_, PyAny>,
    kwargs: Option<&Bound<'_, PyAny>>,
) -> PyResult<u64> {
    if !function.is_callable() {
        return Err(PyTypeError::new_err("first arg must be callable"));
    }
    refuse_at_shutdown(function.py())?;
    let args = args
        .cast::<PyTuple>()
        .map_err(|_| PyTypeError::new_err("2nd arg must be a tuple"))?;
    let kwargs = match kwargs {
        None => None,
        Some(k) => Some(
            k.cast::<PyDict>()
                .map_err(|_| PyTypeError::new_err("optional 3rd arg must be a dictionary"))?
                .clone()
                .unbind(),
        ),
    };
    let handle = spawn(
        function.clone().unbind(),
        args.clone().unbind(),
        kwargs,
        true,
    )
    .map_err(|_| cant_start())?;
    // Dropping the handle detaches the thread, as `start_new_thread` does.
    Ok(handle.ident().as_u64())
}

/// start_joinable_thread(function, handle=None, daemon=True) -> _ThreadHandle
#[pyfunction]
#[pyo3(signature = (function, handle = None, daemon = None))]
fn start_joinable_thread(
    py: Python<'_>,
    function: &Bound<'_, PyAny>,
    handle: Option<&Bound<'_, PyAny>>,
    daemon: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<ThreadHandle>> {
    if !function.is_callable() {
        return Err(PyTypeError::new_err("thread function must be callable"));
    }
    let handle: Py<ThreadHandle> = match handle.filter(|h| !h.is_none()) {
        None => Py::new(py, ThreadHandle::with_state(State::NotStarted))?,
        Some(h) => h
            .cast::<ThreadHandle>()
            .map_err(|_| PyTypeError::new_err("'handle' must be a _ThreadHandle"))?
            .clone()
            .unbind(),
    };
    let daemon = match daemon {
        Some(d) => d.is_truthy()?,
        None => true,
    };
    refuse_at_shutdown(py)?;
    {
        let mut state = handle.get().state();
        if !matches!(*state, State::NotStarted) {
            return Err(PyRuntimeError::new_err("thread already started"));
        }
        match spawn(
            function.clone().unbind(),
            PyTuple::empty(py).unbind(),
            None,
            daemon,
        ) {
            Ok(h) => {
                track(h.ident().as_u64(), &handle.get().set_done);
                *state = State::Started(h);
            }
            Err(_) => {
                *state = State::Failed;
                return Err(cant_start());
            }
        }
    }
    Ok(handle)
}

/// _make_thread_handle(ident): a handle for a thread this module did not start (threading's
/// main thread); it is done once `_set_done()` is called.
#[pyfunction]
fn _make_thread_handle(ident: u64) -> ThreadHandle {
    let exiting = pythread::Lock::new();
    exiting.acquire();
    ThreadHandle::with_state(State::Foreign {
        ident,
        exiting: Arc::new(exiting),
    })
}

#[pyfunction]
fn _get_main_thread_ident() -> u64 {
    MAIN_IDENT.load(Ordering::Acquire)
}

/// _shutdown(): joins every non-daemon thread still running, except the caller's own.
#[pyfunction]
fn _shutdown(py: Python<'_>) {
    py.detach(pythread::shutdown);
}

/// _count(): the number of threads started by this module that are still running.
#[pyfunction]
fn _count() -> usize {
    pythread::count()
}

#[pyfunction]
fn daemon_threads_allowed() -> bool {
    true
}

#[pyfunction]
fn _is_main_interpreter() -> bool {
    true
}

/// get_ident() -> int: the crate's ident of the calling thread (nonzero, never reused).
#[pyfunction]
fn get_ident() -> u64 {
    pythread::get_ident().as_u64()
}

#[pyfunction]
fn get_native_id() -> u64 {
    pythread::get_native_id()
}

/// stack_size([size]) -> size: returns the old size; 0 = the platform default.
#[pyfunction]
#[pyo3(signature = (size = None, /))]
fn stack_size(size: Option<isize>) -> PyResult<usize> {
    let new = size.unwrap_or(0);
    if new < 0 {
        return Err(PyValueError::new_err("size must be 0 or a positive value"));
    }
    if new != 0 && new < THREAD_STACK_MIN {
        return Err(PyValueError::new_err(format!(
            "size not valid: {new} bytes"
        )));
    }
    let mut size = STACK_SIZE.lock().unwrap_or_else(|e| e.into_inner());
    Ok(std::mem::replace(&mut *size, new as usize))
}

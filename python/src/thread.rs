//! Threads: `start_new_thread`, `start_joinable_thread`, `_ThreadHandle` and the module-level
//! functions of `_thread` that the crate backs.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use pyo3::exceptions::{PyOverflowError, PyRuntimeError, PySystemExit, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple};

use crate::{guard, timeout};

/// CPython's THREAD_STACK_MIN: `stack_size()` refuses anything smaller (except 0).
const THREAD_STACK_MIN: isize = 0x8000;

/// `stack_size()`: the size new threads get, 0 = the platform default (per interpreter in
/// CPython; this module lives in one interpreter).
static STACK_SIZE: Mutex<usize> = Mutex::new(0);

/// `_get_main_thread_ident()`: the host ident ([`guard::host_ident`]) of the thread that
/// imported the module, and in a forked child of the thread that forked (CPython's runtime
/// makes it the main thread).
static MAIN_IDENT: AtomicU64 = AtomicU64::new(0);

/// The module's own fork generation, for the handles of threads it did not start
/// (`_make_thread_handle`): as the crate's for its own handles (`pythread::after_fork_child`),
/// such a handle made before the last fork, naming a thread other than the forking one, names
/// a thread that does not exist in the child, and reads as done there.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// The process the module's state belongs to (set at import, and by `_after_fork_child`).
static PID: AtomicU32 = AtomicU32::new(0);

/// `os.register_at_fork(before=...)`: CPython's `PyOS_BeforeFork` for the crate. Registered at
/// import, before `threading` registers its hooks: `before` hooks run in reverse order of
/// registration, so this one runs last, right before `fork()`. It takes no lock and never waits
/// (`pythread::before_fork` records the process id): the crate's brief locks are made usable
/// again in the child instead (`pythread::after_fork_child`), so nothing the forker holds
/// across `os.fork`'s own host code (the import lock, a warning) can block another thread.
#[pyfunction]
fn _before_fork() {
    pythread::before_fork();
}

/// `os.register_at_fork(after_in_parent=...)`: `pythread::after_fork_parent` (nothing to release).
#[pyfunction]
fn _after_fork_parent() {
    pythread::after_fork_parent();
}

/// `os.register_at_fork(after_in_child=...)`: CPython's `_PyThread_AfterFork`, run before
/// `threading`'s own child hook (hooks run in order of registration, and the module registers
/// at import, before `threading` is imported on it). The crate's handles of threads that did
/// not survive read as finished, its count and `shutdown` forget them, its locks are released;
/// the forking thread becomes the main thread, and the module's own handles of threads it did
/// not start move to the past generation.
/// As the crate's, a no-op in a process that has not forked since the last call.
#[pyfunction]
fn _after_fork_child() {
    pythread::after_fork_child();
    let pid = std::process::id();
    if PID.swap(pid, Ordering::AcqRel) != pid {
        MAIN_IDENT.store(guard::host_ident(), Ordering::Release);
        GENERATION.fetch_add(1, Ordering::AcqRel);
    }
}

fn stack_size_now() -> usize {
    *STACK_SIZE.lock().unwrap_or_else(|e| e.into_inner())
}

fn cant_start() -> PyErr {
    PyRuntimeError::new_err("can't start new thread")
}

/// `sys.is_finalizing`, looked up once (an import per start cost more than the rest of it).
static IS_FINALIZING: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Fills this file's `PyOnceLock`s at import, so that none is ever being filled when a thread
/// forks (see `local::init_cached`).
pub(crate) fn init_cached(py: Python<'_>) -> PyResult<()> {
    IS_FINALIZING.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("sys")?.getattr("is_finalizing")?.unbind())
    })?;
    hook(py, "excepthook")?;
    Ok(())
}

/// CPython 3.12+ refuses to start a thread once the interpreter is finalizing
/// (`PythonFinalizationError` from 3.13, a RuntimeError before).
fn refuse_at_shutdown(py: Python<'_>) -> PyResult<()> {
    let is_finalizing = IS_FINALIZING.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("sys")?.getattr("is_finalizing")?.unbind())
    })?;
    if !is_finalizing.call0(py)?.is_truthy(py)? {
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
///
/// The start itself runs detached (creating an OS thread is a system call that may block).
/// The references travel in a shared slot, so that a start that fails
/// (its closure dropped while detached) leaves them to be dropped here, attached. The new
/// thread runs nothing before the returned [`Go`] is dropped (CPython 3.13's `thread_run` waits
/// for `thread_is_running` the same way): the caller publishes the handle first.
fn spawn(
    py: Python<'_>,
    func: Py<PyAny>,
    args: Py<PyTuple>,
    kwargs: Option<Py<PyDict>>,
    daemon: bool,
) -> std::io::Result<(pythread::Handle, Go)> {
    let slot = Arc::new(Mutex::new(Some((func, args, kwargs))));
    let theirs = Arc::clone(&slot);
    let go = Arc::new(pythread::Lock::new());
    go.acquire();
    let wait_for_go = Arc::clone(&go);
    let stack_size = stack_size_now();
    let started = py.detach(move || {
        pythread::Builder::new()
            .daemon(daemon)
            .stack_size(stack_size)
            .try_start(move || {
                wait_for_go.acquire();
                let mut call = theirs.lock().unwrap_or_else(|e| e.into_inner()).take();
                Python::try_attach(|py| {
                    if let Some((func, args, kwargs)) = call.take() {
                        thread_run(
                            func.into_bound(py),
                            args.into_bound(py),
                            kwargs.map(|k| k.into_bound(py)),
                        );
                    }
                });
                // Not attached (the interpreter is gone): the references are left, not
                // dropped detached (PyO3 would drop them at another thread's next attach,
                // unguarded).
                std::mem::forget(call);
            })
    });
    match started {
        Ok(handle) => Ok((handle, Go(go))),
        Err(err) => {
            // Attached again: the thread never ran, and its references go here (the caller
            // holds others, so no `__del__` runs).
            drop(slot.lock().unwrap_or_else(|e| e.into_inner()).take());
            Err(err)
        }
    }
}

/// Lets a thread from [`spawn`] run its function, when dropped.
struct Go(Arc<pythread::Lock>);

impl Drop for Go {
    fn drop(&mut self) {
        let _ = self.0.release();
    }
}

/// CPython's `thread_run`, once attached: every call into Python, and every drop of a last
/// reference, goes through guard.rs, so that CPython ending the thread there (pthread_exit at
/// finalization) parks it instead of unwinding through this module.
fn thread_run(func: Bound<'_, PyAny>, args: Bound<'_, PyTuple>, kwargs: Option<Bound<'_, PyDict>>) {
    let py = func.py();
    match guard::call(&func, &args, kwargs.as_ref()) {
        Ok(result) => guard::release(result),
        Err(err) => {
            let exc = err.into_value(py).into_bound(py);
            if !exc.is_instance_of::<PySystemExit>() {
                report_thread_error(&exc, &func);
            }
            guard::release(exc);
        }
    }
    guard::release(args);
    if let Some(kwargs) = kwargs {
        guard::release(kwargs);
    }
    // The thread's `_local` dicts and its `_set_sentinel` lock go while it is still attached
    // (issue 19's hook; lib.rs).
    crate::thread_exiting(py);
    guard::release(func);
}

/// The Python halves of the thread reports (`hooks.py`), run once at import.
static HOOKS: PyOnceLock<Py<PyDict>> = PyOnceLock::new();

fn hook<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
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

/// `thread_run`'s report of the exception that ended the thread (hooks.py's
/// `report_thread_error`: that interpreter's message, through `sys.unraisablehook`). A report
/// that fails is dropped, as CPython ignores the default hook's failure.
fn report_thread_error(exc: &Bound<'_, PyAny>, func: &Bound<'_, PyAny>) {
    let py = exc.py();
    let reported = hook(py, "report_thread_error").and_then(|report| {
        let args = PyTuple::new(py, [exc, func])?;
        let result = guard::call(&report, &args, None);
        guard::release(args);
        result
    });
    match reported {
        Ok(none) => guard::release(none),
        Err(err) => guard::release(err.into_value(py).into_bound(py)),
    }
}

/// The host ident of a thread this module started: its `pthread_t`, what
/// `PyThread_get_thread_ident()` returns on it (CPython computes it from the `pthread_t` in the
/// starting thread too). The crate knows it for every thread it started on Unix.
fn host_ident_of(handle: &pythread::Handle) -> u64 {
    handle.pthread_t().unwrap_or_default()
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
        return Err(timeout::float_overflow(t.py()));
    }
    Ok(Some(Duration::from_nanos(ns as u64)))
}

enum State {
    NotStarted,
    /// `start_joinable_thread` is starting it (CPython's `THREAD_HANDLE_STARTING`): read as
    /// not started.
    Starting,
    /// A thread started by this module, and its host ident (its `pthread_t`, as CPython's
    /// `PyThread_start_joinable_thread` computes it in the starting thread).
    Started(pythread::Handle, u64),
    /// `_make_thread_handle(ident)`: a thread this module did not start (the main thread); it
    /// is "done" when `_set_done` releases `exiting`.
    Foreign {
        ident: u64,
        exiting: Arc<pythread::Lock>,
        /// `GENERATION` when the handle was made.
        generation: u64,
    },
    /// The start failed: done, ident 0.
    Failed,
}

/// `_thread._ThreadHandle`: the joinable handle of `start_joinable_thread`.
#[pyclass(name = "_ThreadHandle", module = "_thread", frozen, weakref)]
pub(crate) struct ThreadHandle {
    state: Mutex<State>,
    /// `_set_done()` was called: the handle reads as done and `join` returns at once
    /// (threading marks its main thread's handle so at shutdown).
    set_done: AtomicBool,
}

impl ThreadHandle {
    fn with_state(state: State) -> ThreadHandle {
        ThreadHandle {
            state: Mutex::new(state),
            set_done: AtomicBool::new(false),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether the foreign thread `ident` (its handle made in `generation`) did not survive a fork.
fn foreign_lost(ident: u64, generation: u64) -> bool {
    generation != GENERATION.load(Ordering::Acquire) && ident != MAIN_IDENT.load(Ordering::Acquire)
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
            State::Started(_, ident) => *ident,
            State::Foreign { ident, .. } => *ident,
            State::NotStarted | State::Starting | State::Failed => 0,
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
            State::NotStarted | State::Starting => {
                return Err(PyRuntimeError::new_err("thread not started"))
            }
            State::Failed => return Ok(()),
            _ if self.set_done.load(Ordering::Acquire) => return Ok(()),
            State::Started(h, _) => Target::Thread(h.clone()),
            State::Foreign {
                ident, generation, ..
            } if foreign_lost(*ident, *generation) => return Ok(()),
            State::Foreign { ident, exiting, .. } => Target::Foreign(*ident, exiting.clone()),
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
                if ident == guard::host_ident() {
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
            State::NotStarted | State::Starting => false,
            State::Failed => true,
            _ if self.set_done.load(Ordering::Acquire) => true,
            State::Started(h, _) => h.is_finished(),
            State::Foreign {
                ident, generation, ..
            } => foreign_lost(*ident, *generation),
        }
    }

    fn _set_done(&self) -> PyResult<()> {
        let state = self.state();
        match &*state {
            State::NotStarted | State::Starting => {
                Err(PyRuntimeError::new_err("thread not started"))
            }
            State::Started(..) | State::Failed => {
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
    MAIN_IDENT.store(guard::host_ident(), Ordering::Release);
    PID.store(std::process::id(), Ordering::Release);
    let kwargs = PyDict::new(m.py());
    kwargs.set_item("before", wrap_pyfunction!(_before_fork, home)?)?;
    kwargs.set_item(
        "after_in_parent",
        wrap_pyfunction!(_after_fork_parent, home)?,
    )?;
    kwargs.set_item("after_in_child", wrap_pyfunction!(_after_fork_child, home)?)?;
    m.py()
        .import("os")?
        .getattr("register_at_fork")?
        .call((), Some(&kwargs))?;
    // hooks.py runs now, on the importing thread, never later on a module thread (where its
    // Python code would run unguarded).
    hook(m.py(), "excepthook")?;
    m.add_class::<ThreadHandle>()?;
    guard::make_immutable(&m.py().get_type::<ThreadHandle>())?;
    m.add_function(wrap_pyfunction!(start_new_thread, home)?)?;
    m.add("start_new", m.getattr("start_new_thread")?)?;
    m.add_function(wrap_pyfunction!(start_joinable_thread, home)?)?;
    m.add_function(wrap_pyfunction!(_make_thread_handle, home)?)?;
    m.add_function(wrap_pyfunction!(_get_main_thread_ident, home)?)?;
    m.add_function(wrap_pyfunction!(_shutdown, home)?)?;
    m.add_function(wrap_pyfunction!(_count, home)?)?;
    m.add_function(wrap_pyfunction!(daemon_threads_allowed, home)?)?;
    m.add_function(wrap_pyfunction!(_is_main_interpreter, home)?)?;
    m.add(
        "get_ident",
        guard::noargs_function::<GetIdent>(home, c"get_ident", GET_IDENT_DOC)?,
    )?;
    m.add_function(wrap_pyfunction!(get_native_id, home)?)?;
    m.add_function(wrap_pyfunction!(stack_size, home)?)?;
    m.add_function(wrap_pyfunction!(_excepthook, home)?)?;
    Ok(())
}

/// _excepthook(args, /): `threading.excepthook`'s default, as CPython's `thread_excepthook`
/// (hooks.py's `excepthook`, guarded); a thread that is None or has no `name` is shown by this
/// module's `get_ident()`. `args` must be exactly the module's `_ExceptHookArgs` (hooks.rs).
#[pyfunction]
fn _excepthook(py: Python<'_>, args: &Bound<'_, PyAny>) -> PyResult<()> {
    if !args.get_type().is(crate::hooks::excepthook_args_type(py)?) {
        return Err(PyTypeError::new_err(
            "_thread.excepthook argument type must be ExceptHookArgs",
        ));
    }
    let ident = guard::host_ident();
    let call = PyTuple::new(py, [args.clone(), ident.into_pyobject(py)?.into_any()])?;
    let result = guard::call(&hook(py, "excepthook")?, &call, None);
    guard::release(call);
    guard::release(result?);
    Ok(())
}

/// start_new_thread(function, args, kwargs=None) -> ident. Arguments as CPython's
/// (`PyArg_UnpackTuple(args, "start_new_thread", 2, 3, ...)`, no keywords), checked in its
/// order: the callable, the tuple, the dict (an explicit None is not one), then shutdown.
#[pyfunction]
#[pyo3(signature = (*args, **kwargs))]
fn start_new_thread(
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<u64> {
    timeout::no_keywords("start_new_thread", kwargs)?;
    timeout::unpack_count("start_new_thread", args.len(), 2, 3)?;
    let function = args.get_item(0)?;
    if !function.is_callable() {
        return Err(PyTypeError::new_err("first arg must be callable"));
    }
    let fargs = args.get_item(1)?;
    let fargs = fargs
        .cast::<PyTuple>()
        .map_err(|_| PyTypeError::new_err("2nd arg must be a tuple"))?;
    // By length, not `get_item(2).ok()`: a missing item would build an IndexError per start.
    let fkwargs = match (args.len() == 3).then(|| args.get_item(2)).transpose()? {
        None => None,
        Some(k) => Some(
            k.cast::<PyDict>()
                .map_err(|_| PyTypeError::new_err("optional 3rd arg must be a dictionary"))?
                .clone()
                .unbind(),
        ),
    };
    refuse_at_shutdown(function.py())?;
    let (handle, _go) = spawn(
        function.py(),
        function.clone().unbind(),
        fargs.clone().unbind(),
        fkwargs,
        true,
    )
    .map_err(|_| cant_start())?;
    // Dropping the handle detaches the thread, as `start_new_thread` does.
    Ok(host_ident_of(&handle))
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
        Some(d) => guard::is_true(d)?,
        None => true,
    };
    refuse_at_shutdown(py)?;
    {
        let mut state = handle.get().state();
        if !matches!(*state, State::NotStarted) {
            return Err(PyRuntimeError::new_err("thread already started"));
        }
        // Claimed: the start detaches, and another thread must not wait for this lock then
        // while holding the GIL.
        *state = State::Starting;
    }
    let started = spawn(
        py,
        function.clone().unbind(),
        PyTuple::empty(py).unbind(),
        None,
        daemon,
    );
    let mut state = handle.get().state();
    match started {
        // The thread runs once `_go` goes, after the handle names it (`ident` in the thread).
        Ok((h, _go)) => {
            let ident = host_ident_of(&h);
            *state = State::Started(h, ident)
        }
        Err(_) => {
            *state = State::Failed;
            return Err(cant_start());
        }
    }
    drop(state);
    Ok(handle)
}

/// _make_thread_handle(ident): a handle for a thread this module did not start (threading's
/// main thread); it is done once `_set_done()` is called.
#[pyfunction]
fn _make_thread_handle(ident: &Bound<'_, PyAny>) -> PyResult<ThreadHandle> {
    // As CPython: an exact int check, then `PyLong_AsUnsignedLongLong`.
    if !ident.is_instance_of::<pyo3::types::PyInt>() {
        return Err(PyTypeError::new_err("ident must be an integer"));
    }
    let ident: u64 = ident.extract()?;
    let exiting = pythread::Lock::new();
    exiting.acquire();
    Ok(ThreadHandle::with_state(State::Foreign {
        ident,
        exiting: Arc::new(exiting),
        generation: GENERATION.load(Ordering::Acquire),
    }))
}

#[pyfunction]
fn _get_main_thread_ident() -> u64 {
    MAIN_IDENT.load(Ordering::Acquire)
}

/// _shutdown(): joins every non-daemon thread still running, except the caller's own, with the
/// GIL released. As 3.13's `thread_shutdown`: an interrupted wait runs the signal handlers; if
/// they raise (Ctrl-C), the exception is reported with `PyErr_WriteUnraisable(NULL)` and
/// `_shutdown` returns None at once, the remaining threads left running.
#[pyfunction]
fn _shutdown(py: Python<'_>) {
    if let Err(err) = py.detach(|| pythread::shutdown_with_retries(crate::check_signals)) {
        err.write_unraisable(py, None);
    }
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

/// get_ident() -> int: the calling thread's host ident ([`guard::host_ident`]), as CPython's: a
/// C-level builtin function (`METH_NOARGS`), so a call costs what CPython's does.
struct GetIdent;

impl guard::NoArgsFunction for GetIdent {
    fn call() -> u64 {
        guard::host_ident()
    }
}

const GET_IDENT_DOC: &std::ffi::CStr = c"get_ident($module, /)
--

Return a non-zero integer that uniquely identifies the current thread
amongst other threads that exist simultaneously.
This may be used to identify per-thread resources.
Even though on some platforms threads identities may appear to be
allocated consecutive numbers starting at 1, this behavior should not
be relied upon, and the number should be seen purely as a magic cookie.
A thread's identity may be reused for another thread after it exits.";

#[pyfunction]
fn get_native_id() -> u64 {
    pythread::get_native_id()
}

/// stack_size([size]) -> size: returns the old size; 0 = the platform default. Arguments as
/// CPython's `"|n:stack_size"` (an index, as a C `ssize_t`; no keywords).
#[pyfunction]
#[pyo3(signature = (*args, **kwargs))]
fn stack_size(args: &Bound<'_, PyTuple>, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<usize> {
    timeout::no_keywords("stack_size", kwargs)?;
    timeout::at_most_one("stack_size", args.len())?;
    // `__index__` of an argument that is not an int runs guarded (a module thread may call this).
    let new: isize = match args.iter().next() {
        Some(size) => guard::index(&size)?.extract().map_err(|e: PyErr| {
            if e.is_instance_of::<PyOverflowError>(args.py()) {
                PyOverflowError::new_err("Python int too large to convert to C ssize_t")
            } else {
                e
            }
        })?,
        None => 0,
    };
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

//! Threads: `start_new_thread`, `start_joinable_thread`, `_ThreadHandle` and the module-level
//! functions of `_thread`, on the layer (`threadmodule`: the handle's states, the start, the
//! module's state): this file converts the arguments, with CPython's messages, and makes the
//! objects.

use std::sync::{Arc, Mutex, OnceLock};

use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use threadmodule::{ModuleState, StartOptions};

use crate::runtime::{self, Call, Host};
use crate::{guard, timeout};

/// The module's state (`thread_module_state`): made at import by the importing thread.
static MODULE: OnceLock<Arc<ModuleState>> = OnceLock::new();

fn module() -> &'static Arc<ModuleState> {
    MODULE.get_or_init(|| ModuleState::new(guard::host_ident()))
}

/// `os.register_at_fork(before=...)`: CPython's `PyOS_BeforeFork` for the crate. Registered at
/// import, before `threading` registers its hooks: `before` hooks run in reverse order of
/// registration, so this one runs last, right before `fork()`. It takes no lock and never waits.
#[pyfunction]
fn _before_fork() {
    module().before_fork();
}

/// `os.register_at_fork(after_in_parent=...)`.
#[pyfunction]
fn _after_fork_parent() {
    module().after_fork_parent();
}

/// `os.register_at_fork(after_in_child=...)`: CPython's `_PyThread_AfterFork`, run before
/// `threading`'s own child hook (hooks run in order of registration, and the module registers
/// at import, before `threading` is imported on it): the forking thread becomes the main
/// thread ([`ModuleState::after_fork_child`]).
#[pyfunction]
fn _after_fork_child() {
    module().after_fork_child(guard::host_ident());
}

/// `function(*args, **kwargs)` as the new thread's `run`: attached, the layer's `thread_run`.
/// The references travel in a shared slot, so that a start that fails (its closure dropped
/// detached, unrun) leaves them to [`drop_unstarted`], attached.
type Slot = Arc<Mutex<Option<(Py<PyAny>, Py<PyTuple>, Option<Py<PyDict>>)>>>;

fn runner(slot: &Slot) -> impl FnOnce() + Send + 'static {
    let theirs = Arc::clone(slot);
    move || {
        let mut call = theirs.lock().unwrap_or_else(|e| e.into_inner()).take();
        Python::try_attach(|py| {
            if let Some((func, args, kwargs)) = call.take() {
                threadmodule::thread_run(&Host(py), Call::new(func, args, kwargs));
            }
        });
        // Not attached (the interpreter is gone): the references are left, not dropped
        // detached (PyO3 would drop them at another thread's next attach, unguarded).
        std::mem::forget(call);
    }
}

/// After a start that failed, attached: the thread never ran, and its references go here (the
/// caller holds others, so no `__del__` runs).
fn drop_unstarted(slot: &Slot) {
    drop(slot.lock().unwrap_or_else(|e| e.into_inner()).take());
}

/// `_thread._ThreadHandle`: the joinable handle of `start_joinable_thread`, the layer's.
#[pyclass(name = "_ThreadHandle", module = "_thread", frozen, weakref)]
pub(crate) struct ThreadHandle(threadmodule::ThreadHandle);

#[pymethods]
impl ThreadHandle {
    #[new]
    fn py_new() -> Self {
        ThreadHandle(threadmodule::ThreadHandle::new(module()))
    }

    #[getter]
    fn ident(&self) -> u64 {
        self.0.ident()
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
        let seconds = match timeout.filter(|t| !t.is_none()) {
            Some(t) => Some(timeout::seconds(&t)?),
            None => None,
        };
        let wait = threadmodule::join_timeout(seconds).map_err(|e| runtime::exception(py, e))?;
        Ok(self.0.join(&Host(py), wait)?)
    }

    fn is_done(&self) -> bool {
        self.0.is_done()
    }

    fn _set_done(&self, py: Python<'_>) -> PyResult<()> {
        Ok(self.0.set_done(&Host(py))?)
    }

    fn __repr__(&self) -> String {
        format!("<_thread._ThreadHandle object: ident={}>", self.0.ident())
    }
}

/// `home` is the module object the functions name as their `__module__` (`_thread`).
pub(crate) fn register(m: &Bound<'_, PyModule>, home: &Bound<'_, PyModule>) -> PyResult<()> {
    module();
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
    runtime::init_cached(m.py())?;
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
    let result = guard::call(&runtime::hook(py, "excepthook")?, &call, None);
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
    let slot: Slot = Arc::new(Mutex::new(Some((
        function.clone().unbind(),
        fargs.clone().unbind(),
        fkwargs,
    ))));
    let started = threadmodule::start_new_thread(&Host(args.py()), module(), runner(&slot));
    if started.is_err() {
        drop_unstarted(&slot);
    }
    Ok(started?)
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
        None => Py::new(py, ThreadHandle::py_new())?,
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
    let slot: Slot = Arc::new(Mutex::new(Some((
        function.clone().unbind(),
        PyTuple::empty(py).unbind(),
        None,
    ))));
    let options = StartOptions::new().daemon(daemon);
    let started = handle.get().0.start(&Host(py), &options, runner(&slot));
    if started.is_err() {
        drop_unstarted(&slot);
    }
    started?;
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
    Ok(ThreadHandle(threadmodule::ThreadHandle::foreign(
        module(),
        ident,
    )))
}

#[pyfunction]
fn _get_main_thread_ident() -> u64 {
    module().get_main_thread_ident()
}

/// _shutdown(): joins every non-daemon thread still running, except the caller's own, with the
/// GIL released ([`ModuleState::shutdown`]: Ctrl-C written as unraisable, then it returns).
#[pyfunction]
fn _shutdown(py: Python<'_>) {
    module().shutdown(&Host(py));
}

/// _count(): the number of threads started by this module that are still running.
#[pyfunction]
fn _count() -> usize {
    module().count()
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
/// CPython's `"|n:stack_size"` (an index, as a C `ssize_t`; no keywords; none is 0).
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
    module()
        .stack_size(Some(new))
        .map_err(|e| runtime::exception(args.py(), e))
}

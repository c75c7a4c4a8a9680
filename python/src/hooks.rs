//! How exceptions leave a thread: `_ExceptHookArgs` and `_excepthook` (threading's
//! `excepthook`), and the unraisable report of a `start_new_thread` function that raised.

use pyo3::exceptions::{PySystemExit, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};

/// `_thread._ExceptHookArgs`: CPython's is a structseq type (a tuple subclass with named fields
/// and no attributes of its own). `PyStructSequence_NewType` is not reachable without `unsafe`,
/// so the module defines a tuple subclass with the same behaviour at the Python level: the same
/// constructor (a 4-sequence, an ignored `dict`), messages, field properties, `n_fields`,
/// `n_sequence_fields`, `n_unnamed_fields`, `__match_args__`, repr, `__reduce__`, no instance
/// attributes, no subclasses.
const EXCEPTHOOK_ARGS_SOURCE: &std::ffi::CStr = c"
class _ExceptHookArgs(tuple):
    '''ExceptHookArgs

Type used to pass arguments to threading.excepthook.'''
    __slots__ = ()
    n_fields = n_sequence_fields = 4
    n_unnamed_fields = 0
    __match_args__ = ('exc_type', 'exc_value', 'exc_traceback', 'thread')

    def __new__(cls, sequence, dict=None):
        try:
            items = tuple(sequence)
        except TypeError:
            raise TypeError('constructor requires a sequence') from None
        if len(items) != 4:
            raise TypeError('_thread._ExceptHookArgs() takes a 4-sequence '
                            f'({len(items)}-sequence given)')
        return tuple.__new__(cls, items)

    def __init_subclass__(cls, **kwargs):
        raise TypeError(\"type '_thread._ExceptHookArgs' is not an acceptable base type\")

    def __repr__(self):
        fields = ', '.join(f'{n}={v!r}' for n, v in zip(self.__match_args__, self))
        return f'_thread._ExceptHookArgs({fields})'

    def __reduce__(self):
        return (type(self), (tuple(self), {}))

    def __replace__(self, **kwargs):
        values = dict(zip(self.__match_args__, self))
        for name in kwargs:
            if name not in values:
                raise TypeError(f'__replace__() got an unexpected keyword argument {name!r}')
        values.update(kwargs)
        return type(self)(tuple(values.values()))

def _field(index, doc):
    return property(lambda self: tuple.__getitem__(self, index), doc=doc)

_ExceptHookArgs.exc_type = _field(0, 'Exception type')
_ExceptHookArgs.exc_value = _field(1, 'Exception value')
_ExceptHookArgs.exc_traceback = _field(2, 'Exception traceback')
_ExceptHookArgs.thread = _field(3, 'Thread')
_ExceptHookArgs.__module__ = '_thread'
del _field
";

static EXCEPTHOOK_ARGS: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn excepthook_args_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    EXCEPTHOOK_ARGS
        .get_or_try_init(py, || {
            let globals = PyDict::new(py);
            globals.set_item("__name__", "_thread")?;
            py.run(EXCEPTHOOK_ARGS_SOURCE, Some(&globals), None)?;
            Ok::<_, PyErr>(
                globals
                    .get_item("_ExceptHookArgs")?
                    .expect("defined by the source")
                    .cast_into::<PyType>()?
                    .unbind(),
            )
        })
        .map(|t| t.bind(py))
}

/// _excepthook(args, /): `threading.excepthook`'s default, as CPython's
/// `thread_excepthook`: `SystemExit` is ignored; the output goes to `sys.stderr`, or if that
/// is missing or None to `thread._stderr`; the header names `thread.name` as `str()` shows it
/// (`None` included), or the calling thread's ident when `thread` is None or has no `name`.
/// Errors from the arguments' attributes and from the file propagate.
#[pyfunction]
fn _excepthook(py: Python<'_>, args: &Bound<'_, PyAny>) -> PyResult<()> {
    if !args.get_type().is(excepthook_args_type(py)?) {
        return Err(PyTypeError::new_err(
            "_thread.excepthook argument type must be ExceptHookArgs",
        ));
    }
    let exc_type = args.get_item(0)?;
    if exc_type.is(py.get_type::<PySystemExit>()) {
        return Ok(());
    }
    let (exc_value, exc_tb, thread) = (args.get_item(1)?, args.get_item(2)?, args.get_item(3)?);
    let mut file = py
        .import("sys")?
        .getattr_opt("stderr")?
        .filter(|f| !f.is_none());
    if file.is_none() {
        if thread.is_none() {
            return Ok(());
        }
        file = thread.getattr_opt("_stderr")?.filter(|f| !f.is_none());
    }
    let Some(file) = file else { return Ok(()) };
    // CPython writes the header's start before it looks the name up: a lookup that fails
    // leaves "Exception in thread " written.
    file.call_method1("write", ("Exception in thread ",))?;
    let name = if thread.is_none() {
        None
    } else {
        thread.getattr_opt("name")?
    };
    let name = match name {
        Some(n) => n.str()?.to_string(),
        None => pythread::get_ident().as_u64().to_string(),
    };
    file.call_method1("write", (name,))?;
    file.call_method1("write", (":\n",))?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("file", &file)?;
    py.import("traceback")?
        .getattr("print_exception")?
        .call((exc_type, exc_value, exc_tb), Some(&kwargs))?;
    file.call_method0("flush")?;
    Ok(())
}

/// The structseq type `sys.unraisablehook` receives. CPython names it nowhere, but as a
/// static tuple subclass it is among `tuple.__subclasses__()`; looking it up there changes
/// nothing (no hook is swapped, even briefly).
static UNRAISABLE_ARGS: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn unraisable_args_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    UNRAISABLE_ARGS
        .get_or_try_init(py, || {
            for sub in py
                .get_type::<pyo3::types::PyTuple>()
                .call_method0("__subclasses__")?
                .try_iter()?
            {
                let sub = sub?.cast_into::<PyType>()?;
                if sub.name()? == "UnraisableHookArgs" && sub.module()? == "builtins" {
                    return Ok(sub.unbind());
                }
            }
            Err(PyTypeError::new_err("UnraisableHookArgs type not found"))
        })
        .map(|t| t.bind(py))
}

/// `thread_run`'s report of the exception `err` raised by `func`: 3.13 calls
/// `PyErr_FormatUnraisable("Exception ignored in thread started by %R", func)` (object None);
/// 3.11/3.12 report "Exception ignored in thread started by" with the function as the object.
/// The running interpreter's form goes to `sys.unraisablehook`. If the hook fails, its own
/// error goes to the default hook (`sys.__unraisablehook__`) as "Exception ignored in
/// sys.unraisablehook" with the hook as the object, as `_PyErr_WriteUnraisableMsg` does: the
/// failing hook is not called again.
pub(crate) fn report_unraisable(py: Python<'_>, err: PyErr, func: &Bound<'_, PyAny>) {
    let (msg, obj) = if py.version_info() >= (3, 13) {
        let repr = func
            .repr()
            .map(|r| r.to_string())
            .unwrap_or_else(|_| "<object>".into());
        (
            format!("Exception ignored in thread started by {repr}"),
            py.None().into_bound(py),
        )
    } else {
        (
            "Exception ignored in thread started by".to_owned(),
            func.clone(),
        )
    };
    let sys = match py.import("sys") {
        Ok(sys) => sys,
        Err(_) => return err.write_unraisable(py, Some(func)),
    };
    let hook = match sys.getattr_opt("unraisablehook") {
        Ok(Some(hook)) if !hook.is_none() => hook,
        // No hook: CPython goes straight to its default one.
        _ => {
            let _ = call_hook(
                py,
                &sys.getattr("__unraisablehook__").ok(),
                &err,
                &msg,
                &obj,
            );
            return;
        }
    };
    if let Err(hook_err) = call_hook(py, &Some(hook.clone()), &err, &msg, &obj) {
        let default = sys.getattr("__unraisablehook__").ok();
        let _ = call_hook(
            py,
            &default,
            &hook_err,
            "Exception ignored in sys.unraisablehook",
            &hook,
        );
    }
}

fn call_hook(
    py: Python<'_>,
    hook: &Option<Bound<'_, PyAny>>,
    err: &PyErr,
    msg: &str,
    obj: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let Some(hook) = hook else { return Ok(()) };
    let args = unraisable_args_type(py)?.call1(((
        err.get_type(py),
        err.value(py),
        err.traceback(py),
        msg,
        obj,
    ),))?;
    hook.call1((args,))?;
    Ok(())
}

pub(crate) fn register(m: &Bound<'_, PyModule>, home: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("_ExceptHookArgs", excepthook_args_type(m.py())?)?;
    m.add_function(wrap_pyfunction!(_excepthook, home)?)?;
    Ok(())
}

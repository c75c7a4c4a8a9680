//! `_ExceptHookArgs`, the type of `threading.excepthook`'s argument. (`_excepthook` is
//! thread.rs's and the unraisable report of a thread runtime.rs's, their Python halves
//! hooks.py, called through guard.rs.)

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

pub(crate) fn excepthook_args_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
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

pub(crate) fn register(m: &Bound<'_, PyModule>, home: &Bound<'_, PyModule>) -> PyResult<()> {
    let _ = home;
    m.add("_ExceptHookArgs", excepthook_args_type(m.py())?)?;
    Ok(())
}

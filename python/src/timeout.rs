//! Timeout arguments: Python objects to the crate's `parse_acquire_args`, and its errors to
//! CPython's exception types.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyTuple};

/// The seconds of a timeout argument, as `_PyTime_FromSecondsObject` accepts them: a `float`
/// (or subclass), else anything `PyLong_AsLongLong` takes, which includes objects with
/// `__index__` (3.10+); anything else raises what that conversion raises ("'str' object
/// cannot be interpreted as an integer").
pub(crate) fn seconds(obj: &Bound<'_, PyAny>) -> PyResult<f64> {
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(f.value());
    }
    match obj.extract::<i64>() {
        Ok(v) => Ok(v as f64),
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => {
            // The C type's name changed in 3.13 (`_PyTime_t` -> `PyTime_t`).
            let ctype = if obj.py().version_info() >= (3, 13) {
                "PyTime_t"
            } else {
                "_PyTime_t"
            };
            Err(PyOverflowError::new_err(format!(
                "timestamp too large to convert to C {ctype}"
            )))
        }
        Err(e) => Err(e),
    }
}

/// CPython 3.11 and 3.12 say "timeout value must be positive" for a negative timeout (3.13:
/// "... a non-negative number", the crate's wording). Set at import.
static NEGATIVE_IS_POSITIVE: AtomicBool = AtomicBool::new(false);

pub(crate) fn init(py: Python<'_>) {
    NEGATIVE_IS_POSITIVE.store(py.version_info() < (3, 13), Ordering::Relaxed);
}

/// `lock.acquire(blocking, timeout)`'s arguments, by the crate's rules (conversion first, then
/// the checks), with the running interpreter's messages. `Ok(None)` = wait forever.
pub(crate) fn acquire_args(blocking: bool, timeout: f64) -> PyResult<Option<Duration>> {
    pythread::parse_acquire_args(blocking, timeout).map_err(|e| match e.kind() {
        pythread::TimeoutErrorKind::Value => {
            let msg = e.to_string();
            if NEGATIVE_IS_POSITIVE.load(Ordering::Relaxed)
                && msg == "timeout value must be a non-negative number"
            {
                PyValueError::new_err("timeout value must be positive")
            } else {
                PyValueError::new_err(msg)
            }
        }
        pythread::TimeoutErrorKind::Overflow => PyOverflowError::new_err(e.to_string()),
    })
}

/// A `METH_VARARGS` function refuses keywords: "f() takes no keyword arguments" (an empty
/// `**{}` is no keyword).
pub(crate) fn no_keywords(fname: &str, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
    if kwargs.is_some_and(|k| !k.is_empty()) {
        return Err(PyTypeError::new_err(format!(
            "{fname}() takes no keyword arguments"
        )));
    }
    Ok(())
}

/// `PyArg_UnpackTuple(args, name, min, max, ...)`'s count check and message.
pub(crate) fn unpack_count(name: &str, n: usize, min: usize, max: usize) -> PyResult<()> {
    let (bound, wanted) = if n < min {
        (if min == max { "" } else { "at least " }, min)
    } else if n > max {
        (if min == max { "" } else { "at most " }, max)
    } else {
        return Ok(());
    };
    Err(PyTypeError::new_err(format!(
        "{name} expected {bound}{wanted} argument{}, got {n}",
        if wanted == 1 { "" } else { "s" }
    )))
}

/// `PyArg_ParseTuple(args, "|x:name")` with one optional argument: "name() takes at most 1
/// argument (N given)".
pub(crate) fn at_most_one(name: &str, n: usize) -> PyResult<()> {
    if n > 1 {
        return Err(PyTypeError::new_err(format!(
            "{name}() takes at most 1 argument ({n} given)"
        )));
    }
    Ok(())
}

/// `PyArg_ParseTupleAndKeywords` for a function whose parameters are all optional (`"|pO"`),
/// with its messages: the arguments by position then by name, `None` where not given (an
/// explicit `None` is given: `acquire(timeout=None)` is CPython's TypeError, not "unset").
pub(crate) fn optional_args<'py, const N: usize>(
    fname: &str,
    names: [&str; N],
    args: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<[Option<Bound<'py, PyAny>>; N]> {
    let given = args.len() + kwargs.map_or(0, |k| k.len());
    if given > N {
        return Err(PyTypeError::new_err(format!(
            "{fname}() takes at most {N} argument{} ({given} given)",
            if N == 1 { "" } else { "s" }
        )));
    }
    let mut out: [Option<Bound<'py, PyAny>>; N] = std::array::from_fn(|_| None);
    for (i, arg) in args.iter().enumerate() {
        out[i] = Some(arg);
    }
    if let Some(kwargs) = kwargs {
        for (key, value) in kwargs.iter() {
            let key: String = key
                .extract()
                .map_err(|_| PyTypeError::new_err("keywords must be strings"))?;
            match names.iter().position(|n| *n == key) {
                Some(i) if i < args.len() => {
                    return Err(PyTypeError::new_err(format!(
                        "argument for {fname}() given by name ('{key}') and position ({})",
                        i + 1
                    )))
                }
                Some(i) => out[i] = Some(value),
                None => {
                    return Err(PyTypeError::new_err(format!(
                        "{fname}() got an unexpected keyword argument '{key}'"
                    )))
                }
            }
        }
    }
    Ok(out)
}

//! Timeout arguments: Python objects to the crate's `parse_acquire_args`, and its errors to
//! CPython's exception types.

use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyFloat, PyInt, PyTuple};

/// CPython's own `_thread`: the builtin module importlib's bootstrap holds, whatever
/// `sys.modules['_thread']` is (this module, once activated).
pub(crate) fn builtin_thread(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    py.import("importlib._bootstrap")?.getattr("_thread")
}

/// The `OverflowError` messages of the running interpreter's `_thread` for a timeout out of
/// range, as an `int` and as a `float`: their wording changed within 3.13 (3.13.0: "timestamp
/// too large to convert to C PyTime_t" and "timestamp out of range for platform time_t";
/// 3.13.15: "timestamp out of range for C PyTime_t" for both), so they are read from CPython's
/// own lock at import ([`probe`]), not derived from the version.
struct OverflowMessages {
    int: String,
    float: String,
}

static OVERFLOW_MESSAGES: PyOnceLock<OverflowMessages> = PyOnceLock::new();

/// The message CPython's own `lock.acquire(timeout=value)` raises `OverflowError` with, if it
/// does. Never blocks: an acquire that is not refused takes a fresh, unlocked lock.
fn probe_overflow(py: Python<'_>, value: Bound<'_, PyAny>) -> Option<String> {
    let lock = builtin_thread(py)
        .ok()?
        .call_method0("allocate_lock")
        .ok()?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("timeout", value).ok()?;
    match lock.call_method("acquire", (), Some(&kwargs)) {
        Err(e) if e.is_instance_of::<PyOverflowError>(py) => {
            e.value(py).str().ok().map(|s| s.to_string())
        }
        _ => None,
    }
}

/// Reads the overflow messages of CPython's own `_thread` (once; at import). Where that cannot
/// be done, the messages of the interpreter's minor version's first release.
pub(crate) fn probe(py: Python<'_>) {
    OVERFLOW_MESSAGES.get_or_init(py, || {
        let ctype = if py.version_info() >= (3, 13) {
            "PyTime_t"
        } else {
            "_PyTime_t"
        };
        // 2**63 does not fit a C long long; 1e100 seconds are out of PyTime_t's range.
        let int = PyInt::new(py, 1u64 << 63).into_any();
        let float = PyFloat::new(py, 1e100).into_any();
        OverflowMessages {
            int: probe_overflow(py, int)
                .unwrap_or_else(|| format!("timestamp too large to convert to C {ctype}")),
            float: probe_overflow(py, float)
                .unwrap_or_else(|| "timestamp out of range for platform time_t".to_owned()),
        }
    });
}

fn overflow_messages(py: Python<'_>) -> &OverflowMessages {
    probe(py);
    OVERFLOW_MESSAGES
        .get(py)
        .expect("probe() initialized the overflow messages")
}

/// The running interpreter's `OverflowError` for a `float` timeout out of range.
pub(crate) fn float_overflow(py: Python<'_>) -> PyErr {
    PyOverflowError::new_err(overflow_messages(py).float.clone())
}

/// The seconds of a timeout argument, as `_PyTime_FromSecondsObject` accepts them: a `float`
/// (or subclass), else anything `PyLong_AsLongLong` takes, which includes objects with
/// `__index__` (3.10+); anything else raises what that conversion raises ("'str' object
/// cannot be interpreted as an integer"). An `int` whose nanoseconds overflow a `PyTime_t`
/// (beyond a C long long, or beyond 9223372036 seconds either way) raises CPython's `int`
/// overflow message.
pub(crate) fn seconds(obj: &Bound<'_, PyAny>) -> PyResult<f64> {
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(f.value());
    }
    let int_overflow = || PyOverflowError::new_err(overflow_messages(obj.py()).int.clone());
    match obj.extract::<i64>() {
        Ok(v) if v.checked_mul(1_000_000_000).is_none() => Err(int_overflow()),
        Ok(v) => Ok(v as f64),
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => Err(int_overflow()),
        Err(e) => Err(e),
    }
}

/// CPython 3.11 and 3.12 say "timeout value must be positive" for a negative timeout (3.13:
/// "... a non-negative number", the crate's wording). Set at import.
static NEGATIVE_IS_POSITIVE: AtomicBool = AtomicBool::new(false);

pub(crate) fn init(py: Python<'_>) {
    NEGATIVE_IS_POSITIVE.store(py.version_info() < (3, 13), Ordering::Relaxed);
}

/// An error of `lock.acquire(blocking, timeout)`'s arguments (the crate's rules, through
/// `threadmodule::acquire_timeout`) with the running interpreter's messages: its wording of a
/// negative timeout, and its overflow message for a `float` out of range.
pub(crate) fn acquire_args_error(py: Python<'_>, e: pythread::TimeoutError) -> PyErr {
    match e.kind() {
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
        pythread::TimeoutErrorKind::Overflow => float_overflow(py),
    }
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

//! `_thread.lock` (`allocate_lock`, `LockType`) and `_thread.RLock` on the crate's `Lock` and
//! `RLock`.

use std::num::NonZeroUsize;
use std::sync::OnceLock;
use std::time::Duration;

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple, PyType};

use crate::timeout;

/// `acquire(blocking=True, timeout=-1)`'s arguments (by position or name) to a wait:
/// `Ok(None)` forever, `Some(ZERO)` a try.
fn parse(
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Option<Duration>> {
    let [blocking, timeout] =
        timeout::optional_args("acquire", ["blocking", "timeout"], args, kwargs)?;
    // `p`: truth-tested, as PyArg_ParseTupleAndKeywords("|pO").
    let blocking = match blocking {
        Some(b) => b.is_truthy()?,
        None => true,
    };
    let seconds = match timeout {
        Some(t) => timeout::seconds(&t)?,
        None => -1.0,
    };
    timeout::acquire_args(blocking, seconds)
}

/// CPython's acquire: a try with the GIL held, then (unless that was all it may do) a wait with
/// the GIL released that runs the signal handlers on each interruption.
fn acquire_with(
    py: Python<'_>,
    wait: Option<Duration>,
    try_acquire: impl FnOnce() -> bool,
    acquire_with_retries: impl Send
        + FnOnce(Option<Duration>, &mut dyn FnMut() -> PyResult<()>) -> PyResult<bool>,
) -> PyResult<bool> {
    if try_acquire() {
        return Ok(true);
    }
    if wait == Some(Duration::ZERO) {
        return Ok(false);
    }
    py.detach(move || acquire_with_retries(wait, &mut crate::check_signals))
}

fn type_name(slf: &Bound<'_, PyAny>, own: &str, base: &Bound<'_, PyType>) -> PyResult<String> {
    // tp_name: "_thread.lock" for the builtin type, the bare class name for a Python subclass.
    let ty = slf.get_type();
    if ty.is(base) {
        Ok(own.to_owned())
    } else {
        Ok(ty.name()?.to_string())
    }
}

/// `_thread.lock`: a binary semaphore that any thread may release.
#[pyclass(name = "lock", module = "_thread", weakref, frozen)]
pub(crate) struct Lock {
    lock: pythread::Lock,
}

#[pymethods]
impl Lock {
    #[new]
    #[pyo3(signature = (*args, **kwargs))]
    fn py_new(args: &Bound<'_, PyTuple>, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        if kwargs.is_some_and(|k| !k.is_empty()) {
            return Err(PyTypeError::new_err("lock() takes no keyword arguments"));
        }
        if !args.is_empty() {
            return Err(PyTypeError::new_err(format!(
                "lock expected 0 arguments, got {}",
                args.len()
            )));
        }
        Ok(Lock::new())
    }

    /// acquire(blocking=True, timeout=-1) -> bool
    #[pyo3(signature = (*args, **kwargs))]
    fn acquire(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<bool> {
        let wait = parse(args, kwargs)?;
        let lock = &self.lock;
        acquire_with(
            py,
            wait,
            || lock.try_acquire(),
            |wait, pending| lock.acquire_with_retries(wait, pending),
        )
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn acquire_lock(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<bool> {
        self.acquire(py, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn __enter__(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<bool> {
        self.acquire(py, args, kwargs)
    }

    /// release(): any thread may release a held lock; an unlocked one is RuntimeError.
    fn release(&self) -> PyResult<()> {
        self.lock
            .release()
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))
    }

    fn release_lock(&self) -> PyResult<()> {
        self.release()
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, PyTuple>) -> PyResult<()> {
        self.release()
    }

    fn locked(&self) -> bool {
        self.lock.locked()
    }

    fn locked_lock(&self) -> bool {
        self.locked()
    }

    /// After a fork: a fresh unlocked lock, whatever the word held (waiters, a handoff to a
    /// thread that does not exist in the child), as CPython's `_PyThread_at_fork_reinit`.
    fn _at_fork_reinit(&self) {
        self.lock.reinit_after_fork();
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let state = if slf.get().lock.locked() {
            "locked"
        } else {
            "unlocked"
        };
        let base = slf.py().get_type::<Lock>();
        Ok(format!(
            "<{} {} object at {:#x}>",
            state,
            type_name(slf.as_any(), "_thread.lock", &base)?,
            slf.as_ptr() as usize
        ))
    }
}

impl Lock {
    fn new() -> Lock {
        Lock {
            lock: pythread::Lock::new(),
        }
    }
}

/// `_thread.RLock`: reentrant, owned by the thread that holds it.
///
/// `_at_fork_reinit` gives the object a new lock, as CPython does (the old one may be owned by
/// a thread that does not exist in a forked child, and only its owner may release it). The
/// locks form a chain that only ever grows at its end: every call uses the last one, which
/// costs one atomic load while no fork ever reinitialized it; the old ones are kept until the
/// object goes (CPython leaks them).
#[pyclass(name = "RLock", module = "_thread", weakref, frozen, subclass)]
pub(crate) struct RLock {
    first: Generation,
}

struct Generation {
    lock: pythread::RLock,
    next: OnceLock<Box<Generation>>,
}

impl Generation {
    fn new() -> Generation {
        Generation {
            lock: pythread::RLock::new(),
            next: OnceLock::new(),
        }
    }

    fn last(&self) -> &Generation {
        let mut generation = self;
        while let Some(next) = generation.next.get() {
            generation = next;
        }
        generation
    }
}

impl RLock {
    fn lock(&self) -> &pythread::RLock {
        &self.first.last().lock
    }
}

#[pymethods]
impl RLock {
    /// Any arguments are accepted and ignored, as `rlock_new` does.
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn py_new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        RLock {
            first: Generation::new(),
        }
    }

    /// After a fork: a new, unlocked lock (the old one may be owned by a thread that is gone).
    fn _at_fork_reinit(&self) {
        self.lock().reinit_after_fork();
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn acquire(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<bool> {
        let wait = parse(args, kwargs)?;
        let lock = self.lock();
        acquire_with(
            py,
            wait,
            || lock.try_acquire(),
            |wait, pending| lock.acquire_with_retries(wait, pending),
        )
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn __enter__(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<bool> {
        self.acquire(py, args, kwargs)
    }

    fn release(&self) -> PyResult<()> {
        self.lock()
            .release()
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, PyTuple>) -> PyResult<()> {
        self.release()
    }

    fn _is_owned(&self) -> bool {
        self.lock().is_owned()
    }

    fn _recursion_count(&self) -> usize {
        self.lock().recursion_count()
    }

    /// Releases the lock fully and returns `(count, owner)` for `_acquire_restore`.
    fn _release_save(&self) -> PyResult<(usize, u64)> {
        let state = self
            .lock()
            .release_save()
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        Ok((state.count(), state.owner().as_u64()))
    }

    /// Takes the lock back (blocking, not interruptible, the GIL released) and restores the
    /// count. The owner becomes the calling thread: the crate mints its `Ident`s and makes none
    /// from an integer, so a `(count, owner)` naming another thread (CPython would store it
    /// unchecked) is restored for the caller. `threading.Condition` only ever restores its own.
    fn _acquire_restore(&self, py: Python<'_>, state: &Bound<'_, PyAny>) -> PyResult<()> {
        let (count, _owner): (usize, u64) = state.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "_acquire_restore() argument 1 must be 2-item sequence, not {}",
                state
                    .get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
        let count = NonZeroUsize::new(count)
            .ok_or_else(|| PyRuntimeError::new_err("couldn't acquire lock"))?;
        let state = pythread::RLockState::new(count, pythread::get_ident());
        let lock = self.lock();
        py.detach(move || lock.acquire_restore(state));
        Ok(())
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let lock = slf.get().lock();
        let base = slf.py().get_type::<RLock>();
        let (owner, count) = owner_and_count(lock);
        Ok(format!(
            "<{} {} object owner={} count={} at {:#x}>",
            if count > 0 { "locked" } else { "unlocked" },
            type_name(slf.as_any(), "_thread.RLock", &base)?,
            owner,
            count,
            slf.as_ptr() as usize
        ))
    }
}

/// The owner and count CPython's repr shows, as seen from any thread. The crate's `RLock` gives
/// them only through its `Debug` (`RLock { locked: .., owner: N, count: N }`); if that ever
/// changes, the caller's own view (its ident and recursion count) is shown instead.
fn owner_and_count(lock: &pythread::RLock) -> (u64, usize) {
    let debug = format!("{lock:?}");
    let field = |name: &str| -> Option<u64> {
        let rest = &debug[debug.find(&format!("{name}: "))? + name.len() + 2..];
        rest[..rest.find(|c: char| !c.is_ascii_digit())?]
            .parse()
            .ok()
    };
    match (field("owner"), field("count")) {
        (Some(owner), Some(count)) => (owner, count as usize),
        _ if lock.is_owned() => (pythread::get_ident().as_u64(), lock.recursion_count()),
        _ => (0, usize::from(lock.locked())),
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>, home: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Lock>()?;
    m.add_class::<RLock>()?;
    m.add("LockType", m.py().get_type::<Lock>())?;
    m.add_function(wrap_pyfunction!(allocate_lock, home)?)?;
    m.add("allocate", m.getattr("allocate_lock")?)?;
    Ok(())
}

/// allocate_lock() -> lock
#[pyfunction]
fn allocate_lock() -> Lock {
    Lock::new()
}

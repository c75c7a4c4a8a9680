//! `_thread.lock` (`allocate_lock`, `LockType`) and `_thread.RLock` on the crate's `Lock` and
//! `RLock`.
//!
//! The two classes share one implementation of `acquire`, `__enter__`, `release`, `__exit__`
//! and `__repr__`: the [`Backend`] trait says what differs (the crate's lock type, the repr's
//! details), and [`lock_methods!`] writes the `#[pymethods]` block of each class from it.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PySequence, PyTuple};

use crate::timeout;

/// What `lock` and `RLock` do differently; everything else is shared.
pub(crate) trait Backend: Sync {
    /// `tp_name` of the builtin type, shown by the repr of an instance of exactly it.
    const TP_NAME: &'static str;
    fn try_acquire(&self) -> bool;
    /// The GIL-released wait: `pending` runs the signal handlers on each interruption.
    fn acquire_with_retries(
        &self,
        wait: Option<Duration>,
        pending: &mut dyn FnMut() -> PyResult<()>,
    ) -> PyResult<bool>;
    fn release(&self) -> Result<(), pythread::ReleaseError>;
    /// Called with the GIL held after every acquisition that succeeded.
    fn acquired(&self) {}
    /// Whether the repr says "locked", and what it shows after "object" (RLock's owner and
    /// count), read once so that the two agree.
    fn repr_state(&self) -> (bool, String);
}

/// Whether `locked()` and the repr report [`Flagged::held`] (CPython 3.11 to 3.13.0, whose
/// lock object holds an OS lock and that flag) rather than the lock itself (later 3.13
/// releases, 3.13.15 measured, and 3.14: the lock object is a one-byte `PyMutex`, and
/// `locked()` reads it); set once at import by [`builtin_lock_keeps_a_flag`].
static REPORT_THE_FLAG: AtomicBool = AtomicBool::new(false);

/// Whether the running interpreter's own `_thread.lock` is the 3.11-3.13.0 kind that keeps
/// the flag: its instances have room beyond the object header for more than one pointer (a
/// `PyThread_type_lock`, the weakref list, the flag: 40 bytes on 64-bit Linux), where a
/// `PyMutex` lock has one byte (24 bytes). The change came within 3.13, so the version alone
/// cannot tell; where CPython's `_thread` cannot be read, versions before 3.14 keep the flag.
fn builtin_lock_keeps_a_flag(py: Python<'_>) -> bool {
    let probe = || -> PyResult<bool> {
        let size = |t: Bound<'_, PyAny>| t.getattr("__basicsize__")?.extract::<usize>();
        let lock = size(timeout::builtin_thread(py)?.getattr("LockType")?)?;
        let header = size(py.get_type::<pyo3::types::PyAny>().into_any())?;
        Ok(lock > header + std::mem::size_of::<usize>())
    };
    probe().unwrap_or(py.version_info() < (3, 14))
}

/// The crate's `Lock` and the flag CPython 3.11 to 3.13 keep beside theirs
/// (`lockobject.locked`): set by an acquisition once its thread holds the GIL again, cleared
/// by a release just before the lock is. Their `locked()` and repr report the flag (measured
/// against each by `corrections.py`), so a
/// thread that holds the GIL never sees a waiter's acquisition before that waiter runs Python
/// code again: threading's `_shutdown` asserts `not lock.locked()` right after releasing the
/// main thread's `_tstate_lock`, which a joiner of the main thread waits for (CPython's
/// `test_1_join_on_shutdown`; reporting the lock itself failed that assertion in 70 of 200
/// runs on a loaded machine, and the flag in none).
pub(crate) struct Flagged {
    pub(crate) lock: pythread::Lock,
    held: AtomicBool,
}

impl Flagged {
    /// `lock.locked()` as the running interpreter's `_thread` answers it.
    fn locked(&self) -> bool {
        if REPORT_THE_FLAG.load(Ordering::Relaxed) {
            self.held.load(Ordering::Relaxed)
        } else {
            self.lock.locked()
        }
    }

    /// After a fork: unlocked, and the flag with it.
    fn reinit_after_fork(&self) {
        self.lock.reinit_after_fork();
        self.held.store(false, Ordering::Relaxed);
    }

    /// A release by this module: the flag first (`lock_PyThread_release_lock`'s order), so
    /// that an acquisition the release lets in is never cleared by it.
    pub(crate) fn release(&self) -> Result<(), pythread::ReleaseError> {
        self.held.store(false, Ordering::Relaxed);
        self.lock.release()
    }
}

impl Backend for Flagged {
    const TP_NAME: &'static str = "_thread.lock";
    fn try_acquire(&self) -> bool {
        self.lock.try_acquire()
    }
    fn acquire_with_retries(
        &self,
        wait: Option<Duration>,
        pending: &mut dyn FnMut() -> PyResult<()>,
    ) -> PyResult<bool> {
        self.lock.acquire_with_retries(wait, pending)
    }
    fn release(&self) -> Result<(), pythread::ReleaseError> {
        Flagged::release(self)
    }
    fn acquired(&self) {
        self.held.store(true, Ordering::Relaxed);
    }
    fn repr_state(&self) -> (bool, String) {
        (self.locked(), String::new())
    }
}

impl Backend for pythread::RLock {
    const TP_NAME: &'static str = "_thread.RLock";
    fn try_acquire(&self) -> bool {
        pythread::RLock::try_acquire(self)
    }
    fn acquire_with_retries(
        &self,
        wait: Option<Duration>,
        pending: &mut dyn FnMut() -> PyResult<()>,
    ) -> PyResult<bool> {
        pythread::RLock::acquire_with_retries(self, wait, pending)
    }
    fn release(&self) -> Result<(), pythread::ReleaseError> {
        pythread::RLock::release(self)
    }
    /// Owner and count from the crate's one consistent read (`RLock::state`): never a count
    /// paired with another thread's ident, whichever thread asks.
    fn repr_state(&self) -> (bool, String) {
        let (owner, count) = match self.state() {
            Some(state) => (state.owner().as_u64(), state.count()),
            None => (0, 0),
        };
        (count > 0, format!(" owner={owner} count={count}"))
    }
}

/// `acquire(blocking=True, timeout=-1)`: a try with the GIL held, then (unless that was all it
/// may do) a wait with the GIL released that runs the signal handlers on each interruption.
/// No argument at all (the common `acquire()` and every `with`) skips the parsing.
fn acquire<B: Backend>(
    lock: &B,
    py: Python<'_>,
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<bool> {
    let wait = if args.is_empty() && kwargs.is_none_or(|k| k.is_empty()) {
        None
    } else {
        parse(args, kwargs)?
    };
    if lock.try_acquire() {
        lock.acquired();
        return Ok(true);
    }
    if wait == Some(Duration::ZERO) {
        return Ok(false);
    }
    let acquired = py.detach(|| lock.acquire_with_retries(wait, &mut crate::check_signals))?;
    if acquired {
        lock.acquired();
    }
    Ok(acquired)
}

/// `acquire`'s arguments (by position or name, `"|pO"`) to a wait: `None` forever,
/// `Some(ZERO)` a try.
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
    timeout::acquire_args(args.py(), blocking, seconds)
}

fn release<B: Backend>(lock: &B) -> PyResult<()> {
    lock.release()
        .map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

/// `<locked _thread.lock object at 0x...>`; a Python subclass shows its bare class name (its
/// `tp_name`), as CPython does.
fn repr<B: Backend>(lock: &B, slf: &Bound<'_, PyAny>, builtin: bool) -> PyResult<String> {
    let (locked, details) = lock.repr_state();
    let name = if builtin {
        B::TP_NAME.to_owned()
    } else {
        slf.get_type().name()?.to_string()
    };
    Ok(format!(
        "<{} {name} object{details} at {:#x}>",
        if locked { "locked" } else { "unlocked" },
        slf.as_ptr() as usize
    ))
}

/// The `#[pymethods]` block of a lock class: the shared methods, on `self.lock` (a
/// [`Backend`]), followed by the class's own `$extra` items.
macro_rules! lock_methods {
    ($class:ident { $($extra:tt)* }) => {
        #[pymethods]
        impl $class {
            /// acquire(blocking=True, timeout=-1) -> bool
            #[pyo3(signature = (*args, **kwargs))]
            fn acquire(
                &self,
                py: Python<'_>,
                args: &Bound<'_, PyTuple>,
                kwargs: Option<&Bound<'_, PyDict>>,
            ) -> PyResult<bool> {
                acquire(&self.lock, py, args, kwargs)
            }

            #[pyo3(signature = (*args, **kwargs))]
            fn __enter__(
                &self,
                py: Python<'_>,
                args: &Bound<'_, PyTuple>,
                kwargs: Option<&Bound<'_, PyDict>>,
            ) -> PyResult<bool> {
                acquire(&self.lock, py, args, kwargs)
            }

            fn release(&self) -> PyResult<()> {
                release(&self.lock)
            }

            #[pyo3(signature = (*_args))]
            fn __exit__(&self, _args: &Bound<'_, PyTuple>) -> PyResult<()> {
                release(&self.lock)
            }

            fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
                let builtin = slf.get_type().is(slf.py().get_type::<$class>());
                repr(&slf.get().lock, slf.as_any(), builtin)
            }

            $($extra)*
        }
    };
}

/// `_thread.lock`: a binary semaphore that any thread may release.
#[pyclass(name = "lock", module = "_thread", weakref, frozen)]
pub(crate) struct Lock {
    pub(crate) lock: Flagged,
}

impl Lock {
    pub(crate) fn new() -> Lock {
        Lock {
            lock: Flagged {
                lock: pythread::Lock::new(),
                held: AtomicBool::new(false),
            },
        }
    }
}

lock_methods!(Lock {
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

    #[pyo3(signature = (*args, **kwargs))]
    fn acquire_lock(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<bool> {
        acquire(&self.lock, py, args, kwargs)
    }

    fn release_lock(&self) -> PyResult<()> {
        release(&self.lock)
    }

    fn locked(&self) -> bool {
        self.lock.locked()
    }

    fn locked_lock(&self) -> bool {
        self.lock.locked()
    }

    /// After a fork the child's lock must be usable and unlocked, whatever it held.
    fn _at_fork_reinit(&self) {
        self.lock.reinit_after_fork();
    }
});

/// `_thread.RLock`: reentrant, owned by the thread that holds it.
#[pyclass(name = "RLock", module = "_thread", weakref, frozen, subclass)]
pub(crate) struct RLock {
    lock: pythread::RLock,
}

lock_methods!(RLock {
    /// Any arguments are accepted and ignored, as `rlock_new` does.
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn py_new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        RLock {
            lock: pythread::RLock::new(),
        }
    }

    /// After a fork: a fresh, unlocked lock (the owner may be a thread that is gone).
    fn _at_fork_reinit(&self) {
        self.lock.reinit_after_fork();
    }

    fn _is_owned(&self) -> bool {
        self.lock.is_owned()
    }

    fn _recursion_count(&self) -> usize {
        self.lock.recursion_count()
    }

    /// Releases the lock fully and returns `(count, owner)` for `_acquire_restore`, by the
    /// running interpreter's rule: 3.11-3.13 let any thread release and save a held lock
    /// (`release_save_any_thread`), 3.14 only its owner (`release_save`).
    fn _release_save(&self, py: Python<'_>) -> PyResult<(usize, u64)> {
        let state = if py.version_info() >= (3, 14) {
            self.lock.release_save()
        } else {
            self.lock.release_save_any_thread()
        }
        .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        Ok((state.count(), state.owner().as_u64()))
    }

    /// `_acquire_restore((count, owner))`, parsed as CPython's `"(kk)"`: any 2-item sequence
    /// of ints, each wrapped modulo 2**64 like the `k` format. Takes the lock back (blocking,
    /// not interruptible, the GIL released) and restores count and owner. The owner is kept
    /// when it names a thread the crate minted (`Ident::from_u64`); an integer that names no
    /// thread (CPython stores it unchecked) restores the lock for the caller. A count of 0
    /// (CPython would store a held lock with count 0) is refused before taking the lock.
    fn _acquire_restore(&self, py: Python<'_>, state: &Bound<'_, PyAny>) -> PyResult<()> {
        let (count, owner) = parse_state(state)?;
        let count = usize::try_from(count)
            .ok()
            .and_then(NonZeroUsize::new)
            .ok_or_else(|| PyRuntimeError::new_err("couldn't acquire lock"))?;
        let owner = pythread::Ident::from_u64(owner).unwrap_or_else(pythread::get_ident);
        let state = pythread::RLockState::new(count, owner);
        let lock = &self.lock;
        py.detach(move || lock.acquire_restore(state));
        Ok(())
    }
});

/// `PyArg_ParseTuple(args, "(kk):_acquire_restore")`: a sequence (not bytes) of exactly two
/// `int`s, each taken modulo 2**64 (`PyLong_AsUnsignedLongMask`), with getargs' messages.
fn parse_state(state: &Bound<'_, PyAny>) -> PyResult<(u64, u64)> {
    let prefix = "_acquire_restore() argument 1";
    let type_name = |o: &Bound<'_, PyAny>| -> String {
        if o.is_none() {
            "None".to_owned()
        } else {
            o.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        }
    };
    let seq = match state.cast::<PySequence>() {
        Ok(seq) if !state.is_instance_of::<pyo3::types::PyBytes>() => seq,
        _ => {
            return Err(PyTypeError::new_err(format!(
                "{prefix} must be 2-item sequence, not {}",
                type_name(state)
            )))
        }
    };
    let len = seq.len()?;
    if len != 2 {
        return Err(PyTypeError::new_err(format!(
            "{prefix} must be sequence of length 2, not {len}"
        )));
    }
    let item = |i: usize| -> PyResult<u64> {
        let item = seq.get_item(i)?;
        let int = item.cast::<PyInt>().map_err(|_| {
            PyTypeError::new_err(format!(
                "{prefix}, item {i} must be int, not {}",
                type_name(&item)
            ))
        })?;
        mask_u64(int)
    };
    Ok((item(0)?, item(1)?))
}

/// An `int` modulo 2**64, as `PyLong_AsUnsignedLongMask` gives it (two's complement for a
/// negative one).
fn mask_u64(int: &Bound<'_, PyInt>) -> PyResult<u64> {
    if let Ok(v) = int.extract::<u64>() {
        return Ok(v);
    }
    int.call_method1("__and__", (u64::MAX,))?.extract()
}

pub(crate) fn register(m: &Bound<'_, PyModule>, home: &Bound<'_, PyModule>) -> PyResult<()> {
    REPORT_THE_FLAG.store(builtin_lock_keeps_a_flag(m.py()), Ordering::Relaxed);
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

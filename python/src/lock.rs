//! `_thread.lock` (`allocate_lock`, `LockType`) and `_thread.RLock`: the layer's `LockObject`
//! and `RLockObject` (`threadmodule`), with CPython's argument parsing, reprs and types.
//!
//! The two classes share one implementation of `acquire`, `__enter__`, `release`, `__exit__`
//! and `__repr__`: the [`Backend`] trait says what differs (the layer's object, the repr's
//! details), and [`lock_methods!`] writes the `#[pymethods]` block of each class from it. The
//! hot methods (`acquire`, `__enter__`, `release`, `__exit__`, `locked` and their old names) are
//! C-level entries of each type's method table, as `_thread`'s are (guard.rs installs them at
//! import): no PyO3 trampoline, no argument tuple, CPython's own calling conventions.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyInt, PySequence, PyString, PyTuple};
use pyo3::Borrowed;
use threadmodule::{LockObject, LockedReport, RLockObject, ReleaseSaveRule};

use crate::guard::{self, FastArgs, FastMethod, NoArgsMethod};
use crate::runtime::{self, Host};
use crate::timeout;

/// What `lock` and `RLock` do differently; everything else is shared.
pub(crate) trait Backend: Sync {
    /// `tp_name` of the builtin type, shown by the repr of an instance of exactly it.
    const TP_NAME: &'static str;
    /// `acquire`, its arguments converted: a try with the GIL held, then the interruptible
    /// wait with it released.
    fn acquire(&self, py: Python<'_>, wait: Option<Duration>) -> PyResult<bool>;
    fn release(&self, py: Python<'_>) -> PyResult<()>;
    /// Whether the repr says "locked", and what it shows after "object" (RLock's owner and
    /// count), read once so that the two agree.
    fn repr_state(&self) -> (bool, String);
}

/// What `locked()` and the repr report: the flag (CPython 3.11 to 3.13.0, whose lock object
/// holds an OS lock and that flag) or the lock itself (later 3.13 releases, 3.13.15 measured,
/// and 3.14: the lock object is a one-byte `PyMutex`, and `locked()` reads it); chosen once at
/// import by [`builtin_lock_keeps_a_flag`]. The flag is what keeps threading's `_shutdown`
/// assertion true on those versions (`LockedReport::Flag`; CPython's
/// `test_1_join_on_shutdown`: reporting the lock itself failed that assertion in 70 of 200 runs
/// on a loaded machine, and the flag in none).
static REPORT_THE_FLAG: AtomicBool = AtomicBool::new(false);

fn locked_report() -> LockedReport {
    if REPORT_THE_FLAG.load(Ordering::Relaxed) {
        LockedReport::Flag
    } else {
        LockedReport::Lock
    }
}

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

impl Backend for LockObject {
    const TP_NAME: &'static str = "_thread.lock";
    #[inline]
    fn acquire(&self, py: Python<'_>, wait: Option<Duration>) -> PyResult<bool> {
        Ok(LockObject::acquire(self, &Host(py), wait)?)
    }
    #[inline]
    fn release(&self, py: Python<'_>) -> PyResult<()> {
        LockObject::release(self).map_err(|e| runtime::exception(py, e))
    }
    fn repr_state(&self) -> (bool, String) {
        (self.locked(locked_report()), String::new())
    }
}

/// `_release_save`'s rule: 3.11-3.13 let any thread release and save a held lock
/// (`rlock_release_save` checks only the count), 3.14 only its owner. Set at import.
static RELEASE_SAVE_BY_OWNER: AtomicBool = AtomicBool::new(false);

fn release_save_rule() -> ReleaseSaveRule {
    if RELEASE_SAVE_BY_OWNER.load(Ordering::Relaxed) {
        ReleaseSaveRule::Owner
    } else {
        ReleaseSaveRule::AnyThread
    }
}

/// CPython's `rlockobject`, the layer's: the owner is the host ident ([`guard::host_ident`],
/// `PyThread_get_thread_ident()`), a plain number compared with the caller's ident: an owner
/// that `_acquire_restore` stored for another thread, or for a thread that has ended, is owned
/// by whichever thread has that ident (a `pthread_t` reused by a later thread included), as in
/// CPython.
impl Backend for RLockObject {
    const TP_NAME: &'static str = "_thread.RLock";
    #[inline]
    fn acquire(&self, py: Python<'_>, wait: Option<Duration>) -> PyResult<bool> {
        Ok(RLockObject::acquire(self, &Host(py), wait)?)
    }
    #[inline]
    fn release(&self, py: Python<'_>) -> PyResult<()> {
        RLockObject::release::<Host<'_>>(self).map_err(|e| runtime::exception(py, e))
    }
    fn repr_state(&self) -> (bool, String) {
        let (owner, count) = self.state();
        (count > 0, format!(" owner={owner} count={count}"))
    }
}

/// `acquire(blocking=True, timeout=-1)`. No argument at all (the common `acquire()` and every
/// `with`) skips the parsing.
#[inline]
fn acquire<B: Backend>(lock: &B, args: &FastArgs<'_, '_>) -> PyResult<bool> {
    let wait = if args.is_empty() { None } else { parse(args)? };
    lock.acquire(args.py(), wait)
}

/// `acquire`'s parameters, in order.
const ACQUIRE_KWLIST: [&str; 2] = ["blocking", "timeout"];

/// `blocking` is converted with `i` (a C int: `__index__`, overflow checked), as CPython 3.11
/// does; `p` (truth) from 3.12. Set at import.
static BLOCKING_IS_INT: AtomicBool = AtomicBool::new(false);

/// CPython 3.11 and 3.12 word an unknown keyword "'foo' is an invalid keyword argument for
/// acquire()"; 3.13 "acquire() got an unexpected keyword argument 'foo'". Set at import.
static OLD_KEYWORD_MESSAGE: AtomicBool = AtomicBool::new(false);

/// Whether keyword `j` of the call is `name` (interned names compare by identity first).
fn keyword_is(args: &FastArgs<'_, '_>, j: usize, name: &str) -> PyResult<bool> {
    let key = args.keyword(j)?;
    Ok(key.cast::<PyString>()?.to_str()? == name)
}

/// `acquire`'s arguments to a wait (`None` forever, `Some(ZERO)` a try), parsed as
/// `PyArg_ParseTupleAndKeywords(args, kwds, "|pO:acquire", ...)` does (`"|iO"` on 3.11), in
/// its order and with its messages: the count first, then each parameter by position or by
/// name (converting `blocking` as it goes), then names given twice, then unknown names.
fn parse(args: &FastArgs<'_, '_>) -> PyResult<Option<Duration>> {
    let (nargs, nkw) = (args.nargs(), args.nkw());
    if nargs + nkw > ACQUIRE_KWLIST.len() {
        return Err(PyTypeError::new_err(format!(
            "acquire() takes at most 2 {}arguments ({} given)",
            if nargs == 0 { "keyword " } else { "" },
            nargs + nkw
        )));
    }
    let mut given: [Option<Borrowed<'_, '_, PyAny>>; 2] = [None, None];
    let mut unmatched = nkw;
    let mut converted = true;
    for (i, name) in ACQUIRE_KWLIST.iter().enumerate() {
        if i < nargs {
            given[i] = Some(args.value(i));
        } else if unmatched > 0 {
            for j in 0..nkw {
                if keyword_is(args, j, name)? {
                    given[i] = Some(args.value(nargs + j));
                    unmatched -= 1;
                    break;
                }
            }
        }
        if i == 0 {
            // Converted before any later check, as getargs converts in order.
            if let Some(b) = &given[0] {
                converted = blocking(b)?;
            }
        }
    }
    if unmatched > 0 {
        for (i, name) in ACQUIRE_KWLIST.iter().enumerate().take(nargs) {
            for j in 0..nkw {
                if keyword_is(args, j, name)? {
                    return Err(PyTypeError::new_err(format!(
                        "argument for acquire() given by name ('{name}') and position ({})",
                        i + 1
                    )));
                }
            }
        }
        for j in 0..nkw {
            let key = args.keyword(j)?;
            let known = ACQUIRE_KWLIST.iter().skip(nargs).any(|n| {
                key.cast::<PyString>()
                    .is_ok_and(|k| k.to_str().is_ok_and(|k| k == *n))
            });
            if !known {
                return Err(PyTypeError::new_err(
                    if OLD_KEYWORD_MESSAGE.load(Ordering::Relaxed) {
                        format!("'{key}' is an invalid keyword argument for acquire()")
                    } else {
                        format!("acquire() got an unexpected keyword argument '{key}'")
                    },
                ));
            }
        }
    }
    let blocking = converted;
    let seconds = match &given[1] {
        Some(t) => timeout::seconds(t)?,
        None => -1.0,
    };
    threadmodule::acquire_timeout(blocking, seconds).map_err(|e| runtime::exception(args.py(), e))
}

/// `blocking` as the running interpreter's getargs converts it: `p` (truth), or on 3.11 `i`
/// (`PyLong_AsLong`, which takes `__index__`, then the C int range).
fn blocking(obj: &Borrowed<'_, '_, PyAny>) -> PyResult<bool> {
    if !BLOCKING_IS_INT.load(Ordering::Relaxed) {
        return crate::guard::is_true(obj);
    }
    let value: i64 = crate::guard::index(obj)?.extract()?;
    if value > i64::from(i32::MAX) {
        return Err(PyOverflowError::new_err(
            "signed integer is greater than maximum",
        ));
    }
    if value < i64::from(i32::MIN) {
        return Err(PyOverflowError::new_err(
            "signed integer is less than minimum",
        ));
    }
    Ok(value != 0)
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
    pub(crate) lock: LockObject,
}

impl Lock {
    pub(crate) fn new() -> Lock {
        Lock {
            lock: LockObject::new(),
        }
    }
}

lock_methods!(Lock {
    #[new]
    #[pyo3(signature = (*args, **kwargs))]
    fn py_new(args: &Bound<'_, PyTuple>, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        if !LOCK_IS_INSTANTIABLE.load(Ordering::Relaxed) {
            // 3.11 and 3.12's type has no `tp_new` (Py_TPFLAGS_DISALLOW_INSTANTIATION).
            return Err(PyTypeError::new_err("cannot create '_thread.lock' instances"));
        }
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

    /// After a fork the child's lock must be usable and unlocked, whatever it held.
    fn _at_fork_reinit(&self) {
        self.lock.at_fork_reinit();
    }
});

/// `_thread.RLock`: reentrant, owned by the thread that holds it.
#[pyclass(name = "RLock", module = "_thread", weakref, frozen, subclass)]
pub(crate) struct RLock {
    lock: RLockObject,
}

lock_methods!(RLock {
    /// Any arguments are accepted and ignored, as `rlock_new` does.
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn py_new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        RLock {
            lock: RLockObject::new(),
        }
    }

    /// After a fork: a fresh, unlocked lock (the owner may be a thread that is gone).
    fn _at_fork_reinit(&self) {
        self.lock.at_fork_reinit();
    }

    fn _is_owned(&self) -> bool {
        self.lock.is_owned::<Host<'_>>()
    }

    fn _recursion_count(&self) -> u64 {
        self.lock.recursion_count::<Host<'_>>()
    }

    /// Releases the lock fully and returns `(count, owner)` for `_acquire_restore`, by the
    /// running interpreter's rule ([`release_save_rule`]).
    fn _release_save(&self, py: Python<'_>) -> PyResult<(u64, u64)> {
        self.lock
            .release_save::<Host<'_>>(release_save_rule())
            .map_err(|e| runtime::exception(py, e))
    }

    /// `_acquire_restore((count, owner))`, parsed as CPython's `"(kk)"`: any 2-item sequence
    /// of ints, each wrapped modulo 2**64 like the `k` format. Takes the lock back (blocking,
    /// not interruptible, the GIL released) and stores count and owner as given, as CPython
    /// does: the owner is a number, owned by whichever thread has that ident (another live
    /// thread, or none). A count of 0 (CPython would store a held lock with count 0, which no
    /// acquire could ever take again) is refused before taking the lock.
    #[pyo3(signature = (*args, **kwargs))]
    fn _acquire_restore(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        timeout::no_keywords("RLock._acquire_restore", kwargs)?;
        if args.len() != 1 {
            return Err(PyTypeError::new_err(format!(
                "_acquire_restore() takes exactly 1 argument ({} given)",
                args.len()
            )));
        }
        let state = parse_state(&args.get_item(0)?)?;
        Ok(self.lock.acquire_restore(&Host(py), state)?)
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

/// `_thread.lock()` makes a lock from 3.13 on (gh-114315); set at import.
static LOCK_IS_INSTANTIABLE: AtomicBool = AtomicBool::new(true);

/// A class whose instances hold a [`Backend`]: the C-level methods below serve both.
pub(crate) trait LockClass:
    pyo3::PyClass<Frozen = pyo3::pyclass::boolean_struct::True> + Sync
{
    type B: Backend;
    /// The name CPython's messages give the type (`lock.__exit__() ...`).
    const SHORT_NAME: &'static str;
    fn backend(&self) -> &Self::B;
}

impl LockClass for Lock {
    type B = LockObject;
    const SHORT_NAME: &'static str = "lock";
    fn backend(&self) -> &LockObject {
        &self.lock
    }
}

impl LockClass for RLock {
    type B = RLockObject;
    const SHORT_NAME: &'static str = "RLock";
    fn backend(&self) -> &RLockObject {
        &self.lock
    }
}

/// `acquire(blocking=True, timeout=-1)`, `acquire_lock` and `__enter__` (CPython's
/// `METH_VARARGS | METH_KEYWORDS` entry, here `METH_FASTCALL | METH_KEYWORDS`).
struct Acquire<C>(std::marker::PhantomData<C>);

impl<C: LockClass> FastMethod for Acquire<C> {
    type Class = C;
    fn call<'a, 'py>(
        slf: Borrowed<'a, 'py, C>,
        args: &FastArgs<'a, 'py>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let acquired = acquire(slf.get().backend(), args)?;
        Ok(PyBool::new(args.py(), acquired).to_owned().into_any())
    }
}

/// `release()` and `release_lock()` (`METH_NOARGS`).
struct Release<C>(std::marker::PhantomData<C>);

impl<C: LockClass> NoArgsMethod for Release<C> {
    type Class = C;
    fn call<'a, 'py>(slf: Borrowed<'a, 'py, C>) -> PyResult<Bound<'py, PyAny>> {
        slf.get().backend().release(slf.py())?;
        Ok(slf.py().None().into_bound(slf.py()))
    }
}

/// `__exit__(*exc_info)`: any number of positional arguments, ignored, and no keyword (CPython's
/// `METH_VARARGS` entry refuses keywords with this message); no tuple is built.
struct Exit<C>(std::marker::PhantomData<C>);

impl<C: LockClass> FastMethod for Exit<C> {
    type Class = C;
    fn call<'a, 'py>(
        slf: Borrowed<'a, 'py, C>,
        args: &FastArgs<'a, 'py>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if args.nkw() > 0 {
            return Err(PyTypeError::new_err(format!(
                "{}.__exit__() takes no keyword arguments",
                C::SHORT_NAME
            )));
        }
        slf.get().backend().release(args.py())?;
        Ok(args.py().None().into_bound(args.py()))
    }
}

/// `locked()` and `locked_lock()` (`METH_NOARGS`) of 3.11 to 3.13.0: the flag
/// ([`LockedReport::Flag`]).
struct LockedFlag;

impl guard::BoolMethod for LockedFlag {
    type Class = Lock;
    fn call(slf: &Lock) -> bool {
        slf.lock.locked(LockedReport::Flag)
    }
}

/// `locked()` and `locked_lock()` of 3.14 on: the lock itself.
struct LockedLock;

impl guard::BoolMethod for LockedLock {
    type Class = Lock;
    fn call(slf: &Lock) -> bool {
        slf.lock.locked(LockedReport::Lock)
    }
}

const ACQUIRE_DOC: &std::ffi::CStr = c"acquire($self, /, blocking=True, timeout=-1)
--

Lock the lock.  Without argument, this blocks if the lock is already
locked (even by the same thread), waiting for another thread to release
the lock, and return True once the lock is acquired.
With an argument, this will only block if the argument is true,
and the return value reflects whether the lock is acquired.
The blocking operation is interruptible.";
const ACQUIRE_LOCK_DOC: &std::ffi::CStr = c"acquire_lock($self, /, blocking=True, timeout=-1)
--

An obsolete synonym of acquire().";
const ENTER_DOC: &std::ffi::CStr = c"__enter__($self, /)
--

Lock the lock.";
const RELEASE_DOC: &std::ffi::CStr = c"release($self, /)
--

Release the lock, allowing another thread that is blocked waiting for
the lock to acquire the lock.  The lock must be in the locked state,
but it needn't be locked by the same thread that unlocks it.";
const RELEASE_LOCK_DOC: &std::ffi::CStr = c"release_lock($self, /)
--

An obsolete synonym of release().";
const EXIT_DOC: &std::ffi::CStr = c"__exit__($self, /, *exc_info)
--

Release the lock.";
const LOCKED_DOC: &std::ffi::CStr = c"locked($self, /)
--

Return whether the lock is in the locked state.";
const LOCKED_LOCK_DOC: &std::ffi::CStr = c"locked_lock($self, /)
--

An obsolete synonym of locked().";
const RLOCK_ACQUIRE_DOC: &std::ffi::CStr = c"acquire($self, /, blocking=True, timeout=-1)
--

Lock the lock.  `blocking` indicates whether we should wait
for the lock to be available or not.  If `blocking` is False
and another thread holds the lock, the method will return False
immediately.  If `blocking` is True and another thread holds
the lock, the method will wait for the lock to be released,
take it and then return True.
(note: the blocking operation is interruptible.)

In all other cases, the method will return True immediately.
Precisely, if the current thread already holds the lock, its
internal counter is simply incremented. If nobody holds the lock,
the lock is taken and its internal counter initialized to 1.";
const RLOCK_RELEASE_DOC: &std::ffi::CStr = c"release($self, /)
--

Release the lock, allowing another thread that is blocked waiting for
the lock to acquire the lock.  The lock must be in the locked state,
and must be locked by the same thread that unlocks it; otherwise a
`RuntimeError` is raised.

Do note that if the lock was acquire()d several times in a row by the
current thread, release() needs to be called as many times for the lock
to be available for other threads.";

pub(crate) fn register(m: &Bound<'_, PyModule>, home: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    REPORT_THE_FLAG.store(builtin_lock_keeps_a_flag(py), Ordering::Relaxed);
    BLOCKING_IS_INT.store(py.version_info() < (3, 12), Ordering::Relaxed);
    OLD_KEYWORD_MESSAGE.store(py.version_info() < (3, 13), Ordering::Relaxed);
    RELEASE_SAVE_BY_OWNER.store(py.version_info() >= (3, 14), Ordering::Relaxed);
    LOCK_IS_INSTANTIABLE.store(py.version_info() >= (3, 13), Ordering::Relaxed);
    m.add_class::<Lock>()?;
    m.add_class::<RLock>()?;
    guard::install_fast::<Acquire<Lock>>(py, c"acquire", ACQUIRE_DOC)?;
    guard::install_fast::<Acquire<Lock>>(py, c"acquire_lock", ACQUIRE_LOCK_DOC)?;
    guard::install_fast::<Acquire<Lock>>(py, c"__enter__", ENTER_DOC)?;
    guard::install_noargs::<Release<Lock>>(py, c"release", RELEASE_DOC)?;
    guard::install_noargs::<Release<Lock>>(py, c"release_lock", RELEASE_LOCK_DOC)?;
    guard::install_fast::<Exit<Lock>>(py, c"__exit__", EXIT_DOC)?;
    // The rule is chosen once, here, rather than tested in each call.
    if REPORT_THE_FLAG.load(Ordering::Relaxed) {
        guard::install_bool::<LockedFlag>(py, c"locked", LOCKED_DOC)?;
        guard::install_bool::<LockedFlag>(py, c"locked_lock", LOCKED_LOCK_DOC)?;
    } else {
        guard::install_bool::<LockedLock>(py, c"locked", LOCKED_DOC)?;
        guard::install_bool::<LockedLock>(py, c"locked_lock", LOCKED_LOCK_DOC)?;
    }
    guard::install_fast::<Acquire<RLock>>(py, c"acquire", RLOCK_ACQUIRE_DOC)?;
    guard::install_fast::<Acquire<RLock>>(py, c"__enter__", ENTER_DOC)?;
    guard::install_noargs::<Release<RLock>>(py, c"release", RLOCK_RELEASE_DOC)?;
    guard::install_fast::<Exit<RLock>>(py, c"__exit__", EXIT_DOC)?;
    guard::make_immutable(&py.get_type::<Lock>())?;
    guard::make_immutable(&py.get_type::<RLock>())?;
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

//! Calls into Python that a thread may never return from, and the one C-API call with no safe
//! wrapper ([`set_interrupt`]): the module's only `unsafe`.
//!
//! CPython 3.11 to 3.13 end a thread that asks for the GIL while the interpreter finalizes with
//! `pthread_exit` (`take_gil` → `PyThread_exit_thread`), from wherever it asked: deep inside a
//! call that runs Python code (a periodic GIL switch in the eval loop, the end of
//! `time.sleep`), a `__del__`, a hook. `pthread_exit` is a forced unwind of the thread's
//! stack. Through a Rust frame that called an `extern "C"` function (which Rust assumes never
//! unwinds) it aborts the process ("FATAL: exception not rethrown") or, where the frame has
//! cleanup, runs destructors on a thread whose interpreter state is gone (PyO3's attach guard
//! releasing a thread state that is not current: SIGSEGV). 3.14 parks such a thread instead
//! (`PyThread_hang_thread`, cpython#87135).
//!
//! So every call of the module that can run Python code goes through this file: the C-API
//! function is declared `extern "C-unwind"` (so the forced unwind may pass the call) and the
//! innermost Rust frame holds a [`ParkForever`] guard, forgotten on a normal return. When
//! `pthread_exit` unwinds into that frame, the guard's `Drop` runs and parks the thread for
//! ever, so the unwind never reaches any other Rust frame: the thread stays as CPython 3.14
//! leaves it (asleep, holding no GIL) and the process exits normally. This is what PyO3 0.30
//! does for its own `PyGILState_Ensure` and `PyEval_RestoreThread` (pyo3-ffi's
//! `impl_::HangThread`, used by `Python::attach` and the re-attach after `Python::detach`);
//! PyO3's source calls running a destructor during a forced unwind *unspecified* behaviour
//! that it relies on (rust-lang/rust#135929): it is what current Rust does on Linux, and what
//! this file relies on too. Measured before this file existed: lifecycle.py's exit checks
//! failed in 21 to 29 of 30 runs per mode on 3.12 and 3.13, 12 to 23 on 3.11 (CONFORMANCE.md).
//!
//! Rules for callers: a call that runs Python code by design (a callable, a hook, `__bool__`,
//! `__index__`) goes through [`call`], [`is_true`] or [`index`]; every reference that may be the last one to a Python
//! object is dropped through [`release`] (a plain drop runs `Py_DecRef` unguarded, and a
//! `__del__` under it can end the thread); no Python object is dropped while detached (PyO3
//! would queue it and drop it at some later attach, unguarded).

use std::mem;
use std::os::raw::c_int;
use std::ptr;

use pyo3::ffi::PyObject;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyTuple};
use pyo3::Borrowed;

// The same C-API functions pyo3-ffi declares `extern "C"`, declared here so that a forced
// unwind may leave them. All four are in the stable ABI (the module is built `abi3-py311`)
// and resolved from the interpreter when it loads the module, as pyo3-ffi's are.
//
// They are called only through `opaque` pointers: where pyo3-ffi's `extern "C"` declaration of
// the same symbol lands in the same LLVM module (PyO3's inlined generics do that), the symbol
// gets one declaration, `nounwind`, and a direct call to it loses its landing pad, so the guard
// never runs (seen: `thread_run` aborted in `__pthread_unwind` until this was done). An
// indirect call through a pointer the optimizer cannot see through keeps the landing pad.
extern "C-unwind" {
    fn PyObject_Call(
        callable: *mut PyObject,
        args: *mut PyObject,
        kwargs: *mut PyObject,
    ) -> *mut PyObject;
    fn PyObject_IsTrue(obj: *mut PyObject) -> c_int;
    fn PyNumber_Index(obj: *mut PyObject) -> *mut PyObject;
    fn Py_DecRef(obj: *mut PyObject);
}

/// `f`, hidden from the optimizer (see the declarations above).
fn opaque<F>(f: F) -> F {
    std::hint::black_box(f)
}

/// Held across one guarded C-API call: dropped only by a forced unwind out of that call (a
/// normal return forgets it), and then it never returns.
struct ParkForever;

impl Drop for ParkForever {
    fn drop(&mut self) {
        // The thread has no interpreter to go back to, and no frame above this one may run:
        // sleep until the process exits. `park` may return spuriously, hence the loop.
        loop {
            std::thread::park();
        }
    }
}

/// `callable(*args, **kwargs)`, as `Bound::call`, but a thread that CPython ends inside it
/// parks instead of unwinding through the module.
pub(crate) fn call<'py>(
    callable: &Bound<'py, PyAny>,
    args: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let kwargs = kwargs.map_or(ptr::null_mut(), |k| k.as_ptr());
    let guard = ParkForever;
    // SAFETY: the thread is attached (the `Bound`s prove it); the three pointers are live
    // objects borrowed for the call (kwargs a dict or NULL, as PyObject_Call takes them), and
    // the declaration matches CPython's `PyObject *PyObject_Call(PyObject *, PyObject *,
    // PyObject *)`. An unwind out of it (pthread_exit) stops at `guard`.
    let call = opaque(PyObject_Call as unsafe extern "C-unwind" fn(_, _, _) -> _);
    let result = unsafe { call(callable.as_ptr(), args.as_ptr(), kwargs) };
    mem::forget(guard);
    // SAFETY: PyObject_Call returns a new reference, or NULL with an exception set.
    unsafe { Bound::from_owned_ptr_or_err(callable.py(), result) }
}

/// `bool(obj)` (which may run `__bool__` or `__len__`), guarded as [`call`].
pub(crate) fn is_true(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    let guard = ParkForever;
    // SAFETY: the thread is attached and `obj` is a live object; the declaration matches
    // CPython's `int PyObject_IsTrue(PyObject *)`. An unwind out of it stops at `guard`.
    let is_true = opaque(PyObject_IsTrue as unsafe extern "C-unwind" fn(_) -> _);
    let truth = unsafe { is_true(obj.as_ptr()) };
    mem::forget(guard);
    match truth {
        -1 => Err(PyErr::fetch(obj.py())),
        t => Ok(t != 0),
    }
}

/// `operator.index(obj)` (which may run `__index__`), guarded as [`call`]: an exact `int`.
pub(crate) fn index<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyInt>> {
    let guard = ParkForever;
    let index = opaque(PyNumber_Index as unsafe extern "C-unwind" fn(_) -> _);
    // SAFETY: the thread is attached and `obj` is a live object; the declaration matches
    // CPython's `PyObject *PyNumber_Index(PyObject *)`. An unwind out of it stops at `guard`.
    let result = unsafe { index(obj.as_ptr()) };
    mem::forget(guard);
    // SAFETY: PyNumber_Index returns a new reference to an int (exactly an int since 3.10), or
    // NULL with an exception set.
    unsafe { Bound::from_owned_ptr_or_err(obj.py(), result) }?
        .cast_into::<PyInt>()
        .map_err(PyErr::from)
}

/// Drops a reference that may be the last one (its `__del__`, weakref callbacks and the
/// finalizers of whatever it owned run here), guarded as [`call`].
pub(crate) fn release<T>(obj: Bound<'_, T>) {
    let obj = obj.into_ptr();
    let guard = ParkForever;
    // SAFETY: the thread is attached (the `Bound` proved it) and `into_ptr` handed over the
    // reference `Py_DecRef` consumes; the declaration matches CPython's
    // `void Py_DecRef(PyObject *)`. An unwind out of it stops at `guard`.
    let dec_ref = opaque(Py_DecRef as unsafe extern "C-unwind" fn(_));
    unsafe { dec_ref(obj) };
    mem::forget(guard);
}

/// `PyErr_SetInterruptEx(signum)`: trips `signum`'s flag as if the signal had arrived, so its
/// Python handler runs in the main thread at its next check; a signal that Python does not
/// handle (`SIG_DFL`, `SIG_IGN`) is ignored. False when `signum` is out of `1..NSIG`.
///
/// It takes `py` so that the flag is tripped while this thread holds the GIL: the main thread
/// sees it at a check that follows the caller's own Python code, as in CPython. The
/// alternative, `signal.raise_signal`, releases the GIL around `raise()`, and the main thread
/// then sees the signal at whatever check it has reached: in CPython's
/// `test_interrupt_main_subthread` that was the entry of `Condition._acquire_restore`, before
/// the lock was taken back, and `with cond:` failed with "release unlocked lock" (33 runs in
/// 3,000 on 3.13; 0 in 3,000 with this call; cpython#118433 is the same race without a GIL).
pub(crate) fn set_interrupt(_py: Python<'_>, signum: c_int) -> bool {
    // SAFETY: PyErr_SetInterruptEx takes any int (it range-checks it), never sets an exception,
    // is async-signal-safe and needs no thread state; pyo3-ffi declares it as CPython does
    // (`int PyErr_SetInterruptEx(int)`, stable ABI since 3.10). It runs no Python code.
    unsafe { pyo3::ffi::PyErr_SetInterruptEx(signum) == 0 }
}

// --- `_local` (local.rs): the thread state's dict and descriptor slots ---------------------------
//
// Calls that run no Python code (so no guard is needed): they only read interpreter state.

/// `PyThreadState_GetDict()`: the calling thread state's own dict, where CPython keeps
/// per-thread state (local.rs keeps the thread's `_local` keys there, so they live and die with
/// the thread state). `None` only if the thread state has none and it cannot be made.
pub(crate) fn thread_state_dict(py: Python<'_>) -> Option<Bound<'_, PyDict>> {
    // SAFETY: the thread is attached (`py` proves it), which is all PyThreadState_GetDict
    // needs; it returns a borrowed reference to a dict owned by the thread state (or NULL,
    // without an exception set), which stays alive for as long as this thread state does,
    // so certainly for the borrow `from_borrowed_ptr_or_opt` turns into a new reference.
    let dict = unsafe { Bound::from_borrowed_ptr_or_opt(py, pyo3::ffi::PyThreadState_GetDict()) };
    dict.and_then(|d| d.cast_into::<PyDict>().ok())
}

/// Takes an object the module made out of the garbage collector's lists
/// (`PyObject_GC_UnTrack`): for objects that can never be part of a reference cycle, the
/// per-thread bookkeeping of a `_local` (local.rs): a watchdog (a weakref whose only strong
/// reference is its callback), the callback (`ClearLocals`, which holds a `_localdummy` that
/// holds nothing, and a weakref to the `_local`'s dicts), and that weakref (no strong
/// reference at all). Tracked, each thread's first access to each `_local` leaves long-lived
/// objects that count towards the next full collection, which visits every `_local` alive.
/// A weakref whose referent dies still has its callback called: the collector finds weakrefs
/// through the referent's weakref list, tracked or not.
pub(crate) fn untrack_acyclic(obj: &Bound<'_, PyAny>) {
    // SAFETY: `obj` is a live object (the `Bound` holds a reference, and the thread is
    // attached). PyObject_GC_UnTrack only unlinks a GC object from the collector's lists and
    // accepts one that is not tracked, but only an instance of a GC type, checked here by its
    // type's flags (PyType_GetFlags reads a live type's flags).
    let flags = unsafe { pyo3::ffi::PyType_GetFlags(obj.get_type_ptr()) };
    if flags & pyo3::ffi::Py_TPFLAGS_HAVE_GC != 0 {
        unsafe { pyo3::ffi::PyObject_GC_UnTrack(obj.as_ptr().cast()) }
    }
}

/// Whether `ty` fills `slot` with the same function as `object` (CPython's own test of
/// `_local`'s constructor: `type->tp_init == PyBaseObject_Type.tp_init`).
pub(crate) fn slot_is_objects(ty: &Bound<'_, pyo3::types::PyType>, slot: c_int) -> bool {
    let object = ty.py().get_type::<PyAny>();
    // SAFETY: attached (the `Bound`s), both are live type objects; PyType_GetSlot reads a slot
    // of any type since 3.10 (stable ABI). The pointers are only compared, never called.
    unsafe {
        pyo3::ffi::PyType_GetSlot(ty.as_type_ptr(), slot)
            == pyo3::ffi::PyType_GetSlot(object.as_type_ptr(), slot)
    }
}

/// `PyThread_get_thread_ident()`: the calling thread's ident as CPython knows it (its
/// `pthread_self()`), the number CPython keys its thread states by (`sys._current_frames()`,
/// `PyThreadState_SetAsyncExc`, `faulthandler`) and the one `signal.pthread_kill` takes. Every
/// ident this module shows to Python code is this number, never the crate's `Ident`.
#[inline]
pub(crate) fn host_ident() -> u64 {
    // SAFETY: PyThread_get_thread_ident takes no argument, needs no thread state and no GIL
    // (it is `pthread_self()` cast to `unsigned long`), never fails and runs no Python code;
    // pyo3-ffi declares it as CPython does (`unsigned long PyThread_get_thread_ident(void)`,
    // stable ABI).
    unsafe { pyo3::ffi::PyThread_get_thread_ident() as u64 }
}

// --- C-level methods ------------------------------------------------------------------------
//
// The hot methods of the lock types and `get_ident` are entries of CPython's own method table
// (`PyMethodDef`, called through a method descriptor or a builtin function object), as
// `_thread`'s are: CPython calls them with no PyO3 trampoline, no argument tuple and no
// keyword dict (`METH_FASTCALL | METH_KEYWORDS`, `METH_NOARGS`). The Rust side of each is a
// safe function; the pointers CPython passes are turned into PyO3 references here only.

/// The arguments of a `METH_FASTCALL | METH_KEYWORDS` call: `nargs` positional arguments,
/// then the values of the keywords named by `kwnames` (exact `str`s, no duplicates: CPython's
/// call machinery checks that before the call).
pub(crate) struct FastArgs<'a, 'py> {
    py: Python<'py>,
    values: &'a [*mut PyObject],
    nargs: usize,
    kwnames: Option<Borrowed<'a, 'py, PyTuple>>,
}

impl<'a, 'py> FastArgs<'a, 'py> {
    pub(crate) fn py(&self) -> Python<'py> {
        self.py
    }

    pub(crate) fn nargs(&self) -> usize {
        self.nargs
    }

    /// The number of keyword arguments.
    pub(crate) fn nkw(&self) -> usize {
        self.values.len() - self.nargs
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Positional argument `i` (`i < nargs`), or keyword value `i - nargs`.
    pub(crate) fn value(&self, i: usize) -> Borrowed<'a, 'py, PyAny> {
        // SAFETY: `values` holds `nargs + nkw` live references that CPython keeps for the
        // call ('a); the index is bounds-checked by the slice.
        unsafe { Borrowed::from_ptr(self.py, self.values[i]) }
    }

    /// The name of keyword argument `j` (`j < nkw`).
    pub(crate) fn keyword(&self, j: usize) -> PyResult<Bound<'py, PyAny>> {
        match &self.kwnames {
            Some(names) => names.get_item(j),
            None => Err(pyo3::exceptions::PyIndexError::new_err(
                "no keyword arguments",
            )),
        }
    }
}

/// A method called as `METH_FASTCALL | METH_KEYWORDS` on an instance of `Class`.
pub(crate) trait FastMethod {
    type Class: pyo3::PyClass<Frozen = pyo3::pyclass::boolean_struct::True> + Sync;
    fn call<'a, 'py>(
        slf: Borrowed<'a, 'py, Self::Class>,
        args: &FastArgs<'a, 'py>,
    ) -> PyResult<Bound<'py, PyAny>>;
}

/// A method called as `METH_NOARGS` on an instance of `Class`.
pub(crate) trait NoArgsMethod {
    type Class: pyo3::PyClass<Frozen = pyo3::pyclass::boolean_struct::True> + Sync;
    fn call<'a, 'py>(slf: Borrowed<'a, 'py, Self::Class>) -> PyResult<Bound<'py, PyAny>>;
}

/// A method called as `METH_NOARGS` on an instance of `Class` that answers a `bool` and cannot
/// fail (nor panic: its entry has no unwinding to catch, so a panic would abort): `locked()`.
pub(crate) trait BoolMethod {
    type Class: pyo3::PyClass<Frozen = pyo3::pyclass::boolean_struct::True> + Sync;
    fn call(slf: &Self::Class) -> bool;
}

/// A function of no arguments (`METH_NOARGS`), its result a `u64` (a module function).
pub(crate) trait NoArgsFunction {
    fn call() -> u64;
}

/// The end of every C-level entry: the result as a new reference, or NULL with the error set.
/// A panic becomes a Python exception, as in PyO3's own trampolines.
fn finish(
    py: Python<'_>,
    result: std::thread::Result<PyResult<Bound<'_, PyAny>>>,
) -> *mut PyObject {
    let err = match result {
        Ok(Ok(obj)) => return obj.into_ptr(),
        Ok(Err(err)) => err,
        Err(payload) => panic_error(payload),
    };
    err.restore(py);
    ptr::null_mut()
}

unsafe extern "C" fn fast_entry<M: FastMethod>(
    slf: *mut PyObject,
    args: *const *mut PyObject,
    nargsf: pyo3::ffi::Py_ssize_t,
    kwnames: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: CPython calls a method descriptor's function with the GIL held (the thread
    // attached), `slf` an instance of the descriptor's type (`descr_check` ran: the type is
    // `M::Class`, frozen, so `get` needs no borrow flag), `args` holding
    // `PyVectorcall_NARGS(nargsf)` positional arguments then one value per name of `kwnames`
    // (a tuple of str, or NULL), all live for the call.
    unsafe {
        let py = Python::assume_attached();
        // PyVectorcall_NARGS: the top bit is PY_VECTORCALL_ARGUMENTS_OFFSET.
        let nargs = (nargsf as usize) & (usize::MAX >> 1);
        let kwnames = Borrowed::from_ptr_or_opt(py, kwnames).map(|k| k.cast_unchecked::<PyTuple>());
        let nkw = kwnames.as_ref().map_or(0, |k| k.len());
        let values = if nargs + nkw == 0 {
            &[][..]
        } else {
            std::slice::from_raw_parts(args, nargs + nkw)
        };
        let slf = Borrowed::from_ptr(py, slf).cast_unchecked::<M::Class>();
        let args = FastArgs {
            py,
            values,
            nargs,
            kwnames,
        };
        finish(
            py,
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| M::call(slf, &args))),
        )
    }
}

unsafe extern "C" fn noargs_entry<M: NoArgsMethod>(
    slf: *mut PyObject,
    _unused: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: as `fast_entry`: the GIL held, `slf` an instance of `M::Class` (frozen).
    unsafe {
        let py = Python::assume_attached();
        let slf = Borrowed::from_ptr(py, slf).cast_unchecked::<M::Class>();
        finish(
            py,
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| M::call(slf))),
        )
    }
}

/// `True` and `False` are immortal (CPython 3.12+: their reference count never changes, so a
/// returned reference needs no increment). Set at import, before any method is installed.
static IMMORTAL_BOOLS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub(crate) fn init(py: Python<'_>) {
    IMMORTAL_BOOLS.store(
        py.version_info() >= (3, 12),
        std::sync::atomic::Ordering::Relaxed,
    );
}

/// `M`'s answer as `True` or `False`, for [`bool_entry`].
///
/// # Safety
///
/// The GIL is held and `slf` is a live instance of `M::Class` (which a method descriptor
/// checked before the call).
#[inline(always)]
unsafe fn bool_answer<M: BoolMethod>(slf: *mut PyObject) -> *mut PyObject {
    // SAFETY: by the caller's contract: attached, `slf` non-null and an `M::Class` (frozen).
    unsafe {
        let py = Python::assume_attached();
        let slf = Borrowed::from_ptr_or_opt(py, slf)
            .unwrap_unchecked()
            .cast_unchecked::<M::Class>();
        if M::call(slf.get()) {
            pyo3::ffi::Py_True()
        } else {
            pyo3::ffi::Py_False()
        }
    }
}

/// The entry of a [`BoolMethod`] on 3.12+, where `True` and `False` are immortal: the returned
/// reference needs no increment (`Py_RETURN_TRUE` increments nothing there either).
unsafe extern "C" fn bool_entry_immortal<M: BoolMethod>(
    slf: *mut PyObject,
    _unused: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: CPython calls a method descriptor's function with the GIL held and `slf` an
    // instance of the descriptor's type (`descr_check` ran).
    unsafe { bool_answer::<M>(slf) }
}

/// The entry of a [`BoolMethod`] before 3.12: the reference count of `True` / `False` is
/// incremented in place, as `Py_INCREF` does in 3.11 (no immortal objects there).
unsafe extern "C" fn bool_entry_counted<M: BoolMethod>(
    slf: *mut PyObject,
    _unused: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: as `bool_entry_immortal`; the answer is a live object whose count this thread
    // may change (it holds the GIL), and the increment is the new reference returned.
    unsafe {
        let answer = bool_answer::<M>(slf);
        (*answer).ob_refcnt += 1;
        answer
    }
}

unsafe extern "C" fn noargs_u64_entry<F: NoArgsFunction>(
    _module: *mut PyObject,
    _unused: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: CPython calls a builtin function with the GIL held; PyLong_FromUnsignedLongLong
    // returns a new reference or NULL with an exception set, which is what the caller takes.
    // `F::call` only reads (get_ident): it cannot panic.
    unsafe { pyo3::ffi::PyLong_FromUnsignedLong(F::call() as std::os::raw::c_ulong) }
}

/// One entry of a method table, made once and kept for the life of the process (CPython keeps
/// a pointer to it in every descriptor).
fn method_def(
    name: &'static std::ffi::CStr,
    meth: pyo3::ffi::PyMethodDefPointer,
    flags: c_int,
    doc: &'static std::ffi::CStr,
) -> *mut pyo3::ffi::PyMethodDef {
    Box::into_raw(Box::new(pyo3::ffi::PyMethodDef {
        ml_name: name.as_ptr(),
        ml_meth: meth,
        ml_flags: flags,
        ml_doc: doc.as_ptr(),
    }))
}

/// Puts a method descriptor for `def` into `ty`'s dict under its name, replacing what is
/// there. Done at import, before any instance is used: the type is immutable to Python code
/// (`type.__setattr__` refuses), so the descriptor goes in as CPython's own types get theirs,
/// straight into the type's dict (`PyObject_GenericSetAttr` on the type object stores in
/// `tp_dict`; `type` has no descriptor of these names), and `PyType_Modified` then drops every
/// cached lookup of the type, as `type.__setattr__` does after its store.
fn install(ty: &Bound<'_, pyo3::types::PyType>, def: *mut pyo3::ffi::PyMethodDef) -> PyResult<()> {
    let py = ty.py();
    // SAFETY: the thread is attached; `def` is a leaked, valid PyMethodDef (lives for ever, as
    // PyDescr_NewMethod requires); `ty` is a live type object. PyDescr_NewMethod and
    // PyUnicode_InternFromString return new references or NULL with an exception set.
    unsafe {
        let descr = Bound::from_owned_ptr_or_err(
            py,
            pyo3::ffi::PyDescr_NewMethod(ty.as_ptr().cast(), def),
        )?;
        let name = Bound::from_owned_ptr_or_err(
            py,
            pyo3::ffi::PyUnicode_InternFromString((*def).ml_name),
        )?;
        if pyo3::ffi::PyObject_GenericSetAttr(ty.as_ptr(), name.as_ptr(), descr.as_ptr()) < 0 {
            return Err(PyErr::fetch(py));
        }
        pyo3::ffi::PyType_Modified(ty.as_ptr().cast());
    }
    Ok(())
}

/// Installs `M` as the `METH_FASTCALL | METH_KEYWORDS` method `name` of `M::Class`.
pub(crate) fn install_fast<M: FastMethod>(
    py: Python<'_>,
    name: &'static std::ffi::CStr,
    doc: &'static std::ffi::CStr,
) -> PyResult<()> {
    let meth = pyo3::ffi::PyMethodDefPointer {
        PyCFunctionFastWithKeywords: fast_entry::<M>,
    };
    let flags = pyo3::ffi::METH_FASTCALL | pyo3::ffi::METH_KEYWORDS;
    install(
        &py.get_type::<M::Class>(),
        method_def(name, meth, flags, doc),
    )
}

/// Installs `M` as the `METH_NOARGS` method `name` of `M::Class`.
pub(crate) fn install_noargs<M: NoArgsMethod>(
    py: Python<'_>,
    name: &'static std::ffi::CStr,
    doc: &'static std::ffi::CStr,
) -> PyResult<()> {
    let meth = pyo3::ffi::PyMethodDefPointer {
        PyCFunction: noargs_entry::<M>,
    };
    install(
        &py.get_type::<M::Class>(),
        method_def(name, meth, pyo3::ffi::METH_NOARGS, doc),
    )
}

/// Installs `M` as the `METH_NOARGS` method `name` of `M::Class`, answering a `bool`.
pub(crate) fn install_bool<M: BoolMethod>(
    py: Python<'_>,
    name: &'static std::ffi::CStr,
    doc: &'static std::ffi::CStr,
) -> PyResult<()> {
    let meth = if IMMORTAL_BOOLS.load(std::sync::atomic::Ordering::Relaxed) {
        pyo3::ffi::PyMethodDefPointer {
            PyCFunction: bool_entry_immortal::<M>,
        }
    } else {
        pyo3::ffi::PyMethodDefPointer {
            PyCFunction: bool_entry_counted::<M>,
        }
    };
    install(
        &py.get_type::<M::Class>(),
        method_def(name, meth, pyo3::ffi::METH_NOARGS, doc),
    )
}

/// A builtin function `name` (`METH_NOARGS`) of `module` (its `__self__`), whose `__module__`
/// is `module`'s name: CPython's module functions are these.
pub(crate) fn noargs_function<'py, F: NoArgsFunction>(
    module: &Bound<'py, pyo3::types::PyModule>,
    name: &'static std::ffi::CStr,
    doc: &'static std::ffi::CStr,
) -> PyResult<Bound<'py, PyAny>> {
    let py = module.py();
    let meth = pyo3::ffi::PyMethodDefPointer {
        PyCFunction: noargs_u64_entry::<F>,
    };
    let def = method_def(name, meth, pyo3::ffi::METH_NOARGS, doc);
    let module_name = module.name()?;
    // SAFETY: the thread is attached; `def` lives for ever; `module` and its name are live.
    // PyCFunction_NewEx returns a new reference or NULL with an exception set.
    unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            pyo3::ffi::PyCFunction_NewEx(def, module.as_ptr(), module_name.as_ptr()),
        )
    }
}

/// `Py_TPFLAGS_IMMUTABLETYPE` (CPython 3.10+).
const IMMUTABLETYPE: std::os::raw::c_ulong = 1 << 8;

/// The offset of `tp_flags` in `PyTypeObject`: after `PyObject_VAR_HEAD` (3 words) and the 19
/// pointer-sized fields from `tp_name` to `tp_as_buffer`, the same in every CPython 3.x.
const TP_FLAGS_OFFSET: usize = 21 * std::mem::size_of::<usize>();

/// Makes `ty` immutable to Python code, as CPython's `_thread` types are
/// (`Py_TPFLAGS_IMMUTABLETYPE`: `ty.attr = v` and `del ty.attr` raise TypeError). PyO3 sets the
/// flag only for non-abi3 builds (the limited API gains it in 3.14), so it is set here, after
/// the type's methods are in place: the flag word is found where every CPython 3.x keeps it,
/// and written only if it holds exactly what `PyType_GetFlags` reports (otherwise this is a
/// TypeError and nothing is written).
pub(crate) fn make_immutable(ty: &Bound<'_, pyo3::types::PyType>) -> PyResult<()> {
    let type_ptr = ty.as_ptr().cast::<u8>();
    // SAFETY: the thread is attached and `ty` is a live type object, at least as large as the
    // `PyTypeObject` head read here (a heap type is a `PyHeapTypeObject`). PyType_GetFlags
    // reads `tp_flags`; the word at TP_FLAGS_OFFSET is read as an unaligned `c_ulong` (it is
    // aligned in every build) and written only when it is that same word, with the GIL held
    // and before any instance exists, as CPython itself sets flags on its types.
    unsafe {
        let flags = pyo3::ffi::PyType_GetFlags(ty.as_ptr().cast());
        let slot = type_ptr
            .add(TP_FLAGS_OFFSET)
            .cast::<std::os::raw::c_ulong>();
        if slot.read_unaligned() != flags {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "_pythread: tp_flags is not where CPython 3.x keeps it",
            ));
        }
        slot.write_unaligned(flags | IMMUTABLETYPE);
        pyo3::ffi::PyType_Modified(ty.as_ptr().cast());
    }
    Ok(())
}

// --- `_local`'s attribute slots (local.rs) ----------------------------------------------------
//
// `_local`'s `tp_getattro` and `tp_setattro` are C-level entries, as CPython's `local_getattro`
// and `local_setattro` are: CPython calls them with no PyO3 trampoline, and a Python subclass
// inherits them (CPython's `type_new` copies a base's slot function when the base's slot
// wrapper in its dict wraps that very function). The generic attribute rules after the
// thread's dict is found are CPython's own functions, given that dict.

// Not in the stable ABI: `_PyObject_Generic{Get,Set}AttrWithDict` are CPython's private but
// exported (`PyAPI_FUNC`) functions behind `object.__getattribute__`, in 3.11, 3.12 and 3.13
// alike, and what CPython's own `_local` calls; resolved from the interpreter when the module
// loads. Declared `extern "C-unwind"` and called through `opaque` as the calls above: each runs
// Python code (a descriptor's `__get__`, `__set__`, `__delete__`; a key's `__eq__`).
extern "C-unwind" {
    fn _PyObject_GenericGetAttrWithDict(
        obj: *mut PyObject,
        name: *mut PyObject,
        dict: *mut PyObject,
        suppress: c_int,
    ) -> *mut PyObject;
    fn _PyObject_GenericSetAttrWithDict(
        obj: *mut PyObject,
        name: *mut PyObject,
        value: *mut PyObject,
        dict: *mut PyObject,
    ) -> c_int;
    fn PyObject_RichCompareBool(a: *mut PyObject, b: *mut PyObject, op: c_int) -> c_int;
}

/// `PyThreadState_GetID(PyThreadState_Get())`: the calling thread state's id, unique for the
/// life of the interpreter (CPython numbers thread states from a counter and never reuses a
/// number, across fork too), so an id seen once names that one thread state for ever.
pub(crate) fn thread_state_id(_py: Python<'_>) -> u64 {
    // SAFETY: the thread is attached (`_py` proves it), so PyThreadState_Get returns its live
    // thread state (it cannot fail then); PyThreadState_GetID reads that state's `id`. Neither
    // runs Python code. Both are in the stable ABI (3.9+), declared by pyo3-ffi as CPython's.
    let id = unsafe { pyo3::ffi::PyThreadState_GetID(pyo3::ffi::PyThreadState_Get()) };
    id as u64
}

/// `a == b` by `PyObject_RichCompareBool` (identity first, then `__eq__`, which may run Python
/// code), guarded as [`call`].
pub(crate) fn rich_eq(a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> PyResult<bool> {
    let guard = ParkForever;
    let compare = opaque(PyObject_RichCompareBool as unsafe extern "C-unwind" fn(_, _, _) -> _);
    // SAFETY: attached, both live objects; the declaration matches CPython's
    // `int PyObject_RichCompareBool(PyObject *, PyObject *, int)`. An unwind stops at `guard`.
    let r = unsafe { compare(a.as_ptr(), b.as_ptr(), pyo3::ffi::Py_EQ) };
    mem::forget(guard);
    match r {
        -1 => Err(PyErr::fetch(a.py())),
        r => Ok(r != 0),
    }
}

/// `_PyObject_GenericGetAttrWithDict(obj, name, dict, 0)`: `object.__getattribute__` with
/// `dict` as the instance's dict (a data descriptor of the type, else `dict[name]`, else a
/// non-data descriptor or class attribute, else CPython's AttributeError with its `name` and
/// `obj`; a name that is not a `str` is CPython's TypeError), guarded as [`call`].
pub(crate) fn generic_getattr_with_dict<'py>(
    obj: &Bound<'py, PyAny>,
    name: &Bound<'py, PyAny>,
    dict: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyAny>> {
    let guard = ParkForever;
    let get =
        opaque(_PyObject_GenericGetAttrWithDict as unsafe extern "C-unwind" fn(_, _, _, _) -> _);
    // SAFETY: attached; `obj`, `name` and `dict` are live objects held for the call (the
    // function takes any `name` and checks it is a str, and `dict` a dict, which it borrows);
    // the declaration matches CPython 3.11-3.13's. An unwind stops at `guard`.
    let result = unsafe { get(obj.as_ptr(), name.as_ptr(), dict.as_ptr(), 0) };
    mem::forget(guard);
    // SAFETY: a new reference, or NULL with an exception set.
    unsafe { Bound::from_owned_ptr_or_err(obj.py(), result) }
}

/// `_PyObject_GenericSetAttrWithDict(obj, name, value, dict)` (`value` None: delete):
/// `object.__setattr__` / `__delattr__` with `dict` as the instance's dict, guarded as
/// [`call`].
pub(crate) fn generic_setattr_with_dict(
    obj: &Bound<'_, PyAny>,
    name: &Bound<'_, PyAny>,
    value: Option<&Bound<'_, PyAny>>,
    dict: &Bound<'_, PyDict>,
) -> PyResult<()> {
    let value = value.map_or(ptr::null_mut(), |v| v.as_ptr());
    let guard = ParkForever;
    let set =
        opaque(_PyObject_GenericSetAttrWithDict as unsafe extern "C-unwind" fn(_, _, _, _) -> _);
    // SAFETY: attached; `obj`, `name` and `dict` are live objects held for the call, `value`
    // one or NULL (delete), as the function takes them; the declaration matches CPython
    // 3.11-3.13's. An unwind stops at `guard`.
    let r = unsafe { set(obj.as_ptr(), name.as_ptr(), value, dict.as_ptr()) };
    mem::forget(guard);
    match r {
        0 => Ok(()),
        _ => Err(PyErr::fetch(obj.py())),
    }
}

/// The thread dict a `_local` found last, with its thread state's id (local.rs), in a cell the
/// GIL guards: every access takes a `Python` token, copies or swaps, and runs no Python code,
/// allocates nothing and never releases the GIL, so no two threads touch it at once, no access
/// is re-entered, and no collection (`visit`) runs in the middle of one. Used on
/// `_local`'s read path instead of a lock, whose two atomic read-modify-writes per access cost
/// more time than the rest of the lookup (`install_attr_slots` refuses an interpreter
/// running without the GIL).
pub(crate) struct LastDict(std::cell::UnsafeCell<Option<(u64, Py<PyDict>)>>);

// SAFETY: see the type's comment: all access is serialized by the GIL; the content (`u64`,
// `Py`) is `Send`.
unsafe impl Sync for LastDict {}

impl LastDict {
    pub(crate) const fn new() -> Self {
        LastDict(std::cell::UnsafeCell::new(None))
    }

    /// The remembered dict, if its thread state's id is `id`.
    pub(crate) fn get<'py>(&self, py: Python<'py>, id: u64) -> Option<Bound<'py, PyDict>> {
        // SAFETY: the GIL is held (`py`); shared read, and the clone (an incref) runs no
        // Python code.
        match unsafe { &*self.0.get() } {
            Some((last, dict)) if *last == id => Some(dict.bind(py).clone()),
            _ => None,
        }
    }

    /// Remembers `dict` for the thread state `id`; the entry it replaces is returned, for the
    /// caller to release once this returned.
    pub(crate) fn replace(&self, id: u64, dict: &Bound<'_, PyDict>) -> Option<Py<PyDict>> {
        let new = Some((id, dict.clone().unbind()));
        // SAFETY: the GIL is held (the `Bound`); a move in and out, no Python code.
        unsafe { std::mem::replace(&mut *self.0.get(), new) }.map(|(_, old)| old)
    }

    /// Takes the entry out if it holds `dict` (any entry for `None`), for the caller to
    /// release.
    pub(crate) fn take_if(
        &self,
        py: Python<'_>,
        dict: Option<&Bound<'_, PyAny>>,
    ) -> Option<Py<PyDict>> {
        // SAFETY: the GIL is held (`py`); a pointer comparison and a move, no Python code.
        let cell = unsafe { &mut *self.0.get() };
        match (&*cell, dict) {
            (Some((_, held)), Some(dict)) if !held.bind(py).is(dict) => None,
            _ => cell.take().map(|(_, old)| old),
        }
    }

    /// Visits the remembered dict (`__traverse__`: the collector runs with the GIL held, never
    /// inside an access, which allocates nothing).
    pub(crate) fn visit(&self, visit: &pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        // SAFETY: as above: the collecting thread holds the GIL and is inside no access.
        match unsafe { &*self.0.get() } {
            Some((_, dict)) => visit.call(dict),
            None => Ok(()),
        }
    }
}

/// A class's own `tp_getattro` and `tp_setattro` (local.rs: `_local`'s).
pub(crate) trait AttrSlots {
    type Class: pyo3::PyClass<Frozen = pyo3::pyclass::boolean_struct::True> + Sync;
    /// `getattr(slf, name)`.
    fn getattro<'py>(
        slf: &Bound<'py, Self::Class>,
        name: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>>;
    /// `setattr(slf, name, value)`, or `delattr(slf, name)` when `value` is None.
    fn setattro<'py>(
        slf: &Bound<'py, Self::Class>,
        name: &Bound<'py, PyAny>,
        value: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<()>;
}

/// A panic out of a C-level entry, as the Python exception PyO3's own trampolines raise.
fn panic_error(payload: Box<dyn std::any::Any + Send>) -> PyErr {
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic in _pythread".to_owned());
    pyo3::panic::PanicException::new_err(msg)
}

unsafe extern "C" fn getattro_entry<S: AttrSlots>(
    slf: *mut PyObject,
    name: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: CPython calls a type's `tp_getattro` with the GIL held and `slf` an instance of
    // that type or of a subclass (which inherited the slot), or through the type's slot
    // wrapper, which checks that first: an `S::Class` (frozen, so `get` needs no borrow
    // flag). `name` is a live object (any type: the slot wrapper passes what it is given).
    unsafe {
        let py = Python::assume_attached();
        let slf = Borrowed::from_ptr(py, slf).cast_unchecked::<S::Class>();
        let name = Borrowed::from_ptr(py, name);
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| S::getattro(&slf, &name)));
        match result.unwrap_or_else(|payload| Err(panic_error(payload))) {
            Ok(value) => value.into_ptr(),
            Err(err) => {
                err.restore(py);
                ptr::null_mut()
            }
        }
    }
}

unsafe extern "C" fn setattro_entry<S: AttrSlots>(
    slf: *mut PyObject,
    name: *mut PyObject,
    value: *mut PyObject,
) -> c_int {
    // SAFETY: as `getattro_entry`; `value` is a live object, or NULL for a delete.
    unsafe {
        let py = Python::assume_attached();
        let slf = Borrowed::from_ptr(py, slf).cast_unchecked::<S::Class>();
        let name = Borrowed::from_ptr(py, name);
        let value = Borrowed::from_ptr_or_opt(py, value);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            S::setattro(&slf, &name, value.as_deref())
        }));
        match result.unwrap_or_else(|payload| Err(panic_error(payload))) {
            Ok(()) => 0,
            Err(err) => {
                err.restore(py);
                -1
            }
        }
    }
}

/// The offsets of `tp_getattro` and `tp_setattro` in `PyTypeObject`: after `PyObject_VAR_HEAD`
/// (3 words) and the 15 pointer-sized fields from `tp_name` to `tp_str`, the same in every
/// CPython 3.x (as [`TP_FLAGS_OFFSET`]).
const TP_GETATTRO_OFFSET: usize = 18 * std::mem::size_of::<usize>();
const TP_SETATTRO_OFFSET: usize = 19 * std::mem::size_of::<usize>();

/// The offset of `d_wrapped` (the slot function a slot wrapper calls) in
/// `PyWrapperDescrObject`: after `PyObject_HEAD` (2 words), `d_type`, `d_name`, `d_qualname`
/// and `d_base`, the same in CPython 3.3 to 3.13.
const D_WRAPPED_OFFSET: usize = 6 * std::mem::size_of::<usize>();

/// Makes `S`'s entries `S::Class`'s `tp_getattro` and `tp_setattro`, at import, before any
/// instance exists. PyO3 made both slots (the class defines `__getattribute__`, `__setattr__`
/// and `__delattr__`) and `PyType_Ready` put slot wrappers for them into the type's dict
/// (`__getattribute__`, `__setattr__`, `__delattr__`, each calling the slot's function); the
/// new entry replaces the old function in the slots and in those three wrappers, so that
/// `_local.__getattribute__(obj, name)` and a subclass made later (which takes its slots from
/// the wrappers) call the entry too. Every word is written only where it holds exactly the
/// function `PyType_GetSlot` reports and each wrapper is a slot wrapper of `S::Class` itself;
/// otherwise this is a TypeError and nothing is written.
pub(crate) fn install_attr_slots<S: AttrSlots>(py: Python<'_>) -> PyResult<()> {
    use std::ffi::c_void;
    // `LastDict` is guarded by the GIL: no GIL (a free-threaded build running without it,
    // `sys._is_gil_enabled()` false), no module.
    let sys = py.import("sys")?;
    if sys.hasattr("_is_gil_enabled")? && !sys.call_method0("_is_gil_enabled")?.extract::<bool>()? {
        return Err(pyo3::exceptions::PyImportError::new_err(
            "_pythread needs the GIL",
        ));
    }
    let ty = py.get_type::<S::Class>();
    let get_entry = getattro_entry::<S> as *mut c_void;
    let set_entry = setattro_entry::<S> as *mut c_void;
    let refuse = |what: &str| {
        Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "_pythread: {what} is not where CPython 3.x keeps it"
        )))
    };
    // SAFETY: attached; `ty` is a live type object; PyType_GetSlot reads a slot of any type
    // (stable ABI). The pointers are only compared.
    let (old_get, old_set) = unsafe {
        (
            pyo3::ffi::PyType_GetSlot(ty.as_type_ptr(), pyo3::ffi::Py_tp_getattro),
            pyo3::ffi::PyType_GetSlot(ty.as_type_ptr(), pyo3::ffi::Py_tp_setattro),
        )
    };
    // The type of `object.__getattribute__`: `wrapper_descriptor`.
    let wrapper_type = py
        .get_type::<PyAny>()
        .getattr("__dict__")?
        .get_item("__getattribute__")?
        .get_type();
    let own = ty.getattr("__dict__")?;
    let mut words: Vec<(*mut *mut c_void, *mut c_void, *mut c_void)> = Vec::new();
    for (name, old, new) in [
        ("__getattribute__", old_get, get_entry),
        ("__setattr__", old_set, set_entry),
        ("__delattr__", old_set, set_entry),
    ] {
        let wrapper = own.get_item(name)?;
        if !wrapper.get_type().is(&wrapper_type) || !wrapper.getattr("__objclass__")?.is(&ty) {
            return refuse(name);
        }
        // The wrapper stays alive in the type's dict (the type is immutable), so the pointer
        // into it is valid when written below.
        // SAFETY: `wrapper` is a live `wrapper_descriptor`, a `PyWrapperDescrObject`, larger
        // than D_WRAPPED_OFFSET plus a word; only the address is computed here.
        let word = unsafe { wrapper.as_ptr().cast::<u8>().add(D_WRAPPED_OFFSET) }.cast();
        words.push((word, old, new));
    }
    let type_ptr = ty.as_ptr().cast::<u8>();
    // SAFETY: `ty` is a live type object, at least a `PyTypeObject`; only addresses here.
    let (get_word, set_word) = unsafe {
        (
            type_ptr.add(TP_GETATTRO_OFFSET).cast(),
            type_ptr.add(TP_SETATTRO_OFFSET).cast(),
        )
    };
    words.push((get_word, old_get, get_entry));
    words.push((set_word, old_set, set_entry));
    // SAFETY: each word is inside a live object (above) and pointer-aligned in every build,
    // read unaligned all the same; all are checked before any is written, and written with
    // the GIL held before any instance exists, as CPython fills slots. PyType_Modified drops
    // any cached lookup of the type.
    unsafe {
        for &(word, old, _) in &words {
            if word.read_unaligned() != old {
                return refuse("a slot function");
            }
        }
        for &(word, _, new) in &words {
            word.write_unaligned(new);
        }
        pyo3::ffi::PyType_Modified(ty.as_type_ptr());
    }
    Ok(())
}

//! `_thread._local`, laid out as CPython's own `localobject` (3.13.15's `_threadmodule.c`):
//! each `_local` owns one dict per thread, keyed by that thread state's key object; the thread
//! state owns only its key and a sentinel, and the sentinel's death drops the thread's dict
//! from every `_local` through a weakref callback.
//!
//! - A thread's key and sentinel (two `_localdummy` objects) live in its thread state's dict
//!   (`PyThreadState_GetDict`, guard.rs), so they follow CPython's thread-state lifetime
//!   exactly: a thread that ends, a C thread whose every call into Python gets a fresh thread
//!   state (ctypes callbacks), the other threads' states that a forked child deletes. When the
//!   thread state's dict is cleared, the sentinel dies and each `_local` that has a dict for that
//!   thread drops it there, on that thread. A thread started by this module drops its sentinel
//!   itself, through the guard, before it detaches for the last time
//!   ([`release_thread_dicts`]).
//! - A `_local`'s death drops every thread's dict (they are its own), and the garbage collector
//!   sees them all (`__traverse__`), so a cycle through a `_local` and its values is collected;
//!   the thread state never holds a dict, only the dummies, which reference nothing.
//! - Attribute access is C-level, as CPython's: `_local`'s `tp_getattro` and `tp_setattro` are
//!   guard.rs entries (a subclass inherits them), which find the thread's dict, then follow
//!   CPython's own generic rules with that dict (`_PyObject_GenericGetAttrWithDict`, what
//!   CPython's `local_getattro` calls). The thread's dict is found without a lookup when this
//!   thread state was the last to use the `_local`: each `_local` remembers the dict it found
//!   last with its thread state's id (never reused, so never mistaken for another thread's),
//!   and forgets it with the dict. Otherwise: the thread state's dict, then the `_local`'s
//!   dict of dicts, both under the GIL.
//!
//! As CPython's `localobject` also: `_local(*args, **kw)` is refused with "Initialization
//! arguments are not supported" unless the class defines `__init__`; the creating thread's dict
//! is made at construction; any other thread's dict is made on its first attribute access, which
//! then runs the class's `__init__(*args, **kw)` (and forgets the dict again if that raises);
//! `__dict__` is the calling thread's dict and cannot be assigned; a subclass's descriptors
//! (properties, methods, `__slots__`) work through CPython's generic lookup, given the
//! thread's dict.

use std::sync::Mutex;

use pyo3::exceptions::{PyAttributeError, PyRuntimeError, PyTypeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PySet, PyString, PyTuple, PyType, PyWeakrefReference};
use pyo3::{PyTraverseError, PyVisit};

use crate::guard;

/// The constructor's `(args, kwargs)`.
type InitArgs = (Py<PyTuple>, Option<Py<PyDict>>);

/// `_thread._localdummy`: a thread state's key into every `_local`'s dicts, or its sentinel.
/// Hashed by identity; references nothing, so the thread state is in no cycle through it.
#[pyclass(name = "_localdummy", module = "_thread", frozen, weakref)]
struct LocalDummy;

/// The entries of the thread state's dict that hold the thread's key and sentinel: strings (a
/// dict with only string keys, which the thread state's usually is, has CPython's fastest
/// lookup), named for this module as CPython 3.11's `_local` names its own entries there.
fn key_entry(py: Python<'_>) -> &Bound<'_, PyString> {
    intern!(py, "_pythread._local.key")
}

fn sentinel_entry(py: Python<'_>) -> &Bound<'_, PyString> {
    intern!(py, "_pythread._local.sentinel")
}

/// The other names this file looks up, each interned once (see [`init_cached`]).
fn name_init(py: Python<'_>) -> &Bound<'_, PyString> {
    intern!(py, "__init__")
}

fn name_dict(py: Python<'_>) -> &Bound<'_, PyString> {
    intern!(py, "__dict__")
}

/// Makes every interned name and cached object of this file now, at import.
///
/// PyO3's `PyOnceLock` (behind `intern!` too) detaches from the interpreter while it claims a
/// cell, then re-attaches to fill it: a thread that claimed a cell and waits for the GIL when
/// another thread forks leaves the cell claimed for ever in the child, and every later user
/// parks (seen: threads started in a forked child hung at their exit, in
/// `release_thread_dicts`, 1 run in about 90 of lifecycle.py's `fork-raw`). Filled at import,
/// no cell is ever being filled while threads run.
pub(crate) fn init_cached(py: Python<'_>) -> PyResult<()> {
    key_entry(py);
    sentinel_entry(py);
    name_init(py);
    name_dict(py);
    Ok(())
}

fn thread_state_dict(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    guard::thread_state_dict(py).ok_or_else(|| PyRuntimeError::new_err("thread state has no dict"))
}

/// The calling thread state's key, made (with its sentinel) on first use.
fn thread_key(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    let tdict = thread_state_dict(py)?;
    if let Some(key) = tdict.get_item(key_entry(py))? {
        return Ok(key);
    }
    let key = Bound::new(py, LocalDummy)?.into_any();
    let sentinel = Bound::new(py, LocalDummy)?;
    tdict.set_item(sentinel_entry(py), sentinel)?;
    tdict.set_item(key_entry(py), &key)?;
    Ok(key)
}

/// The calling thread state's sentinel (made by [`thread_key`]).
fn thread_sentinel(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    thread_state_dict(py)?
        .get_item(sentinel_entry(py))?
        .ok_or_else(|| PyRuntimeError::new_err("the thread state's _local sentinel is gone"))
}

/// Drops the calling thread's dict of every `_local`, now (the caller holds the GIL): the
/// module's threads call it before they detach for the last time, so that the dicts' finalizers
/// run through the guard rather than inside the thread state's teardown. A finalizer that uses
/// a `_local` again makes a new key and sentinel, which the next round drops.
pub(crate) fn release_thread_dicts(py: Python<'_>) {
    let Some(tdict) = guard::thread_state_dict(py) else {
        return;
    };
    let (key_entry, sentinel_entry) = (key_entry(py), sentinel_entry(py));
    while let Ok(Some(sentinel)) = tdict.get_item(sentinel_entry) {
        let key = tdict.get_item(key_entry).ok().flatten();
        let _ = tdict.del_item(key_entry);
        let _ = tdict.del_item(sentinel_entry);
        // The sentinel's last reference: every `_local`'s watchdog drops this thread's dict.
        guard::release(sentinel);
        if let Some(key) = key {
            guard::release(key);
        }
    }
}

/// A `_local`'s dicts: `{thread key: that thread's dict}`, and the weakrefs to each such
/// thread's sentinel. An object of its own (owned by the `_local` alone), so that each watchdog
/// can reach it weakly from the moment the `_local` is made.
#[pyclass(name = "_localdicts", module = "_thread", frozen, weakref)]
struct LocalDicts {
    dicts: Py<PyDict>,
    watchdogs: Py<PySet>,
    /// The thread dict found last and the id of its thread state ([`guard::thread_state_id`]:
    /// never reused, so an entry can never be taken for another thread's): the read path's
    /// answer without a lookup. An entry is always one of `dicts` too: it leaves with it
    /// ([`forget_thread`], `__clear__`).
    last: guard::LastDict,
}

impl LocalDicts {
    /// The dict of the thread state `id`, if it is the one found last.
    fn last<'py>(&self, py: Python<'py>, id: u64) -> Option<Bound<'py, PyDict>> {
        self.last.get(py, id)
    }

    /// Remembers `dict` as the dict of the thread state `id`.
    fn remember(&self, id: u64, dict: &Bound<'_, PyDict>) {
        if let Some(old) = self.last.replace(id, dict) {
            guard::release(old.into_bound(dict.py()));
        }
    }

    /// Forgets the remembered dict if it is `dict` (or whichever it is, for `None`).
    fn forget_last(&self, py: Python<'_>, dict: Option<&Bound<'_, PyAny>>) {
        if let Some(old) = self.last.take_if(py, dict) {
            guard::release(old.into_bound(py));
        }
    }
}

#[pymethods]
impl LocalDicts {
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.dicts)?;
        visit.call(&self.watchdogs)?;
        self.last.visit(&visit)
    }

    /// Breaks cycles through the dicts (CPython's `local_clear`).
    fn __clear__(&self) {
        Python::attach(|py| {
            self.forget_last(py, None);
            self.dicts.bind(py).clear();
            self.watchdogs.bind(py).clear();
        });
    }
}

/// The callback of a watchdog (a weakref to a thread's sentinel): the thread state is being
/// cleared, so its dict leaves the `_local` (CPython's `clear_locals`).
#[pyclass(frozen)]
struct ClearLocals {
    dicts: Py<PyWeakrefReference>,
    key: Py<PyAny>,
}

#[pymethods]
impl ClearLocals {
    fn __call__(&self, py: Python<'_>, watchdog: &Bound<'_, PyAny>) -> PyResult<()> {
        let Some(dicts) = self.dicts.bind(py).upgrade() else {
            return Ok(()); // the `_local` is gone, and its dicts with it
        };
        let dicts = dicts.cast_into::<LocalDicts>()?;
        let me = dicts.get();
        let forget = forget_thread(py, me, self.key.bind(py), watchdog);
        guard::release(dicts);
        forget
    }
}

/// Removes one thread's dict and watchdog from a `_local`; the dict's last reference goes
/// through the guard.
fn forget_thread(
    py: Python<'_>,
    dicts: &LocalDicts,
    key: &Bound<'_, PyAny>,
    watchdog: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let map = dicts.dicts.bind(py);
    let dict = map.get_item(key)?;
    if dict.is_some() {
        map.del_item(key)?;
    }
    dicts.watchdogs.bind(py).discard(watchdog)?;
    if let Some(dict) = dict {
        dicts.forget_last(py, Some(&dict));
        guard::release(dict);
    }
    Ok(())
}

/// `_thread._local`: thread-local data.
#[pyclass(name = "_local", module = "_thread", weakref, frozen, subclass)]
pub(crate) struct Local {
    dicts: Py<LocalDicts>,
    /// The constructor's arguments, passed to `__init__` in each new thread. `None` once the
    /// garbage collector has cleared the object.
    init: Mutex<Option<InitArgs>>,
}

/// Whether `ty` defines `__init__`: its `tp_init` is not `object`'s (CPython's test; a class
/// that assigns `__init__ = object.__init__` has its own slot too).
fn has_init(ty: &Bound<'_, PyType>) -> PyResult<bool> {
    Ok(!guard::slot_is_objects(ty, pyo3::ffi::Py_tp_init))
}

impl Local {
    /// A new dict for the calling thread (whose key is `key`), and the watchdog that drops it
    /// when the thread state goes (CPython's `create_localsdict`).
    fn new_dict<'py>(
        &self,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyWeakrefReference>)> {
        let py = key.py();
        let sentinel = thread_sentinel(py)?;
        let holder = self.dicts.bind(py);
        let me = holder.get();
        let dict = PyDict::new(py);
        me.dicts.bind(py).set_item(key, &dict)?;
        // None of the three can be in a cycle (guard::untrack_acyclic): kept out of the
        // collector, each thread's first access adds nothing for it to visit.
        let to_holder = PyWeakrefReference::new(holder.as_any())?;
        guard::untrack_acyclic(&to_holder);
        let callback = Bound::new(
            py,
            ClearLocals {
                dicts: to_holder.unbind(),
                key: key.clone().unbind(),
            },
        )?;
        guard::untrack_acyclic(&callback);
        let watchdog = PyWeakrefReference::new_with(&sentinel, callback).and_then(|w| {
            guard::untrack_acyclic(&w);
            me.watchdogs.bind(py).add(&w).map(|()| w)
        });
        match watchdog {
            Ok(watchdog) => Ok((dict, watchdog)),
            Err(err) => {
                let _ = me.dicts.bind(py).del_item(key);
                Err(err)
            }
        }
    }
}

/// The calling thread's dict, made (and `__init__` run) on its first access.
fn thread_dict<'py>(slf: &Bound<'py, Local>) -> PyResult<Bound<'py, PyDict>> {
    let py = slf.py();
    let me = slf.get();
    let id = guard::thread_state_id(py);
    let dicts = me.dicts.get();
    if let Some(dict) = dicts.last(py, id) {
        return Ok(dict);
    }
    let key = thread_key(py)?;
    if let Some(dict) = dicts.dicts.bind(py).get_item(&key)? {
        let dict = dict.cast_into::<PyDict>()?;
        dicts.remember(id, &dict);
        return Ok(dict);
    }
    let (dict, watchdog) = me.new_dict(&key)?;
    let ty = slf.get_type();
    if has_init(&ty)? {
        let init = me
            .init
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|(args, kwargs)| (args.clone_ref(py), kwargs.as_ref().map(|k| k.clone_ref(py))));
        let (args, kwargs) = init.unwrap_or_else(|| (PyTuple::empty(py).unbind(), None));
        let mut call_args = vec![slf.clone().into_any()];
        call_args.extend(args.bind(py).iter());
        let result = guard::call(
            &ty.getattr(name_init(py))?,
            &PyTuple::new(py, call_args)?,
            kwargs.as_ref().map(|k| k.bind(py)),
        );
        if let Err(err) = result {
            // Forgotten, so that the next access makes a new dict and runs `__init__` again.
            forget_thread(py, me.dicts.get(), &key, watchdog.as_any())?;
            return Err(err);
        }
    }
    Ok(dict)
}

/// `name == "__dict__"` by CPython's rule (`PyObject_RichCompareBool`: any object may compare
/// equal): by identity first (the interned name), then an exact `str` by value (one with a lone
/// surrogate is not "__dict__"), anything else by rich comparison, which may run its `__eq__`.
fn is_dunder_dict(name: &Bound<'_, PyAny>) -> PyResult<bool> {
    let dunder = name_dict(name.py());
    if name.is(dunder) {
        return Ok(true);
    }
    match name.cast_exact::<PyString>() {
        Ok(name) => Ok(name.to_str().is_ok_and(|text| text == "__dict__")),
        Err(_) => guard::rich_eq(name, dunder),
    }
}

fn is_exact_local(slf: &Bound<'_, Local>) -> bool {
    slf.get_type_ptr() == <Local as pyo3::PyTypeInfo>::type_object_raw(slf.py())
}

/// `local_getattro`: `__dict__` is the thread's dict; the class itself looks in the dict first
/// (it has no attribute a dict entry could hide but `__class__` and `__dict__`); then
/// `object.__getattribute__`'s rules with the thread's dict.
fn getattribute<'py>(
    slf: &Bound<'py, Local>,
    name: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let dict = thread_dict(slf)?;
    if is_dunder_dict(name)? {
        return Ok(dict.into_any());
    }
    if is_exact_local(slf) {
        if let Some(value) = dict.get_item(name)? {
            return Ok(value);
        }
    }
    guard::generic_getattr_with_dict(slf.as_any(), name, &dict)
}

/// `tp_name`: `_thread._local` for the class itself, the bare name for a Python subclass.
fn tp_name(slf: &Bound<'_, Local>) -> PyResult<String> {
    if is_exact_local(slf) {
        Ok("_thread._local".to_owned())
    } else {
        Ok(slf.get_type().name()?.to_string())
    }
}

/// `local_setattro` (`value` None = delete): `__dict__` is read-only; then
/// `object.__setattr__`'s rules with the thread's dict.
fn setattr(
    slf: &Bound<'_, Local>,
    name: &Bound<'_, PyAny>,
    value: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let dict = thread_dict(slf)?;
    if is_dunder_dict(name)? {
        return Err(PyAttributeError::new_err(format!(
            "'{}' object attribute {} is read-only",
            tp_name(slf)?,
            name.repr()?
        )));
    }
    guard::generic_setattr_with_dict(slf.as_any(), name, value, &dict)
}

/// `_local`'s C-level `tp_getattro` and `tp_setattro` (guard.rs installs them at import).
struct LocalAttrs;

impl guard::AttrSlots for LocalAttrs {
    type Class = Local;

    fn getattro<'py>(
        slf: &Bound<'py, Local>,
        name: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        getattribute(slf, name)
    }

    fn setattro<'py>(
        slf: &Bound<'py, Local>,
        name: &Bound<'py, PyAny>,
        value: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<()> {
        setattr(slf, name, value)
    }
}

#[pymethods]
impl Local {
    #[new]
    #[classmethod]
    #[pyo3(signature = (*args, **kwargs))]
    fn py_new(
        cls: &Bound<'_, PyType>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let py = cls.py();
        if (!args.is_empty() || kwargs.is_some_and(|k| !k.is_empty())) && !has_init(cls)? {
            return Err(PyTypeError::new_err(
                "Initialization arguments are not supported",
            ));
        }
        let dicts = Py::new(
            py,
            LocalDicts {
                dicts: PyDict::new(py).unbind(),
                watchdogs: PySet::empty(py)?.unbind(),
                last: guard::LastDict::new(),
            },
        )?;
        let local = Local {
            dicts,
            init: Mutex::new(Some((
                args.clone().unbind(),
                kwargs.map(|k| k.clone().unbind()),
            ))),
        };
        // The creating thread's dict; the `__init__` that the type's call runs next fills it.
        local.new_dict(&thread_key(py)?)?;
        Ok(local)
    }

    // The three below make the type's `tp_getattro` and `tp_setattro` and their slot
    // wrappers; `register` then puts `LocalAttrs`'s C-level entries in their place
    // (guard::install_attr_slots), which call the same functions.
    fn __getattribute__<'py>(
        slf: &Bound<'py, Self>,
        name: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        getattribute(slf, name)
    }

    fn __setattr__(
        slf: &Bound<'_, Self>,
        name: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        setattr(slf, name, Some(value))
    }

    fn __delattr__(slf: &Bound<'_, Self>, name: &Bound<'_, PyAny>) -> PyResult<()> {
        setattr(slf, name, None)
    }

    /// The dicts (every thread's) and the constructor's arguments.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.dicts)?;
        // Never held while Python code runs, so never contended during a collection.
        if let Ok(init) = self.init.try_lock() {
            if let Some((args, kwargs)) = &*init {
                visit.call(args)?;
                if let Some(kwargs) = kwargs {
                    visit.call(kwargs)?;
                }
            }
        }
        Ok(())
    }

    /// Breaks cycles: drops every thread's dict and the arguments (CPython's `local_clear`).
    fn __clear__(&self) {
        self.dicts.get().__clear__();
        let init = self.init.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(init);
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Local>()?;
    guard::install_attr_slots::<LocalAttrs>(m.py())
}

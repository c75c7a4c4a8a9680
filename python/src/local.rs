//! `_thread._local` on the crate's `Tss<T>`: one key per `_local` object, whose value in each
//! thread is that thread's attribute dict.
//!
//! As CPython's `localobject`: `_local(*args, **kw)` is refused with "Initialization arguments
//! are not supported" unless the class defines `__init__`; the creating thread's dict is made
//! at construction; any other thread's dict is made on its first attribute access, which then
//! runs the class's `__init__(*args, **kw)` (and forgets the dict again if that raises);
//! `__dict__` is the calling thread's dict and cannot be assigned; a subclass's descriptors
//! (properties, methods, `__slots__`) work through the generic lookup, done here against the
//! thread's dict. The garbage collector sees every thread's dict (`Tss::for_each`), so a cycle
//! through a `_local` is collected. A thread's dicts go when the thread ends: a thread started
//! by this module drops them, with the GIL held, before it detaches
//! ([`release_thread_dicts`]); any other thread's go with its thread-local destructors (the
//! crate's `Tss` exit path). Every dict goes when the `_local` object does.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, Weak};

use pyo3::exceptions::{PyAttributeError, PyKeyError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple, PyType};
use pyo3::{PyTraverseError, PyVisit};

type Dicts = pythread::Tss<Py<PyDict>>;

/// The constructor's `(args, kwargs)`.
type InitArgs = (Py<PyTuple>, Option<Py<PyDict>>);

/// `_thread._local`: thread-local data.
#[pyclass(name = "_local", module = "_thread", weakref, frozen, subclass)]
pub(crate) struct Local {
    dicts: Arc<Dicts>,
    /// The constructor's arguments, passed to `__init__` in each new thread. `None` once the
    /// garbage collector has cleared the object.
    init: Mutex<Option<InitArgs>>,
}

thread_local! {
    /// The keys this thread has made a dict in: what [`release_thread_dicts`] empties.
    static USED: RefCell<Vec<Weak<Dicts>>> = const { RefCell::new(Vec::new()) };
}

/// Drops the calling thread's dict of every `_local` it used, now (the caller holds the GIL):
/// the module's threads call it before they detach for the last time. A dict's finalizer
/// that uses a `_local` again makes a new dict, which the next round drops.
pub(crate) fn release_thread_dicts(py: Python<'_>) {
    loop {
        let used = USED.with(|u| std::mem::take(&mut *u.borrow_mut()));
        if used.is_empty() {
            return;
        }
        for key in used {
            if let Some(dict) = key.upgrade().and_then(|key| key.take()) {
                // A dict's last reference can run any `__del__`: through the guard, as every
                // other release at a module thread's end (guard.rs).
                crate::guard::release(dict.into_bound(py));
            }
        }
    }
}

fn object_init(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    py.get_type::<PyAny>().getattr("__init__")
}

/// Whether `ty` defines `__init__` (its `tp_init` is not `object`'s).
fn has_init(ty: &Bound<'_, PyType>) -> PyResult<bool> {
    Ok(!ty.getattr("__init__")?.is(object_init(ty.py())?))
}

impl Local {
    /// A new dict for the calling thread.
    fn new_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        // `Err` only on a thread already running its thread-local destructors; the dict is
        // then this access's only.
        if self.dicts.set(dict.clone().unbind()).is_ok() {
            let weak = Arc::downgrade(&self.dicts);
            USED.with(|u| u.borrow_mut().push(weak));
        }
        Ok(dict)
    }
}

/// The calling thread's dict, made (and `__init__` run) on its first access.
fn thread_dict<'py>(slf: &Bound<'py, Local>) -> PyResult<Bound<'py, PyDict>> {
    let py = slf.py();
    let me = slf.get();
    if let Some(dict) = me.dicts.with(|d| d.map(|d| d.bind(py).clone())) {
        return Ok(dict);
    }
    let dict = me.new_dict(py)?;
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
        let result = ty.getattr("__init__")?.call(
            PyTuple::new(py, call_args)?,
            kwargs.as_ref().map(|k| k.bind(py)),
        );
        if let Err(err) = result {
            // Forgotten, so that the next access makes a new dict and runs `__init__` again.
            drop(me.dicts.take());
            return Err(err);
        }
    }
    Ok(dict)
}

thread_local! {
    /// What `__getattribute__` last raised as AttributeError, for `__getattr__` to re-raise.
    static LAST_ATTRIBUTE_ERROR: RefCell<Option<PyErr>> = const { RefCell::new(None) };
}

/// `local_getattro`: `__dict__` is the thread's dict; the class itself looks in the dict first.
fn getattribute<'py>(
    slf: &Bound<'py, Local>,
    name: &Bound<'py, PyString>,
) -> PyResult<Bound<'py, PyAny>> {
    let dict = thread_dict(slf)?;
    let name = name.as_any();
    if is_dunder_dict(name)? {
        return Ok(dict.into_any());
    }
    if slf.get_type().is(slf.py().get_type::<Local>()) {
        // The class itself has no attribute a dict entry could hide but `__class__` and
        // `__dict__`: the dict first, as CPython's fast path.
        if let Some(value) = dict.get_item(name)? {
            return Ok(value);
        }
    }
    generic_getattr(slf, name, &dict)
}

/// `_PyType_Lookup`: `name` in the `__dict__` of each class of `ty`'s MRO, without calling
/// any descriptor.
fn type_lookup<'py>(
    ty: &Bound<'py, PyType>,
    name: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    for cls in ty.getattr("__mro__")?.try_iter()? {
        let dict = cls?.getattr("__dict__")?;
        if dict.contains(name)? {
            return Ok(Some(dict.get_item(name)?));
        }
    }
    Ok(None)
}

/// `tp_name`: `_thread._local` for the class itself, the bare name for a Python subclass.
fn tp_name(slf: &Bound<'_, Local>) -> PyResult<String> {
    let ty = slf.get_type();
    if ty.is(slf.py().get_type::<Local>()) {
        Ok("_thread._local".to_owned())
    } else {
        Ok(ty.name()?.to_string())
    }
}

fn is_dunder_dict(name: &Bound<'_, PyAny>) -> PyResult<bool> {
    name.eq("__dict__")
}

/// `_PyObject_GenericGetAttrWithDict(self, name, dict)`: a data descriptor of the type, else
/// the dict, else a non-data descriptor or plain class attribute, else AttributeError.
fn generic_getattr<'py>(
    slf: &Bound<'py, Local>,
    name: &Bound<'py, PyAny>,
    dict: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyAny>> {
    let ty = slf.get_type();
    let descr = type_lookup(&ty, name)?;
    let mut getter = None;
    if let Some(descr) = &descr {
        let dty = descr.get_type();
        if let Some(get) = dty.getattr_opt("__get__")? {
            if dty.hasattr("__set__")? || dty.hasattr("__delete__")? {
                return get.call1((descr, slf, &ty));
            }
            getter = Some(get);
        }
    }
    if let Some(value) = dict.get_item(name)? {
        return Ok(value);
    }
    match (getter, descr) {
        (Some(get), Some(descr)) => get.call1((descr, slf, &ty)),
        (None, Some(descr)) => Ok(descr),
        _ => Err(PyAttributeError::new_err(format!(
            "'{}' object has no attribute '{}'",
            tp_name(slf)?,
            name.str()?
        ))),
    }
}

/// `_PyObject_GenericSetAttrWithDict(self, name, value, dict)` (`value` None = delete): a data
/// descriptor of the type, else the dict.
fn generic_setattr(
    slf: &Bound<'_, Local>,
    name: &Bound<'_, PyAny>,
    value: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let dict = thread_dict(slf)?;
    if is_dunder_dict(name)? {
        return Err(PyAttributeError::new_err(format!(
            "'{}' object attribute '__dict__' is read-only",
            tp_name(slf)?
        )));
    }
    let ty = slf.get_type();
    if let Some(descr) = type_lookup(&ty, name)? {
        let dty = descr.get_type();
        if dty.hasattr("__set__")? || dty.hasattr("__delete__")? {
            return match value {
                Some(value) => dty.getattr("__set__")?.call1((descr, slf, value)).map(drop),
                None => dty.getattr("__delete__")?.call1((descr, slf)).map(drop),
            };
        }
    }
    match value {
        Some(value) => dict.set_item(name, value),
        None => dict.del_item(name).map_err(|e| {
            if e.is_instance_of::<PyKeyError>(slf.py()) {
                match (tp_name(slf), name.str()) {
                    (Ok(t), Ok(n)) => {
                        PyAttributeError::new_err(format!("'{t}' object has no attribute '{n}'"))
                    }
                    (Err(e), _) | (_, Err(e)) => e,
                }
            } else {
                e
            }
        }),
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
        let dicts = Arc::new(Dicts::new());
        dicts.create();
        let local = Local {
            dicts,
            init: Mutex::new(Some((
                args.clone().unbind(),
                kwargs.map(|k| k.clone().unbind()),
            ))),
        };
        // The creating thread's dict; the `__init__` that the type's call runs next fills it.
        local.new_dict(py)?;
        Ok(local)
    }

    fn __getattribute__<'py>(
        slf: &Bound<'py, Self>,
        name: &Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, PyAny>> {
        getattribute(slf, name).inspect_err(|err| {
            if err.is_instance_of::<PyAttributeError>(slf.py()) {
                LAST_ATTRIBUTE_ERROR.with(|e| *e.borrow_mut() = Some(err.clone_ref(slf.py())));
            }
        })
    }

    /// PyO3 calls `__getattr__` whenever `__getattribute__` raised AttributeError (and, without
    /// one, raises a bare `AttributeError(name)`): this re-raises the error that
    /// `__getattribute__` raised, message and all.
    fn __getattr__(slf: &Bound<'_, Self>, name: &Bound<'_, PyString>) -> PyResult<()> {
        match LAST_ATTRIBUTE_ERROR.with(|e| e.borrow_mut().take()) {
            Some(err) => Err(err),
            None => Err(PyAttributeError::new_err(format!(
                "'{}' object has no attribute '{}'",
                tp_name(slf)?,
                name
            ))),
        }
    }

    fn __setattr__(
        slf: &Bound<'_, Self>,
        name: &Bound<'_, PyString>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        generic_setattr(slf, name.as_any(), Some(value))
    }

    fn __delattr__(slf: &Bound<'_, Self>, name: &Bound<'_, PyString>) -> PyResult<()> {
        generic_setattr(slf, name.as_any(), None)
    }

    /// Every thread's dict and the constructor's arguments.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        let mut result = Ok(());
        self.dicts.for_each(|dict| {
            if result.is_ok() {
                result = visit.call(dict);
            }
        });
        result?;
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
        // Deleting drops every value, after the key's lock is released; the key is then
        // created again, empty, for any later access.
        self.dicts.delete();
        self.dicts.create();
        let init = self.init.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(init);
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Local>()
}

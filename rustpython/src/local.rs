//! `_thread._local` on the crate's `Tss`: each thread's attribute dict is that thread's value
//! of the object's key.

use std::cell::RefCell;
use std::sync::Weak;

use rustpython_vm::builtins::PyDictRef;

/// A `_local`'s key: one attribute dict per thread.
type Key = pythread::Tss<PyDictRef>;

std::thread_local! {
    /// The keys this thread has set a value in, so that its values go while it is still in the
    /// VM (`thread_exiting`): the crate would drop them too, but from the thread's thread-local
    /// destructors, outside the VM, where an object's `__del__` cannot run.
    static SET_HERE: RefCell<Vec<Weak<Key>>> = const { RefCell::new(Vec::new()) };
}

/// Called by a started thread right before it leaves the VM: drops its `_local` dicts.
pub(crate) fn thread_exiting() {
    let keys = SET_HERE.with(|keys| std::mem::take(&mut *keys.borrow_mut()));
    for key in keys.iter().filter_map(Weak::upgrade) {
        drop(key.take());
    }
}

#[rustpython_vm::pymodule(sub)]
pub(crate) mod locals {
    use std::sync::Arc;

    use rustpython_vm::builtins::{PyDictRef, PyStr, PyTypeRef};
    use rustpython_vm::function::{FuncArgs, PySetterValue};
    use rustpython_vm::types::{GetAttr, SetAttr};
    use rustpython_vm::{pyclass, AsObject, Py, PyPayload, PyResult, VirtualMachine};

    use super::{Key, SET_HERE};

    #[pyattr]
    #[pyclass(module = "_thread", name = "_local")]
    #[derive(Debug, PyPayload)]
    struct Local {
        key: Arc<Key>,
    }

    impl Local {
        /// This thread's dict, created on first use.
        fn dict(&self, vm: &VirtualMachine) -> PyDictRef {
            if let Some(dict) = self.key.get() {
                return dict;
            }
            let dict = vm.ctx.new_dict();
            if self.key.set(dict.clone()).is_ok() {
                SET_HERE.with(|keys| keys.borrow_mut().push(Arc::downgrade(&self.key)));
            }
            dict
        }
    }

    #[pyclass(with(GetAttr, SetAttr), flags(BASETYPE))]
    impl Local {
        #[pyslot]
        fn slot_new(cls: PyTypeRef, _args: FuncArgs, vm: &VirtualMachine) -> PyResult {
            let key = Key::new();
            key.create();
            Local { key: Arc::new(key) }
                .into_ref_with_type(vm, cls)
                .map(Into::into)
        }
    }

    impl GetAttr for Local {
        fn getattro(zelf: &Py<Self>, attr: &Py<PyStr>, vm: &VirtualMachine) -> PyResult {
            let dict = zelf.dict(vm);
            if attr.as_bytes() == b"__dict__" {
                return Ok(dict.into());
            }
            zelf.as_object()
                .generic_getattr_opt(attr, Some(dict), vm)?
                .ok_or_else(|| {
                    vm.new_attribute_error(format!(
                        "'{}' object has no attribute '{}'",
                        zelf.class().name(),
                        attr
                    ))
                })
        }
    }

    impl SetAttr for Local {
        fn setattro(
            zelf: &Py<Self>,
            attr: &Py<PyStr>,
            value: PySetterValue,
            vm: &VirtualMachine,
        ) -> PyResult<()> {
            if attr.as_bytes() == b"__dict__" {
                return Err(vm.new_attribute_error(format!(
                    "'{}' object attribute '__dict__' is read-only",
                    zelf.class().name()
                )));
            }
            let dict = zelf.dict(vm);
            match value {
                PySetterValue::Assign(value) => dict.set_item(attr, value, vm),
                PySetterValue::Delete => dict.del_item(attr, vm),
            }
        }
    }
}

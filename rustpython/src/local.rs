//! `_thread._local` on the layer's `LocalDicts`: each thread's attribute dict is that
//! thread's value of the object's key; a thread started by the module drops its dicts while
//! still in the VM (`Runtime::thread_exiting`, `runtime.rs`), and a forked child drops the
//! lost threads' dicts at the object's next access (`fork.rs`).

#[rustpython_vm::pymodule(sub)]
pub(crate) mod locals {
    use rustpython_vm::builtins::{PyDictRef, PyStr, PyTypeRef};
    use rustpython_vm::function::{FuncArgs, PySetterValue};
    use rustpython_vm::types::{GetAttr, SetAttr};
    use rustpython_vm::{pyclass, AsObject, Py, PyPayload, PyResult, VirtualMachine};
    use threadmodule::LocalDicts;

    #[pyattr]
    #[pyclass(module = "_thread", name = "_local")]
    #[derive(Debug, PyPayload)]
    struct Local {
        dicts: LocalDicts<PyDictRef>,
    }

    impl Local {
        /// This thread's dict, created on first use.
        fn dict(&self, vm: &VirtualMachine) -> PyDictRef {
            let made = self.dicts.get_or_init(
                PyDictRef::clone,
                || vm.ctx.new_dict(),
                |_| Ok::<(), std::convert::Infallible>(()),
            );
            match made {
                Ok(dict) => dict,
                Err(never) => match never {},
            }
        }
    }

    #[pyclass(with(GetAttr, SetAttr), flags(BASETYPE))]
    impl Local {
        #[pyslot]
        fn slot_new(cls: PyTypeRef, _args: FuncArgs, vm: &VirtualMachine) -> PyResult {
            Local {
                dicts: LocalDicts::new(),
            }
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

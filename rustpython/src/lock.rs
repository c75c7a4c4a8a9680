//! `_thread.lock` (`LockType`, `allocate_lock`) and `_thread.RLock` on the layer's
//! `LockObject` and `RLockObject`: argument parsing and reprs as RustPython's own module has
//! them. `locked()` reports the lock itself (RustPython's rule, `LockedReport::Lock`); only an
//! RLock's owner may `_release_save` it (`ReleaseSaveRule::Owner`: RustPython's threading.py
//! is 3.14's).

#[rustpython_vm::pymodule(sub)]
pub(crate) mod locks {
    use std::time::Duration;

    use rustpython_vm::builtins::{PyTupleRef, PyType, PyTypeRef};
    use rustpython_vm::function::{FuncArgs, TimeoutSeconds};
    use rustpython_vm::types::{Constructor, Representable};
    use rustpython_vm::{pyclass, AsObject, FromArgs, Py, PyPayload, PyResult, VirtualMachine};
    use threadmodule::{LockObject, LockedReport, RLockObject, ReleaseSaveRule};

    use crate::runtime::Rt;

    #[derive(FromArgs)]
    struct AcquireArgs {
        #[pyarg(any, default = true)]
        blocking: bool,
        #[pyarg(any, default = TimeoutSeconds::new(-1.0))]
        timeout: TimeoutSeconds,
    }

    impl AcquireArgs {
        /// CPython's `lock_acquire_parse_args`: `None` = no timeout.
        fn timeout(&self, rt: &Rt<'_>) -> PyResult<Option<Duration>> {
            threadmodule::acquire_timeout(self.blocking, self.timeout.to_secs_f64())
                .map_err(|e| rt.raise(e))
        }
    }

    /// `_thread.lock`: a binary semaphore that any thread may release.
    #[pyattr(name = "LockType")]
    #[pyattr(name = "lock")]
    #[pyclass(module = "_thread", name = "lock")]
    #[derive(Debug, Default, PyPayload)]
    pub(crate) struct Lock {
        lock: LockObject,
    }

    #[pyclass(with(Constructor, Representable), flags(HAS_WEAKREF))]
    impl Lock {
        #[pymethod]
        #[pymethod(name = "acquire_lock")]
        #[pymethod(name = "__enter__")]
        fn acquire(&self, args: AcquireArgs, vm: &VirtualMachine) -> PyResult<bool> {
            let rt = Rt(vm);
            self.lock.acquire(&rt, args.timeout(&rt)?)
        }

        #[pymethod]
        #[pymethod(name = "release_lock")]
        fn release(&self, vm: &VirtualMachine) -> PyResult<()> {
            self.lock.release().map_err(|e| Rt(vm).raise(e))
        }

        #[pymethod]
        fn __exit__(&self, _args: FuncArgs, vm: &VirtualMachine) -> PyResult<()> {
            self.release(vm)
        }

        #[pymethod]
        #[pymethod(name = "locked_lock")]
        fn locked(&self) -> bool {
            self.lock.locked(LockedReport::Lock)
        }

        /// In a forked child: unlocked, whatever the parent's threads left in it.
        #[pymethod]
        fn _at_fork_reinit(&self) {
            self.lock.at_fork_reinit();
        }
    }

    impl Constructor for Lock {
        type Args = ();

        fn py_new(_cls: &Py<PyType>, _args: (), _vm: &VirtualMachine) -> PyResult<Self> {
            Ok(Lock::default())
        }
    }

    impl Representable for Lock {
        fn repr_str(zelf: &Py<Self>, _vm: &VirtualMachine) -> PyResult<String> {
            let state = if zelf.locked() { "locked" } else { "unlocked" };
            Ok(format!(
                "<{state} {} object at {:#x}>",
                zelf.class().slot_name(),
                zelf.get_id()
            ))
        }
    }

    /// allocate_lock() -> lock
    #[pyfunction]
    #[pyfunction(name = "allocate")]
    fn allocate_lock() -> Lock {
        Lock::default()
    }

    /// `_thread.RLock`: reentrant, owned by the thread that holds it; its owner is a thread
    /// ident as Python code sees it (`ident.rs`), with CPython's rule (the layer's).
    #[pyattr]
    #[pyclass(module = "_thread", name = "RLock")]
    #[derive(Debug, PyPayload)]
    struct RLock {
        rlock: RLockObject,
    }

    #[pyclass(with(Representable), flags(BASETYPE, HAS_WEAKREF))]
    impl RLock {
        /// Any arguments are accepted and ignored, as CPython's `rlock_new` does.
        #[pyslot]
        fn slot_new(cls: PyTypeRef, _args: FuncArgs, vm: &VirtualMachine) -> PyResult {
            RLock {
                rlock: RLockObject::new(),
            }
            .into_ref_with_type(vm, cls)
            .map(Into::into)
        }

        #[pymethod]
        #[pymethod(name = "acquire_lock")]
        #[pymethod(name = "__enter__")]
        fn acquire(&self, args: AcquireArgs, vm: &VirtualMachine) -> PyResult<bool> {
            let rt = Rt(vm);
            self.rlock.acquire(&rt, args.timeout(&rt)?)
        }

        #[pymethod]
        #[pymethod(name = "release_lock")]
        fn release(&self, vm: &VirtualMachine) -> PyResult<()> {
            self.rlock.release::<Rt<'_>>().map_err(|e| Rt(vm).raise(e))
        }

        #[pymethod]
        fn __exit__(&self, _args: FuncArgs, vm: &VirtualMachine) -> PyResult<()> {
            self.release(vm)
        }

        #[pymethod]
        fn locked(&self) -> bool {
            self.rlock.locked()
        }

        #[pymethod]
        fn _is_owned(&self) -> bool {
            self.rlock.is_owned::<Rt<'_>>()
        }

        #[pymethod]
        fn _recursion_count(&self) -> u64 {
            self.rlock.recursion_count::<Rt<'_>>()
        }

        /// Releases the lock fully and returns `(count, owner)` for `_acquire_restore`.
        #[pymethod]
        fn _release_save(&self, vm: &VirtualMachine) -> PyResult<(u64, u64)> {
            self.rlock
                .release_save::<Rt<'_>>(ReleaseSaveRule::Owner)
                .map_err(|e| Rt(vm).raise(e))
        }

        /// Takes the lock back and makes `owner` the owner with `count`, whichever thread that
        /// is (CPython's rule). A count of 0 restores nothing (RustPython's own rule).
        #[pymethod]
        fn _acquire_restore(&self, state: PyTupleRef, vm: &VirtualMachine) -> PyResult<()> {
            let [count, owner] = state.as_slice() else {
                return Err(
                    vm.new_type_error("_acquire_restore() argument 1 must be a 2-item tuple")
                );
            };
            let count: u64 = count.clone().try_into_value(vm)?;
            let owner: u64 = owner.clone().try_into_value(vm)?;
            if count == 0 {
                return Ok(());
            }
            self.rlock.acquire_restore(&Rt(vm), (count, owner))
        }

        /// In a forked child: unlocked and unowned, whatever the parent's threads left.
        #[pymethod]
        fn _at_fork_reinit(&self) {
            self.rlock.at_fork_reinit();
        }
    }

    impl Representable for RLock {
        fn repr_str(zelf: &Py<Self>, _vm: &VirtualMachine) -> PyResult<String> {
            let (status, (owner, count)) = match zelf.rlock.state() {
                (_, 0) => ("unlocked", (0, 0)),
                state => ("locked", state),
            };
            Ok(format!(
                "<{status} {} object owner={owner} count={count} at {:#x}>",
                zelf.class().slot_name(),
                zelf.get_id()
            ))
        }
    }
}

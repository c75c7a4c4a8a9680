//! `_thread.lock` (`LockType`, `allocate_lock`) and `_thread.RLock` on the crate's `Lock` and
//! `RLock`: argument parsing and reprs as RustPython's own module has them, every acquisition,
//! release and wait the crate's.

#[rustpython_vm::pymodule(sub)]
pub(crate) mod locks {
    use std::num::NonZeroUsize;
    use std::time::Duration;

    use rustpython_vm::builtins::{PyTupleRef, PyType, PyTypeRef};
    use rustpython_vm::function::{FuncArgs, TimeoutSeconds};
    use rustpython_vm::types::{Constructor, Representable};
    use rustpython_vm::{pyclass, AsObject, FromArgs, Py, PyPayload, PyResult, VirtualMachine};

    use crate::wait::{interrupted, wait_interruptibly, Interrupted};

    #[derive(FromArgs)]
    struct AcquireArgs {
        #[pyarg(any, default = true)]
        blocking: bool,
        #[pyarg(any, default = TimeoutSeconds::new(-1.0))]
        timeout: TimeoutSeconds,
    }

    /// CPython's `lock_acquire_parse_args` then `acquire_timed`: the arguments by the crate's
    /// rules (3.13's messages), one try attached, then (unless it may only try) the
    /// interruptible wait.
    fn acquire(
        vm: &VirtualMachine,
        args: AcquireArgs,
        try_acquire: impl FnOnce() -> bool,
        wait: impl FnMut(Option<Duration>) -> Result<bool, Interrupted>,
    ) -> PyResult<bool> {
        let timeout = pythread::parse_acquire_args(args.blocking, args.timeout.to_secs_f64())
            .map_err(|e| match e.kind() {
                pythread::TimeoutErrorKind::Value => vm.new_value_error(e.to_string()),
                pythread::TimeoutErrorKind::Overflow => vm.new_overflow_error(e.to_string()),
            })?;
        if try_acquire() {
            return Ok(true);
        }
        if timeout == Some(Duration::ZERO) {
            return Ok(false);
        }
        wait_interruptibly(vm, timeout, wait)
    }

    fn released(vm: &VirtualMachine, result: Result<(), pythread::ReleaseError>) -> PyResult<()> {
        result.map_err(|e| vm.new_runtime_error(e.to_string()))
    }

    /// `_thread.lock`: a binary semaphore that any thread may release.
    #[pyattr(name = "LockType")]
    #[pyattr(name = "lock")]
    #[pyclass(module = "_thread", name = "lock")]
    #[derive(Debug, PyPayload)]
    pub(crate) struct Lock {
        lock: pythread::Lock,
    }

    impl Lock {
        pub(crate) fn new() -> Lock {
            Lock {
                lock: pythread::Lock::new(),
            }
        }
    }

    #[pyclass(with(Constructor, Representable), flags(HAS_WEAKREF))]
    impl Lock {
        #[pymethod]
        #[pymethod(name = "acquire_lock")]
        #[pymethod(name = "__enter__")]
        fn acquire(&self, args: AcquireArgs, vm: &VirtualMachine) -> PyResult<bool> {
            let lock = &self.lock;
            acquire(
                vm,
                args,
                || lock.try_acquire(),
                |timeout| lock.acquire_with_retries(timeout, interrupted),
            )
        }

        #[pymethod]
        #[pymethod(name = "release_lock")]
        fn release(&self, vm: &VirtualMachine) -> PyResult<()> {
            released(vm, self.lock.release())
        }

        #[pymethod]
        fn __exit__(&self, _args: FuncArgs, vm: &VirtualMachine) -> PyResult<()> {
            self.release(vm)
        }

        #[pymethod]
        #[pymethod(name = "locked_lock")]
        fn locked(&self) -> bool {
            self.lock.locked()
        }

        /// In a forked child: unlocked, whatever the parent's threads left in it.
        #[pymethod]
        fn _at_fork_reinit(&self) {
            self.lock.reinit_after_fork();
        }
    }

    impl Constructor for Lock {
        type Args = ();

        fn py_new(_cls: &Py<PyType>, _args: (), _vm: &VirtualMachine) -> PyResult<Self> {
            Ok(Lock::new())
        }
    }

    impl Representable for Lock {
        fn repr_str(zelf: &Py<Self>, _vm: &VirtualMachine) -> PyResult<String> {
            let state = if zelf.lock.locked() {
                "locked"
            } else {
                "unlocked"
            };
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
        Lock::new()
    }

    /// `_thread.RLock`: reentrant, owned by the thread that holds it.
    #[pyattr]
    #[pyclass(module = "_thread", name = "RLock")]
    #[derive(Debug, PyPayload)]
    struct RLock {
        lock: pythread::RLock,
    }

    #[pyclass(with(Representable), flags(BASETYPE, HAS_WEAKREF))]
    impl RLock {
        /// Any arguments are accepted and ignored, as CPython's `rlock_new` does.
        #[pyslot]
        fn slot_new(cls: PyTypeRef, _args: FuncArgs, vm: &VirtualMachine) -> PyResult {
            RLock {
                lock: pythread::RLock::new(),
            }
            .into_ref_with_type(vm, cls)
            .map(Into::into)
        }

        #[pymethod]
        #[pymethod(name = "acquire_lock")]
        #[pymethod(name = "__enter__")]
        fn acquire(&self, args: AcquireArgs, vm: &VirtualMachine) -> PyResult<bool> {
            let lock = &self.lock;
            acquire(
                vm,
                args,
                || lock.try_acquire(),
                |timeout| lock.acquire_with_retries(timeout, interrupted),
            )
        }

        #[pymethod]
        #[pymethod(name = "release_lock")]
        fn release(&self, vm: &VirtualMachine) -> PyResult<()> {
            released(vm, self.lock.release())
        }

        #[pymethod]
        fn __exit__(&self, _args: FuncArgs, vm: &VirtualMachine) -> PyResult<()> {
            self.release(vm)
        }

        #[pymethod]
        fn locked(&self) -> bool {
            self.lock.locked()
        }

        #[pymethod]
        fn _is_owned(&self) -> bool {
            self.lock.is_owned()
        }

        #[pymethod]
        fn _recursion_count(&self) -> usize {
            self.lock.recursion_count()
        }

        /// Releases the lock fully (only its owner may: 3.14's rule, which RustPython's
        /// threading.py expects) and returns `(count, owner)` for `_acquire_restore`.
        #[pymethod]
        fn _release_save(&self, vm: &VirtualMachine) -> PyResult<(usize, u64)> {
            let state = self
                .lock
                .release_save()
                .map_err(|e| vm.new_runtime_error(e.to_string()))?;
            Ok((state.count(), state.owner().as_u64()))
        }

        /// Takes the lock back (blocking, detached, not interruptible, as CPython's) and
        /// restores the count and owner. An owner that is not an ident the crate minted is
        /// restored as the calling thread.
        #[pymethod]
        fn _acquire_restore(&self, state: PyTupleRef, vm: &VirtualMachine) -> PyResult<()> {
            let [count, owner] = state.as_slice() else {
                return Err(
                    vm.new_type_error("_acquire_restore() argument 1 must be a 2-item tuple")
                );
            };
            let count: usize = count.clone().try_into_value(vm)?;
            let owner: u64 = owner.clone().try_into_value(vm)?;
            let Some(count) = NonZeroUsize::new(count) else {
                return Ok(());
            };
            let owner = pythread::Ident::from_u64(owner).unwrap_or_else(pythread::get_ident);
            let state = pythread::RLockState::new(count, owner);
            let lock = &self.lock;
            vm.allow_threads(|| lock.acquire_restore(state));
            Ok(())
        }

        /// In a forked child: unlocked and unowned, whatever the parent's threads left.
        #[pymethod]
        fn _at_fork_reinit(&self) {
            self.lock.reinit_after_fork();
        }
    }

    impl Representable for RLock {
        fn repr_str(zelf: &Py<Self>, _vm: &VirtualMachine) -> PyResult<String> {
            // One consistent read of owner and count, from any thread.
            // One consistent read of owner and count, from any thread.
            let (status, owner, count) = match zelf.lock.state() {
                Some(state) => ("locked", state.owner().as_u64(), state.count()),
                None => ("unlocked", 0, 0),
            };
            Ok(format!(
                "<{status} {} object owner={owner} count={count} at {:#x}>",
                zelf.class().slot_name(),
                zelf.get_id()
            ))
        }
    }
}

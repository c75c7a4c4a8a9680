//! `_thread.lock` (`LockType`, `allocate_lock`) and `_thread.RLock` on the crate's `Lock`:
//! argument parsing and reprs as RustPython's own module has them, every acquisition, release
//! and wait the crate's. The RLock's owner and count are kept here, as CPython's
//! `rlockobject` keeps them: the owner is a thread ident as Python code sees it (`ident.rs`).

#[rustpython_vm::pymodule(sub)]
pub(crate) mod locks {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::time::Duration;

    use rustpython_vm::builtins::{PyTupleRef, PyType, PyTypeRef};
    use rustpython_vm::function::{FuncArgs, TimeoutSeconds};
    use rustpython_vm::types::{Constructor, Representable};
    use rustpython_vm::{pyclass, AsObject, FromArgs, Py, PyPayload, PyResult, VirtualMachine};

    use crate::ident::get_ident;
    use crate::wait::{interrupted, wait_interruptibly};

    #[derive(FromArgs)]
    struct AcquireArgs {
        #[pyarg(any, default = true)]
        blocking: bool,
        #[pyarg(any, default = TimeoutSeconds::new(-1.0))]
        timeout: TimeoutSeconds,
    }

    /// CPython's `lock_acquire_parse_args`: the arguments by the crate's rules (3.13's
    /// messages); `None` = no timeout.
    fn parse_timeout(vm: &VirtualMachine, args: AcquireArgs) -> PyResult<Option<Duration>> {
        pythread::parse_acquire_args(args.blocking, args.timeout.to_secs_f64()).map_err(|e| match e
            .kind()
        {
            pythread::TimeoutErrorKind::Value => vm.new_value_error(e.to_string()),
            pythread::TimeoutErrorKind::Overflow => vm.new_overflow_error(e.to_string()),
        })
    }

    /// CPython's `acquire_timed`: one try attached, then (unless it may only try) the
    /// interruptible wait.
    fn acquire_timed(
        vm: &VirtualMachine,
        lock: &pythread::Lock,
        timeout: Option<Duration>,
    ) -> PyResult<bool> {
        if lock.try_acquire() {
            return Ok(true);
        }
        if timeout == Some(Duration::ZERO) {
            return Ok(false);
        }
        wait_interruptibly(vm, timeout, |timeout| {
            lock.acquire_with_retries(timeout, interrupted)
        })
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
            acquire_timed(vm, &self.lock, parse_timeout(vm, args)?)
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

    fn unacquired(vm: &VirtualMachine) -> rustpython_vm::builtins::PyBaseExceptionRef {
        vm.new_runtime_error("cannot release un-acquired lock")
    }

    /// `_thread.RLock`: reentrant, owned by the thread that holds it. CPython's `rlockobject`:
    /// the crate's `Lock`, held while the RLock is owned, and the owner's ident and count.
    ///
    /// The owner is a number, as in CPython: a thread owns the lock when `owner` equals its
    /// `get_ident()` (and `count` > 0). So `_acquire_restore((count, ident))` makes whichever
    /// thread has `ident` the owner: another thread, or none; and a thread that gets the
    /// ident (`pthread_t`) of one that ended while it owned the lock owns it too.
    ///
    /// `owner` and `count` change only in the thread that holds `lock` (or, for `count`, the
    /// owner), so each change is a plain store; `repr` from another thread reads them twice
    /// over to pair a count with its owner.
    #[pyattr]
    #[pyclass(module = "_thread", name = "RLock")]
    #[derive(Debug, PyPayload)]
    struct RLock {
        lock: pythread::Lock,
        /// The owner's ident; 0 when unowned.
        owner: AtomicU64,
        /// The owner's recursion count; 0 when unowned.
        count: AtomicUsize,
    }

    impl RLock {
        /// The count of the calling thread `me` if it owns the lock.
        fn own_count(&self, me: u64) -> Option<usize> {
            let count = self.count.load(Ordering::Acquire);
            (count > 0 && self.owner.load(Ordering::Acquire) == me).then_some(count)
        }

        /// Takes ownership once `lock` is held.
        fn took(&self, owner: u64, count: usize) {
            self.owner.store(owner, Ordering::Release);
            self.count.store(count, Ordering::Release);
        }

        /// Gives up ownership; `lock` is released next.
        fn clear(&self) {
            self.count.store(0, Ordering::Release);
            self.owner.store(0, Ordering::Release);
        }

        fn release_lock(&self) {
            let released = self.lock.release();
            debug_assert!(released.is_ok(), "an owned RLock's lock is held");
        }

        /// `(owner, count)` as one, from any thread; `None` when unowned.
        fn state(&self) -> Option<(u64, usize)> {
            loop {
                let count = self.count.load(Ordering::Acquire);
                if count == 0 {
                    return None;
                }
                let owner = self.owner.load(Ordering::Acquire);
                // Unchanged across the owner's read: this count is this owner's (an owner
                // is set before its count and cleared after it, so a change of owner
                // between the reads leaves a count of 0 or the new owner's here).
                if self.count.load(Ordering::Acquire) == count {
                    return Some((owner, count));
                }
                std::thread::yield_now();
            }
        }
    }

    #[pyclass(with(Representable), flags(BASETYPE, HAS_WEAKREF))]
    impl RLock {
        /// Any arguments are accepted and ignored, as CPython's `rlock_new` does.
        #[pyslot]
        fn slot_new(cls: PyTypeRef, _args: FuncArgs, vm: &VirtualMachine) -> PyResult {
            RLock {
                lock: pythread::Lock::new(),
                owner: AtomicU64::new(0),
                count: AtomicUsize::new(0),
            }
            .into_ref_with_type(vm, cls)
            .map(Into::into)
        }

        /// CPython's `rlock_acquire`: the arguments first, then the owner takes it again at
        /// once (count + 1, never wrapping), anyone else acquires `lock`.
        #[pymethod]
        #[pymethod(name = "acquire_lock")]
        #[pymethod(name = "__enter__")]
        fn acquire(&self, args: AcquireArgs, vm: &VirtualMachine) -> PyResult<bool> {
            let timeout = parse_timeout(vm, args)?;
            let me = get_ident();
            if let Some(count) = self.own_count(me) {
                let count = count
                    .checked_add(1)
                    .ok_or_else(|| vm.new_overflow_error("Internal lock count overflowed"))?;
                self.count.store(count, Ordering::Release);
                return Ok(true);
            }
            let acquired = acquire_timed(vm, &self.lock, timeout)?;
            if acquired {
                self.took(me, 1);
            }
            Ok(acquired)
        }

        #[pymethod]
        #[pymethod(name = "release_lock")]
        fn release(&self, vm: &VirtualMachine) -> PyResult<()> {
            let count = self.own_count(get_ident()).ok_or_else(|| unacquired(vm))?;
            if count == 1 {
                self.clear();
                self.release_lock();
            } else {
                self.count.store(count - 1, Ordering::Release);
            }
            Ok(())
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
            self.own_count(get_ident()).is_some()
        }

        #[pymethod]
        fn _recursion_count(&self) -> usize {
            self.own_count(get_ident()).unwrap_or(0)
        }

        /// Releases the lock fully (only its owner may: 3.14's rule, which RustPython's
        /// threading.py expects) and returns `(count, owner)` for `_acquire_restore`.
        #[pymethod]
        fn _release_save(&self, vm: &VirtualMachine) -> PyResult<(usize, u64)> {
            let me = get_ident();
            let count = self.own_count(me).ok_or_else(|| unacquired(vm))?;
            self.clear();
            self.release_lock();
            Ok((count, me))
        }

        /// Takes the lock back (blocking, detached, not interruptible, as CPython's) and
        /// makes `owner` the owner with `count`, whichever thread that is (CPython's rule;
        /// see the type). A count of 0 restores nothing.
        #[pymethod]
        fn _acquire_restore(&self, state: PyTupleRef, vm: &VirtualMachine) -> PyResult<()> {
            let [count, owner] = state.as_slice() else {
                return Err(
                    vm.new_type_error("_acquire_restore() argument 1 must be a 2-item tuple")
                );
            };
            let count: usize = count.clone().try_into_value(vm)?;
            let owner: u64 = owner.clone().try_into_value(vm)?;
            if count == 0 {
                return Ok(());
            }
            let lock = &self.lock;
            if !lock.try_acquire() {
                vm.allow_threads(|| lock.acquire());
            }
            self.took(owner, count);
            Ok(())
        }

        /// In a forked child: unlocked and unowned, whatever the parent's threads left.
        #[pymethod]
        fn _at_fork_reinit(&self) {
            self.clear();
            self.lock.reinit_after_fork();
        }
    }

    impl Representable for RLock {
        fn repr_str(zelf: &Py<Self>, _vm: &VirtualMachine) -> PyResult<String> {
            let (status, owner, count) = match zelf.state() {
                Some((owner, count)) => ("locked", owner, count),
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

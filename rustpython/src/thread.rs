//! Threads: `start_new_thread`, `start_joinable_thread` and `_ThreadHandle`, every thread a
//! crate thread (`pythread::Builder`), every join the crate's. The idents they show are
//! RustPython's own (`ident.rs`). In a forked child the crate finishes the handles of the
//! threads that did not survive (`fork.rs`).

use std::sync::atomic::AtomicUsize;

/// `stack_size()`: the size new threads get, 0 = the platform default.
pub(crate) static STACK_SIZE: AtomicUsize = AtomicUsize::new(0);

#[rustpython_vm::pymodule(sub)]
pub(crate) mod threads {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex, MutexGuard};
    use std::time::Duration;

    use rustpython_vm::builtins::{PyDictRef, PyTupleRef, PyType};
    use rustpython_vm::convert::TryFromObject;
    use rustpython_vm::function::{ArgCallable, FuncArgs, KwArgs, TimeoutSeconds};
    use rustpython_vm::types::{Constructor, Representable};
    use rustpython_vm::{
        pyclass, AsObject, FromArgs, Py, PyObjectRef, PyPayload, PyRef, PyResult, VirtualMachine,
    };

    use super::STACK_SIZE;
    use crate::ident::{get_ident, StartedIdent};
    use crate::wait::{interrupted, wait_interruptibly};

    /// Starts `func(*args, **kwargs)` on a crate thread that runs it in a new thread of the VM
    /// (`vm.new_thread()`), as RustPython's own `_thread` does on a `std` thread. The thread
    /// publishes its ident before it enters the VM.
    fn spawn(
        vm: &VirtualMachine,
        func: ArgCallable,
        args: FuncArgs,
        daemon: bool,
    ) -> std::io::Result<(pythread::Handle, Arc<StartedIdent>)> {
        let ident = Arc::new(StartedIdent::new());
        let published = Arc::clone(&ident);
        let enter_vm = vm
            .new_thread()
            .make_spawn_func(move |vm| run_thread(func, args, vm));
        let handle = pythread::Builder::new()
            .daemon(daemon)
            .stack_size(STACK_SIZE.load(Ordering::Relaxed))
            .try_start(move || {
                published.publish();
                drop(published);
                enter_vm()
            })?;
        Ok((handle, ident))
    }

    /// The started thread: the function, its exception reported through
    /// `sys.unraisablehook` (a `SystemExit` silently ends it), then the VM's per-thread state
    /// dropped while the thread is still in the VM (its `_local` values, its frame slot).
    fn run_thread(func: ArgCallable, args: FuncArgs, vm: &VirtualMachine) {
        match func.invoke(args, vm) {
            Ok(_) => {}
            Err(e) if e.fast_isinstance(vm.ctx.exceptions.system_exit) => {}
            Err(exc) => vm.run_unraisable(
                exc,
                Some("Exception ignored in thread started by".to_owned()),
                func.into(),
            ),
        }
        crate::local::thread_exiting();
        rustpython_vm::vm::thread::cleanup_current_thread_frames(vm);
    }

    fn cant_start(vm: &VirtualMachine) -> rustpython_vm::builtins::PyBaseExceptionRef {
        vm.new_runtime_error("can't start new thread")
    }

    /// 3.12+: no new thread once the interpreter is finalizing.
    fn refuse_at_shutdown(vm: &VirtualMachine) -> PyResult<()> {
        if vm.state.finalizing.load(Ordering::Acquire) {
            return Err(vm.new_exception_msg(
                vm.ctx.exceptions.python_finalization_error.to_owned(),
                "can't create new thread at interpreter shutdown".into(),
            ));
        }
        Ok(())
    }

    /// start_new_thread(function, args, kwargs=None) -> ident
    #[pyfunction]
    #[pyfunction(name = "start_new")]
    fn start_new_thread(mut f_args: FuncArgs, vm: &VirtualMachine) -> PyResult<u64> {
        if !f_args.kwargs.is_empty() {
            return Err(vm.new_type_error("start_new_thread() takes no keyword arguments"));
        }
        let given = f_args.args.len();
        if !(2..=3).contains(&given) {
            return Err(vm.new_type_error(format!(
                "start_new_thread expected at {} 2 arguments, got {given}",
                if given < 2 { "least" } else { "most" }
            )));
        }
        let func_obj = f_args.take_positional().expect("counted");
        let args_obj = f_args.take_positional().expect("counted");
        let kwargs_obj = f_args.take_positional();
        if func_obj.to_callable().is_none() {
            return Err(vm.new_type_error("first arg must be callable"));
        }
        let args = PyTupleRef::try_from_object(vm, args_obj.clone())
            .map_err(|_| vm.new_type_error("2nd arg must be a tuple"))?;
        let kwargs = kwargs_obj
            .map(|k| {
                PyDictRef::try_from_object(vm, k)
                    .map_err(|_| vm.new_type_error("optional 3rd arg must be a dictionary"))
            })
            .transpose()?;
        vm.sys_module.get_attr("audit", vm)?.call(
            (
                "_thread.start_new_thread",
                func_obj.clone(),
                args_obj,
                kwargs
                    .as_ref()
                    .map_or_else(|| vm.ctx.none(), |k| k.clone().into()),
            ),
            vm,
        )?;
        refuse_at_shutdown(vm)?;
        let func = ArgCallable::try_from_object(vm, func_obj)?;
        let kwargs: KwArgs = kwargs
            .map(|k| {
                k.to_attributes(vm)
                    .into_iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v))
                    .collect()
            })
            .unwrap_or_default();
        let args = FuncArgs::new(args.to_vec(), kwargs);
        // Dropping the handle detaches the thread, as `start_new_thread` does.
        let (_handle, ident) = spawn(vm, func, args, true).map_err(|_| cant_start(vm))?;
        // The thread runs (it started, and only this thread could fork meanwhile).
        Ok(vm.allow_threads(|| ident.wait()))
    }

    enum State {
        NotStarted,
        /// A thread started by this module, and the ident it publishes.
        Started(pythread::Handle, Arc<StartedIdent>),
        /// `_make_thread_handle(ident)`: a thread this module did not start (the main
        /// thread), by its ident; it is done when `_set_done` releases `exiting`, or when it
        /// did not survive a fork (`lost_in_fork`).
        Foreign {
            ident: u64,
            exiting: Arc<pythread::Lock>,
            /// The process the handle was made in.
            pid: u32,
        },
        /// The start failed: done, ident 0.
        Failed,
    }

    /// `_thread._ThreadHandle`: the joinable handle of `start_joinable_thread`.
    #[pyattr]
    #[pyclass(module = "_thread", name = "_ThreadHandle")]
    #[derive(PyPayload)]
    pub(crate) struct ThreadHandle {
        state: Mutex<State>,
        /// `_set_done()` was called: the handle reads as done and `join` returns at once
        /// (after a fork, or for a foreign thread that threading saw exit).
        set_done: AtomicBool,
    }

    impl std::fmt::Debug for ThreadHandle {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match &*self.state() {
                State::Started(h, ident) => write!(f, "ThreadHandle({:?}, {:?})", h, ident.get()),
                State::Foreign { ident, .. } => write!(f, "ThreadHandle(foreign {ident})"),
                State::NotStarted => write!(f, "ThreadHandle(not started)"),
                State::Failed => write!(f, "ThreadHandle(failed)"),
            }
        }
    }

    impl ThreadHandle {
        fn with_state(state: State) -> ThreadHandle {
            ThreadHandle {
                state: Mutex::new(state),
                set_done: AtomicBool::new(false),
            }
        }

        fn state(&self) -> MutexGuard<'_, State> {
            self.state.lock().unwrap_or_else(|e| e.into_inner())
        }
    }

    /// A timeout of `_ThreadHandle.join`: None or negative = forever, else seconds (rounded up
    /// to whole nanoseconds, as `_PyTime_ROUND_TIMEOUT`).
    fn join_timeout(
        timeout: Option<PyObjectRef>,
        vm: &VirtualMachine,
    ) -> PyResult<Option<Duration>> {
        let Some(timeout) = timeout.filter(|t| !vm.is_none(t)) else {
            return Ok(None);
        };
        let secs = TimeoutSeconds::try_from_object(vm, timeout)?.to_secs_f64();
        if secs < 0.0 {
            return Ok(None);
        }
        let ns = (secs * 1e9).ceil();
        if ns >= i64::MAX as f64 {
            return Err(vm.new_overflow_error("timestamp out of range for platform time_t"));
        }
        Ok(Some(Duration::from_nanos(ns as u64)))
    }

    impl ThreadHandle {
        /// The thread's ident; for a started thread that has not published it yet, waits
        /// (detached) until it has. 0 before the start, after a failed one, and for a thread
        /// lost in a fork before it ran.
        fn ident_of(&self, vm: &VirtualMachine) -> u64 {
            let (handle, ident) = match &*self.state() {
                State::Started(h, ident) => (h.clone(), Arc::clone(ident)),
                State::Foreign { ident, .. } => return *ident,
                State::NotStarted | State::Failed => return 0,
            };
            match ident.get() {
                Some(ident) => ident,
                // Lost in a fork (the crate finished it) before it published: it never will.
                None if handle.is_finished() => 0,
                None => vm.allow_threads(|| ident.wait()),
            }
        }
    }

    #[pyclass(with(Constructor, Representable))]
    impl ThreadHandle {
        #[pygetset]
        fn ident(&self, vm: &VirtualMachine) -> u64 {
            self.ident_of(vm)
        }

        /// join(timeout=None, /): waits (interruptibly, detached) until the thread is done or
        /// the timeout passes; always returns None (see `is_done`).
        #[pymethod]
        fn join(&self, mut f_args: FuncArgs, vm: &VirtualMachine) -> PyResult<()> {
            if !f_args.kwargs.is_empty() {
                return Err(vm.new_type_error("_ThreadHandle.join() takes no keyword arguments"));
            }
            let given = f_args.args.len();
            if given > 1 {
                return Err(
                    vm.new_type_error(format!("join() takes at most 1 argument ({given} given)"))
                );
            }
            let timeout = join_timeout(f_args.take_positional(), vm)?;
            enum Target {
                Thread(pythread::Handle),
                Foreign(u64, Arc<pythread::Lock>),
            }
            let target = match &*self.state() {
                State::NotStarted => return Err(vm.new_runtime_error("thread not started")),
                State::Failed => return Ok(()),
                _ if self.set_done.load(Ordering::Acquire) => return Ok(()),
                State::Started(h, _) => Target::Thread(h.clone()),
                State::Foreign { ident, pid, .. } if lost_in_fork(*ident, *pid, vm) => {
                    return Ok(())
                }
                State::Foreign { ident, exiting, .. } => Target::Foreign(*ident, exiting.clone()),
            };
            match target {
                Target::Thread(h) => {
                    if h.is_finished() {
                        // Done: only the OS thread's exit is left (CPython's once-only
                        // pthread_join), which is not interruptible.
                        vm.allow_threads(|| drop(h.join_thread_ref()));
                        return Ok(());
                    }
                    // The crate's idents, both: the handle's thread and the caller.
                    if h.ident() == pythread::get_ident() {
                        return Err(vm.new_runtime_error("Cannot join current thread"));
                    }
                    if vm.state.finalizing.load(Ordering::Acquire) {
                        return Err(vm.new_exception_msg(
                            vm.ctx.exceptions.python_finalization_error.to_owned(),
                            "cannot join thread at interpreter shutdown".into(),
                        ));
                    }
                    wait_interruptibly(vm, timeout, |timeout| {
                        h.join_with_retries_ref(timeout, interrupted).map(|_| ())
                    })
                }
                Target::Foreign(ident, exiting) => {
                    if ident == get_ident() {
                        return Err(vm.new_runtime_error("Cannot join current thread"));
                    }
                    // Done = `exiting` released by `_set_done`: take it and give it back.
                    let done = exiting.try_acquire()
                        || (timeout != Some(Duration::ZERO)
                            && wait_interruptibly(vm, timeout, |timeout| {
                                exiting.acquire_with_retries(timeout, interrupted)
                            })?);
                    if done {
                        let _ = exiting.release();
                    }
                    Ok(())
                }
            }
        }

        #[pymethod]
        fn is_done(&self, vm: &VirtualMachine) -> bool {
            match &*self.state() {
                State::NotStarted => false,
                State::Failed => true,
                _ if self.set_done.load(Ordering::Acquire) => true,
                State::Started(h, _) => h.is_finished(),
                State::Foreign { ident, pid, .. } => lost_in_fork(*ident, *pid, vm),
            }
        }

        #[pymethod]
        fn _set_done(&self, vm: &VirtualMachine) -> PyResult<()> {
            let state = self.state();
            match &*state {
                State::NotStarted => Err(vm.new_runtime_error("thread not started")),
                State::Started(..) | State::Failed => {
                    self.set_done.store(true, Ordering::Release);
                    Ok(())
                }
                State::Foreign { exiting, .. } => {
                    if !self.set_done.swap(true, Ordering::AcqRel) {
                        let _ = exiting.release();
                    }
                    Ok(())
                }
            }
        }
    }

    impl Constructor for ThreadHandle {
        type Args = ();

        fn py_new(_cls: &Py<PyType>, _args: (), _vm: &VirtualMachine) -> PyResult<Self> {
            Ok(ThreadHandle::with_state(State::NotStarted))
        }
    }

    impl Representable for ThreadHandle {
        fn repr_str(zelf: &Py<Self>, vm: &VirtualMachine) -> PyResult<String> {
            Ok(format!(
                "<{} object: ident={}>",
                zelf.class().slot_name(),
                zelf.ident_of(vm)
            ))
        }
    }

    #[derive(FromArgs)]
    struct JoinableArgs {
        #[pyarg(any)]
        function: PyObjectRef,
        #[pyarg(any, default)]
        handle: Option<PyObjectRef>,
        #[pyarg(any, default = true)]
        daemon: bool,
    }

    /// start_joinable_thread(function, handle=None, daemon=True) -> _ThreadHandle
    #[pyfunction]
    fn start_joinable_thread(
        args: JoinableArgs,
        vm: &VirtualMachine,
    ) -> PyResult<PyRef<ThreadHandle>> {
        if args.function.to_callable().is_none() {
            return Err(vm.new_type_error("thread function must be callable"));
        }
        let function = ArgCallable::try_from_object(vm, args.function.clone())?;
        let handle = match args.handle.filter(|h| !vm.is_none(h)) {
            None => ThreadHandle::with_state(State::NotStarted).into_ref(&vm.ctx),
            Some(h) => h
                .downcast::<ThreadHandle>()
                .map_err(|_| vm.new_type_error("'handle' must be a _ThreadHandle"))?,
        };
        vm.sys_module.get_attr("audit", vm)?.call(
            (
                "_thread.start_joinable_thread",
                args.function,
                args.daemon,
                handle.clone(),
            ),
            vm,
        )?;
        refuse_at_shutdown(vm)?;
        {
            let mut state = handle.state();
            if !matches!(*state, State::NotStarted) {
                return Err(vm.new_runtime_error("thread already started"));
            }
            match spawn(vm, function, FuncArgs::default(), args.daemon) {
                Ok((h, ident)) => *state = State::Started(h, ident),
                Err(_) => {
                    *state = State::Failed;
                    return Err(cant_start(vm));
                }
            }
        }
        Ok(handle)
    }

    /// Whether the foreign thread `ident`, whose handle was made in process `pid`, is gone in
    /// this forked child: CPython's `_PyThread_AfterFork` marks every handle but the forking
    /// thread's done, and threading.py counts on it (a forked child joins the parent's main
    /// thread). The crate does so for its own handles; a foreign thread survived only if it
    /// is the thread that forked last, which RustPython's `os.fork` makes the main thread in
    /// the child (`vm.state.main_thread_ident`).
    fn lost_in_fork(ident: u64, pid: u32, vm: &VirtualMachine) -> bool {
        pid != std::process::id() && ident != vm.state.main_thread_ident.load()
    }

    /// _make_thread_handle(ident): a handle for a thread this module did not start
    /// (threading's main thread); it is done once `_set_done()` is called.
    #[pyfunction]
    fn _make_thread_handle(ident: u64) -> ThreadHandle {
        let exiting = pythread::Lock::new();
        exiting.acquire();
        ThreadHandle::with_state(State::Foreign {
            ident,
            exiting: Arc::new(exiting),
            pid: std::process::id(),
        })
    }

    /// _get_main_thread_ident(): RustPython's own record of the main thread's ident, set when
    /// the interpreter starts and, in a forked child, by `os.fork` (the thread that forked).
    #[pyfunction]
    fn _get_main_thread_ident(vm: &VirtualMachine) -> u64 {
        vm.state.main_thread_ident.load()
    }

    /// _shutdown(): joins every non-daemon thread still running, except the caller's own
    /// (the crate's registry), detached and interruptibly (3.13).
    #[pyfunction]
    fn _shutdown(vm: &VirtualMachine) -> PyResult<()> {
        wait_interruptibly(vm, None, |_| pythread::shutdown_with_retries(interrupted))
    }

    /// _count(): how many functions started by this module are running now.
    #[pyfunction]
    fn _count() -> usize {
        pythread::count()
    }
}

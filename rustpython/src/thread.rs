//! Threads: `start_new_thread`, `start_joinable_thread`, `_ThreadHandle` and the module's state
//! (`_count`, `_shutdown`, `stack_size`, `_get_main_thread_ident`), on the layer's
//! `ThreadHandle` and `ModuleState`: this file converts arguments and makes the objects.

use std::sync::{Arc, OnceLock};

use rustpython_vm::VirtualMachine;
use threadmodule::ModuleState;

/// The module's state: one per process, as the crate's threads are (a `_thread` module made
/// again, as a fresh import makes it, shares it).
static MODULE: OnceLock<Arc<ModuleState>> = OnceLock::new();

/// The module's state, made at the module's first import, on the main thread.
pub(crate) fn module_state(vm: &VirtualMachine) -> &'static Arc<ModuleState> {
    MODULE.get_or_init(|| ModuleState::new(vm.state.main_thread_ident.load()))
}

/// The module's state if it was made (the fork handlers, which have no VM).
pub(crate) fn made_module_state() -> Option<&'static Arc<ModuleState>> {
    MODULE.get()
}

#[rustpython_vm::pymodule(sub)]
pub(crate) mod threads {
    use rustpython_vm::builtins::{PyDictRef, PyTupleRef, PyType};
    use rustpython_vm::convert::TryFromObject;
    use rustpython_vm::function::{ArgCallable, FuncArgs, KwArgs, OptionalArg, TimeoutSeconds};
    use rustpython_vm::types::{Constructor, Representable};
    use rustpython_vm::{
        pyclass, AsObject, FromArgs, Py, PyObjectRef, PyPayload, PyRef, PyResult, VirtualMachine,
    };
    use threadmodule::{Runtime, StartOptions};

    use super::module_state;
    use crate::runtime::{Function, Rt};

    /// What the new thread runs: a new thread of the VM (`vm.new_thread()`, as RustPython's
    /// own `_thread` makes), in which the layer's `thread_run` calls the function.
    fn runner(
        vm: &VirtualMachine,
        func: ArgCallable,
        args: FuncArgs,
    ) -> impl FnOnce() + Send + 'static {
        let function = Function { func, args };
        vm.new_thread()
            .make_spawn_func(move |vm| threadmodule::thread_run(&Rt(vm), function))
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
        let rt = Rt(vm);
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
        threadmodule::start_new_thread(&rt, module_state(vm), runner(vm, func, args))
    }

    /// `_thread._ThreadHandle`: the joinable handle of `start_joinable_thread`.
    #[pyattr]
    #[pyclass(module = "_thread", name = "_ThreadHandle")]
    #[derive(Debug, PyPayload)]
    pub(crate) struct ThreadHandle {
        handle: threadmodule::ThreadHandle,
    }

    #[pyclass(with(Constructor, Representable))]
    impl ThreadHandle {
        #[pygetset]
        fn ident(&self) -> u64 {
            self.handle.ident()
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
            let seconds = match f_args.take_positional().filter(|t| !vm.is_none(t)) {
                None => None,
                Some(t) => Some(TimeoutSeconds::try_from_object(vm, t)?.to_secs_f64()),
            };
            let rt = Rt(vm);
            let timeout = threadmodule::join_timeout(seconds).map_err(|e| rt.raise(e))?;
            // RustPython's threading.py is 3.14's, whose join refuses at shutdown.
            if rt.is_finalizing()
                && !self.handle.is_done()
                && !matches!(self.handle.ident(), 0)
                && self.handle.ident() != Rt::get_ident()
            {
                return Err(vm.new_exception_msg(
                    vm.ctx.exceptions.python_finalization_error.to_owned(),
                    "cannot join thread at interpreter shutdown".into(),
                ));
            }
            self.handle.join(&rt, timeout)
        }

        #[pymethod]
        fn is_done(&self) -> bool {
            self.handle.is_done()
        }

        #[pymethod]
        fn _set_done(&self, vm: &VirtualMachine) -> PyResult<()> {
            self.handle.set_done(&Rt(vm))
        }
    }

    impl Constructor for ThreadHandle {
        type Args = ();

        fn py_new(_cls: &Py<PyType>, _args: (), vm: &VirtualMachine) -> PyResult<Self> {
            Ok(ThreadHandle {
                handle: threadmodule::ThreadHandle::new(module_state(vm)),
            })
        }
    }

    impl Representable for ThreadHandle {
        fn repr_str(zelf: &Py<Self>, _vm: &VirtualMachine) -> PyResult<String> {
            Ok(format!(
                "<{} object: ident={}>",
                zelf.class().slot_name(),
                zelf.handle.ident()
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
        let func = ArgCallable::try_from_object(vm, args.function.clone())?;
        let handle = match args.handle.filter(|h| !vm.is_none(h)) {
            None => ThreadHandle {
                handle: threadmodule::ThreadHandle::new(module_state(vm)),
            }
            .into_ref(&vm.ctx),
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
        let options = StartOptions::new().daemon(args.daemon);
        let run = runner(vm, func, FuncArgs::default());
        handle.handle.start(&Rt(vm), &options, run)?;
        Ok(handle)
    }

    /// _make_thread_handle(ident): a handle for a thread this module did not start
    /// (threading's main thread); it is done once `_set_done()` is called, or in a forked
    /// child it did not survive.
    #[pyfunction]
    fn _make_thread_handle(ident: u64, vm: &VirtualMachine) -> ThreadHandle {
        ThreadHandle {
            handle: threadmodule::ThreadHandle::foreign(module_state(vm), ident),
        }
    }

    /// _get_main_thread_ident(): the main thread's ident, and in a forked child the thread
    /// that forked (RustPython's own idents).
    #[pyfunction]
    fn _get_main_thread_ident(vm: &VirtualMachine) -> u64 {
        module_state(vm).get_main_thread_ident()
    }

    /// _shutdown(): joins every non-daemon thread still running, except the caller's own,
    /// detached and interruptibly (3.13: an exception of a signal handler is written as
    /// unraisable and the remaining threads are left running).
    #[pyfunction]
    fn _shutdown(vm: &VirtualMachine) {
        module_state(vm).shutdown(&Rt(vm));
    }

    /// _count(): how many functions started by this module are running now.
    #[pyfunction]
    fn _count(vm: &VirtualMachine) -> usize {
        module_state(vm).count()
    }

    /// stack_size([size]) -> size: sets the size of the next threads' stacks (no argument:
    /// 0, the platform default, as CPython) and returns the old one.
    #[pyfunction]
    fn stack_size(size: OptionalArg<isize>, vm: &VirtualMachine) -> PyResult<usize> {
        module_state(vm)
            .stack_size(Some(size.unwrap_or(0)))
            .map_err(|e| Rt(vm).raise(e))
    }
}

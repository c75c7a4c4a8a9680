//! The `_thread` module itself: the module-level names, and what importing it sets up
//! (`sys.thread_info` from the crate, the fork handlers, the few names borrowed from
//! RustPython's own module).

use crate::local::locals;
use crate::lock::locks;
use crate::thread::threads;

/// Names taken from RustPython's own module as they are: none of them starts, joins or locks
/// anything. `_excepthook`/`_ExceptHookArgs` print a thread's uncaught exception;
/// `set_name` names the OS thread (`pthread_setname_np`); the `_stop_the_world_*` pair reads
/// and resets the VM's stop-the-world statistics.
const BORROWED: [&str; 5] = [
    "_excepthook",
    "_ExceptHookArgs",
    "set_name",
    "_stop_the_world_stats",
    "_stop_the_world_reset_stats",
];

#[rustpython_vm::pymodule(name = "_thread", with(locks, threads, locals))]
pub(crate) mod _thread {
    use rustpython_vm::builtins::{PyModule, PyTypeRef};
    use rustpython_vm::function::OptionalArg;
    use rustpython_vm::{AsObject, Py, PyResult, VirtualMachine};

    #[pyattr]
    const TIMEOUT_MAX: f64 = pythread::TIMEOUT_MAX_SECS;

    #[pyattr]
    fn error(vm: &VirtualMachine) -> PyTypeRef {
        vm.ctx.exceptions.runtime_error.to_owned()
    }

    /// get_ident() -> int: the calling thread's ident, RustPython's own (`ident.rs`). The int
    /// is made here (`new_int`): returned as a `u64`, it went through `u64`'s `ToPyObject`,
    /// not inlined into this crate, and the call cost about 12 instructions more than
    /// RustPython's own `get_ident`; made here, about 11 fewer (callgrind).
    #[pyfunction]
    fn get_ident(vm: &VirtualMachine) -> rustpython_vm::PyRef<rustpython_vm::builtins::PyInt> {
        vm.ctx.new_int(crate::ident::get_ident())
    }

    #[pyfunction]
    fn get_native_id() -> u64 {
        pythread::get_native_id()
    }

    /// interrupt_main(signum=SIGINT): simulates the signal arriving in the main thread
    /// (RustPython's signal machinery).
    #[pyfunction]
    fn interrupt_main(signum: OptionalArg<i32>, vm: &VirtualMachine) -> PyResult<()> {
        rustpython_vm::signal::set_interrupt_ex(signum.unwrap_or(2), vm)
    }

    #[pyfunction]
    #[pyfunction(name = "exit_thread")]
    fn exit(vm: &VirtualMachine) -> PyResult<()> {
        Err(vm.new_exception_empty(vm.ctx.exceptions.system_exit.to_owned()))
    }

    #[pyfunction]
    fn daemon_threads_allowed() -> bool {
        true
    }

    #[pyfunction]
    fn _is_main_interpreter() -> bool {
        true
    }

    /// Runs when the module is imported (RustPython's importlib imports `_thread` while the
    /// interpreter starts, before any script).
    pub(crate) fn module_exec(vm: &VirtualMachine, module: &Py<PyModule>) -> PyResult<()> {
        __module_exec(vm, module);
        super::set_thread_info(vm)?;
        crate::thread::module_state(vm);
        crate::fork::install();
        let own = super::own_module(vm)?;
        for name in super::BORROWED {
            if let Ok(value) = own.get_attr(name, vm) {
                module.as_object().set_attr(name, value, vm)?;
            }
        }
        Ok(())
    }
}

/// A private instance of RustPython's own `_thread` (never in `sys.modules`), made from its
/// definition, so the borrowed functions keep `_thread` as their `__module__`.
fn own_module(
    vm: &rustpython_vm::VirtualMachine,
) -> rustpython_vm::PyResult<rustpython_vm::PyRef<rustpython_vm::builtins::PyModule>> {
    let def = rustpython_vm::stdlib::builtin_module_defs(&vm.ctx)
        .into_iter()
        .find(|def| def.name.as_str() == "_thread")
        .expect("RustPython has a built-in _thread module");
    let module = def.create_module(vm)?;
    module.__init_methods(vm)?;
    if let Some(exec) = def.slots.exec {
        exec(vm, &module)?;
    }
    Ok(module)
}

/// `sys.thread_info` as the crate describes its threads and locks (`pythread::thread_info`),
/// in the struct sequence type RustPython's `sys` made.
fn set_thread_info(vm: &rustpython_vm::VirtualMachine) -> rustpython_vm::PyResult<()> {
    use rustpython_vm::AsObject;
    let info = pythread::thread_info();
    let old = vm.sys_module.get_attr("thread_info", vm)?;
    let fields = vm.ctx.new_tuple(vec![
        vm.ctx.new_str(info.name).into(),
        info.lock
            .map_or_else(|| vm.ctx.none(), |l| vm.ctx.new_str(l).into()),
        info.version
            .map_or_else(|| vm.ctx.none(), |v| vm.ctx.new_str(v).into()),
    ]);
    let new = old.class().to_owned().as_object().call((fields,), vm)?;
    vm.sys_module.set_attr("thread_info", new, vm)
}

//! `os.fork` and the crate: RustPython's `os.fork` runs the interpreter's at-fork callbacks
//! (`os.register_at_fork`'s lists, in `vm.state`); this module's are put first in them when
//! `_thread` is imported at start-up, so they run before `threading`'s own `_after_fork`.

use rustpython_vm::VirtualMachine;

/// Registers the child's hook (and, once the crate has them, its before/parent hooks).
pub(crate) fn register(vm: &VirtualMachine) {
    let child = vm.new_function("_pythread_after_fork_child", || {
        crate::thread::after_fork_child();
    });
    vm.state.after_forkers_child.lock().insert(0, child.into());
}

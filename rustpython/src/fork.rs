//! `os.fork` and the `_thread` module: the layer's `before_fork` / `after_fork_parent` /
//! `after_fork_child` run inside `fork()` itself, as `pthread_atfork` handlers.
//!
//! Why not `os.register_at_fork` (RustPython keeps its callbacks in `vm.state`): RustPython's
//! `os.fork` runs those callbacks first, then takes the import lock and stops the world (every
//! other thread that is attached to the VM parks at its next safe point), then calls `fork()`.
//! `after_fork_child` must run in the child before any other code can use the crate (a
//! callback runs later, after RustPython's own child-side work), and `before_fork` records the
//! process it forks from. Neither takes a lock: the crate's brief locks are made usable again in
//! the child (a lock a vanished thread held reads as free there), so nothing is held across the
//! world being stopped. This is also where CPython runs its own fork handling
//! (`PyOS_BeforeFork`, after the import lock). The handlers run for every `fork()` in the
//! process (`os.fork`, a `fork()`-based `subprocess`), as `before_fork` asks: before any fork.

use std::sync::Once;

/// Installs the handlers once per process (they are inherited by forked children). Called once
/// the module's state exists (`thread::module_state`).
pub(crate) fn install() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        // SAFETY: `pthread_atfork` only records the three function pointers; each is an
        // `extern "C" fn()` with no arguments, as it requires, valid for the whole process.
        // They call safe layer functions, which do not unwind (a panic would abort: the
        // functions are `extern "C"`).
        #[allow(unsafe_code)]
        let status = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
        assert_eq!(status, 0, "pthread_atfork failed: {status}");
    });
}

extern "C" fn prepare() {
    if let Some(module) = crate::thread::made_module_state() {
        module.before_fork();
    }
}

extern "C" fn parent() {
    if let Some(module) = crate::thread::made_module_state() {
        module.after_fork_parent();
    }
}

/// In the child, before `fork()` returns (`_PyThread_AfterFork`): the crate's threads other
/// than this one are lost (their handles read as done, their joins return at once), this
/// thread becomes the main thread (`_get_main_thread_ident`, as RustPython's `os.fork` then
/// records it in `vm.state` too), and the lost threads' `_local` dicts go at each `_local`'s
/// next access, attached.
extern "C" fn child() {
    if let Some(module) = crate::thread::made_module_state() {
        module.after_fork_child(crate::ident::get_ident());
    }
}

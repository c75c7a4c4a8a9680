//! The layer's [`threadmodule::Runtime`] for RustPython: what `_thread` needs from the VM.
//! Everything else (the handle's states, the start handshake, the interruptible waits, the
//! locks' rules, `_local`'s per-thread dicts) is the layer's.

use std::sync::atomic::Ordering;

use rustpython_vm::builtins::PyBaseExceptionRef;
use rustpython_vm::function::{ArgCallable, FuncArgs};
use rustpython_vm::{AsObject, PyResult, VirtualMachine};
use threadmodule::{Error, ErrorKind};

/// The calling thread's VM, as the layer sees it.
pub(crate) struct Rt<'vm>(pub(crate) &'vm VirtualMachine);

/// `start_new_thread`'s function and arguments, moved to the new thread.
pub(crate) struct Function {
    pub(crate) func: ArgCallable,
    pub(crate) args: FuncArgs,
}

impl Rt<'_> {
    /// The exception for a layer error that is not raised through a VM call of the layer.
    pub(crate) fn raise(&self, error: Error) -> PyBaseExceptionRef {
        threadmodule::Runtime::new_exception(self, error)
    }
}

impl threadmodule::Runtime for Rt<'_> {
    type Exception = PyBaseExceptionRef;
    type Function = Function;

    /// RustPython's own ident (`ident.rs`).
    #[inline]
    fn get_ident() -> u64 {
        crate::ident::get_ident()
    }

    /// On Unix RustPython's ident is the `pthread_t`, which the crate's handle holds: a start
    /// returns without waiting for the new thread to run.
    fn ident_of(thread: &pythread::Handle) -> Option<u64> {
        if cfg!(unix) {
            thread.pthread_t()
        } else {
            None
        }
    }

    /// RustPython's `Py_BEGIN_ALLOW_THREADS`: a stop-the-world (as `os.fork` makes) does not
    /// wait for a detached thread.
    #[inline]
    fn allow_threads<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        self.0.allow_threads(f)
    }

    /// RustPython's `Py_MakePendingCalls`: the signal handlers, attached.
    fn make_pending_calls(&self) -> PyResult<()> {
        self.0.check_signals()
    }

    fn is_finalizing(&self) -> bool {
        self.0.state.finalizing.load(Ordering::Acquire)
    }

    /// `_thread.error` is RustPython's `RuntimeError` itself (`module.rs`).
    fn new_exception(&self, error: Error) -> PyBaseExceptionRef {
        let vm = self.0;
        let message = error.message();
        match error.kind() {
            ErrorKind::RuntimeError => vm.new_runtime_error(message),
            ErrorKind::ValueError => vm.new_value_error(message),
            ErrorKind::OverflowError => vm.new_overflow_error(message),
            ErrorKind::TypeError => vm.new_type_error(message),
            ErrorKind::PythonFinalizationError => vm.new_exception_msg(
                vm.ctx.exceptions.python_finalization_error.to_owned(),
                message.into(),
            ),
        }
    }

    fn call(&self, function: &Function) -> PyResult<()> {
        function
            .func
            .invoke(function.args.clone(), self.0)
            .map(drop)
    }

    fn is_system_exit(&self, exception: &PyBaseExceptionRef) -> bool {
        exception.fast_isinstance(self.0.ctx.exceptions.system_exit)
    }

    /// Through `sys.unraisablehook`, as RustPython's own `_thread` reports it.
    fn report_thread_exception(&self, exception: PyBaseExceptionRef, function: &Function) {
        self.0.run_unraisable(
            exception,
            Some("Exception ignored in thread started by".to_owned()),
            function.func.clone().into(),
        );
    }

    fn write_unraisable(&self, exception: PyBaseExceptionRef) {
        self.0.run_unraisable(exception, None, self.0.ctx.none());
    }

    /// The thread's `_local` dicts, then its frame slot (`sys._current_frames()`), while the
    /// thread is still in the VM: the crate would drop the dicts from the thread's
    /// thread-local destructors, outside the VM, where an object's `__del__` cannot run.
    fn thread_exiting(&self) {
        threadmodule::release_thread_dicts();
        rustpython_vm::vm::thread::cleanup_current_thread_frames(self.0);
    }
}

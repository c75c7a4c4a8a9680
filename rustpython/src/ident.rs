//! Thread idents as Python code sees them: RustPython's own, never the crate's.
//!
//! RustPython keys its per-thread records by the id its own `_thread.get_ident()` computes
//! (`pthread_self()` on Unix): the frame registry behind `sys._current_frames()`, the main
//! thread's ident (`vm.state.main_thread_ident`), the names `_thread._excepthook` prints. So
//! every ident this module shows (`get_ident()`, `start_new_thread`'s result,
//! `_ThreadHandle.ident`, `_get_main_thread_ident()`, the RLock's owner) is that id: the
//! layer's `Runtime::get_ident` (`runtime.rs`). The crate's `pythread::Ident` (minted, never
//! reused) stays inside: its joins and thread-local storage.

/// The calling thread's ident as RustPython's own `_thread.get_ident()` computes it (the same
/// function: `pthread_self()` on Unix).
#[inline]
pub(crate) fn get_ident() -> u64 {
    rustpython_vm::stdlib::_thread::get_ident()
}

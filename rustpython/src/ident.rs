//! Thread idents as Python code sees them: RustPython's own, never the crate's.
//!
//! RustPython keys its per-thread records by the id its own `_thread.get_ident()` computes
//! (`pthread_self()` on Unix): the frame registry behind `sys._current_frames()`, the main
//! thread's ident (`vm.state.main_thread_ident`), the names `_thread._excepthook` prints. So
//! every ident this module shows (`get_ident()`, `start_new_thread`'s result,
//! `_ThreadHandle.ident`, `_get_main_thread_ident()`, the RLock's owner) is that id. The crate's
//! `pythread::Ident` (minted, never reused) stays inside: its joins and thread-local storage.

use std::sync::atomic::{AtomicU64, Ordering};

/// The calling thread's ident as RustPython's own `_thread.get_ident()` computes it (the same
/// function: `pthread_self()` on Unix).
#[inline]
pub(crate) fn get_ident() -> u64 {
    rustpython_vm::stdlib::_thread::get_ident()
}

/// The ident of a thread this module started, which only that thread can compute: it
/// publishes it as its first act (`publish`), and the starter reads it (`get`, `wait`).
/// std's `JoinHandle::as_pthread_t` would give it at once, but the crate keeps the
/// `JoinHandle` to itself.
pub(crate) struct StartedIdent {
    /// 0 until published (no thread has ident 0).
    ident: AtomicU64,
    /// Held from creation until `publish`: a waiter takes it and gives it back.
    unpublished: pythread::Lock,
}

impl StartedIdent {
    pub(crate) fn new() -> StartedIdent {
        let unpublished = pythread::Lock::new();
        unpublished.acquire();
        StartedIdent {
            ident: AtomicU64::new(0),
            unpublished,
        }
    }

    /// Called by the started thread, before anything else: its own `get_ident()`.
    pub(crate) fn publish(&self) {
        self.ident.store(get_ident(), Ordering::Release);
        let _ = self.unpublished.release();
    }

    /// The ident, if the thread has published it.
    pub(crate) fn get(&self) -> Option<u64> {
        match self.ident.load(Ordering::Acquire) {
            0 => None,
            ident => Some(ident),
        }
    }

    /// Waits until the thread has published its ident. Call it detached from the VM, and only
    /// for a thread that runs (started, and not lost in a fork before it published: such a
    /// thread never will).
    pub(crate) fn wait(&self) -> u64 {
        if let Some(ident) = self.get() {
            return ident;
        }
        self.unpublished.acquire();
        let _ = self.unpublished.release();
        self.get().expect("published before the lock was released")
    }
}

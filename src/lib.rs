//! CPython's cross-platform thread layer (`Python/thread.c`) for Rust, and a better
//! thread handle than [`std::thread::JoinHandle`].
//!
//! [`start`] runs a function on a new OS thread and returns a [`Handle`], typed by
//! what the function returns, as `std::thread::spawn` does:
//!
//! ```
//! # pythread::__doc_example(|| {
//! let handle = pythread::start(|| 6 * 7);
//! assert_eq!(handle.join().unwrap(), 42);
//! # });
//! ```
//!
//! Unlike a `JoinHandle`, a [`Handle`] is cloneable, `Send + Sync`, and joinable any
//! number of times from any number of threads. Every [`join`](Handle::join) returns
//! the same outcome: `Ok` of the value the function returned (a clone of it;
//! [`join_ref`](Handle::join_ref) borrows it instead, and
//! [`into_output`](Handle::into_output) moves it out of the last handle), or
//! `Err(`[`Panic`]`)` carrying the one value it panicked with. Each started thread
//! gets a process-unique [`Ident`].
//!
//! ```
//! # pythread::__doc_example(|| {
//! let worker = pythread::start(|| {
//!     // ... work ...
//! });
//! let watcher = worker.clone();
//! let observer = pythread::start(move || assert!(watcher.join().is_ok()));
//!
//! assert!(worker.join().is_ok());
//! observer.join().unwrap();
//! println!("thread {} done", worker.ident());
//! # });
//! ```
//!
//! # From CPython's C API
//!
//! | C entry point | Rust |
//! |---|---|
//! | `PyThread_init_thread` | [`init`] (no-op) |
//! | `PyThread_get_stacksize` | [`get_stacksize`] (always 0) |
//! | `PyThread_set_stacksize` | [`set_stacksize`] (always -2, "not supported") |
//! | `PY_TIMEOUT_MAX` | [`TIMEOUT_MAX`] (microseconds) |
//! | `PyThread_start_new_thread` + platform join | [`start`], [`try_start`], [`Builder`], [`Handle::join`], [`Handle::join_timeout`] (and the `&T` forms [`Handle::join_ref`], [`Handle::join_timeout_ref`]) |
//! | `PyThread_join_thread` | [`Handle::join_thread`], [`Handle::join_thread_ref`] |
//! | `PyThread_get_thread_ident` | [`get_ident`], [`current_ident`], [`Handle::ident`] |
//! | `PyThread_GetInfo` (`sys.thread_info`) | [`thread_info`], [`ThreadInfo`] |
//! | `PyThread_get_thread_native_id` | [`get_native_id`] |
//! | `PyThread_tss_alloc`, `_create`, `_is_created`, `_set`, `_get`, `_delete`, `_free` | [`Tss`] (see its table) |
//! | `_thread._count`, `_thread._shutdown`, `start_joinable_thread(daemon=...)` | [`count`], [`shutdown`], [`Builder::daemon`] |
//! | `_thread._shutdown` (3.13: interruptible, pending calls) | [`shutdown_with_retries`] |
//! | `PyOS_BeforeFork`, `PyOS_AfterFork_Parent` (the thread layer's part) | [`before_fork`], [`after_fork_parent`] |
//! | `PyOS_AfterFork_Child` / `_PyThread_AfterFork` (the thread layer's part) | [`after_fork_child`] |
//! | `_thread.stack_size(size)` for one thread | [`Builder::stack_size`] |
//! | `PyThread_ParseTimeoutArg` | [`parse_timeout_arg`] |
//! | `_thread.lock.acquire` argument rules, `_thread.TIMEOUT_MAX` | [`parse_acquire_args`], [`TIMEOUT_MAX_SECS`] |
//! | `PyThread_allocate_lock` / `PyThread_free_lock` | [`Lock::new`] / drop |
//! | `PyThread_acquire_lock` | [`Lock::acquire`], [`Lock::try_acquire`] |
//! | `PyThread_acquire_lock_timed` | [`Lock::acquire_timed`], [`Lock::acquire_timeout`] |
//! | `PyThread_acquire_lock_timed_with_retries` | [`Lock::acquire_with_retries`] |
//! | `PyThread_release_lock` | [`Lock::release`] |
//! | `PyLockStatus` | [`LockStatus`] |
//! | `_thread.RLock` | [`RLock`] |
//! | `_thread._ThreadHandle.join` (3.13: interruptible, then the OS join) | [`Handle::join_with_retries`], [`Handle::join_with_retries_ref`] |
//!
//! # Guarantees
//!
//! - The function runs exactly once, on its own OS thread.
//! - Everything it did happens-before any `join` that returns its outcome.
//! - All joins of one thread return the same outcome ([`Panic::ptr_eq`] holds).
//! - A finished thread is joined with one atomic load, without a lock.
//! - The returned value is dropped exactly once: with the last handle, or on the
//!   started thread when every handle was dropped first.
//! - Idents are never 0, never reused, and increase in start order on one thread.
//! - A panic never escapes the started thread, never poisons the crate's state, and
//!   a payload whose `Drop` panics is dropped with that panic caught. As anywhere in
//!   Rust, a panic aborts the process under `panic = "abort"`, and so does a value
//!   captured by the function whose `Drop` panics while the function unwinds.
//! - Dropping every handle detaches the thread; its outcome is dropped when it ends.
//!
//! The core is model-checked with [loom](https://docs.rs/loom) through the single
//! facade module that supplies its synchronization primitives, and property-tested
//! against a sequential model. The shipped build contains no `unsafe` code.
// The shipped crate forbids `unsafe`; the loom build's model `OnceLock` and the
// unit tests' signal plumbing (`sync::tests::signals`) opt in locally.
#![cfg_attr(not(any(loom, test)), forbid(unsafe_code))]
#![cfg_attr(any(loom, test), deny(unsafe_code))]
#![deny(missing_docs)]
#![warn(rust_2018_idioms, unreachable_pub, missing_debug_implementations)]

mod completion;
mod cpython;
mod fork;
mod handle;
mod ident;
mod info;
mod lock;
mod panic;
mod registry;
mod rlock;
mod sync;
mod timeout;
mod tss;

pub use crate::cpython::{TIMEOUT_MAX, get_stacksize, init, set_stacksize};
pub use crate::fork::{after_fork_child, after_fork_parent, before_fork};
pub use crate::handle::{Builder, Handle, start, try_start};
pub use crate::ident::{Ident, current_ident, get_ident};
pub use crate::info::{ThreadInfo, get_native_id, thread_info};
pub use crate::lock::{Lock, LockGuard, LockStatus, ReleaseError, ReleaseErrorKind};
pub use crate::panic::Panic;
pub use crate::registry::{count, shutdown, shutdown_with_retries};
pub use crate::rlock::{RLock, RLockGuard, RLockState};
pub use crate::timeout::{
    TIMEOUT_MAX_SECS, TimeoutError, TimeoutErrorKind, parse_acquire_args, parse_timeout_arg,
};
pub use crate::tss::Tss;

/// Runs a documentation example.
///
/// Not part of the API. Under `--cfg loom` every primitive of this crate is a loom
/// model that works only inside `loom::model`, while the doc examples are compiled
/// without the flag against that loom build of the crate; there the examples are
/// type-checked but not run (the model-checked suite lives in `loom_tests/`). In a
/// normal build this simply calls `example`.
#[doc(hidden)]
pub fn __doc_example(example: impl FnOnce()) {
    #[cfg(not(loom))]
    example();
    #[cfg(loom)]
    drop(example);
}

/// Keeps a documentation example's code in a normal build and drops it in the
/// loom build.
///
/// Not part of the API. Doc examples are compiled without `--cfg loom` even when
/// the crate under test was built with it, so an example that needs the shipped
/// build's `const fn` constructors (`static LOCK: Lock = Lock::new();`) wraps that
/// code in this macro: its expansion was fixed when the crate was compiled.
#[doc(hidden)]
#[cfg(not(loom))]
#[macro_export]
macro_rules! __if_not_loom {
    ($($code:tt)*) => { $($code)* };
}

/// The loom build's form of the macro above: the code is dropped.
#[doc(hidden)]
#[cfg(loom)]
#[macro_export]
macro_rules! __if_not_loom {
    ($($code:tt)*) => {};
}

/// The crate's `cfg(loom)` synchronization facade (`src/sync/`), for the `_threadmodule.c`
/// layer (the workspace crate `threadmodule/`): its shared state is built from these, so that
/// under `--cfg loom` its models run on the same loom primitives and model clock as the
/// crate's. Not part of the API: a normal build re-exports `std`'s types and clock.
#[doc(hidden)]
pub mod __sync {
    // The facade's own choice (`src/sync/mod.rs`), the same types: its items are crate-private.
    #[cfg(loom)]
    pub use loom::sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU32, AtomicU64, Ordering},
    };
    #[cfg(not(loom))]
    pub use std::sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU32, AtomicU64, Ordering},
    };

    /// Locks `mutex`, ignoring poison (the crate's rule).
    pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
        crate::sync::lock(mutex)
    }

    /// A deadline on the crate's clock (under loom, the model clock).
    #[derive(Clone, Copy, Debug)]
    pub struct Deadline(crate::sync::Instant);

    impl Deadline {
        /// `timeout` from now; `None` when the clock cannot hold it (wait forever).
        pub fn after(timeout: std::time::Duration) -> Option<Deadline> {
            crate::sync::deadline_after(timeout).map(Deadline)
        }

        /// What is left of it: zero once it has passed.
        pub fn remaining(self) -> std::time::Duration {
            self.0.saturating_duration_since(crate::sync::now())
        }
    }
}

/// Controls of the loom model of the wait primitive and the clock, for the loom
/// suite in `loom_tests/`. Not part of the API; exists only under `--cfg loom`.
#[doc(hidden)]
#[cfg(loom)]
pub mod __loom {
    pub use crate::fork::model_fork_child as fork_child;
    pub use crate::sync::loom_model::{
        advance_clock, elapsed, interrupt, reset, sleepers, wait_for_sleepers,
    };
}

#[cfg(all(test, not(loom)))]
mod tests {
    /// Every doc example runs through `__doc_example`: if it stopped calling its
    /// argument, all of them would pass without running (a mutant that survived).
    #[test]
    fn doc_examples_really_run() {
        let mut ran = false;
        super::__doc_example(|| ran = true);
        assert!(ran);
    }
}

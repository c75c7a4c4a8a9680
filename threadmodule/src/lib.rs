//! CPython's `Modules/_threadmodule.c` for Rust Python runtimes: the logic of the `_thread`
//! module, host-neutral, on [`pythread`] (the Rust `Python/thread.c`).
//!
//! A runtime implements [`Runtime`] (its thread ident, calling a function object, releasing
//! and re-taking its interpreter lock around a wait, running pending calls, reporting an
//! exception, its finalization state) and keeps for itself what only it can do: argument
//! conversion, its object types, attaching a new thread, and registering the fork hooks.
//! Everything else is here, named after `_threadmodule.c`:
//!
//! | `_threadmodule.c` | here |
//! |---|---|
//! | `ThreadHandle` (`_ThreadHandle`): `ident`, `join`, `is_done`, `_set_done` | [`ThreadHandle`] |
//! | `ThreadHandle_start`, `do_start_new_thread` (`start_joinable_thread`) | [`ThreadHandle::start`] |
//! | `thread_PyThread_start_new_thread` | [`start_new_thread`] |
//! | `thread_run` | [`thread_run`] |
//! | `_make_thread_handle` | [`ThreadHandle::foreign`] |
//! | `thread_module_state`: `_get_main_thread_ident`, `stack_size`, `_count`, `_shutdown` | [`ModuleState`] |
//! | `_PyThread_AfterFork` and the module's `os.register_at_fork` hooks | [`ModuleState::before_fork`], [`ModuleState::after_fork_parent`], [`ModuleState::after_fork_child`] |
//! | `acquire_timed` / `PyThread_acquire_lock_timed_with_retries` | [`wait_interruptibly`] |
//! | `lock_acquire_parse_args` (converted seconds) | [`acquire_timeout`] |
//! | `ThreadHandle_join`'s timeout (`_PyTime_FromSecondsObject`, `_PyTime_ROUND_TIMEOUT`) | [`join_timeout`] |
//! | `lockobject` (`_thread.lock`) and its 3.11-3.13 `locked` flag | [`LockObject`], [`LockedReport`] |
//! | `rlockobject` (`_thread.RLock`), `_release_save`, `_acquire_restore` | [`RLockObject`], [`ReleaseSaveRule`] |
//! | `localobject` (`_local`): per-thread dicts, the initialization-arguments rule | [`LocalDicts`], [`release_thread_dicts`], [`local_check_init_args`] |
//! | `_set_sentinel` (3.11, 3.12) and `release_sentinel` | [`set_sentinel`], [`release_thread_sentinel`], [`Sentinel`], [`SentinelSlot`] |
//! | the module's exceptions and messages | [`Error`], [`ErrorKind`] |
//!
//! [`minihost`] is a complete host with no interpreter (closures as functions, a lock as the
//! interpreter lock): the runnable example of a runtime, and the host of the behaviour tests.
//!
//! # Examples
//!
//! ```
//! # pythread::__doc_example(|| {
//! use threadmodule::minihost::{MiniException, MiniFunction, MiniInterpreter};
//! use threadmodule::{ModuleState, StartOptions, ThreadHandle};
//!
//! let interp = MiniInterpreter::new();
//! let host = interp.attach();
//! let module = ModuleState::new(0);
//!
//! // start_joinable_thread(f): f raises; the exception is reported, the join returns.
//! let f = MiniFunction::new("f", |_| Err(MiniException::raised("boom")));
//! let handle = ThreadHandle::new(&module);
//! handle.start(&host, &StartOptions::new(), interp.runner(f)).unwrap();
//! handle.join(&host, None).unwrap();
//! assert!(handle.is_done());
//! assert_eq!(interp.reports(), ["Exception ignored in thread started by f: boom"]);
//! # });
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(rust_2018_idioms, unreachable_pub, missing_debug_implementations)]

mod error;
mod handle;
mod local;
mod lock;
pub mod minihost;
mod module;
mod runtime;
mod sentinel;

pub use crate::error::{Error, ErrorKind};
pub use crate::handle::ThreadHandle;
pub use crate::local::{LocalDicts, local_check_init_args, release_thread_dicts};
pub use crate::lock::{LockObject, LockedReport, RLockObject, ReleaseSaveRule};
pub use crate::module::{
    ModuleState, StartOptions, THREAD_STACK_MIN, acquire_timeout, join_timeout, start_new_thread,
    thread_run,
};
pub use crate::runtime::{Interrupted, Runtime, interrupted, wait_interruptibly};
pub use crate::sentinel::{Sentinel, SentinelSlot, release_thread_sentinel, set_sentinel};

//! CPython's interruptible wait (`acquire_timed` in `Modules/_threadmodule.c`), for RustPython.
//!
//! A blocking call waits detached from the VM (`vm.allow_threads`, RustPython's
//! `Py_BEGIN_ALLOW_THREADS`: a stop-the-world, as `os.fork` makes, does not wait for it). The
//! wait is the crate's `*_with_retries`, whose pending-calls hook here only ends the wait: the
//! interpreter's signal handlers must run attached, so they run after `allow_threads` returns
//! (`vm.check_signals()`, RustPython's `Py_MakePendingCalls`). What a handler raises ends the
//! call; otherwise the wait resumes against the same deadline, as in CPython.

use std::time::{Duration, Instant};

use rustpython_vm::{PyResult, VirtualMachine};

/// The crate's wait ended because a signal handler ran on this thread (`PY_LOCK_INTR`).
pub(crate) struct Interrupted;

/// The pending-calls hook handed to the crate's `*_with_retries`: end the wait at once.
pub(crate) fn interrupted() -> Result<(), Interrupted> {
    Err(Interrupted)
}

/// Calls `wait(remaining)` detached until it returns without being interrupted, running the
/// signal handlers (attached) after each interruption. `timeout` `None` waits forever; the
/// deadline is fixed here, so an interruption never extends it (once it has passed, `wait`
/// gets `Some(ZERO)`: one last try, as CPython's loop does).
pub(crate) fn wait_interruptibly<T>(
    vm: &VirtualMachine,
    timeout: Option<Duration>,
    mut wait: impl FnMut(Option<Duration>) -> Result<T, Interrupted>,
) -> PyResult<T> {
    // A timeout too large for the clock has no deadline: each resumed wait gets it whole.
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let mut remaining = timeout;
    loop {
        match vm.allow_threads(|| wait(remaining)) {
            Ok(done) => return Ok(done),
            Err(Interrupted) => {
                vm.check_signals()?;
                if let Some(deadline) = deadline {
                    remaining = Some(deadline.saturating_duration_since(Instant::now()));
                }
            }
        }
    }
}

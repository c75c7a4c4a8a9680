//! What the layer needs from the interpreter, and nothing else: the [`Runtime`] trait, and the
//! wait every blocking call of the module makes ([`wait_interruptibly`]).

use std::time::Duration;

use pythread::__sync::Deadline;

use crate::Error;

/// An interpreter, as the `_thread` module sees it: implemented by a runtime's attached thread
/// context (PyO3: a wrapper of `Python<'py>`; RustPython: of `&VirtualMachine`; the Rust-only
/// [`MiniHost`](crate::minihost::MiniHost)). Every method taking `&self` is called by a thread
/// attached to the interpreter (holding its lock).
///
/// # Examples
///
/// The Rust-only host implements it with closures as the functions and a lock as the
/// interpreter lock (see `src/minihost.rs`):
///
/// ```
/// # pythread::__doc_example(|| {
/// use threadmodule::minihost::MiniInterpreter;
/// use threadmodule::Runtime;
///
/// let interp = MiniInterpreter::new();
/// let host = interp.attach();
/// assert_eq!(host.allow_threads(|| 6 * 7), 42);
/// assert!(!host.is_finalizing());
/// # });
/// ```
pub trait Runtime {
    /// The host's exception object.
    type Exception;
    /// A function object with its arguments (`start_new_thread(function, args, kwargs)`), moved
    /// to the new thread.
    type Function: Send + 'static;

    /// The interpreter's own ident of the calling thread (`PyThread_get_thread_ident`; what its
    /// `_thread.get_ident()` returns). Called on any thread, attached or not; never 0.
    fn get_ident() -> u64;

    /// The host ident of a thread the crate has just started, if the starting thread can tell
    /// it from the crate's handle (CPython's ident is the `pthread_t`, which
    /// [`pythread::Handle::pthread_t`] holds): then a start returns without waiting for the new
    /// thread to be scheduled. The default, `None`, waits until the new thread has published
    /// its [`get_ident`](Runtime::get_ident). Either way the new thread runs nothing before its
    /// handle names it.
    fn ident_of(thread: &pythread::Handle) -> Option<u64> {
        let _ = thread;
        None
    }

    /// Runs `f` with the interpreter lock released (`Py_BEGIN_ALLOW_THREADS`), and takes it
    /// back before returning.
    fn allow_threads<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T;

    /// Runs the pending calls and signal handlers (`Py_MakePendingCalls`): what one of them
    /// raises ends the wait it interrupted.
    fn make_pending_calls(&self) -> Result<(), Self::Exception>;

    /// Whether the interpreter is finalizing (`_PyInterpreterState_GetFinalizing`).
    fn is_finalizing(&self) -> bool;

    /// The host's exception for a module error: `error.kind()` as its type, `error.message()`.
    fn new_exception(&self, error: Error) -> Self::Exception;

    /// Calls the function (`PyObject_Call(func, args, kwargs)`); its result is dropped.
    fn call(&self, function: &Self::Function) -> Result<(), Self::Exception>;

    /// Whether `exception` is a `SystemExit`, which ends a thread silently.
    fn is_system_exit(&self, exception: &Self::Exception) -> bool;

    /// `PyErr_FormatUnraisable("Exception ignored in thread started by %R", func)`: a thread's
    /// function raised `exception`. A report that itself fails is dropped.
    fn report_thread_exception(&self, exception: Self::Exception, function: &Self::Function);

    /// `PyErr_WriteUnraisable(NULL)`: `_shutdown` interrupted by an exception.
    fn write_unraisable(&self, exception: Self::Exception);

    /// The last thing a thread started by the module does while attached: its per-thread
    /// objects go (its `_local` dicts, its `_set_sentinel` lock), so that their finalizers run
    /// attached. The default does nothing.
    fn thread_exiting(&self) {}
}

/// A wait of the crate's (`*_with_retries`) ended because a signal handler ran on the waiting
/// thread (`PY_LOCK_INTR`). Made by [`interrupted`].
///
/// # Examples
///
/// ```
/// assert_eq!(threadmodule::interrupted(), Err(threadmodule::Interrupted));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interrupted;

/// The pending-calls hook handed to the crate's `*_with_retries` inside
/// [`Runtime::allow_threads`]: it ends the wait at once, so that the interpreter's pending
/// calls run attached, in [`wait_interruptibly`].
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// let lock = pythread::Lock::new();
/// assert_eq!(lock.acquire_with_retries(None, threadmodule::interrupted), Ok(true));
/// # });
/// ```
pub fn interrupted() -> Result<(), Interrupted> {
    Err(Interrupted)
}

/// CPython's interruptible wait (`PyThread_acquire_lock_timed_with_retries`, and the loop of
/// `ThreadHandle_join`): `wait(remaining)` runs with the interpreter lock released until it
/// returns without being interrupted; after each interruption the pending calls run attached
/// ([`Runtime::make_pending_calls`]): what they raise ends the call, otherwise the wait resumes
/// against the same deadline (once it has passed, `wait` gets `Some(ZERO)`: one last try).
/// `timeout` `None` waits forever; a timeout too large for the clock too.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// use std::time::Duration;
/// use threadmodule::minihost::MiniInterpreter;
///
/// let interp = MiniInterpreter::new();
/// let host = interp.attach();
/// let lock = pythread::Lock::new();
/// let got = threadmodule::wait_interruptibly(&host, Some(Duration::from_secs(5)), |t| {
///     lock.acquire_with_retries(t, threadmodule::interrupted)
/// });
/// assert_eq!(got.ok(), Some(true));
/// # });
/// ```
pub fn wait_interruptibly<R: Runtime, T: Send>(
    rt: &R,
    timeout: Option<Duration>,
    mut wait: impl FnMut(Option<Duration>) -> Result<T, Interrupted> + Send,
) -> Result<T, R::Exception> {
    let deadline = timeout.and_then(Deadline::after);
    let mut remaining = timeout;
    loop {
        match rt.allow_threads(|| wait(remaining)) {
            Ok(done) => return Ok(done),
            Err(Interrupted) => {
                rt.make_pending_calls()?;
                if let Some(deadline) = deadline {
                    remaining = Some(deadline.remaining());
                }
            }
        }
    }
}

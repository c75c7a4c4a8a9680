//! A third host, with no interpreter: closures as the function objects, a lock as the
//! interpreter lock, a queue of closures as the pending calls. It runs the layer's behaviour
//! tests (`tests/minihost.rs`) and its loom models, and it is the runnable example for a
//! runtime author: every method of [`Runtime`] in a few lines.
//!
//! Its thread idents are the crate's plus [`IDENT_OFFSET`], so that a test mixing the two
//! kinds of ident (the crate's and the host's) fails.

use std::fmt;

use pythread::__sync::{Arc, AtomicU64, Mutex, Ordering, lock};

use crate::{Error, Runtime};

/// What [`MiniHost::get_ident`] adds to the crate's ident of the thread.
pub const IDENT_OFFSET: u64 = 1 << 40;

/// The host's exception: a raised message, `SystemExit`, or one of the module's errors.
///
/// # Examples
///
/// ```
/// use threadmodule::minihost::MiniException;
/// assert_eq!(MiniException::raised("boom").to_string(), "boom");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MiniException {
    /// An exception a function raised, with its message.
    Raised(String),
    /// `SystemExit`.
    SystemExit,
    /// An error of the module (`Runtime::new_exception`).
    Error(Error),
}

impl MiniException {
    /// An exception with `message`.
    ///
    /// # Examples
    ///
    /// See [`MiniException`].
    pub fn raised(message: impl Into<String>) -> MiniException {
        MiniException::Raised(message.into())
    }
}

impl fmt::Display for MiniException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MiniException::Raised(message) => f.write_str(message),
            MiniException::SystemExit => f.write_str("SystemExit"),
            MiniException::Error(error) => write!(f, "{error}"),
        }
    }
}

type Body = dyn Fn(&MiniHost) -> Result<(), MiniException> + Send + Sync;

/// A function object: a name (its repr) and a closure, called attached.
///
/// # Examples
///
/// ```
/// use threadmodule::minihost::MiniFunction;
/// let f = MiniFunction::new("f", |_| Ok(()));
/// assert_eq!(f.name(), "f");
/// ```
#[derive(Clone)]
pub struct MiniFunction {
    name: String,
    body: std::sync::Arc<Body>,
}

impl MiniFunction {
    /// A function named `name` that runs `body`.
    ///
    /// # Examples
    ///
    /// See [`MiniFunction`].
    pub fn new(
        name: impl Into<String>,
        body: impl Fn(&MiniHost) -> Result<(), MiniException> + Send + Sync + 'static,
    ) -> MiniFunction {
        MiniFunction {
            name: name.into(),
            body: std::sync::Arc::new(body),
        }
    }

    /// Its name.
    ///
    /// # Examples
    ///
    /// See [`MiniFunction`].
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for MiniFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<function {}>", self.name)
    }
}

type PendingCall = Box<dyn FnOnce() -> Result<(), MiniException> + Send>;

struct Inner {
    /// The interpreter lock: held by an attached thread ([`MiniHost`]).
    gil: pythread::Lock,
    finalizing: AtomicU64,
    pending: Mutex<Vec<PendingCall>>,
    pending_runs: AtomicU64,
    reports: Mutex<Vec<String>>,
    unraisable: Mutex<Vec<MiniException>>,
    exited: AtomicU64,
}

/// The interpreter: shared by every thread attached to it (a cheap clone).
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// use threadmodule::minihost::MiniInterpreter;
///
/// let interp = MiniInterpreter::new();
/// let host = interp.attach(); // takes the interpreter lock
/// assert!(!interp.try_attach_now());
/// drop(host); // gives it back
/// assert!(interp.try_attach_now());
/// # });
/// ```
#[derive(Clone)]
pub struct MiniInterpreter(Arc<Inner>);

impl fmt::Debug for MiniInterpreter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MiniInterpreter").finish_non_exhaustive()
    }
}

impl Default for MiniInterpreter {
    fn default() -> MiniInterpreter {
        MiniInterpreter::new()
    }
}

impl MiniInterpreter {
    /// A new interpreter, no thread attached.
    ///
    /// # Examples
    ///
    /// See [`MiniInterpreter`].
    pub fn new() -> MiniInterpreter {
        MiniInterpreter(Arc::new(Inner {
            gil: pythread::Lock::new(),
            finalizing: AtomicU64::new(0),
            pending: Mutex::new(Vec::new()),
            pending_runs: AtomicU64::new(0),
            reports: Mutex::new(Vec::new()),
            unraisable: Mutex::new(Vec::new()),
            exited: AtomicU64::new(0),
        }))
    }

    /// Attaches the calling thread: waits for the interpreter lock.
    ///
    /// # Examples
    ///
    /// See [`MiniInterpreter`].
    pub fn attach(&self) -> MiniHost {
        self.0.gil.acquire();
        ATTACHED.with(|a| a.set(a.get() + 1));
        MiniHost {
            interp: self.clone(),
        }
    }

    /// Whether the interpreter lock is free right now (taken and given back at once).
    ///
    /// # Examples
    ///
    /// See [`MiniInterpreter`].
    pub fn try_attach_now(&self) -> bool {
        let free = self.0.gil.try_acquire();
        if free {
            let _ = self.0.gil.release();
        }
        free
    }

    /// What a new thread runs: attach, then the layer's [`thread_run`](crate::thread_run) of
    /// `function`, then detach. The host's part of `start_new_thread`.
    ///
    /// # Examples
    ///
    /// See [`crate::start_new_thread`].
    pub fn runner(&self, function: MiniFunction) -> impl FnOnce() + Send + 'static {
        let interp = self.clone();
        move || {
            let host = interp.attach();
            crate::thread_run(&host, function);
        }
    }

    /// Queues a pending call (what a signal handler is): run by the next
    /// [`Runtime::make_pending_calls`] of any thread.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use threadmodule::minihost::{MiniException, MiniInterpreter};
    /// use threadmodule::Runtime;
    ///
    /// let interp = MiniInterpreter::new();
    /// interp.add_pending_call(|| Err(MiniException::raised("KeyboardInterrupt")));
    /// let host = interp.attach();
    /// assert_eq!(host.make_pending_calls(), Err(MiniException::raised("KeyboardInterrupt")));
    /// assert_eq!(host.make_pending_calls(), Ok(()));
    /// assert_eq!(interp.pending_runs(), 2);
    /// # });
    /// ```
    pub fn add_pending_call(
        &self,
        call: impl FnOnce() -> Result<(), MiniException> + Send + 'static,
    ) {
        lock(&self.0.pending).push(Box::new(call));
    }

    /// How many times the pending calls ran.
    ///
    /// # Examples
    ///
    /// See [`MiniInterpreter::add_pending_call`].
    pub fn pending_runs(&self) -> u64 {
        self.0.pending_runs.load(Ordering::Acquire)
    }

    /// Marks the interpreter finalizing (or not).
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use threadmodule::minihost::MiniInterpreter;
    /// use threadmodule::Runtime;
    ///
    /// let interp = MiniInterpreter::new();
    /// interp.set_finalizing(true);
    /// assert!(interp.attach().is_finalizing());
    /// # });
    /// ```
    pub fn set_finalizing(&self, finalizing: bool) {
        self.0
            .finalizing
            .store(u64::from(finalizing), Ordering::Release);
    }

    /// The reports of threads' exceptions, in order.
    ///
    /// # Examples
    ///
    /// See [`crate::thread_run`].
    pub fn reports(&self) -> Vec<String> {
        lock(&self.0.reports).clone()
    }

    /// What `write_unraisable` received, in order.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// assert!(threadmodule::minihost::MiniInterpreter::new().unraisable().is_empty());
    /// # });
    /// ```
    pub fn unraisable(&self) -> Vec<MiniException> {
        lock(&self.0.unraisable).clone()
    }

    /// How many threads ran [`Runtime::thread_exiting`].
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// assert_eq!(threadmodule::minihost::MiniInterpreter::new().exited(), 0);
    /// # });
    /// ```
    pub fn exited(&self) -> u64 {
        self.0.exited.load(Ordering::Acquire)
    }
}

/// A thread attached to a [`MiniInterpreter`]: holds its lock until dropped.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// use threadmodule::minihost::{MiniHost, MiniInterpreter};
/// use threadmodule::Runtime;
///
/// let host = MiniInterpreter::new().attach();
/// assert_eq!(MiniHost::get_ident(), pythread::get_ident().as_u64() + threadmodule::minihost::IDENT_OFFSET);
/// drop(host);
/// # });
/// ```
#[derive(Debug)]
pub struct MiniHost {
    interp: MiniInterpreter,
}

std::thread_local! {
    /// How many [`MiniHost`]s this OS thread holds attached (for [`MiniHost::is_attached`]; under
    /// loom, whose model threads share one OS thread, it means nothing).
    static ATTACHED: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

impl MiniHost {
    /// Whether the calling OS thread is attached (holds the interpreter lock through a
    /// [`MiniHost`] outside [`Runtime::allow_threads`]): what a test asks in a finalizer.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use threadmodule::minihost::{MiniHost, MiniInterpreter};
    /// use threadmodule::Runtime;
    ///
    /// let host = MiniInterpreter::new().attach();
    /// assert!(MiniHost::is_attached());
    /// assert!(!host.allow_threads(MiniHost::is_attached));
    /// drop(host);
    /// assert!(!MiniHost::is_attached());
    /// # });
    /// ```
    pub fn is_attached() -> bool {
        ATTACHED.with(|a| a.get() > 0)
    }

    /// The interpreter this thread is attached to.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let host = threadmodule::minihost::MiniInterpreter::new().attach();
    /// assert_eq!(host.interpreter().pending_runs(), 0);
    /// # });
    /// ```
    pub fn interpreter(&self) -> &MiniInterpreter {
        &self.interp
    }
}

impl Drop for MiniHost {
    fn drop(&mut self) {
        ATTACHED.with(|a| a.set(a.get() - 1));
        let _ = self.interp.0.gil.release();
    }
}

impl Runtime for MiniHost {
    type Exception = MiniException;
    type Function = MiniFunction;

    fn get_ident() -> u64 {
        pythread::get_ident().as_u64() + IDENT_OFFSET
    }

    fn allow_threads<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        ATTACHED.with(|a| a.set(a.get() - 1));
        let _ = self.interp.0.gil.release();
        let result = f();
        self.interp.0.gil.acquire();
        ATTACHED.with(|a| a.set(a.get() + 1));
        result
    }

    fn make_pending_calls(&self) -> Result<(), MiniException> {
        self.interp.0.pending_runs.fetch_add(1, Ordering::AcqRel);
        let calls = std::mem::take(&mut *lock(&self.interp.0.pending));
        let mut first = Ok(());
        for call in calls {
            let result = call();
            if first.is_ok() {
                first = result;
            }
        }
        first
    }

    fn is_finalizing(&self) -> bool {
        self.interp.0.finalizing.load(Ordering::Acquire) != 0
    }

    fn new_exception(&self, error: Error) -> MiniException {
        MiniException::Error(error)
    }

    fn call(&self, function: &MiniFunction) -> Result<(), MiniException> {
        (function.body)(self)
    }

    fn is_system_exit(&self, exception: &MiniException) -> bool {
        *exception == MiniException::SystemExit
    }

    fn report_thread_exception(&self, exception: MiniException, function: &MiniFunction) {
        lock(&self.interp.0.reports).push(format!(
            "Exception ignored in thread started by {}: {exception}",
            function.name
        ));
    }

    fn write_unraisable(&self, exception: MiniException) {
        lock(&self.interp.0.unraisable).push(exception);
    }

    fn thread_exiting(&self) {
        crate::release_thread_dicts();
        crate::release_thread_sentinel();
        self.interp.0.exited.fetch_add(1, Ordering::AcqRel);
    }
}

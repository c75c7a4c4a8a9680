//! The module-level state and functions of `_threadmodule.c`: `thread_module_state` (the main
//! thread's ident, the fork generation, the stack size), the thread bootstrap
//! (`do_start_new_thread`, `thread_run`), `start_new_thread`, `_count`, `_shutdown`,
//! `stack_size`, the fork hooks, and `join`'s timeout argument.

use std::time::Duration;

use pythread::__sync::{Arc, AtomicU32, AtomicU64, Ordering};

use crate::{Error, Runtime, wait_interruptibly};

/// CPython's `THREAD_STACK_MIN`: `stack_size()` refuses anything smaller, except 0.
pub const THREAD_STACK_MIN: isize = 0x8000;

/// The module's state (`thread_module_state`): one per `_thread` module a host makes, shared by
/// the handles it makes (an `Arc`).
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// let module = threadmodule::ModuleState::new(7);
/// assert_eq!(module.get_main_thread_ident(), 7);
/// assert_eq!(module.stack_size(Some(0x10000)), Ok(0));
/// assert_eq!(module.stack_size(None), Ok(0x10000));
/// # });
/// ```
#[derive(Debug)]
pub struct ModuleState {
    /// `_get_main_thread_ident()`: the host ident of the thread that made the module, and in a
    /// forked child the thread that forked.
    main_ident: AtomicU64,
    /// Bumped in a forked child: a foreign handle made in an earlier generation names a thread
    /// that is gone, unless it names the thread that forked.
    generation: AtomicU64,
    /// The process the state belongs to.
    pid: AtomicU32,
    /// `stack_size()`: the size new threads get, 0 = the platform default.
    stack_size: AtomicU64,
}

impl ModuleState {
    /// The state of a module made (imported) by the thread whose host ident is `main_ident`.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use threadmodule::minihost::MiniHost;
    /// use threadmodule::Runtime;
    ///
    /// let module = threadmodule::ModuleState::new(MiniHost::get_ident());
    /// assert_eq!(module.get_main_thread_ident(), MiniHost::get_ident());
    /// # });
    /// ```
    pub fn new(main_ident: u64) -> Arc<ModuleState> {
        Arc::new(ModuleState {
            main_ident: AtomicU64::new(main_ident),
            generation: AtomicU64::new(0),
            pid: AtomicU32::new(std::process::id()),
            stack_size: AtomicU64::new(0),
        })
    }

    /// `_get_main_thread_ident()`.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// assert_eq!(threadmodule::ModuleState::new(3).get_main_thread_ident(), 3);
    /// # });
    /// ```
    pub fn get_main_thread_ident(&self) -> u64 {
        self.main_ident.load(Ordering::Acquire)
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// `stack_size([size])`: sets the size of the next threads' stacks (`Some`) and returns the
    /// old size; `None` only reads it. 0 is the platform default.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use threadmodule::Error;
    ///
    /// let module = threadmodule::ModuleState::new(1);
    /// assert_eq!(module.stack_size(Some(-1)), Err(Error::StackSizeNegative));
    /// assert_eq!(module.stack_size(Some(100)), Err(Error::StackSizeInvalid(100)));
    /// assert_eq!(module.stack_size(Some(1 << 20)), Ok(0));
    /// # });
    /// ```
    pub fn stack_size(&self, size: Option<isize>) -> Result<usize, Error> {
        let Some(new) = size else {
            return Ok(self.stack_size.load(Ordering::Relaxed) as usize);
        };
        if new < 0 {
            return Err(Error::StackSizeNegative);
        }
        if new != 0 && new < THREAD_STACK_MIN {
            return Err(Error::StackSizeInvalid(new));
        }
        Ok(self.stack_size.swap(new as u64, Ordering::Relaxed) as usize)
    }

    /// `os.register_at_fork(before=...)`, registered before `threading`'s hooks (so it runs
    /// last, right before `fork()`): `PyOS_BeforeFork` for the crate, which takes no lock.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let module = threadmodule::ModuleState::new(1);
    /// module.before_fork();
    /// module.after_fork_parent();
    /// # });
    /// ```
    pub fn before_fork(&self) {
        pythread::before_fork();
    }

    /// `os.register_at_fork(after_in_parent=...)`: the parent's side of [`before_fork`].
    ///
    /// [`before_fork`]: ModuleState::before_fork
    ///
    /// # Examples
    ///
    /// See [`ModuleState::before_fork`].
    pub fn after_fork_parent(&self) {
        pythread::after_fork_parent();
    }

    /// `os.register_at_fork(after_in_child=...)`, registered before `threading`'s hook (so it
    /// runs first): `_PyThread_AfterFork`. The crate's handles of threads that did not survive
    /// read as done, then the forking thread (`ident`, its host ident) becomes the main thread
    /// and every foreign handle made before names a lost thread, unless it names `ident`; the
    /// lost threads' `_local` dicts go at each [`LocalDicts`](crate::LocalDicts)' next access.
    /// A no-op in a process that has not forked since the last call.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let module = threadmodule::ModuleState::new(1);
    /// module.after_fork_child(2); // no fork happened: nothing changes
    /// assert_eq!(module.get_main_thread_ident(), 1);
    /// # });
    /// ```
    pub fn after_fork_child(&self, ident: u64) {
        pythread::after_fork_child();
        let pid = std::process::id();
        if self.pid.swap(pid, Ordering::AcqRel) != pid {
            self.forked(ident);
        }
    }

    /// What [`after_fork_child`](ModuleState::after_fork_child) does in a new process, without
    /// the process check: for the loom models and tests, which cannot fork. Not part of the API.
    #[doc(hidden)]
    pub fn __forked(&self, ident: u64) {
        self.forked(ident);
    }

    fn forked(&self, ident: u64) {
        crate::local::after_fork_child();
        self.main_ident.store(ident, Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// `_count()`: how many threads started by the module are running.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let module = threadmodule::ModuleState::new(1);
    /// let _ = module.count(); // other tests' threads may run
    /// # });
    /// ```
    pub fn count(&self) -> usize {
        pythread::count()
    }

    /// `_shutdown()`: joins every non-daemon thread still running, except the caller's own,
    /// with the interpreter lock released. As 3.13's `thread_shutdown`: an interrupted wait
    /// runs the pending calls; if they raise (Ctrl-C), the exception is written as unraisable
    /// and `_shutdown` returns at once, the remaining threads left running.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use threadmodule::minihost::MiniInterpreter;
    ///
    /// let interp = MiniInterpreter::new();
    /// let host = interp.attach();
    /// let module = threadmodule::ModuleState::new(0);
    /// module.shutdown(&host); // nothing to wait for
    /// # });
    /// ```
    pub fn shutdown<R: Runtime>(&self, rt: &R) {
        if let Err(exc) = wait_interruptibly(rt, None, |_| {
            pythread::shutdown_with_retries(crate::interrupted)
        }) {
            rt.write_unraisable(exc);
        }
    }
}

/// How a thread is started: `start_joinable_thread`'s `daemon`, and a name for the OS thread.
///
/// # Examples
///
/// ```
/// let options = threadmodule::StartOptions::new().daemon(false).name("worker");
/// assert!(!options.is_daemon());
/// ```
#[derive(Clone, Debug, Default)]
pub struct StartOptions {
    non_daemon: bool,
    name: Option<String>,
}

impl StartOptions {
    /// A daemon thread (`start_new_thread`'s kind), with the OS's default name.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(threadmodule::StartOptions::new().is_daemon());
    /// ```
    pub fn new() -> StartOptions {
        StartOptions::default()
    }

    /// Whether `_shutdown` leaves it running (default `true`).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!threadmodule::StartOptions::new().daemon(false).is_daemon());
    /// ```
    pub fn daemon(mut self, daemon: bool) -> StartOptions {
        self.non_daemon = !daemon;
        self
    }

    /// The OS thread's name (a name with a NUL byte makes the start fail).
    ///
    /// # Examples
    ///
    /// ```
    /// let options = threadmodule::StartOptions::new().name("worker");
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> StartOptions {
        self.name = Some(name.into());
        self
    }

    /// Whether the thread will be a daemon thread.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(threadmodule::StartOptions::default().is_daemon());
    /// ```
    pub fn is_daemon(&self) -> bool {
        !self.non_daemon
    }
}

/// The handshake of a start: the new thread publishes its host ident (`ready`: waited for
/// only where the starter cannot tell it, [`Runtime::ident_of`]), then runs nothing before the
/// starter has published its handle (`go`, as 3.13's `thread_run` waits for
/// `thread_is_running`).
struct Gate {
    ident: AtomicU64,
    ready: pythread::Lock,
    go: pythread::Lock,
}

/// Lets the new thread run its function, when dropped.
pub(crate) struct Go(Arc<Gate>);

impl Drop for Go {
    fn drop(&mut self) {
        let _ = self.0.go.release();
    }
}

/// `do_start_new_thread`, once its callers have refused a start at shutdown: starts a crate
/// thread with the interpreter lock released and returns its host ident ([`Runtime::ident_of`],
/// or else the one it publishes, waited for released). `run` is the host's attach-and-call ([`thread_run`] inside); a start that fails
/// drops it unrun, released.
pub(crate) fn spawn<R: Runtime>(
    rt: &R,
    module: &ModuleState,
    options: &StartOptions,
    run: impl FnOnce() + Send + 'static,
) -> Result<(pythread::Handle, u64, Go), Error> {
    let gate = Arc::new(Gate {
        ident: AtomicU64::new(0),
        ready: pythread::Lock::new(),
        go: pythread::Lock::new(),
    });
    gate.ready.acquire();
    gate.go.acquire();
    let theirs = Arc::clone(&gate);
    let mut builder = pythread::Builder::new()
        .daemon(options.is_daemon())
        .stack_size(module.stack_size.load(Ordering::Relaxed) as usize);
    if let Some(name) = &options.name {
        builder = builder.name(name.clone());
    }
    let started = rt.allow_threads(|| {
        let handle = builder.try_start(move || {
            theirs.ident.store(R::get_ident(), Ordering::Relaxed);
            let _ = theirs.ready.release();
            theirs.go.acquire();
            drop(theirs);
            run();
        })?;
        let ident = R::ident_of(&handle).unwrap_or_else(|| {
            gate.ready.acquire();
            gate.ident.load(Ordering::Relaxed)
        });
        Ok::<_, std::io::Error>((handle, ident))
    });
    match started {
        Ok((handle, ident)) => Ok((handle, ident, Go(gate))),
        Err(_) => Err(Error::CantStartNewThread),
    }
}

/// `start_new_thread(function, args, kwargs)` once the host has checked its arguments: starts
/// a daemon thread that runs `run` (the host's attach, then [`thread_run`]) and returns its host
/// ident. The thread is detached.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// use threadmodule::minihost::{MiniFunction, MiniInterpreter};
/// use threadmodule::ModuleState;
///
/// let interp = MiniInterpreter::new();
/// let host = interp.attach();
/// let module = ModuleState::new(0);
/// let (tx, rx) = std::sync::mpsc::channel();
/// let f = MiniFunction::new("f", move |_| { tx.send(()).unwrap(); Ok(()) });
/// let ident = threadmodule::start_new_thread(&host, &module, interp.runner(f)).unwrap();
/// assert_ne!(ident, 0);
/// drop(host); // the new thread needs the interpreter lock
/// rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
/// # });
/// ```
pub fn start_new_thread<R: Runtime>(
    rt: &R,
    module: &ModuleState,
    run: impl FnOnce() + Send + 'static,
) -> Result<u64, R::Exception> {
    if rt.is_finalizing() {
        return Err(rt.new_exception(Error::StartAtShutdown));
    }
    let (handle, ident, go) =
        spawn(rt, module, &StartOptions::new(), run).map_err(|e| rt.new_exception(e))?;
    drop(handle);
    drop(go);
    Ok(ident)
}

/// CPython's `thread_run`, on the new thread once the host has attached it: calls the
/// function; an exception other than `SystemExit` is reported
/// ([`Runtime::report_thread_exception`]); then the thread's per-thread objects go
/// ([`Runtime::thread_exiting`]), and the function last, all attached.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// use threadmodule::minihost::{MiniException, MiniFunction, MiniInterpreter};
///
/// let interp = MiniInterpreter::new();
/// let host = interp.attach();
/// threadmodule::thread_run(&host, MiniFunction::new("boom", |_| Err(MiniException::raised("boom"))));
/// threadmodule::thread_run(&host, MiniFunction::new("bye", |_| Err(MiniException::SystemExit)));
/// assert_eq!(interp.reports(), ["Exception ignored in thread started by boom: boom"]);
/// # });
/// ```
pub fn thread_run<R: Runtime>(rt: &R, function: R::Function) {
    match rt.call(&function) {
        Ok(()) => {}
        Err(exc) if rt.is_system_exit(&exc) => {}
        Err(exc) => rt.report_thread_exception(exc, &function),
    }
    rt.thread_exiting();
    drop(function);
}

/// `_ThreadHandle.join`'s timeout, as seconds (`None`: the argument was `None` or absent):
/// `None` or negative waits forever, else rounded up to whole nanoseconds
/// (`_PyTime_ROUND_TIMEOUT`); NaN and values past a 64-bit nanosecond clock are errors.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use threadmodule::{join_timeout, Error};
///
/// assert_eq!(join_timeout(None), Ok(None));
/// assert_eq!(join_timeout(Some(-1.0)), Ok(None));
/// assert_eq!(join_timeout(Some(1.5e-9)), Ok(Some(Duration::from_nanos(2))));
/// assert_eq!(join_timeout(Some(f64::NAN)), Err(Error::TimeoutNaN));
/// assert_eq!(join_timeout(Some(1e10)), Err(Error::TimestampOutOfRange));
/// ```
pub fn join_timeout(seconds: Option<f64>) -> Result<Option<Duration>, Error> {
    let Some(secs) = seconds else {
        return Ok(None);
    };
    if secs.is_nan() {
        return Err(Error::TimeoutNaN);
    }
    if secs < 0.0 {
        return Ok(None);
    }
    let ns = (secs * 1e9).ceil();
    if ns >= i64::MAX as f64 {
        return Err(Error::TimestampOutOfRange);
    }
    Ok(Some(Duration::from_nanos(ns as u64)))
}

/// `lock.acquire(blocking, timeout)`'s arguments (`timeout` in seconds, -1 = unset) to a wait:
/// `None` forever, `Some(ZERO)` a try; the crate's rules and CPython 3.13's messages
/// (`pythread::parse_acquire_args`).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use threadmodule::{acquire_timeout, ErrorKind};
///
/// assert_eq!(acquire_timeout(true, -1.0), Ok(None));
/// assert_eq!(acquire_timeout(false, -1.0), Ok(Some(Duration::ZERO)));
/// let err = acquire_timeout(false, 1.0).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::ValueError);
/// assert_eq!(err.message(), "can't specify a timeout for a non-blocking call");
/// ```
#[inline]
pub fn acquire_timeout(blocking: bool, timeout: f64) -> Result<Option<Duration>, Error> {
    pythread::parse_acquire_args(blocking, timeout).map_err(Error::AcquireArgs)
}

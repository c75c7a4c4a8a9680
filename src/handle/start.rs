//! Starting threads: [`start`], [`try_start`] and the [`Builder`] behind them, and the body
//! every started thread runs ([`run`]): the port of `PyThread_start_new_thread`, with a
//! [`Handle`] in place of a bare ident. A child of `handle` so that it builds the handle's
//! private cells.

use std::io;
use std::panic::{self, AssertUnwindSafe};

use super::{Handle, OsThread, Shared};
use crate::completion::Completion;
use crate::fork;
use crate::ident::{self, Ident};
use crate::panic::Panic;
use crate::registry;
use crate::sync::{Arc, AtomicU64, ForkMutex, thread};

/// Starts `f` on a new OS thread and returns its [`Handle`]: the port of
/// `PyThread_start_new_thread`, with a handle in place of a bare ident.
///
/// `f` runs exactly once. It may block as long as it likes; nothing in this crate
/// waits for it except `join`. A panic in `f` is caught and delivered by
/// [`Handle::join`] as `Err(Panic)`; the panic hook still reports it first, as for
/// any thread, and it never takes down the process nor poisons anything the crate
/// holds. When the crate is built with `panic = "abort"`, however, a panic in `f`
/// aborts the process like any other panic; and, as anywhere in Rust, a value
/// captured by `f` whose `Drop` panics while `f` is already unwinding aborts it too.
///
/// CPython's requirement that the function not be `NULL` is enforced here by the
/// type system: there is no way to pass "no function".
///
/// The value `f` returns is kept for every joiner until the last handle is
/// dropped; many threads may borrow it at once, so `T` must be `Sync` as well as
/// `Send`. A `!Sync` result is rejected at compile time:
///
/// ```compile_fail,E0277
/// let handle = pythread::start(|| std::cell::Cell::new(1)); // Cell is !Sync
/// ```
///
/// # Panics
///
/// Panics if the operating system refuses to create a thread (CPython raises
/// "can't start new thread" there); [`try_start`] returns the error instead.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// let handle = pythread::start(|| println!("hello from a pythread"));
/// assert!(handle.join().is_ok());
///
/// let sum = pythread::start(|| (1..=10).sum::<u32>());
/// assert_eq!(sum.join().unwrap(), 55);
///
/// let failing = pythread::start(|| panic!("bad input"));
/// assert_eq!(failing.join().unwrap_err().message(), Some("bad input"));
/// # });
/// ```
#[track_caller]
pub fn start<F, T>(f: F) -> Handle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + Sync + 'static,
{
    Builder::new().start(f)
}

/// Starts `f` on a new OS thread like [`start`], but returns the operating
/// system's refusal to create a thread as an error instead of panicking.
///
/// On error `f` has been dropped without running, and nothing this crate
/// allocated for it remains. The [`Ident`] minted for the attempt is not reused.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// match pythread::try_start(|| {}) {
///     Ok(handle) => handle.join().unwrap(),
///     Err(e) => eprintln!("can't start new thread: {e}"),
/// }
/// # });
/// ```
pub fn try_start<F, T>(f: F) -> io::Result<Handle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + Sync + 'static,
{
    Builder::new().try_start(f)
}

/// Thread configuration, in the style of [`std::thread::Builder`]: set a name, then
/// [`start`](Builder::start) or [`try_start`](Builder::try_start).
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// let handle = pythread::Builder::new()
///     .name("worker-1")
///     .start(|| assert_eq!(std::thread::current().name(), Some("worker-1")));
/// handle.join().unwrap();
/// # });
/// ```
#[derive(Debug, Default)]
#[must_use = "a Builder does nothing until `start` or `try_start` is called"]
pub struct Builder {
    name: Option<String>,
    /// 0 = the platform default (see [`Builder::stack_size`]).
    stack_size: usize,
    /// `false` by default: threads are daemon threads unless asked otherwise.
    non_daemon: bool,
}

/// CPython's `THREAD_STACK_MIN` (`0x8000`): the smallest stack size it accepts.
const THREAD_STACK_MIN: usize = 0x8000;

impl Builder {
    /// A builder with no name set: threads it starts are unnamed, as with [`start`].
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let handle = pythread::Builder::new().start(|| {});
    /// handle.join().unwrap();
    /// # });
    /// ```
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the thread. The name is the OS thread name (where the platform has
    /// one, truncated there as the platform requires), what
    /// [`std::thread::current().name()`](std::thread::Thread::name) returns inside
    /// it, and the name the panic hook prints when it panics.
    ///
    /// A name containing a NUL byte is rejected when the thread is started.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let handle = pythread::Builder::new().name("parser").start(|| panic!("oops"));
    /// // The panic hook printed "thread 'parser' panicked ... oops".
    /// assert!(handle.join().is_err());
    /// # });
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Sets the new thread's stack size in bytes: `0` (the default) means the
    /// platform's default (std's, 2 MiB on Linux unless `RUST_MIN_STACK` says
    /// otherwise), like CPython's `_thread.stack_size(0)`.
    ///
    /// Sizes below 32 KiB (CPython's `THREAD_STACK_MIN`) are refused when the thread
    /// is started: [`try_start`](Builder::try_start) gives
    /// [`io::ErrorKind::InvalidInput`] and [`start`](Builder::start) panics with
    /// "invalid stack size". The operating system may round the size up (to whole
    /// pages, to its own minimum) and refuses sizes it cannot map, which
    /// `try_start` reports as its error ("can't start new thread" in CPython).
    /// Unlike `PyThread_set_stacksize`, this changes only this builder's threads;
    /// [`set_stacksize`](crate::set_stacksize) stays the spec's "not supported".
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let handle = pythread::Builder::new()
    ///     .stack_size(8 << 20) // 8 MiB
    ///     .start(|| 6 * 7);
    /// assert_eq!(handle.join().unwrap(), 42);
    ///
    /// let err = pythread::Builder::new().stack_size(4096).try_start(|| {}).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// # });
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = bytes;
        self
    }

    /// Chooses whether the thread is a daemon thread; `true` by default, as for
    /// `_thread.start_new_thread` and `start_joinable_thread(daemon=True)`.
    ///
    /// A non-daemon thread (`daemon(false)`) is registered before it starts and
    /// unregistered when its function ends (or its start fails); [`shutdown`](crate::shutdown)
    /// waits for every registered thread. Nothing else differs: a non-daemon thread
    /// is joined, detached and counted like any other. Daemon threads cost no lock
    /// to start; a non-daemon start and end each take the registry's lock once.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    ///
    /// let finished = Arc::new(AtomicBool::new(false));
    /// let f = Arc::clone(&finished);
    /// pythread::Builder::new()
    ///     .daemon(false)
    ///     .start(move || f.store(true, Ordering::SeqCst));
    /// pythread::shutdown(); // waits for it, though its handle was dropped
    /// assert!(finished.load(Ordering::SeqCst));
    /// # });
    /// ```
    pub fn daemon(mut self, daemon: bool) -> Builder {
        self.non_daemon = !daemon;
        self
    }

    /// Starts `f` with this configuration; see [`start`](crate::start).
    ///
    /// # Panics
    ///
    /// Panics with "invalid thread name" if the name contains a NUL byte (checked
    /// before anything is started), and with "can't start new thread" if the
    /// operating system refuses to create a thread, whatever its error.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let handle = pythread::Builder::new().name("job").start(|| "done");
    /// assert_eq!(handle.join().unwrap(), "done");
    /// # });
    /// ```
    #[track_caller]
    pub fn start<F, T>(self, f: F) -> Handle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + Sync + 'static,
    {
        if let Err(invalid) = self.check() {
            panic!("pythread: invalid {}: {}", invalid.what, invalid.error);
        }
        match self.spawn(f) {
            Ok(handle) => handle,
            Err(e) => panic!("pythread: can't start new thread: {e}"),
        }
    }

    /// Starts `f` with this configuration; see [`try_start`](crate::try_start).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] if the name contains a NUL byte (checked
    /// before anything is started); otherwise the error the operating system gave
    /// for refusing to create the thread. Either way `f` is dropped without running.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let err = pythread::Builder::new().name("bad\0name").try_start(|| {}).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// # });
    /// ```
    pub fn try_start<F, T>(self, f: F) -> io::Result<Handle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + Sync + 'static,
    {
        self.check().map_err(|invalid| invalid.error)?;
        self.spawn(f)
    }

    /// Validates the configuration before anything is started, so that `start` can
    /// tell a bad setting from the operating system's refusal (whose errors may
    /// have any kind, `InvalidInput` included). A new setting adds its check here.
    fn check(&self) -> Result<(), Invalid> {
        if self.name.as_deref().is_some_and(|name| name.contains('\0')) {
            return Err(Invalid {
                what: "thread name",
                error: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "thread name may not contain NUL bytes",
                ),
            });
        }
        if self.stack_size != 0 && self.stack_size < THREAD_STACK_MIN {
            return Err(Invalid {
                what: "stack size",
                error: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "stack size {} bytes is below the minimum of {THREAD_STACK_MIN} \
                         (CPython's THREAD_STACK_MIN); 0 means the default",
                        self.stack_size
                    ),
                ),
            });
        }
        Ok(())
    }

    /// Starts the thread of a checked configuration.
    fn spawn<F, T>(self, f: F) -> io::Result<Handle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + Sync + 'static,
    {
        let mut builder = thread::Builder::new();
        if let Some(name) = self.name {
            builder = builder.name(name);
        }
        if self.stack_size != 0 {
            builder = builder.stack_size(self.stack_size);
        }
        let ident = Ident::mint();
        let shared = Arc::new(Shared {
            completion: Completion::new(),
            os_thread: OsThread {
                generation: fork::generation_at_start(),
                ident,
                slot: ForkMutex::new(None),
                pthread: AtomicU64::new(0),
            },
        });
        let theirs = Arc::clone(&shared);
        // Daemon threads (the default) take nothing of the non-daemon list.
        let non_daemon = self.non_daemon.then(registry::non_daemon);
        if let Some(list) = &non_daemon {
            // Registered before the thread exists, so that `shutdown` can never miss
            // it; joined by `shutdown` as `join_thread` joins.
            let registered = Arc::clone(&shared);
            registry::register(
                list,
                shared.os_thread.ident,
                shared.os_thread.generation,
                std::sync::Arc::new(move |interruptible| registered.wait_exit(interruptible)),
            );
        }
        let spawned = {
            #[cfg(all(test, not(loom)))]
            let injected = super::tests::FAIL_SPAWN.take().map(io::Error::from);
            #[cfg(not(all(test, not(loom))))]
            let injected: Option<io::Error> = None;
            match injected {
                Some(error) => Err(error),
                None => {
                    let counter = registry::Counter::get();
                    // Two closures: std boxes the one it is given, and a daemon
                    // thread's captures only the `Arc` (and `f`), 8 bytes less per
                    // start than an `Option` of the list beside it.
                    match self.non_daemon.then(registry::non_daemon) {
                        None => builder.spawn(move || run(theirs, f, counter, None)),
                        Some(list) => builder.spawn(move || run(theirs, f, counter, Some(list))),
                    }
                }
            }
        };
        let os_thread = match spawned {
            Ok(os_thread) => os_thread,
            Err(error) => {
                if let Some(list) = &non_daemon {
                    registry::unregister(list, shared.os_thread.ident);
                }
                return Err(error);
            }
        };
        // Kept for `join_thread`; dropped unjoined (a detach) with the last reference.
        #[cfg(all(unix, not(loom)))]
        {
            use crate::sync::Ordering;
            use std::os::unix::thread::JoinHandleExt;
            // Before the handle is returned: the caller's thread reads it.
            let pthread = os_thread.as_pthread_t() as u64;
            shared.os_thread.pthread.store(pthread, Ordering::Relaxed);
        }
        *shared.os_thread.lock_slot() = Some(os_thread);
        Ok(Handle(shared))
    }
}

/// A configuration that [`Builder::check`] refused: what was wrong, and the error.
struct Invalid {
    what: &'static str,
    error: io::Error,
}

/// The body of every started thread. `non_daemon` is the list a non-daemon thread
/// was registered in (`None` for a daemon thread).
fn run<F, T>(
    shared: Arc<Shared<T>>,
    f: F,
    counter: registry::Counter,
    non_daemon: Option<registry::NonDaemon>,
) where
    F: FnOnce() -> T,
{
    counter.fn_started();
    let outcome = {
        let _current = ident::enter(shared.os_thread.ident);
        // AssertUnwindSafe: after a panic nothing of `f` is touched again; whoever
        // shared state with it learns of the panic through `join`, which is the
        // contract of `std::thread::spawn` as well.
        panic::catch_unwind(AssertUnwindSafe(f))
            .map_err(|payload| Panic::new(shared.os_thread.ident, payload))
    };
    // Before the outcome is published: a join that returns sees the count fallen
    // and the thread gone from `shutdown`'s list.
    counter.fn_ended();
    if let Some(list) = &non_daemon {
        registry::unregister(list, shared.os_thread.ident);
    }
    shared.completion.finish(outcome);
    // If every Handle is gone (detached), this drops the outcome, here.
}

//! Starting threads and the handle that joins them.

use std::fmt;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use crate::completion::{Completion, Published, Waited};
use crate::fork;
use crate::ident::{self, Ident, current_ident};
use crate::panic::Panic;
use crate::registry;
use crate::sync::{self, Arc, AtomicU64, ForkMutex, MutexGuard, Ordering, thread};

/// A shared handle to a started thread: clone it, join it any number of times
/// from any number of threads, ask whether it has finished.
///
/// `T` is what the thread's function returns (`()` by default, so `Handle` alone
/// is `Handle<()>`). Unlike [`std::thread::JoinHandle`], `join` takes `&self`, and
/// every call on every clone returns the same outcome: the value the function
/// returned (a clone of it from [`join`](Handle::join), a borrow from
/// [`join_ref`](Handle::join_ref)), or an `Err` holding the one [`Panic`] it raised.
/// [`into_output`](Handle::into_output) moves the value out of the last handle.
/// Dropping every clone detaches the thread: it runs on to the end and its outcome
/// is dropped there.
///
/// In a child process, after [`after_fork_child`](crate::after_fork_child), the
/// handle of a thread that did not survive the `fork()` is finished: its joins
/// return at once with a [`Panic`] saying so (or the value, if the function had
/// returned before the fork), and its OS thread is never joined nor detached.
///
/// A `Handle` is one pointer wide, whatever `T` is; clones share one allocation.
/// It is `Clone`, `Send`, `Sync` and `Debug` for every `T` a thread can return
/// (`T: Send + Sync`; `T` need not be `Clone`, `Default` or `Debug`).
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// let handle = pythread::start(|| 6 * 7);
/// assert_eq!(handle.join().unwrap(), 42);
///
/// // Join from another thread and from here; both see the same value.
/// let other = handle.clone();
/// let joiner = pythread::start(move || *other.join_ref().unwrap() + 1);
/// assert_eq!(joiner.join().unwrap(), 43);
/// assert_eq!(handle.join_ref().unwrap(), &42);
/// # });
/// ```
pub struct Handle<T = ()>(Arc<Shared<T>>);

struct Shared<T> {
    completion: Completion<T>,
    os_thread: OsThread,
}

/// The outcome of every join of a thread known lost in a fork (see
/// [`crate::after_fork_child`]) whose function had not finished: one `Panic` per
/// thread, made by its first such join, kept by ident.
///
/// Not the completion's panic cell: the vanished thread may have been storing its
/// own panic there when the process forked, and that cell would then wait for it
/// forever. Not a cell in [`Shared`] either: it would cost every start 16 bytes
/// for what only a forked child ever fills. Each `Panic` is leaked, as the
/// thread's [`Shared`] is (its vanished stack holds a reference that is never
/// dropped), so that joins can borrow it as they borrow the completion's. A
/// [`ForkMutex`], so that a thread lost in a later fork while it held the table
/// cannot leave it held in that child. Under loom a plain `std` lock: no model
/// forks, so no model ever reaches it.
#[cfg(not(loom))]
static LOST: ForkMutex<Vec<(Ident, &'static Panic)>> = ForkMutex::new_static(Vec::new());
#[cfg(loom)]
static LOST: std::sync::Mutex<Vec<(Ident, &'static Panic)>> = std::sync::Mutex::new(Vec::new());

/// The `Panic` the joins of the lost thread `ident` return (see [`LOST`]).
#[cold]
fn lost_panic(ident: Ident) -> &'static Panic {
    // The table carries over to a new fork generation when it was free (its
    // entries are leaked, so copying them is all it takes); a lost holder's is
    // forgotten, and the joins of those threads make their `Panic` anew.
    #[cfg(not(loom))]
    let mut lost = LOST.lock(|previous| previous.map(|table| table.clone()).unwrap_or_default());
    #[cfg(loom)]
    let mut lost = LOST
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(&(_, panic)) = lost.iter().find(|(lost, _)| *lost == ident) {
        return panic;
    }
    let panic: &'static Panic =
        Box::leak(Box::new(Panic::new(ident, Box::new(fork::LOST_MESSAGE))));
    lost.push((ident, panic));
    panic
}

/// The thread's ident and fork generation, and the OS thread's own join handle,
/// joined at most once by [`Handle::join_thread`]; if nobody does, it is dropped
/// with the last reference (a detach, as dropping a std `JoinHandle` always is),
/// except for a thread lost in a fork. (The ident lives here, not in [`Shared`],
/// because `drop` needs it and [`Shared`] itself has no `Drop`: `into_output`
/// moves its completion out.)
struct OsThread {
    /// The thread's [`Ident`], minted when it was started.
    ident: Ident,
    /// The fork generation the thread was started in (`crate::fork`).
    generation: u64,
    /// A [`ForkMutex`]: a starter that vanished in a fork while it stored the
    /// handle here (the started thread may fork at once) cannot leave it held.
    slot: ForkMutex<Option<thread::JoinHandle<()>>>,
    /// The OS thread's `pthread_t` as a number (see [`Handle::pthread_t`]), 0 until
    /// stored at the start and under `--cfg loom` (no OS thread).
    pthread: AtomicU64,
}

impl OsThread {
    /// Whether the thread did not survive a fork: then it does not exist in this
    /// process, and its `pthread_t` may even name a thread started since.
    #[inline]
    fn is_lost(&self) -> bool {
        fork::is_lost(self.generation, self.ident)
    }

    /// The slot's lock; in a new fork generation the std handle moves over.
    fn lock_slot(&self) -> MutexGuard<'_, Option<thread::JoinHandle<()>>> {
        self.slot.lock(|previous| previous.and_then(Option::take))
    }
}

impl Drop for OsThread {
    fn drop(&mut self) {
        if self.is_lost() {
            // Never detach (nor join) a thread that is not in this process: glibc
            // reuses a vanished thread's descriptor for the child's next thread, and
            // `pthread_detach` would act on that one. Leaked instead: the std
            // handle's two `Arc`s (thread and result packet), a few dozen bytes the
            // vanished thread's own references keep alive anyway. No lock is taken
            // (`each_mut`): a thread that vanished may hold it.
            self.slot.each_mut(|slot| std::mem::forget(slot.take()));
        }
    }
}

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
            let injected = tests::FAIL_SPAWN.take().map(io::Error::from);
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

impl<T> Handle<T> {
    /// Returns the thread's [`Ident`], fixed when it was started.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let handle = pythread::start(|| {});
    /// assert_eq!(handle.ident(), handle.clone().ident());
    /// # handle.join().unwrap();
    /// # });
    /// ```
    pub fn ident(&self) -> Ident {
        self.0.os_thread.ident
    }

    /// Returns the `pthread_t` of the thread's OS thread, as a number: what
    /// `pthread_self()` returns on that thread, which is also the ident CPython's
    /// `PyThread_get_thread_ident` gives it. Fixed when the thread was started and
    /// kept after it has exited and been joined (the OS may then give the number to
    /// a new thread, as CPython's idents are reused). `None` under `--cfg loom`,
    /// whose threads are not OS threads, and off Unix.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let handle = pythread::start(|| {});
    /// let pthread = handle.pthread_t();
    /// # #[cfg(not(loom))]
    /// assert!(pthread.is_some_and(|p| p != 0));
    /// handle.join_thread().unwrap();
    /// assert_eq!(handle.pthread_t(), pthread); // kept after the join
    /// # });
    /// ```
    pub fn pthread_t(&self) -> Option<u64> {
        match self.0.os_thread.pthread.load(Ordering::Relaxed) {
            0 => None,
            pthread => Some(pthread),
        }
    }

    /// Waits for the thread's function to finish and returns its outcome by
    /// reference: `Ok(&value)` if it returned `value`, `Err(panic)` if it panicked.
    /// [`join`](Handle::join) is the same with a clone of the value.
    ///
    /// Everything the function did happens-before `join_ref` returns. It can be
    /// called any number of times, on any clone, from any number of threads at once,
    /// and every call returns the same outcome: a borrow of the one stored value, or
    /// clones of one [`Panic`] ([`Panic::ptr_eq`] holds between them). Once the
    /// function has finished, it returns at once without taking a lock.
    ///
    /// `T` need not be `Clone`. The value lives until the last handle is dropped,
    /// and the borrow checker keeps the reference from outliving this handle:
    ///
    /// ```compile_fail,E0505
    /// let handle = pythread::start(|| String::from("result"));
    /// let value: &String = handle.join_ref().unwrap();
    /// drop(handle); // error: cannot move out of `handle` because it is borrowed
    /// println!("{value}");
    /// ```
    ///
    /// Like [`join`](Handle::join), it waits for the function, not for the OS
    /// thread's exit; [`join_thread_ref`](Handle::join_thread_ref) waits for both.
    ///
    /// # Panics
    ///
    /// Panics with "cannot join current thread" when called from the thread's own
    /// function, which would otherwise wait for itself forever (CPython raises
    /// `RuntimeError` there). The panic points at the caller's line.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// // A result that is not Clone, read in place by two threads.
    /// struct Report { lines: Vec<String> }
    /// let handle = pythread::start(|| Report { lines: vec!["ok".into()] });
    /// let other = handle.clone();
    /// let reader = pythread::start(move || other.join_ref().unwrap().lines.len());
    /// assert_eq!(handle.join_ref().unwrap().lines[0], "ok");
    /// assert_eq!(reader.join().unwrap(), 1);
    /// # });
    /// ```
    // `#[inline]` (here, on the timed and the cloning joins, and `is_finished`): a
    // function of this crate is otherwise a call into its object code, about 1.5 ns,
    // three times the finished-join fast path itself; inlined, a finished join is a
    // load of the pointer, one Acquire load of the cell's state and a branch. The
    // blocking part stays out of line. `#[track_caller]` costs nothing here: the
    // location is a constant, passed on only to the out-of-line slow path.
    #[inline]
    #[track_caller]
    pub fn join_ref(&self) -> Result<&T, Panic> {
        match self.0.completion.returned() {
            Some(value) => Ok(value),
            None => self.join_slow(),
        }
    }

    /// Waits at most `timeout` for the thread's function to finish: `None` if it is
    /// still running then, otherwise `Some` of the outcome
    /// [`join_ref`](Handle::join_ref) returns.
    ///
    /// `Duration::ZERO` polls without blocking. A timeout too large to represent as
    /// a deadline (such as `Duration::MAX`) waits until the function finishes. A
    /// spurious wake-up never ends the wait early.
    ///
    /// # Panics
    ///
    /// Panics with "cannot join current thread" when called from the thread's own
    /// function, whatever the timeout (`Duration::ZERO` included), as
    /// [`join`](Handle::join) does.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let (release, gate) = mpsc::channel::<()>();
    /// let handle = pythread::start(move || {
    ///     gate.recv().unwrap();
    ///     vec![1, 2, 3]
    /// });
    /// assert!(handle.join_timeout_ref(Duration::ZERO).is_none()); // still blocked
    /// release.send(()).unwrap();
    /// let values = handle.join_timeout_ref(Duration::MAX).unwrap().unwrap();
    /// assert_eq!(values.len(), 3);
    /// # });
    /// ```
    #[inline]
    #[track_caller]
    #[must_use = "a timed join that is not looked at may have dropped the thread's panic \
                  or missed that it is still running"]
    pub fn join_timeout_ref(&self, timeout: Duration) -> Option<Result<&T, Panic>> {
        match self.0.completion.returned() {
            Some(value) => Some(Ok(value)),
            None => self.join_timeout_slow(timeout),
        }
    }

    /// Returns `true` once the thread's function has returned or panicked, or the
    /// thread did not survive a `fork()` (see [`after_fork_child`](crate::after_fork_child));
    /// then [`join`](Handle::join) returns at once. Never blocks.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let handle = pythread::start(|| {});
    /// while !handle.is_finished() {
    ///     std::thread::yield_now();
    /// }
    /// assert!(handle.join().is_ok()); // returns at once
    /// # });
    /// ```
    #[inline]
    pub fn is_finished(&self) -> bool {
        self.0.completion.is_finished() || self.0.os_thread.is_lost()
    }

    /// Waits for the thread's function to finish and for its OS thread to exit,
    /// then returns the outcome by reference, as [`join_ref`](Handle::join_ref)
    /// does: the port of `PyThread_join_thread`, which is `pthread_join`.
    ///
    /// When it returns, the thread has run everything it ever will: its function,
    /// the drop of what it captured, and its thread-local destructors. Any number of
    /// callers, on any clones and threads, may call it, at once or again later; the
    /// operating system's join runs once, and every caller returns only after it.
    /// A handle that is never `join_thread`ed still detaches when the last clone is
    /// dropped.
    ///
    /// # Panics
    ///
    /// Panics with "cannot join current thread" when called from the thread's own
    /// function, as [`join`](Handle::join) does.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let handle = pythread::start(|| String::from("exited"));
    /// assert_eq!(handle.join_thread_ref().unwrap(), "exited");
    /// # });
    /// ```
    #[track_caller]
    pub fn join_thread_ref(&self) -> Result<&T, Panic> {
        let outcome = self.join_ref();
        self.0.join_os_thread();
        outcome
    }

    /// Takes the thread's outcome by move when this is the only handle left, after
    /// waiting, as [`join_thread`](Handle::join_thread) does, for the function to
    /// finish and the OS thread to exit; if other clones exist, gives this handle
    /// back as `Err`, with the outcome untouched (it can still be joined).
    ///
    /// This is [`std::thread::JoinHandle::join`]'s move-out for a shared handle, in
    /// the spirit of [`std::sync::Arc::try_unwrap`]. The started thread holds a
    /// reference of its own until its last step, and waiting for its exit first is
    /// what makes the answer depend only on the other handles: with no other clone,
    /// `into_output` never returns `Err`, however the thread's exit races the call.
    /// A clone being dropped on another thread at the same moment may still be
    /// counted as existing (as for `Arc::try_unwrap`).
    ///
    /// For a thread lost in a fork (see [`after_fork_child`](crate::after_fork_child)),
    /// whose vanished thread still holds its own reference: `Ok(Err(panic))` with
    /// the panic its joins return; but `Err` again if its function had returned a
    /// value before the fork (the value cannot be moved out; borrow it with
    /// [`join_ref`](Handle::join_ref)).
    ///
    /// # Panics
    ///
    /// Panics with "cannot join current thread" when called from the thread's own
    /// function.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// // T need not be Clone: the value moves out of the last handle.
    /// struct Unique(Vec<u8>);
    /// let handle = pythread::start(|| Unique(vec![1, 2]));
    /// let other = handle.clone();
    /// let Err(handle) = handle.into_output() else { panic!("`other` still exists") };
    /// drop(other);
    /// let Ok(Ok(Unique(bytes))) = handle.into_output() else { panic!("the only handle") };
    /// assert_eq!(bytes, [1, 2]);
    /// # });
    /// ```
    #[track_caller]
    pub fn into_output(self) -> Result<Result<T, Panic>, Handle<T>> {
        let _ = self.join_ref();
        self.0.join_os_thread();
        match Arc::try_unwrap(self.0) {
            Ok(shared) => Ok(shared
                .completion
                .into_outcome()
                .expect("pythread: the function finished before its thread exited")),
            // A thread lost in a fork keeps its own reference forever (its stack is
            // gone with it): the outcome is then a `Panic`, given as a clone, unless
            // the function had returned before the fork and its value cannot move.
            Err(shared) => match shared.poll() {
                Some(Err(panic)) if shared.os_thread.is_lost() => Ok(Err(panic.clone())),
                _ => Err(Handle(shared)),
            },
        }
    }

    /// [`join_ref`](Handle::join_ref) once the fast path found no returned value:
    /// the function panicked, or is still running.
    #[inline(never)]
    #[track_caller]
    fn join_slow(&self) -> Result<&T, Panic> {
        if let Some(outcome) = self.0.poll() {
            return view(outcome);
        }
        self.refuse_self_join();
        match self.0.completion.wait(None, false) {
            Waited::Finished(outcome) => view(outcome),
            Waited::TimedOut | Waited::Interrupted => {
                unreachable!("an uninterruptible wait without a deadline ends only when finished")
            }
        }
    }

    /// [`join_timeout_ref`](Handle::join_timeout_ref) once the fast path found no
    /// returned value.
    #[inline(never)]
    #[track_caller]
    fn join_timeout_slow(&self, timeout: Duration) -> Option<Result<&T, Panic>> {
        if let Some(outcome) = self.0.poll() {
            return Some(view(outcome));
        }
        // Before the zero-timeout answer: polling its own handle from inside is the
        // same mistake as joining it (it can only ever answer `None`), and CPython
        // raises "Cannot join current thread" whatever the timeout.
        self.refuse_self_join();
        if timeout.is_zero() {
            return None;
        }
        // A timeout too large for the clock means no deadline: wait until finished.
        match self.0.completion.wait(sync::deadline_after(timeout), false) {
            Waited::Finished(outcome) => Some(view(outcome)),
            Waited::TimedOut => None,
            Waited::Interrupted => unreachable!("an uninterruptible wait is never interrupted"),
        }
    }

    /// Waits for the thread's function to finish, as CPython 3.13's
    /// `_ThreadHandle.join` does: interruptibly, like a lock's
    /// `acquire_with_retries`, and then, as there, the OS thread's exit (see
    /// [`join_thread_ref`](Handle::join_thread_ref)). Returns `Ok(None)` if
    /// `timeout` passed first, `Ok(Some(outcome))` with the outcome
    /// [`join_ref`](Handle::join_ref) returns once finished, and `Err(e)` when
    /// `pending_calls` failed.
    ///
    /// `timeout` `None` waits forever; `Some(Duration::ZERO)` polls. The deadline is
    /// fixed when the call starts: an interruption never extends it. Whenever the
    /// wait is interrupted (on Linux: a signal handler installed without
    /// `SA_RESTART` ran on this thread; elsewhere waits are never interrupted, as in
    /// CPython's "mutex+cond" builds) and the deadline has not passed,
    /// `pending_calls` runs (CPython's `Py_MakePendingCalls`): its `Err` ends the
    /// join with that error, `Ok(())` resumes the wait against the same deadline.
    /// An interruption after the deadline is a timeout, without a call.
    ///
    /// # Panics
    ///
    /// Panics with "cannot join current thread" when called from the thread's own
    /// function (CPython raises `RuntimeError` there), unless it has finished.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use std::time::Duration;
    ///
    /// let handle = pythread::start(|| vec![1, 2, 3]);
    /// // A pending-calls hook that never fails: the join cannot return `Err`.
    /// let outcome = handle
    ///     .join_with_retries_ref(None, || Ok::<(), std::convert::Infallible>(()))
    ///     .unwrap()
    ///     .expect("no timeout was given");
    /// assert_eq!(outcome.unwrap().len(), 3);
    ///
    /// let (release, gate) = std::sync::mpsc::channel::<()>();
    /// let blocked = pythread::start(move || gate.recv().unwrap());
    /// let timed_out = blocked.join_with_retries_ref(Some(Duration::from_millis(10)), || Ok::<(), ()>(()));
    /// assert!(matches!(timed_out, Ok(None)));
    /// release.send(()).unwrap();
    /// # });
    /// ```
    #[track_caller]
    pub fn join_with_retries_ref<E>(
        &self,
        timeout: Option<Duration>,
        mut pending_calls: impl FnMut() -> Result<(), E>,
    ) -> Result<Option<Result<&T, Panic>>, E> {
        let outcome = match self.0.poll() {
            Some(outcome) => outcome,
            None => {
                self.refuse_self_join();
                // `None`, or a timeout too large for the clock: no deadline.
                let deadline = timeout.and_then(sync::deadline_after);
                loop {
                    match self.0.completion.wait(deadline, true) {
                        Waited::Finished(outcome) => break outcome,
                        Waited::TimedOut => return Ok(None),
                        Waited::Interrupted => {
                            if deadline.is_some_and(|d| sync::now() >= d) {
                                return Ok(None);
                            }
                            pending_calls()?;
                        }
                    }
                }
            }
        };
        self.0.join_os_thread();
        Ok(Some(view(outcome)))
    }

    /// The number of references to the shared state: the handles, plus the started
    /// thread's own until its body has returned. Only for the loom suite, to check
    /// that `join_thread` returns after that.
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn __references(&self) -> usize {
        Arc::strong_count(&self.0)
    }

    #[track_caller]
    fn refuse_self_join(&self) {
        if current_ident() == Some(self.0.os_thread.ident) {
            panic!(
                "pythread: cannot join current thread (thread {} joined its own handle)",
                self.0.os_thread.ident
            );
        }
    }
}

impl<T: Clone> Handle<T> {
    /// Waits for the thread's function to finish and returns its outcome: `Ok` of a
    /// clone of the value it returned (for `Handle<()>`, simply `Ok(())`), or
    /// `Err(panic)` if it panicked.
    ///
    /// Everything the function did happens-before `join` returns. `join` can be
    /// called any number of times, on any clone, from any number of threads at once,
    /// and every call returns the same outcome; for a panic, clones of one [`Panic`]
    /// ([`Panic::ptr_eq`] holds between them). Once the function has finished,
    /// `join` returns at once without taking a lock. [`join_ref`](Handle::join_ref)
    /// borrows the value instead, for a `T` that is not `Clone` or costly to clone.
    ///
    /// `T::clone` runs in the caller, under no lock of the crate: if it panics, the
    /// panic is the caller's, and the handle and its stored value are unaffected.
    ///
    /// `join` waits for the function, not for the OS thread's exit: the thread is
    /// detached, so its last steps (dropping the outcome if no handle is left, then
    /// the thread-local destructors of that thread) may still be running when `join`
    /// returns. Anything the function itself did, including the drops of what it
    /// captured, is complete. [`join_thread`](Handle::join_thread) waits for the exit too.
    ///
    /// # Panics
    ///
    /// Panics with "cannot join current thread" when called from the thread's own
    /// function, which would otherwise wait for itself forever (CPython raises
    /// `RuntimeError` there). The panic points at the caller's line.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let handle = pythread::start(|| {
    ///     std::thread::sleep(std::time::Duration::from_millis(10));
    ///     String::from("parsed")
    /// });
    /// assert_eq!(handle.join().unwrap(), "parsed");
    /// assert_eq!(handle.join().unwrap(), "parsed"); // again: same outcome, at once
    /// # });
    /// ```
    #[inline]
    #[track_caller]
    pub fn join(&self) -> Result<T, Panic> {
        self.join_ref().cloned()
    }

    /// Waits at most `timeout` for the thread's function to finish: `None` if it is
    /// still running then, otherwise `Some` of the outcome [`join`](Handle::join)
    /// returns.
    ///
    /// `Duration::ZERO` polls without blocking. A timeout too large to represent as
    /// a deadline (such as `Duration::MAX`) waits until the function finishes. A
    /// spurious wake-up never ends the wait early.
    ///
    /// # Panics
    ///
    /// Panics with "cannot join current thread" when called from the thread's own
    /// function, whatever the timeout (`Duration::ZERO` included), as [`join`](Handle::join)
    /// does.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let (release, gate) = mpsc::channel::<()>();
    /// let handle = pythread::start(move || gate.recv().unwrap());
    /// assert!(handle.join_timeout(Duration::ZERO).is_none()); // still blocked
    /// release.send(()).unwrap();
    /// assert!(handle.join_timeout(Duration::MAX).unwrap().is_ok());
    /// # });
    /// ```
    #[inline]
    #[track_caller]
    #[must_use = "a timed join that is not looked at may have dropped the thread's panic \
                  or missed that it is still running"]
    pub fn join_timeout(&self, timeout: Duration) -> Option<Result<T, Panic>> {
        self.join_timeout_ref(timeout)
            .map(|outcome| outcome.cloned())
    }

    /// Waits for the thread's function to finish and for its OS thread to exit,
    /// then returns the outcome [`join`](Handle::join) returns: the port of
    /// `PyThread_join_thread` (`pthread_join`). See
    /// [`join_thread_ref`](Handle::join_thread_ref) for the guarantees.
    ///
    /// # Panics
    ///
    /// Panics with "cannot join current thread" when called from the thread's own
    /// function.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use std::cell::Cell;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    ///
    /// struct SetOnDrop(Arc<AtomicBool>);
    /// impl Drop for SetOnDrop {
    ///     fn drop(&mut self) { self.0.store(true, Ordering::SeqCst) }
    /// }
    /// thread_local!(static PROBE: Cell<Option<SetOnDrop>> = const { Cell::new(None) });
    ///
    /// let dropped = Arc::new(AtomicBool::new(false));
    /// let flag = Arc::clone(&dropped);
    /// let handle = pythread::start(move || PROBE.set(Some(SetOnDrop(flag))));
    /// handle.join_thread().unwrap();
    /// // The thread-local destructors of the thread have run.
    /// assert!(dropped.load(Ordering::SeqCst));
    /// # });
    /// ```
    #[track_caller]
    pub fn join_thread(&self) -> Result<T, Panic> {
        self.join_thread_ref().cloned()
    }

    /// [`join_with_retries_ref`](Handle::join_with_retries_ref) with a clone of the
    /// value: CPython 3.13's `_ThreadHandle.join`, interruptible, with a fixed
    /// deadline; `Ok(None)` timed out, `Ok(Some(outcome))` finished (and the OS
    /// thread has exited), `Err(e)` when `pending_calls` failed.
    ///
    /// # Panics
    ///
    /// Panics with "cannot join current thread" when called from the thread's own
    /// function, unless it has finished.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use std::time::Duration;
    ///
    /// // What a Python runtime's `_thread` module does: pending calls are where
    /// // a signal handler's exception (KeyboardInterrupt) comes back as `Err`.
    /// #[derive(Debug)]
    /// struct KeyboardInterrupt;
    /// let check_signals = || -> Result<(), KeyboardInterrupt> { Ok(()) };
    ///
    /// let handle = pythread::start(|| {});
    /// match handle.join_with_retries(Some(Duration::from_secs(5)), check_signals) {
    ///     Ok(Some(outcome)) => assert!(outcome.is_ok()),
    ///     Ok(None) => println!("still running after 5 s"),
    ///     Err(KeyboardInterrupt) => println!("interrupted"),
    /// }
    /// # });
    /// ```
    #[track_caller]
    pub fn join_with_retries<E>(
        &self,
        timeout: Option<Duration>,
        pending_calls: impl FnMut() -> Result<(), E>,
    ) -> Result<Option<Result<T, Panic>>, E> {
        self.join_with_retries_ref(timeout, pending_calls)
            .map(|outcome| outcome.map(Result::<&T, Panic>::cloned))
    }
}

impl<T> Shared<T> {
    /// The published outcome, or for a thread lost in a fork (whose function had
    /// not finished before it) the `Panic` that says so; `None` while running.
    /// Every join's slow path starts here, so that none ever waits for a lost thread.
    fn poll(&self) -> Option<Published<'_, T>> {
        if let Some(outcome) = self.completion.poll() {
            return Some(outcome);
        }
        if self.os_thread.is_lost() {
            return Some(Err(lost_panic(self.os_thread.ident)));
        }
        None
    }

    /// `shutdown`'s join of a registered thread (see `registry::Join`): waits for
    /// the function (`false` if `interruptible` and interrupted first), then for
    /// the OS thread's exit.
    fn wait_exit(&self, interruptible: bool) -> bool {
        if self.poll().is_none() {
            match self.completion.wait(None, interruptible) {
                Waited::Finished(_) => {}
                Waited::Interrupted => return false,
                Waited::TimedOut => unreachable!("a wait without a deadline never times out"),
            }
        }
        self.join_os_thread();
        true
    }

    /// Joins the OS thread, once: the first caller takes the std handle and joins it
    /// while holding the lock, so that every other caller returns only after that
    /// join has returned. Not for a thread lost in a fork (decided before the lock,
    /// which a vanished thread may hold): there is nothing to join.
    fn join_os_thread(&self) {
        if self.os_thread.is_lost() {
            return;
        }
        let mut os_thread = self.os_thread.lock_slot();
        if let Some(os_thread) = os_thread.take() {
            // The thread's body catches every panic of `f`; a panic after that (in a
            // thread-local destructor) aborts the process, so this is always `Ok`.
            let _ = os_thread.join();
        }
    }
}

/// A published outcome as the joins hand it out: the value by reference, or a
/// clone of the one `Panic`.
fn view<T>(outcome: Published<'_, T>) -> Result<&T, Panic> {
    outcome.map_err(Panic::clone)
}

impl<T> Clone for Handle<T> {
    /// Another handle to the same thread (an `Arc` clone); `T` need not be `Clone`.
    fn clone(&self) -> Handle<T> {
        Handle(Arc::clone(&self.0))
    }
}

impl<T> fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.0.completion.poll() {
            None if self.0.os_thread.is_lost() => "lost in fork",
            None => "running",
            Some(Ok(_)) => "returned",
            Some(Err(_)) => "panicked",
        };
        f.debug_struct("Handle")
            .field("ident", &self.0.os_thread.ident)
            .field("state", &state)
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests;

//! Starting threads and the handle that joins them.

use std::fmt;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use crate::completion::{Completion, Outcome};
use crate::ident::{self, current_ident, Ident};
use crate::panic::Panic;
use crate::sync::{thread, Arc};

/// A shared handle to a started thread: clone it, join it any number of times
/// from any number of threads, ask whether it has finished.
///
/// Unlike [`std::thread::JoinHandle`], `join` takes `&self`, and every call on
/// every clone returns the same outcome: `Ok(())` when the function returned, or
/// an `Err` holding the one [`Panic`] it raised. Dropping every clone detaches the
/// thread: it runs on to the end and its outcome is dropped there.
///
/// A `Handle` is one pointer wide; clones share one allocation.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// let counter = Arc::new(AtomicUsize::new(0));
/// let c = Arc::clone(&counter);
/// let handle = pythread::start(move || {
///     c.fetch_add(1, Ordering::Relaxed);
/// });
///
/// // Join from another thread and from here; both see the same outcome.
/// let other = handle.clone();
/// let joiner = pythread::start(move || other.join().unwrap());
/// handle.join().unwrap();
/// joiner.join().unwrap();
/// assert_eq!(counter.load(Ordering::Relaxed), 1); // ran exactly once
/// # });
/// ```
#[derive(Clone)]
pub struct Handle(Arc<Shared>);

struct Shared {
    ident: Ident,
    completion: Completion,
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
/// let failing = pythread::start(|| panic!("bad input"));
/// assert_eq!(failing.join().unwrap_err().message(), Some("bad input"));
/// # });
/// ```
#[track_caller]
pub fn start<F>(f: F) -> Handle
where
    F: FnOnce() + Send + 'static,
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
pub fn try_start<F>(f: F) -> io::Result<Handle>
where
    F: FnOnce() + Send + 'static,
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
}

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

    /// Starts `f` with this configuration; see [`start`](crate::start).
    ///
    /// # Panics
    ///
    /// Panics if the name contains a NUL byte or the operating system refuses to
    /// create a thread.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let handle = pythread::Builder::new().name("job").start(|| {});
    /// handle.join().unwrap();
    /// # });
    /// ```
    #[track_caller]
    pub fn start<F>(self, f: F) -> Handle
    where
        F: FnOnce() + Send + 'static,
    {
        match self.try_start(f) {
            Ok(handle) => handle,
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                panic!("pythread: invalid thread name: {e}")
            }
            Err(e) => panic!("pythread: can't start new thread: {e}"),
        }
    }

    /// Starts `f` with this configuration; see [`try_start`](crate::try_start).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] if the name contains a NUL byte; otherwise the
    /// error the operating system gave for refusing to create the thread. Either
    /// way `f` is dropped without running.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let err = pythread::Builder::new().name("bad\0name").try_start(|| {}).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// # });
    /// ```
    pub fn try_start<F>(self, f: F) -> io::Result<Handle>
    where
        F: FnOnce() + Send + 'static,
    {
        let mut builder = thread::Builder::new();
        if let Some(name) = self.name {
            if name.contains('\0') {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "thread name may not contain NUL bytes",
                ));
            }
            builder = builder.name(name);
        }
        let shared = Arc::new(Shared {
            ident: Ident::mint(),
            completion: Completion::new(),
        });
        let theirs = Arc::clone(&shared);
        // The std JoinHandle is dropped at once: the completion cell is how this
        // thread is joined, and dropping a JoinHandle only detaches.
        builder.spawn(move || run(theirs, f))?;
        Ok(Handle(shared))
    }
}

/// The body of every started thread.
fn run<F: FnOnce()>(shared: Arc<Shared>, f: F) {
    let outcome = {
        let _current = ident::enter(shared.ident);
        // AssertUnwindSafe: after a panic nothing of `f` is touched again; whoever
        // shared state with it learns of the panic through `join`, which is the
        // contract of `std::thread::spawn` as well.
        panic::catch_unwind(AssertUnwindSafe(f))
            .map_err(|payload| Panic::new(shared.ident, payload))
    };
    shared.completion.finish(outcome);
    // If every Handle is gone (detached), this drops the outcome, here.
}

impl Handle {
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
        self.0.ident
    }

    /// Waits for the thread's function to finish and returns its outcome: `Ok(())` if
    /// it returned, `Err(panic)` if it panicked.
    ///
    /// Everything the function did happens-before `join` returns. `join` can be
    /// called any number of times, on any clone, from any number of threads at once,
    /// and every call returns the same outcome; for a panic, clones of one [`Panic`]
    /// ([`Panic::ptr_eq`] holds between them). Once the function has finished,
    /// `join` returns at once without taking a lock.
    ///
    /// `join` waits for the function, not for the OS thread's exit: the thread is
    /// detached, so its last steps (dropping the outcome if no handle is left, then
    /// the thread-local destructors of that thread) may still be running when `join`
    /// returns. Anything the function itself did, including the drops of what it
    /// captured, is complete.
    ///
    /// # Panics
    ///
    /// Panics with "cannot join current thread" when called from the thread's own
    /// function, which would otherwise wait for itself forever (CPython raises
    /// `RuntimeError` there).
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let handle = pythread::start(|| std::thread::sleep(std::time::Duration::from_millis(10)));
    /// handle.join().unwrap();
    /// handle.join().unwrap(); // again: same outcome, at once
    /// # });
    /// ```
    // `#[inline]` (here, on `join_timeout` and `is_finished`): a non-generic function
    // is otherwise a call into this crate's object code, about 1.5 ns, three times the
    // finished-join fast path itself; inlined, a finished join is a load of the
    // pointer, one Acquire load of the state byte and a branch, as cheap as std's
    // `JoinHandle::is_finished`. The blocking part stays out of line.
    #[inline]
    pub fn join(&self) -> Result<(), Panic> {
        if let Some(outcome) = self.0.completion.poll() {
            return outcome;
        }
        self.join_slow()
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
    pub fn join_timeout(&self, timeout: Duration) -> Option<Result<(), Panic>> {
        if let Some(outcome) = self.0.completion.poll() {
            return Some(outcome);
        }
        self.join_timeout_slow(timeout)
    }

    /// [`join`](Handle::join) once the fast path found the function still running.
    #[inline(never)]
    fn join_slow(&self) -> Outcome {
        self.refuse_self_join();
        self.0.completion.wait()
    }

    /// [`join_timeout`](Handle::join_timeout) once the fast path found the function
    /// still running.
    #[inline(never)]
    fn join_timeout_slow(&self, timeout: Duration) -> Option<Outcome> {
        // Before the zero-timeout poll: polling its own handle from inside is the same
        // mistake as joining it (it can only ever answer `None`), and CPython raises
        // "Cannot join current thread" whatever the timeout.
        self.refuse_self_join();
        if timeout.is_zero() {
            return None;
        }
        self.0.completion.wait_timeout(timeout)
    }

    /// Returns `true` once the thread's function has returned or panicked; then
    /// [`join`](Handle::join) returns at once. Never blocks.
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
        self.0.completion.is_finished()
    }

    #[track_caller]
    fn refuse_self_join(&self) {
        if current_ident() == Some(self.0.ident) {
            panic!(
                "pythread: cannot join current thread (thread {} joined its own handle)",
                self.0.ident
            );
        }
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.0.completion.poll() {
            None => "running",
            Some(Ok(())) => "returned",
            Some(Err(_)) => "panicked",
        };
        f.debug_struct("Handle")
            .field("ident", &self.0.ident)
            .field("state", &state)
            .finish()
    }
}

//! Starting threads and the handle that joins them.

use std::fmt;
use std::time::Duration;

use crate::completion::{Completion, Published, Waited};
use crate::fork;
use crate::ident::{Ident, current_ident};
use crate::panic::Panic;
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

mod start;
pub use start::{Builder, start, try_start};

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

//! What `_thread` keeps about running threads: the count of started functions still
//! running (`_thread._count`) and the list of non-daemon threads that
//! `_thread._shutdown` joins.
//!
//! Cost on the default path: a daemon thread (the default) touches only the count,
//! one atomic, incremented and decremented by the started thread itself; the start
//! takes no lock. Only a non-daemon thread takes the list's lock, once when it is
//! started and once when its function ends.

use crate::ident::{Ident, current_ident};
use crate::sync::ForkMutex;
#[cfg(not(loom))]
use crate::sync::{AtomicU64, Ordering};

/// How `shutdown` joins one registered thread: waits for its function to finish and
/// for its OS thread to exit (`Handle::join_thread`, type-erased). Called with
/// `interruptible` true, it returns `false`, without the OS join, when the wait was
/// interrupted (a signal handler ran on the calling thread) before the function
/// finished; otherwise it returns `true` once the function has finished and the OS
/// thread has exited (at once for a thread lost in a fork).
///
/// A `std` `Arc` (not the facade's) because it holds a `dyn Fn`, an unsized
/// coercion that loom's `Arc` cannot make; it only owns the closure, and everything
/// the closure synchronizes on goes through the facade.
pub(crate) type Join = std::sync::Arc<dyn Fn(bool) -> bool + Send + Sync>;

/// The count of running started fns, as a started thread holds it: a zero-sized
/// token, taken by the starting thread and moved into the started one.
///
/// Outside loom the count is one plain `static` atomic. Under loom it is not a
/// modelled atomic but a plain cell per model: loom runs all the threads of a model
/// as coroutines on one OS thread, so a `std` thread-local is shared by exactly the
/// threads of one model, survives the model's main thread (a detached thread may
/// still decrement it after `main` has returned, when loom has already torn its
/// `lazy_static`s down), and adds no branch to any other model (a modelled counter
/// doubled the executions of `loom_ident`, 456 706 to 952 843). What loom still
/// checks is every interleaving of the increment and decrement with the start, the
/// finish and the join (`loom_tests/registry.rs`); the orderings are argued in
/// [`Counter::fn_started`].
#[derive(Clone, Copy)]
pub(crate) struct Counter;

#[cfg(not(loom))]
static RUNNING: AtomicU64 = AtomicU64::new(0);

#[cfg(loom)]
std::thread_local! {
    static RUNNING: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

impl Counter {
    /// Taken by the starting thread, for the started one.
    #[inline]
    pub(crate) fn get() -> Counter {
        Counter
    }

    /// Called by a started thread right before its function runs.
    #[inline]
    pub(crate) fn fn_started(self) {
        // Only the count matters, not what it orders: Relaxed. A `join` that returns
        // still sees the decrement below: the decrement happens-before the outcome's
        // Release publication that the join Acquires, and a load that happens after a
        // write reads it or a later value (write-read coherence).
        #[cfg(not(loom))]
        RUNNING.fetch_add(1, Ordering::Relaxed);
        #[cfg(loom)]
        RUNNING.with(|n| n.set(n.get() + 1));
    }

    /// Called by a started thread right after its function returned or panicked.
    #[inline]
    pub(crate) fn fn_ended(self) {
        #[cfg(not(loom))]
        RUNNING.fetch_sub(1, Ordering::Relaxed);
        #[cfg(loom)]
        RUNNING.with(|n| n.set(n.get() - 1));
    }

    /// In the child after a fork: the count is the forking thread's own function,
    /// if it was started by this crate and still runs, and nothing else (the other
    /// threads do not exist and will never decrement it).
    #[cfg(not(loom))]
    pub(crate) fn reset_after_fork(survivor_running: bool) {
        RUNNING.store(u64::from(survivor_running), Ordering::Relaxed);
    }

    fn load() -> u64 {
        #[cfg(not(loom))]
        return RUNNING.load(Ordering::Relaxed);
        #[cfg(loom)]
        return RUNNING.with(std::cell::Cell::get);
    }
}

/// A registered non-daemon thread: its ident, the fork generation it was started
/// in (so that `shutdown` skips a thread lost in a fork, see `crate::fork`), and how
/// to join it.
pub(crate) struct Entry {
    ident: Ident,
    generation: u64,
    join: Join,
}

/// The non-daemon threads whose function has not ended, in start order. A
/// [`ForkMutex`]: a forked child keeps the entries (`shutdown` skips the lost
/// threads' by their generation), or starts empty if a vanished thread held the
/// lock at the fork.
pub(crate) type List = ForkMutex<Vec<Entry>>;

/// Locks the list, renewing it in a new fork generation.
fn lock(list: &List) -> crate::sync::MutexGuard<'_, Vec<Entry>> {
    list.lock(|previous| previous.map(std::mem::take).unwrap_or_default())
}

/// What a non-daemon thread keeps of the list, taken when it is started: a
/// reference to the one static; under loom an `Arc` of the execution's list, since
/// loom drops its `lazy_static`s when the model's main thread ends and a detached
/// non-daemon thread may unregister after that. Daemon threads take nothing.
#[cfg(not(loom))]
pub(crate) type NonDaemon = &'static List;
#[cfg(loom)]
pub(crate) type NonDaemon = crate::sync::Arc<List>;

#[cfg(not(loom))]
static NON_DAEMON: List = ForkMutex::new_static(Vec::new());
#[cfg(loom)]
loom::lazy_static! {
    static ref NON_DAEMON: crate::sync::Arc<List> = crate::sync::Arc::new(ForkMutex::new(Vec::new()));
}

/// The non-daemon list, for a non-daemon thread about to be started (or `shutdown`).
pub(crate) fn non_daemon() -> NonDaemon {
    #[cfg(not(loom))]
    {
        &NON_DAEMON
    }
    #[cfg(loom)]
    {
        crate::sync::Arc::clone(&NON_DAEMON)
    }
}

/// The list behind a [`NonDaemon`] (a reference, or under loom an `Arc`).
fn as_list(list: &NonDaemon) -> &List {
    list
}

/// Registers a non-daemon thread started in fork `generation`, before it is started.
pub(crate) fn register(list: &List, ident: Ident, generation: u64, join: Join) {
    lock(list).push(Entry {
        ident,
        generation,
        join,
    });
}

/// Removes a non-daemon thread: when its function has ended, or its start failed.
pub(crate) fn unregister(list: &List, ident: Ident) {
    let removed = {
        let mut list = lock(list);
        list.iter()
            .position(|entry| entry.ident == ident)
            .map(|at| list.remove(at))
    };
    // The closure holds a reference to the thread's shared state: dropped after the
    // lock is released.
    drop(removed);
}

/// Returns how many functions started by this crate are running now: the port of
/// `_thread._count()`.
///
/// The count rises by one when a started function begins to run, on its own
/// thread, and falls by one when it returns or panics, before its outcome is
/// published: once a [`join`](crate::Handle::join) of that thread has returned, the
/// count no longer includes it. Right after [`start`](crate::start) returns, the
/// new function may not have begun yet (CPython's `_count()` is just as racy there).
/// Daemon and non-daemon threads count alike; threads not started by this crate
/// (the main thread, `std::thread::spawn`) never do.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// use std::sync::mpsc;
///
/// let (release, gate) = mpsc::channel::<()>();
/// let (started, running) = mpsc::channel::<()>();
/// let handle = pythread::start(move || {
///     started.send(()).unwrap();
///     gate.recv().unwrap();
/// });
/// running.recv().unwrap(); // the function is running now
/// assert!(pythread::count() >= 1);
/// release.send(()).unwrap();
/// handle.join().unwrap(); // the count has fallen by the time join returns
/// # });
/// ```
pub fn count() -> usize {
    usize::try_from(Counter::load()).unwrap_or(usize::MAX)
}

/// Joins every non-daemon thread still running, except the caller's own: the port
/// of `_thread._shutdown()`.
///
/// A thread is non-daemon when started with [`Builder::daemon`](crate::Builder::daemon)`(false)`.
/// It is registered before it starts and unregistered when its function ends (or
/// when its start fails). `shutdown` repeatedly takes the first registered thread
/// other than the calling one and waits for its function to finish and its OS
/// thread to exit, as [`join_thread`](crate::Handle::join_thread) does, until none
/// is left; so a non-daemon thread started meanwhile by a thread being waited for
/// is waited for too (it is registered before its starter's function ends).
/// Called from a started non-daemon thread, it does not wait for itself. In a
/// child process, after [`after_fork_child`](crate::after_fork_child), threads that
/// did not survive the fork are not waited for.
///
/// The wait is not interruptible (it calls no pending calls);
/// [`shutdown_with_retries`] is CPython 3.13's interruptible form. Two non-daemon
/// threads that call `shutdown` at once wait for each other forever, as in CPython.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
///
/// let done = Arc::new(AtomicBool::new(false));
/// let d = Arc::clone(&done);
/// drop(pythread::Builder::new().daemon(false).start(move || {
///     std::thread::sleep(std::time::Duration::from_millis(20));
///     d.store(true, Ordering::SeqCst);
/// })); // detached, but non-daemon
/// pythread::shutdown();
/// assert!(done.load(Ordering::SeqCst));
/// # });
/// ```
pub fn shutdown() {
    match shutdown_with_retries(|| Ok::<(), std::convert::Infallible>(())) {
        Ok(()) => {}
        Err(never) => match never {},
    }
}

/// [`shutdown`], interruptibly: CPython 3.13's `_thread._shutdown()`, which joins
/// each non-daemon thread as `_ThreadHandle.join()` does and, when that join
/// raises, reports the error and returns.
///
/// Each wait is the one of [`Handle::join_with_retries`](crate::Handle::join_with_retries)
/// without a deadline: whenever it is interrupted (on Linux: a signal handler
/// installed without `SA_RESTART` ran on this thread) before the thread's function
/// finished, `pending_calls` runs (CPython's `Py_MakePendingCalls`): `Ok(())`
/// resumes the wait, `Err(e)` ends `shutdown_with_retries` with `Err(e)` at once,
/// leaving the remaining threads registered (a later call waits for them again).
/// `Ok(())` once no registered thread other than the caller's is left.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// #[derive(Debug)]
/// struct KeyboardInterrupt;
/// // A runtime's pending calls: here they never raise.
/// let check_signals = || -> Result<(), KeyboardInterrupt> { Ok(()) };
///
/// let worker = pythread::Builder::new().daemon(false).start(|| 6 * 7);
/// pythread::shutdown_with_retries(check_signals).unwrap();
/// assert!(worker.is_finished());
/// # });
/// ```
pub fn shutdown_with_retries<E>(mut pending_calls: impl FnMut() -> Result<(), E>) -> Result<(), E> {
    let me = current_ident();
    let list = non_daemon();
    loop {
        let next = lock(as_list(&list))
            .iter()
            .find(|entry| {
                Some(entry.ident) != me
                    && !crate::sync::is_lost(entry.generation, entry.ident.as_u64())
            })
            .map(|entry| std::sync::Arc::clone(&entry.join));
        let Some(join) = next else {
            return Ok(());
        };
        // The thread unregisters itself before its outcome is published, so once
        // `join` returns `true` it is gone from the list.
        while !join(true) {
            pending_calls()?;
        }
    }
}

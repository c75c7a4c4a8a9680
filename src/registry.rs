//! What `_thread` keeps about running threads: the count of started functions still
//! running (`_thread._count`) and the list of non-daemon threads that
//! `_thread._shutdown` joins.
//!
//! Cost on the default path: a daemon thread (the default) touches only the running count,
//! one atomic, incremented and decremented by the started thread itself; the start
//! takes no lock. Only a non-daemon thread takes the list's lock, once when it is
//! started and once when its function ends.

use crate::ident::{current_ident, Ident};
use crate::sync::{lock, AtomicU64, Mutex, Ordering};

/// How `shutdown` joins one registered thread: waits for its function to finish and
/// for its OS thread to exit (`Handle::join_thread`, type-erased).
///
/// A `std` `Arc` (not the facade's) because it holds a `dyn Fn`, an unsized
/// coercion that loom's `Arc` cannot make; it only owns the closure, and everything
/// the closure synchronizes on goes through the facade.
pub(crate) type Join = std::sync::Arc<dyn Fn() + Send + Sync>;

/// The registry itself: the running count and the non-daemon list.
pub(crate) struct State {
    running: AtomicU64,
    non_daemon: Mutex<Vec<(Ident, Join)>>,
}

/// What a started thread keeps of the registry, taken when it is started.
///
/// In a normal build, a reference to the one static. Under loom, an `Arc` of the
/// execution's state: loom drops its `lazy_static`s when the model's main thread
/// ends, and a detached thread still has to count its function's end after that.
#[cfg(not(loom))]
pub(crate) type Registry = &'static State;
#[cfg(loom)]
pub(crate) type Registry = crate::sync::Arc<State>;

#[cfg(not(loom))]
static STATE: State = State {
    running: AtomicU64::new(0),
    non_daemon: Mutex::new(Vec::new()),
};
#[cfg(loom)]
loom::lazy_static! {
    static ref STATE: crate::sync::Arc<State> = crate::sync::Arc::new(State {
        running: AtomicU64::new(0),
        non_daemon: Mutex::new(Vec::new()),
    });
}

/// The registry, for a thread about to be started (or for `count`/`shutdown`).
#[inline]
pub(crate) fn registry() -> Registry {
    #[cfg(not(loom))]
    {
        &STATE
    }
    #[cfg(loom)]
    {
        crate::sync::Arc::clone(&STATE)
    }
}

/// Called by a started thread right before its function runs.
#[inline]
pub(crate) fn fn_started(registry: &State) {
    // Only the count matters, not what it orders: Relaxed. A `join` that returns
    // still sees the decrement below, which happens-before the outcome's Release
    // publication that the join Acquires.
    registry.running.fetch_add(1, Ordering::Relaxed);
}

/// Called by a started thread right after its function returned or panicked.
#[inline]
pub(crate) fn fn_ended(registry: &State) {
    registry.running.fetch_sub(1, Ordering::Relaxed);
}

/// Registers a non-daemon thread, before it is started.
pub(crate) fn register(registry: &State, ident: Ident, join: Join) {
    lock(&registry.non_daemon).push((ident, join));
}

/// Removes a non-daemon thread: when its function has ended, or its start failed.
pub(crate) fn unregister(registry: &State, ident: Ident) {
    let removed = {
        let mut list = lock(&registry.non_daemon);
        list.iter()
            .position(|(id, _)| *id == ident)
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
    usize::try_from(registry().running.load(Ordering::Relaxed)).unwrap_or(usize::MAX)
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
/// Called from a started non-daemon thread, it does not wait for itself.
///
/// Unlike CPython's, the wait is not interruptible (it calls no pending calls). Two
/// non-daemon threads that call `shutdown` at once wait for each other forever, as
/// in CPython.
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
    let me = current_ident();
    let registry = registry();
    loop {
        let next = lock(&registry.non_daemon)
            .iter()
            .find(|(ident, _)| Some(*ident) != me)
            .map(|(_, join)| std::sync::Arc::clone(join));
        match next {
            // The thread unregisters itself before its outcome is published, so once
            // `join` returns it is gone from the list.
            Some(join) => join(),
            None => return,
        }
    }
}

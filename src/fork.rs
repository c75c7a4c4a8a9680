//! `fork()` support: what CPython's `PyOS_BeforeFork`, `PyOS_AfterFork_Parent` and
//! `PyOS_AfterFork_Child` (with `_PyThread_AfterFork`) do for the thread layer.
//!
//! After `fork()` only the forking thread exists in the child. Two things must hold
//! there, and each has its own mechanism:
//!
//! - **Handles of threads that vanished are finished.** No list of all threads is
//!   kept (a start stays as cheap as before): every handle records the fork
//!   *generation* it was started in ([`generation_at_start`]), and
//!   [`after_fork_child`] bumps the generation and records the surviving thread's
//!   ident. A handle is *lost* when it is from an earlier generation and is not the
//!   survivor's ([`is_lost`]); the join slow paths check it before they wait or
//!   touch the handle's OS-join lock, so no join ever waits for, joins or detaches
//!   a thread that is not in the child.
//! - **No lock of the crate is held by a thread that vanished.** Nothing is held
//!   across the fork: [`before_fork`] takes no lock, so the forking thread never
//!   holds one of the crate's while the host runs its own code around `fork()`
//!   (CPython waits for its import lock there, and may run warnings and the
//!   collector), and no other thread ever waits for it. Instead every internal
//!   lock of the crate (the non-daemon registry, each [`Tss`](crate::Tss) key's, a
//!   handle's OS slot, the portable wait backend's buckets) is a
//!   `sync::ForkMutex`: one mutex per fork generation, so that in the child a lock
//!   that a vanished thread held reads as free (a fresh one, renewed from the old
//!   value when that was free, from nothing when it was held), as CPython
//!   re-initializes its locks there (`_PyThread_at_fork_reinit`). The OS-join lock
//!   of a handle is never taken for a lost thread: its join is decided by its
//!   generation first.
//!
//! The futex-based [`Lock`](crate::Lock) and [`RLock`](crate::RLock) are user
//! objects, not the crate's internal locks: a lock held by a thread that vanished
//! stays held, and the runtime resets it as CPython's `_at_fork_reinit` does.

// A plain atomic, not the facade's: it changes only around `fork()`, which no loom
// model performs.
use std::sync::atomic::{AtomicU32, Ordering};

use crate::ident::Ident;
#[cfg(not(loom))]
use crate::{
    ident::{current_ident, get_ident},
    registry,
};

/// The process id this state belongs to: recorded at the first start, by
/// [`before_fork`] and by [`after_fork_child`]; 0 = nothing recorded yet. A
/// different `std::process::id()` in [`after_fork_child`] is what says "forked".
static KNOWN_PID: AtomicU32 = AtomicU32::new(0);

/// The message of the [`Panic`](crate::Panic) that the joins of a lost thread return.
pub(crate) const LOST_MESSAGE: &str =
    "pythread: the thread did not survive fork(): it does not exist in this child process";

/// The generation a thread being started belongs to; also records the process id
/// on the first start (a relaxed load and a branch afterwards).
#[inline]
pub(crate) fn generation_at_start() -> u64 {
    if KNOWN_PID.load(Ordering::Relaxed) == 0 {
        KNOWN_PID.store(std::process::id(), Ordering::Relaxed);
    }
    crate::sync::generation()
}

/// Whether the thread `ident`, started in `generation`, did not survive a fork:
/// started before the last [`after_fork_child`] and not the thread that called it.
#[inline]
pub(crate) fn is_lost(generation: u64, ident: Ident) -> bool {
    crate::sync::is_lost(generation, ident.as_u64())
}

/// Prepares the crate for `fork()`: call it right before `fork()`, on the thread
/// that forks, then [`after_fork_parent`] in the parent and [`after_fork_child`] in
/// the child, on that same thread (CPython's `PyOS_BeforeFork`).
///
/// It takes no lock and waits for nothing: the crate's internal locks renew
/// themselves in the child (see [`after_fork_child`]), so the host may run any
/// code of its own, on any thread, between this call and `fork()`, and other
/// threads may go on using every part of the crate meanwhile. It records the
/// process id, which is how [`after_fork_child`] tells a real child from a
/// stray call. Under `--cfg loom` it does nothing.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// // What a runtime does around fork(); the fork itself (libc::fork) needs
/// // `unsafe`, which this example leaves out: it plays the parent's side.
/// pythread::before_fork();
/// let pid = 1; // unsafe { libc::fork() }
/// if pid == 0 {
///     pythread::after_fork_child();
/// } else {
///     pythread::after_fork_parent();
/// }
/// assert_eq!(pythread::start(|| 2).join().unwrap(), 2);
/// # });
/// ```
pub fn before_fork() {
    #[cfg(not(loom))]
    KNOWN_PID.store(std::process::id(), Ordering::Relaxed);
}

/// In the parent after `fork()` (whether the fork succeeded or not): CPython's
/// `PyOS_AfterFork_Parent`. Nothing is held across the fork, so it does nothing
/// today; a runtime calls it so that it keeps working if that changes.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// pythread::before_fork();
/// // fork() failed, or this is the parent:
/// pythread::after_fork_parent();
/// let handle = pythread::Builder::new().daemon(false).start(|| 1);
/// assert_eq!(handle.join().unwrap(), 1);
/// # });
/// ```
pub fn after_fork_parent() {}

/// Brings the crate's state in line with the child process, where only the
/// calling thread survived: CPython's `PyOS_AfterFork_Child` and
/// `_PyThread_AfterFork`. Call it in the child right after `fork()`, on the thread
/// that forked, before any thread is started or joined there, after
/// [`before_fork`] in the parent.
///
/// Afterwards:
///
/// - every [`Handle`](crate::Handle) of a thread that did not survive (every
///   thread started before the fork except the calling one) is finished: its
///   [`is_finished`](crate::Handle::is_finished) is `true` and its joins return at
///   once with `Err(panic)`, one [`Panic`](crate::Panic) per thread, whose
///   [`message`](crate::Panic::message) says that the thread did not survive
///   `fork()` — unless the function had already returned before the fork, in which
///   case they return its value as before. The OS thread is never joined nor
///   detached (it does not exist here: its `pthread_t` may name a thread the child
///   starts later), not even when the last handle is dropped: its std
///   `JoinHandle` is leaked then (forgotten; what it owns is a few dozen bytes,
///   already kept alive by the vanished thread's own references);
/// - [`count`](crate::count) is 1 if the calling thread was started by this crate
///   and its function still runs, else 0, plus the threads started since;
/// - [`shutdown`](crate::shutdown) and [`shutdown_with_retries`](crate::shutdown_with_retries)
///   wait only for non-daemon threads started in the child (and the calling
///   thread's own, when another thread calls them);
/// - the calling thread keeps its handle, [`get_ident`](crate::get_ident),
///   [`current_ident`](crate::current_ident) and [`Tss`](crate::Tss) values; the
///   lost threads' `Tss` values stay in their keys until the host takes them
///   ([`Tss::take_lost_values`](crate::Tss::take_lost_values)) or the key is
///   deleted or dropped;
/// - every internal lock of the crate that a lost thread held reads as free (each
///   renews itself at its first use in the child).
///
/// It is idempotent and does nothing in a process that has not forked since the
/// last call, as told by
/// [`std::process::id`]: a stray call never marks a live thread lost. Under
/// `--cfg loom` it does nothing.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// let handle = pythread::start(|| 5);
/// // Not in a forked child: nothing is marked lost.
/// pythread::after_fork_child();
/// assert_eq!(handle.join().unwrap(), 5);
/// # });
/// ```
pub fn after_fork_child() {
    #[cfg(not(loom))]
    {
        let pid = std::process::id();
        if KNOWN_PID.swap(pid, Ordering::Relaxed) != pid {
            crate::sync::advance(get_ident().as_u64());
            crate::tss::after_fork_child();
            #[cfg(any(not(target_os = "linux"), pythread_generic))]
            crate::sync::wait_after_fork_child();
            registry::Counter::reset_after_fork(current_ident().is_some());
            // The registry keeps its entries of lost threads: `shutdown` skips them
            // by their generation (each is a few words; the lost thread's state is
            // kept alive by its vanished stack's reference anyway).
        }
    }
}

/// What the loom fork models (`loom_tests/fork.rs`) call in place of
/// `after_fork_child` in a real child: the next generation, in which the calling
/// model thread is the survivor. The model "loses" its other threads by having
/// them forget a guard, as a vanished thread never releases one.
#[cfg(loom)]
pub fn model_fork_child() {
    crate::sync::advance(crate::ident::get_ident().as_u64());
    crate::tss::after_fork_child();
}

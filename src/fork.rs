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
//! - **No lock of the crate is held by a thread that vanished.** The global locks
//!   (the non-daemon registry, the bucket mutexes of the portable wait backend) are
//!   taken by [`before_fork`] and released by [`after_fork_parent`] /
//!   [`after_fork_child`], as `PyOS_BeforeFork` takes the runtime's locks. The
//!   per-object locks that are held only briefly and never across a wait (each
//!   [`Tss`](crate::Tss) key's, a handle's OS slot while `start` fills it) are
//!   taken inside a shared *fork gate* ([`gate`]), a read lock that `before_fork`
//!   takes for writing: so none of them is held while the process forks. The
//!   OS-join lock, held across the OS join (an unbounded wait), is not gated: a
//!   lost thread's join is decided by its generation before that lock is touched.
//!
//! The futex-based [`Lock`](crate::Lock) and [`RLock`](crate::RLock) are user
//! objects, not the crate's internal locks: a lock held by a thread that vanished
//! stays held, and the runtime resets it as CPython's `_at_fork_reinit` does.

#[cfg(not(loom))]
use std::cell::RefCell;
// Process-wide plain atomics and a plain `RwLock`, not the facade's: they change or
// are contended only around `fork()`, which no loom model can perform, so a model
// would only ever see their initial values (under loom the gate is compiled out).
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::ident::Ident;
#[cfg(not(loom))]
use crate::{
    ident::{current_ident, get_ident},
    registry,
};

/// The fork generation: how many times [`after_fork_child`] has run in this
/// process's ancestry (0 in a process that never forked).
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// The ident ([`get_ident`]) of the thread that called the last
/// [`after_fork_child`]: the one thread of the earlier generations still running.
/// 0 (never an ident) before any fork.
static SURVIVOR: AtomicU64 = AtomicU64::new(0);

/// The process id this state belongs to: recorded at the first start, by
/// [`before_fork`] and by [`after_fork_child`]; 0 = nothing recorded yet. A
/// different `std::process::id()` in [`after_fork_child`] is what says "forked".
static KNOWN_PID: AtomicU32 = AtomicU32::new(0);

/// The message of the [`Panic`](crate::Panic) that the joins of a lost thread return.
pub(crate) const LOST_MESSAGE: &str =
    "pythread: the thread did not survive fork(): it does not exist in this child process";

/// The generation a thread being started belongs to; also records the process id
/// on the first start (a relaxed load and a branch afterwards).
///
/// Relaxed suffices: the generation changes only in [`after_fork_child`], which the
/// runtime calls before the child starts any thread, and a thread start
/// happens-after it on the starting thread or through the OS thread creation.
#[inline]
pub(crate) fn generation_at_start() -> u64 {
    if KNOWN_PID.load(Ordering::Relaxed) == 0 {
        KNOWN_PID.store(std::process::id(), Ordering::Relaxed);
    }
    GENERATION.load(Ordering::Relaxed)
}

/// Whether the thread `ident`, started in `generation`, did not survive a fork:
/// started before the last [`after_fork_child`] and not the thread that called it.
#[inline]
pub(crate) fn is_lost(generation: u64, ident: Ident) -> bool {
    generation != GENERATION.load(Ordering::Relaxed)
        && ident.as_u64() != SURVIVOR.load(Ordering::Relaxed)
}

#[cfg(not(loom))]
mod locks {
    use std::cell::RefCell;
    use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError};

    use crate::registry;

    /// The fork gate: every brief per-object lock of the crate is taken inside a
    /// read guard of it, and [`super::before_fork`] holds it for writing.
    pub(super) static GATE: RwLock<()> = RwLock::new(());

    /// The locks [`super::before_fork`] took, released (in reverse order of
    /// acquisition: fields drop in declaration order) by the `after_fork_*` calls.
    // Never read: they are held for their `Drop`, which releases them.
    #[allow(dead_code)]
    pub(super) struct Held {
        #[cfg(not(target_os = "linux"))]
        pub(super) buckets: Vec<std::sync::MutexGuard<'static, ()>>,
        pub(super) registry: registry::ForkGuard,
        pub(super) gate: RwLockWriteGuard<'static, ()>,
    }

    std::thread_local! {
        /// A guard is released on the thread that took it, and `fork()` keeps the
        /// calling thread: the thread-local of the thread that calls `before_fork`,
        /// `fork()` and then an `after_fork_*`.
        pub(super) static HELD: RefCell<Option<Held>> = const { RefCell::new(None) };
    }

    pub(super) fn read() -> RwLockReadGuard<'static, ()> {
        GATE.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The gate for writing, without ever queueing as a writer: a queued writer
    /// makes `std`'s `RwLock` refuse new readers, and a reader may take the gate
    /// again while it holds it (`Tss::get` runs `T::clone` under its key's lock,
    /// and that clone may use another key), which would then deadlock.
    pub(super) fn write() -> RwLockWriteGuard<'static, ()> {
        loop {
            match GATE.try_write() {
                Ok(guard) => return guard,
                Err(TryLockError::Poisoned(poisoned)) => return poisoned.into_inner(),
                Err(TryLockError::WouldBlock) => std::thread::yield_now(),
            }
        }
    }
}

/// Entered (a shared read lock) around every brief per-object lock of the crate,
/// so that none is held while the process forks (see the module docs). Readers
/// never wait for each other; they wait only while a fork is in progress.
#[cfg(not(loom))]
pub(crate) fn gate() -> std::sync::RwLockReadGuard<'static, ()> {
    locks::read()
}

/// No gate under loom: no model forks.
#[cfg(loom)]
pub(crate) fn gate() {}

/// Prepares the crate for `fork()`: call it right before `fork()`, on the thread
/// that forks, then [`after_fork_parent`] in the parent and [`after_fork_child`] in
/// the child, on that same thread (CPython's `PyOS_BeforeFork`).
///
/// It takes the crate's global locks (the registry of non-daemon threads, the
/// fork gate that every brief per-object lock is taken in, and on platforms
/// without futexes the wait primitive's bucket mutexes), waiting until no other
/// thread holds them, so that no lock is held by a thread that will not exist in
/// the child. Until the matching `after_fork_*` call, other threads that start a
/// non-daemon thread, store a started thread's OS handle, or use a [`Tss`](crate::Tss)
/// key wait; so must the calling thread do none of these in between (it would
/// deadlock). Waiting on a [`Lock`](crate::Lock), joining and starting daemon
/// threads need none of these locks.
///
/// A second call before an `after_fork_*` call does nothing. Under `--cfg loom`
/// it does nothing (no model forks).
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
    locks::HELD.with(|held| {
        let mut held = held.borrow_mut();
        if held.is_some() {
            return;
        }
        KNOWN_PID.store(std::process::id(), Ordering::Relaxed);
        // Order: the gate first (a gated section may start a non-daemon thread and
        // so take the registry), then the registry, then the bucket mutexes, which
        // are leaves (nothing is locked while one is held).
        let gate = locks::write();
        let registry = registry::lock_for_fork();
        *held = Some(locks::Held {
            #[cfg(not(target_os = "linux"))]
            buckets: crate::sync::lock_buckets_for_fork(),
            registry,
            gate,
        });
    });
}

/// Releases what [`before_fork`] took, in the parent after `fork()` (whether the
/// fork succeeded or not): CPython's `PyOS_AfterFork_Parent`. Does nothing if
/// `before_fork` was not called on this thread.
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
pub fn after_fork_parent() {
    #[cfg(not(loom))]
    drop(locks::HELD.with(RefCell::take));
}

/// Brings the crate's state in line with the child process, where only the
/// calling thread survived: CPython's `PyOS_AfterFork_Child` and
/// `_PyThread_AfterFork`. Call it in the child right after `fork()`, on the thread
/// that forked, before any thread is started or joined there, and after
/// [`before_fork`] in the parent (without it, an internal lock may be held by a
/// thread that vanished).
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
///   lost threads' `Tss` values stay in their keys until the key is deleted or
///   dropped;
/// - the locks [`before_fork`] took are released.
///
/// It is idempotent and does nothing (but release what `before_fork` took) in a
/// process that has not forked since the last call, as told by
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
            SURVIVOR.store(get_ident().as_u64(), Ordering::Relaxed);
            GENERATION.fetch_add(1, Ordering::Relaxed);
            registry::Counter::reset_after_fork(current_ident().is_some());
            // The registry keeps its entries of lost threads: `shutdown` skips them
            // by their generation (each is a few words; the lost thread's state is
            // kept alive by its vanished stack's reference anyway).
        }
        drop(locks::HELD.with(RefCell::take));
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::TryLockError;
    use std::time::{Duration, Instant};

    /// Whether the registry's lock can be taken now (another test's thread may
    /// hold it for a moment: retried, bounded, when `expect_free`).
    fn registry_free(expect_free: bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let free = registry::try_lock_for_test();
            if free || !expect_free || Instant::now() > deadline {
                return free;
            }
            std::thread::yield_now();
        }
    }

    fn gate_free(expect_free: bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let free = !matches!(locks::GATE.try_read(), Err(TryLockError::WouldBlock));
            if free || !expect_free || Instant::now() > deadline {
                return free;
            }
            std::thread::yield_now();
        }
    }

    /// `before_fork` holds the registry's lock and the fork gate until
    /// `after_fork_parent` (or `after_fork_child`) releases them; a second
    /// `before_fork` in between changes nothing (and does not deadlock).
    #[test]
    fn before_fork_holds_the_global_locks_until_after_fork() {
        for release in [after_fork_parent as fn(), after_fork_child] {
            before_fork();
            before_fork();
            assert!(!registry_free(false), "the registry's lock is not held");
            assert!(!gate_free(false), "the fork gate is not held");
            release();
            assert!(registry_free(true), "the registry's lock was not released");
            assert!(gate_free(true), "the fork gate was not released");
        }
    }
}

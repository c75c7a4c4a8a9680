//! The synchronization facade: the one place the core gets its primitives from.
//!
//! Every atomic, lock, condition variable, thread spawn, thread-local and write-once
//! cell that the core relies on for correctness is imported from here. Under
//! `--cfg loom` this module hands out [loom]'s model-checked versions, so the loom
//! suite in `loom_tests/` explores every interleaving of the real core code; in a
//! normal build it re-exports `std` and costs nothing.
//!
//! It also supplies the crate's one blocking primitive, [`wait`] / [`wake_one`] /
//! [`wake_all`] on an [`AtomicU32`] word (futex-shaped), and the clock ([`Instant`],
//! [`now`], [`deadline_after`]) its deadlines are measured on. One small file per
//! backend, behind one interface (the shape of `parking_lot_core`'s `thread_parker/`):
//!
//! | backend | file | when | interruption |
//! |---|---|---|---|
//! | Linux futex | `futex.rs` | Linux, not loom | a signal handler that ran on the waiting thread ends the wait with [`Wake::Interrupted`] (`EINTR`), with or without `SA_RESTART` |
//! | mutex + condition variable | `generic.rs` | other platforms, or Linux with `--cfg pythread_generic`; not loom | never: CPython's "mutex+cond" build |
//! | loom model | `loom_model.rs` | `--cfg loom` | a model interrupt the loom test sends |
//!
//! [loom]: https://docs.rs/loom

#[cfg(not(loom))]
pub(crate) use std::{
    sync::{
        Arc, Mutex, MutexGuard, OnceLock,
        atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering, fence},
    },
    thread,
};

#[cfg(loom)]
pub(crate) use loom::{
    sync::{
        Arc, Condvar, Mutex, MutexGuard,
        atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering, fence},
    },
    thread,
};

#[cfg(loom)]
pub(crate) use self::loom_once_lock::OnceLock;

mod fork_mutex;
pub(crate) use self::fork_mutex::{ForkMutex, advance, generation, is_lost};

// `--cfg pythread_generic` selects the generic backend on Linux too, so the whole
// suite can run on the backend every other platform uses (`make test-generic`).
// The futex backend is still compiled (and unit-tested) then, and the generic one
// on Linux without the cfg: each file's unit tests run in both builds.
#[cfg(all(target_os = "linux", not(loom)))]
#[cfg_attr(pythread_generic, allow(dead_code))]
mod futex;
#[cfg(not(loom))]
#[cfg_attr(all(target_os = "linux", not(pythread_generic)), allow(dead_code))]
mod generic;
#[cfg(loom)]
#[allow(dead_code)]
pub(crate) mod loom_model;

#[cfg(all(target_os = "linux", not(pythread_generic), not(loom)))]
use self::futex as backend;
#[cfg(all(any(not(target_os = "linux"), pythread_generic), not(loom)))]
use self::generic as backend;
#[cfg(loom)]
use self::loom_model as backend;

#[cfg(loom)]
pub(crate) use self::loom_model::Instant;
/// The clock deadlines are measured on: `std`'s monotonic [`std::time::Instant`], or
/// under loom a model instant that only the loom test moves (see `loom_model`).
#[cfg(not(loom))]
pub(crate) use std::time::Instant;

/// Why [`wait`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// A wake-up, the word no longer holding `expected`, or a spurious return: the
    /// caller re-checks its condition.
    Woken,
    /// The deadline has passed (checked against [`now`]; never early).
    TimedOut,
    /// A signal handler ran on this thread during the wait (Linux futex backend:
    /// `EINTR`; loom: the model interrupt). The generic backend never returns it.
    Interrupted,
}

/// Blocks while `word == expected`, until a wake, the deadline, or (Linux futex
/// backend only, and the loom model) a signal handler that ran on this thread.
/// A deadline of `None` waits forever. `Woken` may be spurious; `TimedOut` is only
/// returned once `now() >= deadline`.
#[inline]
pub(crate) fn wait(word: &AtomicU32, expected: u32, deadline: Option<Instant>) -> Wake {
    backend::wait(word, expected, deadline)
}

/// [`wait`] for a caller that treats [`Wake::Interrupted`] as a spurious wake-up
/// (a plain, non-interruptible acquire or join). The futex backend then gives the
/// kernel no timeout when there is no deadline, which saves arming and cancelling
/// a kernel timer on every sleep (0.2 to 0.4 us of CPU per sleep measured, see
/// BENCHMARKS.md); [`wait`]'s finite timeout is what makes a handler installed
/// with `SA_RESTART` end the wait, and such a caller does not need that. Other
/// backends: the same as [`wait`].
#[inline]
#[allow(dead_code)] // an opt-in for the non-interruptible waits of lock.rs and completion.rs
pub(crate) fn wait_uninterruptible(
    word: &AtomicU32,
    expected: u32,
    deadline: Option<Instant>,
) -> Wake {
    #[cfg(all(target_os = "linux", not(pythread_generic), not(loom)))]
    {
        futex::wait_uninterruptible(word, expected, deadline)
    }
    #[cfg(not(all(target_os = "linux", not(pythread_generic), not(loom))))]
    {
        backend::wait(word, expected, deadline)
    }
}

/// Wakes at least one thread blocked in [`wait`] on `word`, if there is one.
#[inline]
pub(crate) fn wake_one(word: &AtomicU32) {
    backend::wake_one(word)
}

/// Wakes every thread blocked in [`wait`] on `word`.
#[inline]
#[allow(dead_code)] // for the handle's joins
pub(crate) fn wake_all(word: &AtomicU32) {
    backend::wake_all(word)
}

/// How many threads are asleep in [`wait`] on `word` under the generic backend
/// (for the lock tests' white-box checks, which count futex sleepers on the word
/// under the futex backend; a generic sleeper sleeps on its own condition variable).
#[cfg(all(test, target_os = "linux", not(loom)))]
pub(crate) fn generic_sleepers(word: &AtomicU32) -> usize {
    generic::sleepers(word)
}
/// In a forked child: the portable backend's fresh waiter for the surviving
/// thread (the futex backend keeps nothing per thread).
#[cfg(all(any(not(target_os = "linux"), pythread_generic), not(loom)))]
pub(crate) use self::generic::after_fork_child as wait_after_fork_child;

/// The current time on the crate's clock.
#[inline]
pub(crate) fn now() -> Instant {
    #[cfg(not(loom))]
    {
        Instant::now()
    }
    #[cfg(loom)]
    {
        loom_model::now()
    }
}

/// The deadline `timeout` from now, or `None` ("no deadline": wait forever) when
/// the clock cannot represent it (a too-large timeout).
#[inline]
pub(crate) fn deadline_after(timeout: std::time::Duration) -> Option<Instant> {
    now().checked_add(timeout)
}

/// Declares a process-wide atomic.
///
/// loom's atomics cannot be built in a `const` context, and loom must see a fresh
/// value in every execution it explores, so under loom the static is a
/// `loom::lazy_static!` (reset per execution); otherwise it is a plain `static`.
macro_rules! global_atomic {
    (static $name:ident: $ty:ident = $init:expr;) => {
        #[cfg(not(loom))]
        static $name: $crate::sync::$ty = $crate::sync::$ty::new($init);
        #[cfg(loom)]
        loom::lazy_static! {
            static ref $name: $crate::sync::$ty = $crate::sync::$ty::new($init);
        }
    };
}
pub(crate) use global_atomic;

/// Declares a thread-local with a `const` initializer.
///
/// `std` makes a const-initialized thread-local a plain TLS access; loom's
/// `thread_local!` (one value per model thread) has no `const` form.
macro_rules! thread_local_const {
    ($vis:vis static $name:ident: $ty:ty = $init:expr;) => {
        #[cfg(not(loom))]
        std::thread_local! {
            $vis static $name: $ty = const { $init };
        }
        #[cfg(loom)]
        loom::thread_local! {
            $vis static $name: $ty = $init;
        }
    };
}
pub(crate) use thread_local_const;

/// Locks `mutex`, ignoring poison.
///
/// Poison carries no information here: no lock of the crate guards state that a
/// panic could leave half-updated. The crate's own code under its locks does not
/// panic, with one exception that runs user code: `T::clone` in
/// `Panic::downcast_cloned` runs under the payload lock (it may panic or block), but
/// it only reads the payload through `&T`, so the payload is intact after a
/// panicking `clone` and the `Panic` stays usable. Refusing to go on after poison
/// would turn one failure into a hang or a cascade.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A model of the part of `std::sync::OnceLock` the crate uses, built from loom
/// primitives so that loom sees (and checks) how the panic payload is published.
///
/// It exists only in the loom build; the shipped crate uses `std`'s `OnceLock` and
/// contains no `unsafe` code at all (`forbid(unsafe_code)` outside loom).
#[cfg(loom)]
#[allow(unsafe_code)]
mod loom_once_lock {
    use loom::cell::UnsafeCell;
    use loom::sync::atomic::{AtomicU8, Ordering};
    use std::panic::{RefUnwindSafe, UnwindSafe};

    const EMPTY: u8 = 0;
    const WRITING: u8 = 1;
    const READY: u8 = 2;

    pub(crate) struct OnceLock<T> {
        state: AtomicU8,
        value: UnsafeCell<Option<T>>,
    }

    // SAFETY: the same bounds as std's OnceLock: sharing the cell shares `&T` between
    // threads (needs `T: Sync`) and lets any of them store the `T` (needs `T: Send`).
    unsafe impl<T: Send + Sync> Sync for OnceLock<T> {}

    // As std's: a panic while the cell is observed leaves it either empty or set.
    impl<T: RefUnwindSafe + UnwindSafe> RefUnwindSafe for OnceLock<T> {}
    impl<T: UnwindSafe> UnwindSafe for OnceLock<T> {}

    impl<T> OnceLock<T> {
        pub(crate) fn new() -> Self {
            OnceLock {
                state: AtomicU8::new(EMPTY),
                value: UnsafeCell::new(None),
            }
        }

        /// Unlike `std`, a racing second `set` fails at once instead of waiting for the
        /// first; the crate calls `set` exactly once per cell, so the difference is moot.
        pub(crate) fn set(&self, value: T) -> Result<(), T> {
            if self
                .state
                .compare_exchange(EMPTY, WRITING, Ordering::Acquire, Ordering::Acquire)
                .is_err()
            {
                return Err(value);
            }
            // SAFETY: the successful EMPTY -> WRITING exchange makes this thread the only
            // writer, and readers touch `value` only after observing READY, which is
            // stored below, after this write. loom checks both claims.
            self.value.with_mut(|slot| unsafe { *slot = Some(value) });
            self.state.store(READY, Ordering::Release);
            Ok(())
        }

        pub(crate) fn get(&self) -> Option<&T> {
            if self.state.load(Ordering::Acquire) != READY {
                return None;
            }
            // SAFETY: READY was stored with Release after the one and only write, and this
            // thread loaded it with Acquire, so the write happens-before this read; the
            // value is never written again (it is dropped only through `&mut self`).
            self.value.with(|slot| unsafe { (*slot).as_ref() })
        }

        /// The value, if set, through exclusive access.
        pub(crate) fn get_mut(&mut self) -> Option<&mut T> {
            if self.state.load(Ordering::Acquire) != READY {
                return None;
            }
            // SAFETY: `&mut self` excludes every other access to the cell, and the
            // Acquire load above orders the one write before this access.
            self.value.with_mut(|slot| unsafe { (*slot).as_mut() })
        }

        /// The value, if set; taking `self` by value means no reader is left.
        pub(crate) fn into_inner(self) -> Option<T> {
            // SAFETY: `self` is owned, so no other thread holds a reference to the cell;
            // loom still checks that the last write happens-before this read.
            self.value.with_mut(|slot| unsafe { (*slot).take() })
        }
    }
}

#[cfg(all(test, not(loom)))]
pub(crate) mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// How long any wait in these tests may take before the test fails.
    const WATCHDOG: Duration = Duration::from_secs(10);

    type WaitFn = fn(&AtomicU32, u32, Option<Instant>) -> Wake;
    type WakeFn = fn(&AtomicU32);

    /// The backends under test: the one in use, and the generic one (also on Linux).
    fn backends() -> Vec<(&'static str, WaitFn, WakeFn, WakeFn)> {
        let mut list: Vec<(&'static str, WaitFn, WakeFn, WakeFn)> = vec![(
            "generic",
            generic::wait,
            generic::wake_one,
            generic::wake_all,
        )];
        #[cfg(target_os = "linux")]
        list.push(("futex", futex::wait, futex::wake_one, futex::wake_all));
        list
    }

    #[test]
    fn changed_word_returns_at_once() {
        for (name, wait, _, _) in backends() {
            let word = AtomicU32::new(1);
            assert_eq!(wait(&word, 0, None), Wake::Woken, "{name}");
        }
    }

    #[test]
    fn past_deadline_times_out_at_once() {
        for (name, wait, _, _) in backends() {
            let word = AtomicU32::new(0);
            assert_eq!(wait(&word, 0, Some(now())), Wake::TimedOut, "{name}");
        }
    }

    #[test]
    fn timeout_is_never_early() {
        for (name, wait, _, _) in backends() {
            let word = AtomicU32::new(0);
            let start = now();
            let deadline = start + Duration::from_millis(30);
            // A spurious Woken is allowed; the caller loops against the same deadline.
            let mut wakes = 0;
            while wait(&word, 0, Some(deadline)) != Wake::TimedOut {
                wakes += 1;
                assert!(wakes < 1000, "{name}: never timed out");
            }
            assert!(now() >= deadline, "{name}: TimedOut before the deadline");
            assert!(start.elapsed() < WATCHDOG, "{name}: far too late");
        }
    }

    #[test]
    fn deadline_after_saturates_to_forever() {
        assert!(deadline_after(Duration::MAX).is_none());
        let d = deadline_after(Duration::from_secs(1)).unwrap();
        assert!(d > now());
    }

    /// Waits until the thread `tid` of this process is blocked in the futex system
    /// call (both backends end in one on Linux), or fails after [`WATCHDOG`].
    #[cfg(target_os = "linux")]
    fn wait_until_in_futex(tid: i32) {
        let path = format!("/proc/self/task/{tid}/syscall");
        let futex_nr = signals::SYS_FUTEX.to_string();
        let start = std::time::Instant::now();
        loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if text.split_whitespace().next() == Some(futex_nr.as_str()) {
                return;
            }
            assert!(
                start.elapsed() < WATCHDOG,
                "thread {tid} never blocked: {text}"
            );
            std::thread::yield_now();
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn wake_one_and_wake_all_wake_sleepers() {
        for (name, wait, wake_one, wake_all) in backends() {
            for all in [false, true] {
                let word = Arc::new(AtomicU32::new(0));
                let (tx, rx) = mpsc::channel();
                let sleepers = if all { 2 } else { 1 };
                let mut tids = Vec::new();
                for _ in 0..sleepers {
                    let word = Arc::clone(&word);
                    let (tid_tx, tid_rx) = mpsc::channel();
                    let tx = tx.clone();
                    std::thread::spawn(move || {
                        tid_tx.send(signals::gettid()).unwrap();
                        let mut results = Vec::new();
                        while word.load(Ordering::SeqCst) == 0 {
                            results.push(wait(&word, 0, None));
                        }
                        tx.send(results).unwrap();
                    });
                    tids.push(tid_rx.recv_timeout(WATCHDOG).unwrap());
                }
                for &tid in &tids {
                    wait_until_in_futex(tid);
                }
                word.store(1, Ordering::SeqCst);
                if all {
                    wake_all(&word);
                } else {
                    wake_one(&word);
                }
                for _ in 0..sleepers {
                    let results = rx
                        .recv_timeout(WATCHDOG)
                        .unwrap_or_else(|_| panic!("{name}: a sleeper was not woken"));
                    assert!(!results.is_empty(), "{name}: the sleeper never slept");
                    assert!(
                        results.iter().all(|w| *w == Wake::Woken),
                        "{name}: {results:?}"
                    );
                }
            }
        }
    }

    /// One waiter blocked on `word` (with no deadline, or one an hour away) gets
    /// `signal` from `pthread_kill`; the result of its first wait is returned.
    #[cfg(target_os = "linux")]
    fn signal_a_sleeper(
        wait: WaitFn,
        wake_one: WakeFn,
        timeout: Option<Duration>,
        signal: libc::c_int,
    ) -> Wake {
        let word = Arc::new(AtomicU32::new(0));
        let (tx, rx) = mpsc::channel();
        let (id_tx, id_rx) = mpsc::channel();
        let waiter = Arc::clone(&word);
        std::thread::spawn(move || {
            id_tx
                .send((signals::pthread_self(), signals::gettid()))
                .unwrap();
            let first = wait(&waiter, 0, timeout.map(|t| now() + t));
            while waiter.load(Ordering::SeqCst) == 0 {
                wait(&waiter, 0, None);
            }
            tx.send(first).unwrap();
        });
        let (thread, tid) = id_rx.recv_timeout(WATCHDOG).unwrap();
        wait_until_in_futex(tid);
        let handled = signals::handled();
        signals::kill(thread, signal);
        let start = std::time::Instant::now();
        while signals::handled() == handled {
            assert!(start.elapsed() < WATCHDOG, "the handler never ran");
            std::thread::yield_now();
        }
        // Let it finish whatever the first wait returned.
        word.store(1, Ordering::SeqCst);
        loop {
            wake_one(&word);
            match rx.recv_timeout(Duration::from_millis(10)) {
                Ok(result) => break result,
                Err(_) => assert!(start.elapsed() < WATCHDOG, "the waiter never returned"),
            }
        }
    }

    /// The futex backend reports a handler that ran, however it was installed:
    /// SIGUSR1's handler has no `SA_RESTART` (as CPython's), SIGUSR2's has it (as
    /// signal-hook's); each wait, untimed or timed, ends with `Interrupted`. The
    /// generic backend never reports one.
    #[cfg(target_os = "linux")]
    #[test]
    fn futex_reports_eintr_with_and_without_sa_restart_and_generic_does_not() {
        let _serial = signals::serial();
        signals::install(libc::SIGUSR1, false);
        signals::install(libc::SIGUSR2, true);
        for signal in [libc::SIGUSR1, libc::SIGUSR2] {
            for deadline in [None, Some(Duration::from_secs(3600))] {
                assert_eq!(
                    signal_a_sleeper(futex::wait, futex::wake_one, deadline, signal),
                    Wake::Interrupted,
                    "futex wait, signal {signal}, deadline {deadline:?}"
                );
                assert_ne!(
                    signal_a_sleeper(generic::wait, generic::wake_one, deadline, signal),
                    Wake::Interrupted,
                    "generic wait, signal {signal}, deadline {deadline:?}"
                );
            }
        }
    }

    /// Waits until the kernel reports thread `tid` asleep (state `S`) three polls
    /// in a row: past the point where its sleep is counted, so that
    /// [`voluntary_switches`] read next does not race its going to sleep.
    #[cfg(target_os = "linux")]
    fn wait_until_asleep(tid: i32) {
        let path = format!("/proc/self/task/{tid}/stat");
        let start = std::time::Instant::now();
        let mut in_a_row = 0;
        while in_a_row < 3 {
            let stat = std::fs::read_to_string(&path).unwrap_or_default();
            let asleep = stat
                .rfind(')')
                .and_then(|end| stat[end + 1..].split_whitespace().next())
                == Some("S");
            in_a_row = if asleep { in_a_row + 1 } else { 0 };
            assert!(start.elapsed() < WATCHDOG, "thread {tid} never asleep");
            std::thread::yield_now();
        }
    }

    /// `wait_uninterruptible` still wakes, times out never early, and returns at
    /// once on a changed word; with no deadline and an `SA_RESTART` handler
    /// (SIGUSR2) the futex backend's untimed wait is restarted by the kernel, not
    /// ended: the price of skipping the timer, which its callers accept.
    #[cfg(target_os = "linux")]
    #[test]
    fn wait_uninterruptible_waits_and_is_restarted_under_sa_restart() {
        let word = AtomicU32::new(1);
        assert_eq!(wait_uninterruptible(&word, 0, None), Wake::Woken);
        let word = AtomicU32::new(0);
        let deadline = now() + Duration::from_millis(20);
        while wait_uninterruptible(&word, 0, Some(deadline)) != Wake::TimedOut {}
        assert!(now() >= deadline);
        let _serial = signals::serial();
        signals::install(libc::SIGUSR2, true);
        let first = signal_a_sleeper(wait_uninterruptible, wake_one, None, libc::SIGUSR2);
        if cfg!(pythread_generic) {
            assert_ne!(first, Wake::Interrupted);
        } else {
            assert_eq!(first, Wake::Woken, "restarted by the kernel, then woken");
        }
    }

    /// The kernel's count of the times thread `tid` went to sleep.
    #[cfg(target_os = "linux")]
    pub(crate) fn voluntary_switches(tid: i32) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|n| n.trim().parse().ok())
            .expect("voluntary_ctxt_switches in /proc status")
    }

    /// No polling: a waiter with no deadline (which the futex backend gives the
    /// kernel as a 68-year timeout) or with one an hour away sleeps through 2 s
    /// without a single wake-up, on either backend. The 2 s are the span measured,
    /// not a synchronization: the sleepers are seen in the kernel first.
    #[cfg(target_os = "linux")]
    #[test]
    fn an_idle_waiter_makes_no_wake_ups() {
        let word = Arc::new(AtomicU32::new(0));
        let mut sleepers = Vec::new();
        for (name, wait, _, wake_all) in backends() {
            for timeout in [None, Some(Duration::from_secs(3600))] {
                let (tid_tx, tid_rx) = mpsc::channel();
                let waiter = Arc::clone(&word);
                let thread = std::thread::spawn(move || {
                    tid_tx.send(signals::gettid()).unwrap();
                    let deadline = timeout.map(|t| now() + t);
                    let mut waits = 0;
                    while waiter.load(Ordering::SeqCst) == 0 {
                        wait(&waiter, 0, deadline);
                        waits += 1;
                    }
                    waits
                });
                let tid = tid_rx.recv_timeout(WATCHDOG).unwrap();
                sleepers.push((name, timeout, tid, thread, wake_all));
            }
        }
        for sleeper in &sleepers {
            wait_until_in_futex(sleeper.2);
            wait_until_asleep(sleeper.2);
        }
        let before: Vec<u64> = sleepers.iter().map(|s| voluntary_switches(s.2)).collect();
        std::thread::sleep(Duration::from_secs(2)); // the span measured
        let after: Vec<u64> = sleepers.iter().map(|s| voluntary_switches(s.2)).collect();
        word.store(1, Ordering::SeqCst);
        for (name, timeout, _, _, wake_all) in &sleepers {
            let _ = (name, timeout);
            wake_all(&word);
        }
        for ((name, timeout, _, thread, _), (before, after)) in
            sleepers.into_iter().zip(before.into_iter().zip(after))
        {
            eprintln!(
                "{name}, deadline {timeout:?}: {} wake-ups in 2 s",
                after - before
            );
            assert_eq!(
                after, before,
                "{name}, deadline {timeout:?}: woke up while idle"
            );
            let waits = thread.join().unwrap();
            assert_eq!(
                waits, 1,
                "{name}, deadline {timeout:?}: waited {waits} times"
            );
        }
    }

    /// The generic backend's `wake_one` wakes exactly one of the sleepers on a
    /// word, the oldest, and none of the sleepers on another word of the same
    /// bucket: those stay queued and asleep without a context switch. `wake_all`
    /// wakes every sleeper of its word and none of the other word's.
    #[cfg(target_os = "linux")]
    #[test]
    fn generic_wake_one_wakes_one_sleeper_of_that_word_only() {
        let words: Arc<Vec<AtomicU32>> = Arc::new((0..65).map(|_| AtomicU32::new(0)).collect());
        let (a, b) = generic::same_bucket_pair(&words);
        let (tx, rx) = mpsc::channel();
        let mut tids = Vec::new();
        for (index, word) in [(0, a), (1, a), (2, a), (3, b), (4, b)] {
            let (sleeper_words, tx) = (Arc::clone(&words), tx.clone());
            let (tid_tx, tid_rx) = mpsc::channel();
            std::thread::spawn(move || {
                tid_tx.send(signals::gettid()).unwrap();
                let woke = generic::wait(&sleeper_words[word], 0, Some(now() + WATCHDOG));
                tx.send((index, woke)).unwrap();
            });
            let tid = tid_rx.recv_timeout(WATCHDOG).unwrap();
            // Queued in arrival order: each is queued and asleep before the next starts.
            let start = std::time::Instant::now();
            while generic::queued(&words[word]) < if word == a { index + 1 } else { index - 2 } {
                assert!(start.elapsed() < WATCHDOG, "sleeper {index} never queued");
                std::thread::yield_now();
            }
            wait_until_in_futex(tid);
            wait_until_asleep(tid);
            tids.push(tid);
        }
        let before: Vec<u64> = tids.iter().map(|&tid| voluntary_switches(tid)).collect();
        generic::wake_one(&words[a]);
        assert_eq!(
            rx.recv_timeout(WATCHDOG),
            Ok((0, Wake::Woken)),
            "the oldest woke"
        );
        assert_eq!(generic::queued(&words[a]), 2);
        assert_eq!(generic::queued(&words[b]), 2);
        // A wrongly woken sleeper would return or switch within this window.
        assert_eq!(rx.recv_timeout(Duration::from_millis(200)).ok(), None);
        for (i, &tid) in tids.iter().enumerate().skip(1) {
            assert_eq!(voluntary_switches(tid), before[i], "sleeper {i} woke up");
        }
        // The next A sleeper, in order; then `wake_all(B)` wakes both B sleepers
        // and leaves the last A sleeper queued; then that one.
        generic::wake_one(&words[a]);
        assert_eq!(rx.recv_timeout(WATCHDOG), Ok((1, Wake::Woken)));
        generic::wake_all(&words[b]);
        let mut woken: Vec<(usize, Wake)> = (0..2)
            .map(|_| rx.recv_timeout(WATCHDOG).expect("a B sleeper woke"))
            .collect();
        woken.sort_by_key(|(index, _)| *index);
        assert_eq!(woken, [(3, Wake::Woken), (4, Wake::Woken)]);
        assert_eq!(generic::queued(&words[a]), 1);
        assert_eq!(generic::queued(&words[b]), 0);
        generic::wake_all(&words[a]);
        assert_eq!(rx.recv_timeout(WATCHDOG), Ok((2, Wake::Woken)));
        assert_eq!(generic::queued(&words[a]), 0);
    }

    /// No lost wake-ups under stress, on either backend: a three-state mutex
    /// (0 free, 1 held, 2 held with sleepers: Drepper's "Futexes are tricky")
    /// built on `wait`/`wake_one`, over four words of which two share a bucket,
    /// taken by 4 threads (one of them with short deadlines, giving up on
    /// `TimedOut`), must finish every acquisition and exclude every other holder.
    /// A lost wake-up leaves a sleeper on a free lock: the watchdog fails the test.
    #[test]
    fn no_lost_wake_ups_under_stress() {
        /// Whether it acquired; counts the waits in `waits`.
        fn acquire(
            word: &AtomicU32,
            wait: WaitFn,
            timeout: Option<Duration>,
            waits: &mut usize,
        ) -> bool {
            let deadline = timeout.map(|t| now() + t);
            if word
                .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return true;
            }
            loop {
                if word.swap(2, Ordering::Acquire) == 0 {
                    return true;
                }
                *waits += 1;
                if wait(word, 2, deadline) == Wake::TimedOut {
                    return false;
                }
            }
        }
        fn release(word: &AtomicU32, wake_one: WakeFn) {
            if word.swap(0, Ordering::Release) == 2 {
                wake_one(word);
            }
        }
        const ROUNDS: usize = 10_000;
        for (name, wait, wake_one, _) in backends() {
            let words: Arc<Vec<AtomicU32>> = Arc::new((0..65).map(|_| AtomicU32::new(0)).collect());
            let (a, b) = generic::same_bucket_pair(&words);
            // Two words of one bucket and two others.
            let mut others = (0..65).filter(|i| *i != a && *i != b);
            let locks = [a, b, others.next().unwrap(), others.next().unwrap()];
            let inside: Arc<Vec<AtomicU32>> =
                Arc::new((0..65).map(|_| AtomicU32::new(0)).collect());
            let (tx, rx) = mpsc::channel();
            let start = Arc::new(std::sync::Barrier::new(4));
            for thread in 0..4usize {
                let (words, inside, tx) = (Arc::clone(&words), Arc::clone(&inside), tx.clone());
                let start = Arc::clone(&start);
                std::thread::spawn(move || {
                    let timeout = (thread == 3).then(|| Duration::from_micros(50));
                    let (mut got, mut gave_up, mut waits) = (0, 0, 0);
                    start.wait();
                    for round in 0..ROUNDS {
                        let index = locks[(round / 16) % locks.len()];
                        let word = &words[index];
                        if !acquire(word, wait, timeout, &mut waits) {
                            gave_up += 1;
                            continue;
                        }
                        assert_eq!(
                            inside[index].fetch_add(1, Ordering::SeqCst),
                            0,
                            "{name}: two holders"
                        );
                        if round % 4 == 0 {
                            std::thread::yield_now(); // a holder preempted: others sleep
                        }
                        inside[index].fetch_sub(1, Ordering::SeqCst);
                        release(word, wake_one);
                        got += 1;
                    }
                    tx.send((got, gave_up, waits)).unwrap();
                });
            }
            drop(tx);
            let (mut total, mut waits) = (0, 0);
            for _ in 0..4 {
                let (got, gave_up, waited) = rx
                    .recv_timeout(WATCHDOG)
                    .unwrap_or_else(|_| panic!("{name}: a thread never finished (lost wake-up?)"));
                total += got + gave_up;
                waits += waited;
            }
            eprintln!("{name}: {waits} waits");
            assert_eq!(total, 4 * ROUNDS, "{name}");
            assert!(
                waits >= 100,
                "{name}: only {waits} waits: no contention to test"
            );
            assert!(
                locks.iter().all(|&i| words[i].load(Ordering::SeqCst) == 0),
                "{name}"
            );
        }
    }

    /// The signal plumbing for the tests above (test-only `unsafe`: the shipped
    /// crate forbids it).
    #[cfg(target_os = "linux")]
    #[allow(unsafe_code)]
    mod signals {
        use std::sync::atomic::{AtomicUsize, Ordering};

        pub(super) const SYS_FUTEX: libc::c_long = libc::SYS_futex;

        static HANDLED: AtomicUsize = AtomicUsize::new(0);

        extern "C" fn on_signal(_: libc::c_int) {
            HANDLED.fetch_add(1, Ordering::SeqCst);
        }

        /// Serializes the tests that send signals: they share [`handled`]'s counter,
        /// and a run of another test's handler must not pass for theirs.
        pub(super) fn serial() -> std::sync::MutexGuard<'static, ()> {
            static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
            SERIAL.lock().unwrap_or_else(|p| p.into_inner())
        }

        pub(super) fn handled() -> usize {
            HANDLED.load(Ordering::SeqCst)
        }

        /// Installs the counting handler for `signal`, with or without `SA_RESTART`.
        pub(super) fn install(signal: libc::c_int, restart: bool) {
            // SAFETY: a zeroed sigaction is valid; the handler only touches an atomic.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
                action.sa_flags = if restart { libc::SA_RESTART } else { 0 };
                libc::sigemptyset(&mut action.sa_mask);
                assert_eq!(libc::sigaction(signal, &action, std::ptr::null_mut()), 0);
            }
        }

        pub(super) fn pthread_self() -> libc::pthread_t {
            // SAFETY: always safe to call.
            unsafe { libc::pthread_self() }
        }

        pub(super) fn gettid() -> i32 {
            // SAFETY: always safe to call.
            unsafe { libc::gettid() }
        }

        pub(super) fn kill(thread: libc::pthread_t, signal: libc::c_int) {
            // SAFETY: the thread is alive (it is blocked in the test's wait).
            assert_eq!(unsafe { libc::pthread_kill(thread, signal) }, 0);
        }
    }
}

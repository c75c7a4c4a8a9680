//! Helpers for the lock tests (`tests/lock.rs`, `tests/lock_signals.rs`,
//! `tests/lock_model.rs`): watchdog-bounded waits that FAIL with a message, and
//! "is this thread asleep in the kernel" for the tests that must know a thread
//! is really blocked (never a sleep as synchronization).
#![allow(dead_code)] // each test crate uses a different subset

use std::sync::mpsc;
use std::time::Instant;

#[path = "mod.rs"]
mod common;

/// The most any single wait in the lock tests may take before the test fails: the
/// one shared bound of `tests/support/mod.rs`.
pub use common::WATCHDOG;

/// Runs `f` on a new thread and returns its result, failing the test with `what`
/// if it has not finished within [`WATCHDOG`] (a hang becomes a failure; the
/// stuck thread is leaked).
pub fn bounded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(WATCHDOG) {
        Ok(Ok(value)) => value,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("watchdog: {what} did not finish within {WATCHDOG:?}"),
    }
}

/// Polls `condition` until it holds, failing with `what` after [`WATCHDOG`].
pub fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < WATCHDOG,
            "watchdog: {what} not reached within {WATCHDOG:?}"
        );
        std::thread::yield_now();
    }
}

/// The kernel id of the calling thread (for [`wait_until_blocked`]).
#[cfg(target_os = "linux")]
pub fn gettid() -> i32 {
    // SAFETY: always safe to call.
    unsafe { libc::gettid() }
}

/// Waits until thread `tid` of this process is asleep in the `futex` system call
/// (the lock's wait), failing after [`WATCHDOG`].
#[cfg(target_os = "linux")]
pub fn wait_until_blocked(tid: i32) {
    let path = format!("/proc/self/task/{tid}/syscall");
    let futex = libc::SYS_futex.to_string();
    wait_for(&format!("thread {tid} blocked in futex"), || {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        text.split_whitespace().next() == Some(futex.as_str())
    });
}

/// A thread that reports its kernel id, for [`wait_until_blocked`].
pub struct Tid(std::sync::Arc<std::sync::atomic::AtomicI64>);

impl Tid {
    pub fn new() -> Tid {
        Tid(std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0)))
    }

    pub fn clone_handle(&self) -> Tid {
        Tid(std::sync::Arc::clone(&self.0))
    }

    /// Called by the thread itself.
    pub fn record(&self) {
        #[cfg(target_os = "linux")]
        self.0
            .store(i64::from(gettid()), std::sync::atomic::Ordering::SeqCst);
        #[cfg(not(target_os = "linux"))]
        self.0.store(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Waits until the thread has recorded itself and (Linux) is asleep in the
    /// kernel. Elsewhere there is no way to see that: it returns once recorded
    /// and the tests' assertions only get weaker, never wrong.
    pub fn wait_blocked(&self) {
        wait_for("thread recorded its id", || {
            self.0.load(std::sync::atomic::Ordering::SeqCst) != 0
        });
        #[cfg(target_os = "linux")]
        wait_until_blocked(self.0.load(std::sync::atomic::Ordering::SeqCst) as i32);
    }

    /// Waits until the kernel reports the thread asleep (state `S`) three polls
    /// in a row (Linux): past the point where its sleep is counted, so that
    /// [`Tid::voluntary_switches`] read now does not race its going to sleep.
    #[cfg(target_os = "linux")]
    pub fn wait_asleep(&self) {
        let tid = self.0.load(std::sync::atomic::Ordering::SeqCst);
        let mut in_a_row = 0;
        wait_for(&format!("thread {tid} asleep"), || {
            let stat =
                std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
            let asleep = stat
                .rfind(')')
                .and_then(|end| stat[end + 1..].split_whitespace().next())
                == Some("S");
            in_a_row = if asleep { in_a_row + 1 } else { 0 };
            in_a_row >= 3
        });
    }

    /// The kernel's count of the times the thread went to sleep
    /// (`voluntary_ctxt_switches`; Linux), once it has recorded itself.
    #[cfg(target_os = "linux")]
    pub fn voluntary_switches(&self) -> u64 {
        let tid = self.0.load(std::sync::atomic::Ordering::SeqCst);
        let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|n| n.trim().parse().ok())
            .expect("voluntary_ctxt_switches in /proc status")
    }
}

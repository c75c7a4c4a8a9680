//! The lock cases of the real-signal tests: the signal is sent with
//! `pthread_kill` to the thread blocked on the lock, seen asleep in the `futex`
//! system call first (never a sleep as synchronization). CPython's
//! `test_threadsignals` cases, in Rust. Every wait is watchdog-bounded. Included by
//! `tests/lock_signals.rs` (handler without `SA_RESTART`) and
//! `tests/lock_signals_restart.rs` (with it).
//!
//! Under `--cfg pythread_generic` the wait is CPython's "mutex+cond", which no
//! signal interrupts: the cases that expect `Intr` are ignored there (with that
//! reason), and the others check that no interruption was reported.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::lock_support::{Tid, WATCHDOG, bounded, wait_for};
use crate::signals::{HANDLED, INTERRUPTIBLE, setup};
use pythread::{Lock, LockStatus, RLock};

/// A thread about to block: its pthread id (for `pthread_kill`) and kernel id.
#[derive(Clone, Copy)]
struct Target(libc::pthread_t);

// pthread_t is an integer on Linux.
unsafe impl Send for Target {}

fn me() -> Target {
    // SAFETY: always safe to call.
    Target(unsafe { libc::pthread_self() })
}

/// Sends SIGUSR1 to `target` and waits until its handler has run.
fn signal(target: Target) {
    let before = HANDLED.load(Ordering::SeqCst);
    // SAFETY: the target thread is alive (blocked in the test's acquire).
    assert_eq!(unsafe { libc::pthread_kill(target.0, libc::SIGUSR1) }, 0);
    wait_for("the SIGUSR1 handler ran", || {
        HANDLED.load(Ordering::SeqCst) > before
    });
}

/// Starts `f` on a thread that records its ids first; returns once that thread is
/// asleep in the kernel.
fn blocked<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> (Target, Tid, std::thread::JoinHandle<T>) {
    let tid = Tid::new();
    let reporter = tid.clone_handle();
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        tx.send(me()).unwrap();
        reporter.record();
        f()
    });
    let target = rx.recv_timeout(WATCHDOG).expect("thread started");
    tid.wait_blocked();
    (target, tid, thread)
}

fn join<T: Send + 'static>(what: &str, thread: std::thread::JoinHandle<T>) -> T {
    bounded(what, move || thread.join().unwrap())
}

#[test]
#[cfg_attr(
    pythread_generic,
    ignore = "the generic backend (CPython's mutex+cond) never reports Intr"
)]
fn intr_true_ends_the_wait_with_intr() {
    let _serial = setup();
    let lock = Arc::new(Lock::new());
    lock.acquire();
    for us in [-1, 60_000_000] {
        let other = Arc::clone(&lock);
        let (target, _, thread) = blocked(move || {
            let status = other.acquire_timed(us, true);
            (status, Instant::now())
        });
        let sent = Instant::now();
        signal(target);
        let (status, returned) = join("interrupted acquire", thread);
        assert_eq!(status, LockStatus::Intr, "microseconds {us}");
        let latency = returned.saturating_duration_since(sent);
        eprintln!("signal-to-Intr latency ({us} us): {latency:?}");
        assert!(latency < Duration::from_secs(5), "{latency:?}");
        assert!(lock.locked(), "Intr must not take the lock");
    }
    // An RLock waits on the same primitive.
    let rlock = Arc::new(RLock::new());
    rlock.acquire();
    let other = Arc::clone(&rlock);
    let (target, _, thread) = blocked(move || other.acquire_timed(-1, true));
    signal(target);
    assert_eq!(join("interrupted rlock acquire", thread), LockStatus::Intr);
    assert_eq!(rlock.recursion_count(), 1);
}

#[test]
fn intr_false_goes_on_and_acquires_after_release() {
    let _serial = setup();
    let lock = Arc::new(Lock::new());
    lock.acquire();
    let other = Arc::clone(&lock);
    let (target, tid, thread) = blocked(move || other.acquire_timed(-1, false));
    for _ in 0..3 {
        signal(target);
        tid.wait_blocked(); // back asleep: the wait went on
    }
    assert!(!thread.is_finished());
    lock.release().unwrap();
    assert_eq!(join("acquire after release", thread), LockStatus::Acquired);
    assert!(lock.locked());

    // The plain forms are never interrupted either.
    let other = Arc::clone(&lock);
    let (target, tid, thread) = blocked(move || {
        other.acquire();
        other.acquire_timeout(Duration::from_secs(60))
    });
    signal(target);
    tid.wait_blocked();
    lock.release().unwrap();
    tid.wait_blocked(); // in the second, timed acquire now
    signal(target);
    tid.wait_blocked();
    lock.release().unwrap();
    assert!(join("timed acquire after release", thread));
}

#[test]
#[cfg_attr(
    pythread_generic,
    ignore = "the generic backend (CPython's mutex+cond) never reports Intr"
)]
fn retries_call_pending_calls_once_per_signal_and_return_their_error() {
    let _serial = setup();
    let lock = Arc::new(Lock::new());
    lock.acquire();
    // Untimed and timed: with SA_RESTART the untimed one is the case the kernel
    // would restart if the wait had no timeout.
    for timeout in [None, Some(Duration::from_secs(60))] {
        let calls = Arc::new(AtomicUsize::new(0));
        let (other, counter) = (Arc::clone(&lock), Arc::clone(&calls));
        let (target, tid, thread) = blocked(move || {
            other.acquire_with_retries(timeout, || {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                if n < 3 {
                    Ok(())
                } else {
                    Err(format!("KeyboardInterrupt after {n}"))
                }
            })
        });
        for n in 1..=2 {
            signal(target);
            wait_for("pending_calls ran", || calls.load(Ordering::SeqCst) == n);
            tid.wait_blocked();
            assert_eq!(calls.load(Ordering::SeqCst), n, "once per signal");
        }
        signal(target);
        let result = join("retries ending with the error", thread);
        assert_eq!(
            result,
            Err("KeyboardInterrupt after 3".to_owned()),
            "timeout {timeout:?}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert!(lock.locked());
    }

    // Ok from pending_calls resumes; the release then lets it through (RLock).
    let rlock = Arc::new(RLock::new());
    rlock.acquire();
    let calls = Arc::new(AtomicUsize::new(0));
    let (other, counter) = (Arc::clone(&rlock), Arc::clone(&calls));
    let (target, tid, thread) = blocked(move || {
        let got = other.acquire_with_retries(None, || {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok::<(), ()>(())
        });
        let count = other.recursion_count();
        other.release().unwrap();
        (got, count)
    });
    signal(target);
    wait_for("pending_calls ran", || calls.load(Ordering::SeqCst) == 1);
    tid.wait_blocked();
    rlock.release().unwrap();
    assert_eq!(join("rlock retries acquiring", thread), (Ok(true), 1));
}

/// CPython `test_interrupted_timed_acquire`: 40 signals every 20 ms during a
/// 500 ms timed acquire: it still times out, after 500 ms and not much later.
#[test]
fn forty_signals_do_not_shorten_or_stretch_a_timeout() {
    let _serial = setup();
    let lock = Arc::new(Lock::new());
    lock.acquire();
    let calls = Arc::new(AtomicUsize::new(0));
    for form in 0..3 {
        let (other, counter) = (Arc::clone(&lock), Arc::clone(&calls));
        let (target, _, thread) = blocked(move || {
            let start = Instant::now();
            let got = match form {
                0 => other.acquire_timeout(Duration::from_millis(500)),
                1 => other.acquire_timed(500_000, false) == LockStatus::Acquired,
                _ => other
                    .acquire_with_retries(Some(Duration::from_millis(500)), || {
                        counter.fetch_add(1, Ordering::SeqCst);
                        Ok::<(), ()>(())
                    })
                    .unwrap(),
            };
            (got, start.elapsed())
        });
        let mut sent = 0;
        for _ in 0..40 {
            if thread.is_finished() {
                break;
            }
            // SAFETY: the thread is alive until it is joined below (a signal to
            // a thread that just returned from the acquire is still handled).
            unsafe { libc::pthread_kill(target.0, libc::SIGUSR1) };
            sent += 1;
            std::thread::sleep(Duration::from_millis(20)); // pacing, not synchronization
        }
        let (got, elapsed) = join("timed acquire under signals", thread);
        assert!(!got, "form {form}: acquired a held lock");
        assert!(
            elapsed >= Duration::from_millis(500),
            "form {form}: early: {elapsed:?}"
        );
        assert!(
            elapsed < Duration::from_secs(3),
            "form {form}: late: {elapsed:?}"
        );
        assert!(sent >= 10, "form {form}: only {sent} signals were sent");
        eprintln!("form {form}: {sent} signals, timed out after {elapsed:?}");
    }
    if INTERRUPTIBLE {
        assert!(calls.load(Ordering::SeqCst) >= 1, "pending_calls never ran");
    } else {
        assert_eq!(calls.load(Ordering::SeqCst), 0, "mutex+cond reported Intr");
    }
}

/// No polling: threads blocked with no deadline in `acquire_timed(-1, true)`,
/// `acquire_with_retries(None, ..)` and `join_with_retries(None, ..)` (each wait a
/// finite kernel timeout of 68 years under the futex backend, so that a handler
/// with `SA_RESTART` still ends it) sleep through 2 s without one wake-up,
/// counted by the kernel (`voluntary_ctxt_switches`). The 2 s are the span
/// measured, not a synchronization: the threads are seen asleep in `futex` first.
#[test]
fn idle_untimed_waiters_make_no_wake_ups() {
    let _serial = setup();
    let lock = Arc::new(Lock::new());
    lock.acquire();
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let handle = pythread::start(move || {
        let _ = gate.recv_timeout(WATCHDOG);
    });
    let (l1, l2, h) = (Arc::clone(&lock), Arc::clone(&lock), handle.clone());
    let waiters = [
        blocked(move || {
            assert_eq!(l1.acquire_timed(-1, true), LockStatus::Acquired);
            l1.release().unwrap();
        }),
        blocked(move || {
            assert_eq!(l2.acquire_with_retries(None, || Ok::<(), ()>(())), Ok(true));
            l2.release().unwrap();
        }),
        blocked(move || {
            assert!(h.join_with_retries(None, || Ok::<(), ()>(())).is_ok());
        }),
    ];
    for waiter in &waiters {
        waiter.1.wait_asleep();
    }
    let before: Vec<u64> = waiters.iter().map(|w| w.1.voluntary_switches()).collect();
    std::thread::sleep(Duration::from_secs(2)); // the span measured
    let after: Vec<u64> = waiters.iter().map(|w| w.1.voluntary_switches()).collect();
    eprintln!("wake-ups in 2 s (lock, lock retries, join retries): {before:?} -> {after:?}");
    assert_eq!(after, before, "an idle untimed waiter woke up");
    lock.release().unwrap();
    drop(release);
    for (_, _, thread) in waiters {
        join("a waiter", thread);
    }
}

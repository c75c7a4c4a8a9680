//! The join cases of the real-signal tests: the signal is sent with
//! `pthread_kill` to the joining thread once the kernel reports it asleep (never a
//! sleep as synchronization). `join_with_retries` must call `pending_calls` on
//! each interruption, end with its `Err`, and hold a timeout against one deadline;
//! plain `join` and `join_timeout` must sleep on through signals. Included by
//! `tests/join_signals.rs` (handler without `SA_RESTART`) and
//! `tests/join_signals_restart.rs` (with it).
//!
//! Every blocking wait is bounded by a watchdog that fails with a message. Under
//! `--cfg pythread_generic` (CPython's "mutex+cond", as off Linux) joins are never
//! interrupted: the cases that expect an interruption are ignored there (with that
//! reason), and the others check that none was reported.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::{Duration, Instant};

use crate::signals::{HANDLED, INTERRUPTIBLE, setup};

const WATCHDOG: Duration = Duration::from_secs(20);

#[track_caller]
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WATCHDOG;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "watchdog: {what}: not within {WATCHDOG:?}"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

#[track_caller]
fn recv<T>(rx: &Receiver<T>, what: &str) -> T {
    rx.recv_timeout(WATCHDOG)
        .unwrap_or_else(|e| panic!("watchdog: {what}: {e:?}"))
}

/// A joining thread: its pthread id (for `pthread_kill`) and kernel id (to see it
/// asleep in `/proc`).
#[derive(Clone, Copy)]
struct Joiner {
    pthread: libc::pthread_t,
    tid: u32,
}

impl Joiner {
    /// Called on the joining thread right before it joins.
    fn me() -> Joiner {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        Joiner {
            // SAFETY: always safe to call.
            pthread: unsafe { libc::pthread_self() },
            tid: stat.split_whitespace().next().unwrap().parse().unwrap(),
        }
    }

    fn asleep(&self) -> bool {
        std::fs::read_to_string(format!("/proc/self/task/{}/stat", self.tid)).is_ok_and(|stat| {
            stat.rfind(')')
                .and_then(|end| stat[end + 1..].split_whitespace().next())
                == Some("S")
        })
    }

    /// Waits until the kernel reports the thread asleep three polls in a row.
    fn wait_asleep(&self) {
        let mut in_a_row = 0;
        wait_until("the joiner asleep", || {
            in_a_row = if self.asleep() { in_a_row + 1 } else { 0 };
            in_a_row >= 3
        });
    }

    /// Sends SIGUSR1 and waits until the handler has run.
    fn signal(&self) {
        let before = HANDLED.load(Ordering::SeqCst);
        // SAFETY: the thread is alive (it is blocked in the test's join).
        assert_eq!(
            unsafe { libc::pthread_kill(self.pthread, libc::SIGUSR1) },
            0
        );
        wait_until("the SIGUSR1 handler ran", || {
            HANDLED.load(Ordering::SeqCst) > before
        });
    }
}

/// A thread held on a gate until the returned sender sends (or is dropped).
fn held() -> (Sender<()>, pythread::Handle<u32>) {
    let (release, gate) = mpsc::channel::<()>();
    let handle = pythread::start(move || {
        let _ = gate.recv_timeout(WATCHDOG);
        9
    });
    (release, handle)
}

/// Each interruption of an untimed `join_with_retries` runs `pending_calls` once;
/// `Ok(())` resumes the wait, the first `Err` ends the join with it.
#[test]
#[cfg_attr(
    pythread_generic,
    ignore = "the generic backend (CPython's mutex+cond) never reports Intr"
)]
fn each_interruption_runs_pending_calls_until_one_fails() {
    let _serial = setup();
    // Untimed and timed: with SA_RESTART the untimed one is the case the kernel
    // would restart if the wait had no timeout.
    for timeout in [None, Some(Duration::from_secs(60))] {
        let (release, handle) = held();
        let calls = Arc::new(AtomicUsize::new(0));
        let (who_tx, who_rx) = mpsc::channel();
        let joiner = {
            let (handle, calls) = (handle.clone(), Arc::clone(&calls));
            thread::spawn(move || {
                who_tx.send(Joiner::me()).unwrap();
                handle
                    .join_with_retries(timeout, || {
                        if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                            Ok(())
                        } else {
                            Err("KeyboardInterrupt")
                        }
                    })
                    .map(|outcome| outcome.map(|outcome| outcome.ok()))
            })
        };
        let who = recv(&who_rx, "the joiner's ids");
        for round in 1..=2 {
            who.wait_asleep();
            who.signal();
            wait_until("pending_calls ran", || {
                calls.load(Ordering::SeqCst) == round
            });
        }
        who.wait_asleep(); // resumed after two Ok(())s
        assert!(!joiner.is_finished());
        who.signal();
        wait_until("the joiner returned", || joiner.is_finished());
        assert_eq!(
            joiner.join().unwrap(),
            Err("KeyboardInterrupt"),
            "timeout {timeout:?}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        drop(release);
        assert_eq!(
            handle.join_timeout(WATCHDOG).expect("watchdog").ok(),
            Some(9)
        );
    }
}

/// Signals every 20 ms during a 500 ms `join_with_retries`: it times out no
/// earlier than 500 ms after the call and before 3 s (one deadline, not restarted
/// per interruption, while the signals go on for up to 4 s), with `pending_calls` run once per handled
/// interruption at most. CPython's `test_interrupted_timed_acquire`, for a join.
#[test]
fn signals_neither_shorten_nor_stretch_a_timed_join() {
    let _serial = setup();
    let (release, handle) = held();
    let calls = Arc::new(AtomicUsize::new(0));
    let (who_tx, who_rx) = mpsc::channel();
    let timeout = Duration::from_millis(500);
    let joiner = {
        let (handle, calls) = (handle.clone(), Arc::clone(&calls));
        thread::spawn(move || {
            who_tx.send(Joiner::me()).unwrap();
            let began = Instant::now();
            let outcome = handle.join_with_retries(Some(timeout), || {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok::<(), ()>(())
            });
            (outcome.map(|outcome| outcome.is_none()), began.elapsed())
        })
    };
    let who = recv(&who_rx, "the joiner's ids");
    who.wait_asleep();
    let before = HANDLED.load(Ordering::SeqCst);
    let mut sent = 0;
    // For up to 4 s: a join that restarted its timeout on every interruption would
    // still be waiting when they stop, and return 4.5 s after its call.
    while !joiner.is_finished() && sent < 200 {
        who.signal();
        sent += 1;
        thread::sleep(Duration::from_millis(20)); // pacing of the signals, not sync
    }
    wait_until("the timed join returned", || joiner.is_finished());
    let (timed_out, elapsed) = joiner.join().unwrap();
    let handled = HANDLED.load(Ordering::SeqCst) - before;
    let calls = calls.load(Ordering::SeqCst);
    eprintln!("timed join: {elapsed:?}, {handled} signals handled, {calls} pending_calls");
    assert_eq!(timed_out, Ok(true), "must time out: f is held");
    assert!(
        elapsed >= timeout,
        "returned after {elapsed:?}, before {timeout:?}"
    );
    assert!(
        elapsed < Duration::from_secs(3),
        "{elapsed:?}: the deadline was stretched"
    );
    if INTERRUPTIBLE {
        assert!(calls >= 1, "no interruption reached pending_calls");
    } else {
        assert_eq!(calls, 0, "mutex+cond reported an interruption");
    }
    assert!(calls <= handled, "{calls} calls for {handled} signals");
    drop(release);
    assert_eq!(
        handle.join_timeout(WATCHDOG).expect("watchdog").ok(),
        Some(9)
    );
}

/// Plain `join` and `join_timeout` sleep on through signals.
#[test]
fn plain_joins_are_not_interrupted() {
    let _serial = setup();
    let (release, handle) = held();
    let (who_tx, who_rx) = mpsc::channel();
    let joiner = {
        let handle = handle.clone();
        thread::spawn(move || {
            who_tx.send(Joiner::me()).unwrap();
            let timed = handle.join_timeout(Duration::from_secs(60)).map(|o| o.ok());
            (handle.join().ok(), timed)
        })
    };
    let who = recv(&who_rx, "the joiner's ids");
    for _ in 0..3 {
        who.wait_asleep();
        who.signal();
    }
    who.wait_asleep(); // still asleep: the wait went on
    assert!(!joiner.is_finished(), "a signal ended a plain join_timeout");
    release.send(()).unwrap();
    wait_until("the joiner returned", || joiner.is_finished());
    assert_eq!(joiner.join().unwrap(), (Some(9), Some(Some(9))));
}

/// `shutdown_with_retries` (issue 18): each interruption of its wait for a
/// non-daemon thread runs `pending_calls` once; `Ok(())` resumes the wait, the
/// first `Err` ends it with that error and leaves the thread registered, so a
/// later `shutdown` still waits for it. CPython 3.13's `_thread._shutdown()`.
#[test]
#[cfg_attr(
    pythread_generic,
    ignore = "the generic backend (CPython's mutex+cond) never reports Intr"
)]
fn shutdown_with_retries_runs_pending_calls_until_one_fails() {
    let _serial = setup();
    let (release, gate) = mpsc::channel::<()>();
    let worker = pythread::Builder::new().daemon(false).start(move || {
        let _ = gate.recv_timeout(WATCHDOG);
        9
    });
    let calls = Arc::new(AtomicUsize::new(0));
    let (who_tx, who_rx) = mpsc::channel();
    let shutter = {
        let calls = Arc::clone(&calls);
        thread::spawn(move || {
            who_tx.send(Joiner::me()).unwrap();
            pythread::shutdown_with_retries(|| {
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    Ok(())
                } else {
                    Err("KeyboardInterrupt")
                }
            })
        })
    };
    let who = recv(&who_rx, "the shutting thread's ids");
    for round in 1..=2 {
        who.wait_asleep();
        who.signal();
        wait_until("pending_calls ran", || {
            calls.load(Ordering::SeqCst) == round
        });
    }
    who.wait_asleep(); // resumed after two Ok(())s
    assert!(!shutter.is_finished());
    who.signal();
    wait_until("shutdown_with_retries returned", || shutter.is_finished());
    assert_eq!(shutter.join().unwrap(), Err("KeyboardInterrupt"));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(
        !worker.is_finished(),
        "the interrupted shutdown did not wait it out"
    );
    // Still registered: a plain shutdown waits for it.
    drop(release);
    let shutter = thread::spawn(pythread::shutdown);
    wait_until("shutdown returned", || shutter.is_finished());
    shutter.join().unwrap();
    assert!(worker.is_finished());
    assert_eq!(worker.join().unwrap(), 9);
}

//! The registry behind `count` and `shutdown` (issue 11), through the facade.
//!
//! What the models prove:
//!
//! - [`shutdown_waits_for_a_non_daemon_thread_started_meanwhile`]: a non-daemon
//!   thread `A` starts a non-daemon thread `B` while the main thread runs
//!   `shutdown`; in every interleaving `shutdown` returns only after `B`'s
//!   function has ended, and everything `B` did happens-before that return (its
//!   write through a loom `UnsafeCell` is read without a data race).
//! - [`count_has_fallen_when_join_returns`]: `count` rises while the function runs
//!   and, in every interleaving, has fallen when a `join` of the thread returns.
#![cfg(loom)]

mod common;

use common::{check, RaceCell};
use loom::sync::Arc;
use pythread::Builder;

/// A (non-daemon) starts B (non-daemon) and ends; `shutdown` on the main thread must
/// wait for both. Bounded to 3 preemptions (1 003 executions): exhaustive is 133 826
/// executions (14 s under load) and catches nothing more of the recorded mutations.
#[test]
fn shutdown_waits_for_a_non_daemon_thread_started_meanwhile() {
    check(
        "shutdown_waits_for_a_non_daemon_thread_started_meanwhile",
        Some(3),
        || {
            let cell = RaceCell::new(0);
            let a = Builder::new().daemon(false).start({
                let cell = Arc::clone(&cell);
                move || {
                    drop(Builder::new().daemon(false).start(move || cell.write(1)));
                }
            });
            drop(a); // detached: only the registry knows either thread
            pythread::shutdown();
            assert_eq!(cell.read(), 1, "shutdown returned before B's fn ended");
        },
    );
}

/// The count includes a running function and, once `join` returns, no longer does.
#[test]
fn count_has_fallen_when_join_returns() {
    check("count_has_fallen_when_join_returns", None, || {
        let (gate_tx, gate_rx) = loom::sync::mpsc::channel::<()>();
        let (ran_tx, ran_rx) = loom::sync::mpsc::channel::<()>();
        let handle = pythread::start(move || {
            ran_tx.send(()).unwrap();
            gate_rx.recv().unwrap();
        });
        ran_rx.recv().unwrap();
        assert_eq!(pythread::count(), 1, "a running fn is counted");
        gate_tx.send(()).unwrap();
        handle.join().unwrap();
        assert_eq!(pythread::count(), 0, "join returned before the count fell");
    });
}

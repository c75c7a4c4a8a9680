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
//! - [`interrupted_shutdown_returns_the_error_and_a_later_one_waits`] (issue 18):
//!   `shutdown_with_retries` interrupted while it waits for a non-daemon thread
//!   (a model interrupt: a signal handler without `SA_RESTART`) returns the
//!   `Err` of its pending calls; the thread stays registered, and a later
//!   `shutdown` returns only after its function has ended.
#![cfg(loom)]

mod common;

use common::{Mailbox, RaceCell, check};
use loom::sync::Arc;
use pythread::__loom::{interrupt, wait_for_sleepers};
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

/// `shutdown_with_retries` on a helper thread, interrupted while asleep in its
/// wait for a gated non-daemon thread: it returns its pending calls' `Err` without
/// waiting further; then the thread is released, and `shutdown` on the main thread
/// waits for it (its write is read without a data race). Bounded to 2 preemptions.
#[test]
fn interrupted_shutdown_returns_the_error_and_a_later_one_waits() {
    check(
        "interrupted_shutdown_returns_the_error_and_a_later_one_waits",
        Some(2),
        || {
            let gate = Mailbox::new();
            let cell = RaceCell::new(0);
            drop(Builder::new().daemon(false).start({
                let (gate, cell) = (Arc::clone(&gate), Arc::clone(&cell));
                move || {
                    gate.take();
                    cell.write(1);
                }
            }));
            let shutter = loom::thread::spawn(|| {
                pythread::shutdown_with_retries(|| Err("KeyboardInterrupt"))
            });
            wait_for_sleepers(1);
            interrupt(shutter.thread().id());
            assert_eq!(shutter.join().unwrap(), Err("KeyboardInterrupt"));
            gate.put(());
            pythread::shutdown();
            assert_eq!(cell.read(), 1, "shutdown returned before the fn ended");
        },
    );
}

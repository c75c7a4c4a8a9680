//! The interruptible join and the give-up branch of a timed join, on the wait
//! primitive's loom model: a model clock that only the test moves
//! (`pythread::__loom::advance_clock`) and model interrupts sent to one thread
//! (`pythread::__loom::interrupt`, what a signal handler without `SA_RESTART` does
//! to a futex wait on Linux).
//!
//! - A timed join that gives up at its deadline, racing `f`'s finish, leaves the
//!   untimed joiner that sleeps beside it wakeable (the `WAITING` bit must outlive
//!   the joiner that gave up); across the executions both answers of the timed
//!   join occur (it did give up in some, saw the outcome in others).
//! - `join_with_retries` interrupted while asleep calls `pending_calls` once and
//!   goes back to sleep against the SAME deadline: when the clock reaches the
//!   deadline fixed at the call, it returns `Ok(None)`.
//! - An `Err` from `pending_calls` ends the join with that error.
#![cfg(loom)]

mod common;

use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering as StdOrdering};
use std::time::Duration;

use common::{Mailbox, check};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use pythread::__loom::{advance_clock, interrupt, wait_for_sleepers};

const SECOND: Duration = Duration::from_secs(1);
const HALF: Duration = Duration::from_millis(500);

/// `f` is released by a helper thread right after it moves the clock past the
/// timed joiner's deadline; the timed joiner (`join_timeout(1 s)`) gives up or sees
/// the value, whichever the interleaving makes true, while `main` joins without a
/// timeout and must always be woken. Bounded to 2 preemptions: four model threads
/// (main, f, the timed joiner, the clock-and-gate helper).
#[test]
fn give_up_racing_finish_does_not_strand_another_joiner() {
    static GAVE_UP: StdAtomicUsize = StdAtomicUsize::new(0);
    static SAW_VALUE: StdAtomicUsize = StdAtomicUsize::new(0);
    check(
        "give_up_racing_finish_does_not_strand_another_joiner",
        Some(2),
        || {
            let gate = Mailbox::new();
            let handle = pythread::start({
                let gate = Arc::clone(&gate);
                move || {
                    gate.take();
                    7_u32
                }
            });
            let timed = {
                let handle = handle.clone();
                thread::spawn(move || handle.join_timeout(SECOND))
            };
            let helper = thread::spawn(move || {
                advance_clock(SECOND);
                gate.put(());
            });
            assert_eq!(handle.join().ok(), Some(7), "the untimed joiner");
            match timed.join().unwrap() {
                None => GAVE_UP.fetch_add(1, StdOrdering::Relaxed),
                Some(outcome) => {
                    assert_eq!(outcome.ok(), Some(7));
                    SAW_VALUE.fetch_add(1, StdOrdering::Relaxed)
                }
            };
            helper.join().unwrap();
        },
    );
    let (gave_up, saw) = (
        GAVE_UP.load(StdOrdering::Relaxed),
        SAW_VALUE.load(StdOrdering::Relaxed),
    );
    eprintln!("loom: give-up branch taken in {gave_up} executions, outcome seen in {saw}");
    assert!(
        gave_up > 0,
        "the timed join never gave up: the give-up branch was not explored"
    );
    assert!(saw > 0, "the timed join never saw the outcome");
}

/// Interrupted once while asleep with half its timeout left: `pending_calls` runs
/// once, the join sleeps again, and returns `Ok(None)` exactly when the clock
/// reaches the deadline fixed at the call (1 s), not a full timeout after the
/// interruption. `f` is held until then, so nothing else can end the wait.
#[test]
fn interruption_calls_pending_calls_and_keeps_the_deadline() {
    check(
        "interruption_calls_pending_calls_and_keeps_the_deadline",
        Some(2),
        || {
            let gate = Mailbox::new();
            let handle = pythread::start({
                let gate = Arc::clone(&gate);
                move || {
                    gate.take();
                    3_u32
                }
            });
            let calls = Arc::new(AtomicUsize::new(0));
            let joiner = {
                let (handle, calls) = (handle.clone(), Arc::clone(&calls));
                thread::spawn(move || {
                    handle
                        .join_with_retries(Some(SECOND), || {
                            calls.fetch_add(1, Ordering::SeqCst);
                            Ok::<(), &'static str>(())
                        })
                        .map(|outcome| outcome.map(|outcome| outcome.ok()))
                })
            };
            wait_for_sleepers(1);
            advance_clock(HALF);
            interrupt(joiner.thread().id());
            // Back asleep after exactly one call of `pending_calls`.
            while calls.load(Ordering::SeqCst) != 1 {
                thread::yield_now();
            }
            wait_for_sleepers(1);
            advance_clock(HALF); // now exactly at the deadline fixed at the call
            assert_eq!(
                joiner.join().unwrap(),
                Ok(None),
                "timed out at the deadline"
            );
            assert_eq!(calls.load(Ordering::SeqCst), 1);
            gate.put(());
            assert_eq!(handle.join().ok(), Some(3));
        },
    );
}

/// An interruption whose `pending_calls` fails ends an untimed join with that
/// error; `f` (held until then) is unaffected and joins normally afterwards.
#[test]
fn pending_calls_error_ends_the_join() {
    check("pending_calls_error_ends_the_join", Some(2), || {
        let gate = Mailbox::new();
        let handle = pythread::start({
            let gate = Arc::clone(&gate);
            move || {
                gate.take();
                4_u32
            }
        });
        let joiner = {
            let handle = handle.clone();
            thread::spawn(move || {
                handle
                    .join_with_retries(None, || Err("KeyboardInterrupt"))
                    .map(|outcome| outcome.map(|outcome| outcome.ok()))
            })
        };
        wait_for_sleepers(1);
        interrupt(joiner.thread().id());
        assert_eq!(joiner.join().unwrap(), Err("KeyboardInterrupt"));
        gate.put(());
        let again = handle.join_with_retries(None, || Err("unused"));
        assert_eq!(
            again.map(|outcome| outcome.map(|outcome| outcome.ok())),
            Ok(Some(Some(4)))
        );
    });
}

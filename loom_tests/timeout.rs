//! `join_timeout`, modelled by structure.
//!
//! Under loom the join's deadline is on the facade's model clock, which only a
//! test moves (`pythread::__loom::advance_clock`), and these models never move it.
//! So they use only timeouts whose outcome does not depend on the clock:
//! `Duration::ZERO` (a pure poll, never sleeps), one hour (the timed wait, which
//! here can only end by the outcome being published) and `Duration::MAX` (too
//! large for a deadline: the untimed wait). The expiry of a deadline racing the
//! finish is modelled in `join_retries.rs`. What they prove:
//!
//! - a zero timeout returns `None` while `f` runs, without blocking, and the
//!   outcome once it has finished;
//! - a timed wait racing completion never misses the wake-up and returns the same
//!   outcome (`ptr_eq`) as `join`, with `f`'s writes visible;
//! - once some thread has observed the outcome, no `join_timeout` ordered after
//!   that returns `None`.
#![cfg(loom)]

mod common;

use std::time::Duration;

use common::{EXPECTED, Mailbox, RaceCell, check, expect_message};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;
use pythread::Panic;

const HOUR: Duration = Duration::from_secs(3600);

/// `Duration::ZERO` polls: `None` while `f` is held back, then the outcome.
#[test]
fn zero_timeout_polls_while_running() {
    check("zero_timeout_polls_while_running", None, || {
        let gate = Mailbox::new();
        let cell = RaceCell::new(0);
        let handle = pythread::start({
            let (gate, cell) = (Arc::clone(&gate), Arc::clone(&cell));
            move || {
                gate.take();
                cell.write(5);
            }
        });

        assert!(
            handle.join_timeout(Duration::ZERO).is_none(),
            "f is still held back"
        );
        assert!(!handle.is_finished());
        gate.put(());

        let timed = handle
            .join_timeout(HOUR)
            .expect("a timed wait never times out here");
        timed.expect("f returned");
        assert_eq!(cell.read(), 5, "timed join returned before f's write");
        assert!(matches!(handle.join_timeout(Duration::ZERO), Some(Ok(()))));
    });
}

/// A timed wait (the deadline loop) and an untimed one (`Duration::MAX`, and
/// `join`) race the completion: all return the one outcome and see `f`'s write.
#[test]
fn timed_join_racing_completion_matches_join() {
    // Bound 3: with the joins on the shared wait primitive (one model lock for
    // every wait and wake) the exhaustive search no longer ends in minutes.
    check("timed_join_racing_completion_matches_join", Some(3), || {
        let cell = RaceCell::new(0);
        let handle = pythread::start({
            let cell = Arc::clone(&cell);
            move || {
                cell.write(8);
                panic!("{EXPECTED} timed");
            }
        });
        let timed = thread::spawn({
            let (handle, cell) = (handle.clone(), Arc::clone(&cell));
            move || {
                let outcome = handle.join_timeout(HOUR).expect("timed out under loom");
                assert_eq!(cell.read(), 8, "timed join returned before f's write");
                outcome.expect_err("f panicked")
            }
        });

        let unbounded = expect_message(
            handle
                .join_timeout(Duration::MAX)
                .expect("Duration::MAX never times out"),
            "[expected] timed",
        );
        assert_eq!(
            cell.read(),
            8,
            "join_timeout(MAX) returned before f's write"
        );
        let joined = handle.join().expect_err("f panicked");
        let timed = timed.join().unwrap();
        assert!(Panic::ptr_eq(&unbounded, &joined), "a fresh Panic per join");
        assert!(
            Panic::ptr_eq(&timed, &joined),
            "timed join saw a different Panic"
        );
    });
}

/// After one thread observed the outcome (and said so), a zero-timeout poll
/// ordered after that never reports `None`, and what it reports is that outcome.
#[test]
fn no_timeout_after_outcome_observed() {
    // Bound 3: with the joins on the shared wait primitive (one model lock for
    // every wait and wake) the exhaustive search no longer ends in minutes.
    check("no_timeout_after_outcome_observed", Some(3), || {
        let observed = Arc::new(AtomicBool::new(false));
        let handle = pythread::start(|| panic!("{EXPECTED} observed"));
        let poller = thread::spawn({
            let (handle, observed) = (handle.clone(), Arc::clone(&observed));
            move || {
                let seen = observed.load(Ordering::Acquire);
                let polled = handle.join_timeout(Duration::ZERO);
                if seen {
                    assert!(polled.is_some(), "None after the outcome was observed");
                }
                polled
            }
        });

        let joined = expect_message(handle.join(), "[expected] observed");
        observed.store(true, Ordering::Release);
        if let Some(polled) = poller.join().unwrap() {
            let polled = polled.expect_err("f panicked");
            assert!(
                Panic::ptr_eq(&polled, &joined),
                "poll saw a different Panic"
            );
        }
    });
}

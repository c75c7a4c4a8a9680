//! Several joiners on clones of one handle, racing each other and the started
//! function; clones made and dropped while others join.
//!
//! The joiners are loom threads (with the started thread and `main`, up to four
//! of loom's five). What they prove:
//!
//! - every joiner wakes (a lost or single wake-up, e.g. `notify_one` where all
//!   must wake, leaves a joiner asleep, which loom reports as a deadlock) and sees
//!   `f`'s writes;
//! - all joiners see the same outcome: for a panic, one `Panic` (`ptr_eq`);
//! - cloning and dropping handles while another thread joins neither disturbs the
//!   join nor leaks (loom checks its `Arc`s for leaks after every execution) nor
//!   drops the panic payload more or less than once.
#![cfg(loom)]

mod common;

use common::{DropProbe, EXPECTED, RaceCell, Token, check, expect_message, expect_payload};
use loom::sync::Arc;
use loom::thread;
use pythread::Panic;

/// Two joiners of a returning `f`: both wake, both see its write.
#[test]
fn two_joiners_on_return_both_wake() {
    // Bound 3: with the joins on the shared wait primitive (one model lock for
    // every wait and wake) the exhaustive search no longer ends in minutes.
    check("two_joiners_on_return_both_wake", Some(3), || {
        let cell = RaceCell::new(0);
        let handle = pythread::start({
            let cell = Arc::clone(&cell);
            move || cell.write(1)
        });
        let other = thread::spawn({
            let (handle, cell) = (handle.clone(), Arc::clone(&cell));
            move || {
                handle.join().expect("f returned");
                assert_eq!(cell.read(), 1, "join returned before f's write");
            }
        });

        handle.join().expect("f returned");
        assert_eq!(cell.read(), 1, "join returned before f's write");
        other.join().unwrap();
    });
}

/// Two joiners of a panicking `f`: both get the one `Panic`.
#[test]
fn two_joiners_see_one_panic() {
    // Bound 3: with the joins on the shared wait primitive (one model lock for
    // every wait and wake) the exhaustive search no longer ends in minutes.
    check("two_joiners_see_one_panic", Some(3), || {
        let handle = pythread::start(|| panic!("{EXPECTED} two joiners"));
        let other = thread::spawn({
            let handle = handle.clone();
            move || handle.join().expect_err("f panicked")
        });

        let mine = expect_message(handle.join(), "[expected] two joiners");
        let theirs = other.join().unwrap();
        assert!(
            Panic::ptr_eq(&mine, &theirs),
            "joiners saw different Panics"
        );
    });
}

/// Three joiners (`main` and two threads) of a panicking `f`: all wake, all get the
/// one `Panic`. Four model threads: bounded, see the README.
#[test]
fn three_joiners_see_one_panic() {
    check("three_joiners_see_one_panic", Some(2), || {
        let cell = RaceCell::new(0);
        let handle = pythread::start({
            let cell = Arc::clone(&cell);
            move || {
                cell.write(3);
                panic!("{EXPECTED} three joiners");
            }
        });
        let joiners: Vec<_> = (0..2)
            .map(|_| {
                let (handle, cell) = (handle.clone(), Arc::clone(&cell));
                thread::spawn(move || {
                    let panic = handle.join().expect_err("f panicked");
                    assert_eq!(cell.read(), 3, "join returned before f's write");
                    panic
                })
            })
            .collect();

        let mine = expect_message(handle.join(), "[expected] three joiners");
        assert_eq!(cell.read(), 3, "join returned before f's write");
        for joiner in joiners {
            let theirs = joiner.join().unwrap();
            assert!(
                Panic::ptr_eq(&mine, &theirs),
                "joiners saw different Panics"
            );
        }
    });
}

/// Clones are made and dropped on two threads while both join: same outcome, the
/// payload dropped exactly once, after the last reference, and nothing leaked.
/// The probe's lock and condition variable add many scheduling points: bounded,
/// see the README.
#[test]
fn clone_and_drop_race_join() {
    check("clone_and_drop_race_join", Some(3), || {
        let probe = DropProbe::new();
        let token = probe.token();
        let handle = pythread::start(move || std::panic::panic_any(token));
        let other = thread::spawn({
            let handle = handle.clone();
            move || {
                let again = handle.clone();
                drop(handle);
                again.join().expect_err("f panicked")
            }
        });

        let mine = handle.clone();
        drop(handle);
        let panic = expect_payload::<Token>(mine.join());
        drop(mine);
        let theirs = other.join().unwrap();
        assert!(
            Panic::ptr_eq(&panic, &theirs),
            "joiners saw different Panics"
        );
        assert_eq!(
            probe.drops(),
            0,
            "payload dropped while Panics still refer to it"
        );
        drop((panic, theirs));
        // The started thread may still hold the outcome; it drops it when it ends.
        assert_eq!(probe.wait_for_drops(1), 1);
    });
}

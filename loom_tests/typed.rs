//! Typed results under loom: the value's publication, its single drop, the
//! move-out racing the thread's exit, and `join_thread` racing the exit and
//! another joiner.
//!
//! - A joiner on the slow path (asleep, or arriving as `f` finishes) and one on the
//!   fast path both see the whole `T`: `f` writes into a loom-checked cell inside
//!   the value before returning it, and the joiners read it through `join_ref`
//!   and `join`; the crate's `OnceLock` model checks the outcome slot itself.
//! - A detached typed thread drops its value exactly once (on the started thread);
//!   the probe's count and loom's leak check say so.
//! - `into_output` of the only handle always moves the value out, whichever way
//!   the started thread's exit (its reference dropped after publishing) races it.
//! - `join_thread` on two threads: each returns only after the started thread's
//!   body has returned (its reference is gone), and the OS join runs once.
#![cfg(loom)]

mod common;

use common::{DropProbe, RaceCell, Token, check};
use loom::sync::Arc;
use loom::thread;

/// `f` writes 7 into a cell inside the value it returns; `main` joins while `f`
/// runs, as it finishes, or after (loom explores each: the slow path asleep or
/// arriving, and the fast path), reads the cell through `join` and then, on the
/// fast path, through `join_ref`, and sees the write both times.
#[test]
fn joiner_on_both_paths_sees_the_whole_value() {
    check("joiner_on_both_paths_sees_the_whole_value", None, || {
        let handle = pythread::start(|| {
            let cell = RaceCell::new(0);
            cell.write(7);
            (cell, 8_u64)
        });
        let (cell, n) = handle.join().expect("f returned");
        assert_eq!((cell.read(), n), (7, 8));
        let (same, n) = handle.join_ref().expect("f returned");
        assert!(Arc::ptr_eq(same, &cell), "a second join gave another value");
        assert_eq!((same.read(), *n), (7, 8));
    });
}

/// The same with a second joiner thread that borrows the value with `join_ref`
/// while `main` joins, bounded to 2 preemptions (exhaustive is 165 677 executions
/// and 20 s for what the one-joiner model above already covers path by path).
#[test]
fn two_joiners_see_the_whole_value() {
    check("two_joiners_see_the_whole_value", Some(2), || {
        let handle = pythread::start(|| {
            let cell = RaceCell::new(0);
            cell.write(7);
            cell
        });
        let other = handle.clone();
        let joiner = thread::spawn(move || {
            assert_eq!(other.join_ref().expect("f returned").read(), 7);
        });
        assert_eq!(handle.join().expect("f returned").read(), 7);
        joiner.join().unwrap();
    });
}

/// Every handle dropped while `f` runs, or after: the value is dropped once; a
/// value never dropped deadlocks `wait_for_drops`, a leak fails loom's check.
#[test]
fn detached_value_is_dropped_once() {
    check("detached_value_is_dropped_once", None, || {
        let probe = DropProbe::new();
        let handle = pythread::start({
            let token = probe.token();
            move || token.reached()
        });
        drop(handle);
        assert_eq!(probe.wait_for_drops(1), 1);
        // The token dropped was f's returned value, not a capture dropped while f
        // unwound from a panic (a loom failure inside f, say) that nobody would see.
        assert_eq!(probe.reached(), 1, "f did not return its value");
    });
}

/// The last handle dropped on another thread while `main` joins: the value is
/// dropped exactly once, after `main`'s borrow of it ended.
#[test]
fn value_outlives_borrows_and_drops_once() {
    check("value_outlives_borrows_and_drops_once", None, || {
        let probe = DropProbe::new();
        let handle = pythread::start({
            let token = probe.token();
            move || token
        });
        let other = handle.clone();
        let dropper = thread::spawn(move || drop(other));
        let token: &Token = handle.join_ref().expect("f returned");
        let _ = token;
        assert_eq!(probe.drops(), 0, "dropped while a handle is alive");
        dropper.join().unwrap();
        drop(handle);
        assert_eq!(probe.wait_for_drops(1), 1);
    });
}

/// `into_output` of the only handle, racing the started thread's exit: always
/// `Ok` with the value, which is then dropped once, by `main`.
#[test]
fn into_output_of_the_only_handle_races_the_exit() {
    check(
        "into_output_of_the_only_handle_races_the_exit",
        None,
        || {
            let probe = DropProbe::new();
            let handle = pythread::start({
                let token = probe.token();
                move || token
            });
            let Ok(outcome) = handle.into_output() else {
                panic!("into_output gave the only handle back");
            };
            let token = outcome.expect("f returned");
            assert_eq!(probe.drops(), 0);
            drop(token);
            assert_eq!(probe.drops(), 1);
        },
    );
}

/// `into_output` racing a clone dropped on another thread: `Ok`, or the handle
/// back with the value intact; either way the value is dropped exactly once.
#[test]
fn into_output_racing_a_clone_drop() {
    check("into_output_racing_a_clone_drop", None, || {
        let probe = DropProbe::new();
        let handle = pythread::start({
            let token = probe.token();
            move || token
        });
        let other = handle.clone();
        let dropper = thread::spawn(move || drop(other));
        match handle.into_output() {
            Ok(outcome) => drop(outcome.expect("f returned")),
            Err(handle) => {
                handle.join_ref().expect("f returned");
                dropper.join().unwrap();
                let Ok(outcome) = handle.into_output() else {
                    panic!("the clone is gone: this is the only handle");
                };
                drop(outcome.expect("f returned"));
                assert_eq!(probe.wait_for_drops(1), 1);
                return;
            }
        }
        dropper.join().unwrap();
        assert_eq!(probe.wait_for_drops(1), 1);
    });
}

/// `join_thread` on `main` and on another thread, racing the started thread's
/// exit: each returns the value only after the started thread's body has
/// returned, i.e. its own reference is gone and the two handles are all that
/// is left (nobody drops a handle before both have checked). Bounded to 2
/// preemptions: exhaustive is 665 434 executions (44 s); bound 2 still catches
/// both recorded mutations of the once-join (see README.md).
#[test]
fn join_thread_racing_exit_and_another_joiner() {
    check(
        "join_thread_racing_exit_and_another_joiner",
        Some(2),
        || {
            let handle = pythread::start(|| 5_u32);
            let other = handle.clone();
            let joiner = thread::spawn(move || {
                assert_eq!(other.join_thread().ok(), Some(5));
                assert_eq!(
                    other.__references(),
                    2,
                    "join_thread returned before the exit"
                );
                other
            });
            assert_eq!(*handle.join_thread_ref().expect("f returned"), 5);
            assert_eq!(
                handle.__references(),
                2,
                "join_thread returned before the exit"
            );
            let other = joiner.join().unwrap();
            // Again, on both: at once, same value.
            assert_eq!(other.join_thread().ok(), Some(5));
            assert_eq!(handle.join_thread().ok(), Some(5));
        },
    );
}

//! `Lock` under loom: the real lock code over the model wait primitive
//! (`src/sync/loom_model.rs`: a futex-shaped queue, a model clock the test
//! advances, model interrupts the test sends). See loom_tests/README.md
//! ("Locks") for bounds, figures and the deliberate bugs each model catches.
#![cfg(loom)]

mod common;

use std::sync::atomic::{AtomicBool as StdAtomicBool, Ordering as StdOrdering};
use std::time::Duration;

use common::{DropProbe, RaceCell, check};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use pythread::{Lock, LockStatus};

const MS: Duration = Duration::from_millis(1);

/// Two threads and main each add 1 to a loom `UnsafeCell` under the lock: loom
/// fails any access not ordered by the lock, and the sum must be 3.
#[test]
fn mutual_exclusion_three_threads() {
    check("lock: mutual_exclusion_three_threads", Some(3), || {
        let lock = Arc::new(Lock::new());
        let cell = RaceCell::new(0);
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (lock, cell) = (Arc::clone(&lock), Arc::clone(&cell));
                thread::spawn(move || {
                    lock.acquire();
                    cell.write(cell.read() + 1);
                    lock.release().unwrap();
                })
            })
            .collect();
        lock.acquire();
        cell.write(cell.read() + 1);
        lock.release().unwrap();
        for t in threads {
            t.join().unwrap();
        }
        assert!(lock.try_acquire());
        assert_eq!(cell.read(), 3);
    });
}

/// Main holds the lock while two threads block on it; one release must wake
/// them in turn (a lost wake-up is a loom deadlock).
#[test]
fn no_lost_wakeup_two_waiters() {
    check("lock: no_lost_wakeup_two_waiters", Some(3), || {
        let lock = Arc::new(Lock::new());
        let cell = RaceCell::new(0);
        lock.acquire();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (lock, cell) = (Arc::clone(&lock), Arc::clone(&cell));
                thread::spawn(move || {
                    lock.acquire();
                    cell.write(cell.read() + 1);
                    lock.release().unwrap();
                })
            })
            .collect();
        lock.release().unwrap();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(cell.read(), 2);
        assert!(!lock.locked());
    });
}

/// A thread that never acquired the lock releases it and so lets a blocked
/// acquirer through (the lock has no owner); main's write before its acquire is
/// ordered before the acquirer's read through the release.
#[test]
fn release_from_a_thread_that_did_not_acquire() {
    check(
        "lock: release_from_a_thread_that_did_not_acquire",
        None,
        || {
            let lock = Arc::new(Lock::new());
            let cell = RaceCell::new(0);
            lock.acquire();
            cell.write(7);
            let waiter = {
                let (lock, cell) = (Arc::clone(&lock), Arc::clone(&cell));
                thread::spawn(move || {
                    lock.acquire();
                    assert_eq!(cell.read(), 7);
                    cell.write(8);
                })
            };
            let releaser = {
                let lock = Arc::clone(&lock);
                thread::spawn(move || lock.release())
            };
            assert_eq!(releaser.join().unwrap(), Ok(()));
            waiter.join().unwrap();
            assert!(lock.locked(), "the waiter holds it");
            assert_eq!(lock.release(), Ok(()));
            assert!(lock.release().is_err());
            assert_eq!(cell.read(), 8);
        },
    );
}

/// Two threads race to release one held lock: exactly one `Ok`.
#[test]
fn two_racing_releases_exactly_one_ok() {
    check("lock: two_racing_releases_exactly_one_ok", None, || {
        let lock = Arc::new(Lock::new());
        lock.acquire();
        let oks = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (lock, oks) = (Arc::clone(&lock), Arc::clone(&oks));
                thread::spawn(move || {
                    if lock.release().is_ok() {
                        oks.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(oks.load(Ordering::Relaxed), 1);
        assert!(!lock.locked());
    });
}

static TIMED_ACQUIRED: StdAtomicBool = StdAtomicBool::new(false);
static TIMED_OUT: StdAtomicBool = StdAtomicBool::new(false);

/// A 1 ms timed acquire races a release and the clock reaching its deadline:
/// both outcomes happen in some execution, never both at once (acquired <=> it
/// holds the lock afterwards), and a time-out never comes before the deadline.
#[test]
fn timed_acquire_racing_release() {
    check("lock: timed_acquire_racing_release", None, || {
        let lock = Arc::new(Lock::new());
        lock.acquire();
        let waiter = {
            let lock = Arc::clone(&lock);
            thread::spawn(move || {
                let got = lock.acquire_timeout(MS);
                if !got {
                    assert!(pythread::__loom::elapsed() >= MS, "timed out early");
                }
                got
            })
        };
        // Two steps, so that a deadline shorter than 1 ms would be seen expiring
        // at 1 ms - 1 ns ("timed out early").
        let clock = thread::spawn(|| {
            pythread::__loom::advance_clock(MS - Duration::from_nanos(1));
            pythread::__loom::advance_clock(Duration::from_nanos(1));
        });
        lock.release().unwrap();
        let got = waiter.join().unwrap();
        clock.join().unwrap();
        assert_eq!(got, lock.locked(), "acquired <=> holds it");
        if got {
            TIMED_ACQUIRED.store(true, StdOrdering::Relaxed);
        } else {
            TIMED_OUT.store(true, StdOrdering::Relaxed);
        }
    });
    assert!(TIMED_ACQUIRED.load(StdOrdering::Relaxed), "never acquired");
    assert!(TIMED_OUT.load(StdOrdering::Relaxed), "never timed out");
}

static INTR_SEEN: StdAtomicBool = StdAtomicBool::new(false);
static INTR_ACQUIRED: StdAtomicBool = StdAtomicBool::new(false);

/// An interrupt sent to a blocked acquirer: with `intr = true` it ends the wait
/// with `Intr` (without the lock) unless the release got there first; with
/// `intr = false` the wait goes on and always acquires.
#[test]
fn interruption_intr_true_and_false() {
    for intr in [true, false] {
        let name = format!("lock: interruption (intr = {intr})");
        check(&name, None, move || {
            let lock = Arc::new(Lock::new());
            lock.acquire();
            let waiter = {
                let lock = Arc::clone(&lock);
                thread::spawn(move || lock.acquire_timed(-1, intr))
            };
            pythread::__loom::interrupt(waiter.thread().id());
            lock.release().unwrap();
            let status = waiter.join().unwrap();
            match status {
                LockStatus::Intr => {
                    assert!(intr, "intr = false must not end the wait");
                    assert!(!lock.locked(), "Intr without the lock");
                    INTR_SEEN.store(true, StdOrdering::Relaxed);
                }
                LockStatus::Acquired => {
                    assert!(lock.locked());
                    INTR_ACQUIRED.store(true, StdOrdering::Relaxed);
                }
                LockStatus::Failure => panic!("an untimed wait failed"),
            }
        });
    }
    assert!(INTR_SEEN.load(StdOrdering::Relaxed), "Intr never returned");
    assert!(INTR_ACQUIRED.load(StdOrdering::Relaxed));
}

/// `acquire_with_retries` on a held lock with a 2 ms deadline: once it is asleep,
/// two interrupts, each followed by 1 ms of clock. `pending_calls` runs once per
/// interrupt that reached a wait (the first always does; the second not if the
/// deadline had passed by then), and the result is a time-out that never comes before 2 ms (the
/// deadline is kept across the retries, neither shortened nor extended).
#[test]
fn retries_call_pending_calls_and_keep_the_deadline() {
    check("lock: retries_keep_the_deadline", None, || {
        let lock = Arc::new(Lock::new());
        lock.acquire();
        let calls = Arc::new(AtomicUsize::new(0));
        let waiter = {
            let (lock, calls) = (Arc::clone(&lock), Arc::clone(&calls));
            thread::spawn(move || {
                let result = lock.acquire_with_retries(Some(2 * MS), || {
                    calls.fetch_add(1, Ordering::Relaxed);
                    Ok::<(), ()>(())
                });
                assert_eq!(result, Ok(false));
                assert!(pythread::__loom::elapsed() >= 2 * MS, "timed out early");
            })
        };
        let id = waiter.thread().id();
        // Its deadline is fixed (clock 0 + 2 ms) once it is asleep.
        pythread::__loom::wait_for_sleepers(1);
        for _ in 0..2 {
            pythread::__loom::interrupt(id);
            pythread::__loom::advance_clock(MS);
        }
        waiter.join().unwrap();
        let calls = calls.load(Ordering::Relaxed);
        assert!((1..=2).contains(&calls), "{calls} pending_calls");
        assert!(lock.locked());
    });
}

static RETRIES_ERR: StdAtomicBool = StdAtomicBool::new(false);

/// An `Err` from `pending_calls` ends the wait with that error (the lock is not
/// taken; some execution must show it); the release racing it may also win.
#[test]
fn retries_return_the_pending_calls_error() {
    check("lock: retries_return_the_error", None, || {
        let lock = Arc::new(Lock::new());
        lock.acquire();
        let waiter = {
            let lock = Arc::clone(&lock);
            thread::spawn(move || lock.acquire_with_retries(None, || Err("KeyboardInterrupt")))
        };
        pythread::__loom::interrupt(waiter.thread().id());
        lock.release().unwrap();
        match waiter.join().unwrap() {
            Err(e) => {
                assert_eq!(e, "KeyboardInterrupt");
                assert!(!lock.locked());
                RETRIES_ERR.store(true, StdOrdering::Relaxed);
            }
            Ok(got) => {
                assert!(got);
                assert!(lock.locked());
            }
        }
    });
    assert!(
        RETRIES_ERR.load(StdOrdering::Relaxed),
        "the Err never returned"
    );
}

static HANDED_OFF: StdAtomicBool = StdAtomicBool::new(false);

/// Fairness: a waiter that has waited 1 ms of model time (from its entry) is
/// handed the lock, and the handoff is its own. S sleeps first, the clock moves
/// 1 ms, then A sleeps behind it (A's 1 ms has not passed). Main releases: the
/// model futex wakes S (arrival order); if main re-takes the lock, S asks for the
/// handoff and sleeps again, now behind A. At main's next release its re-take
/// must fail (or S has already had the lock and released it) and S, not A, must
/// be the next holder, although A sleeps ahead of it. Whenever S or A wins the
/// race for the free lock instead, that is ordinary barging, and everything must
/// still end cleanly.
#[test]
fn the_handoff_goes_to_the_starving_waiter() {
    check(
        "lock: the_handoff_goes_to_the_starving_waiter",
        Some(2),
        || {
            let lock = Arc::new(Lock::new());
            let cell = RaceCell::new(0);
            // The number (1: S, 2: A) of the first of them to get the lock.
            let first = Arc::new(AtomicUsize::new(0));
            lock.acquire();
            let waiter = |id: usize| {
                let (lock, cell, first) =
                    (Arc::clone(&lock), Arc::clone(&cell), Arc::clone(&first));
                thread::spawn(move || {
                    lock.acquire();
                    let _ = first.compare_exchange(0, id, Ordering::Relaxed, Ordering::Relaxed);
                    cell.write(cell.read() + 1);
                    lock.release().unwrap();
                })
            };
            let s = waiter(1);
            pythread::__loom::wait_for_sleepers(1);
            pythread::__loom::advance_clock(MS);
            let a = waiter(2);
            pythread::__loom::wait_for_sleepers(2);
            lock.release().unwrap();
            let retaken = lock.try_acquire();
            let handed = retaken && first.load(Ordering::Relaxed) == 0;
            if handed {
                // S woke, lost, asked for the handoff and is asleep again, behind A.
                pythread::__loom::wait_for_sleepers(2);
                cell.write(cell.read() + 1);
                lock.release().unwrap();
                if lock.try_acquire() {
                    // Only once S has had the lock it was handed (and released it).
                    assert_eq!(
                        first.load(Ordering::Relaxed),
                        1,
                        "barged past the starving waiter"
                    );
                    lock.release().unwrap();
                }
                HANDED_OFF.store(true, StdOrdering::Relaxed);
            } else {
                if !retaken {
                    lock.acquire();
                }
                cell.write(cell.read() + 1);
                lock.release().unwrap();
            }
            s.join().unwrap();
            a.join().unwrap();
            if handed {
                assert_eq!(first.load(Ordering::Relaxed), 1, "the handoff went to A");
            }
            assert_eq!(cell.read(), 3);
            assert!(!lock.locked());
        },
    );
    assert!(
        HANDED_OFF.load(StdOrdering::Relaxed),
        "no execution reached the handoff"
    );
}

static ENDED_BEFORE_IT_RETURNED: StdAtomicBool = StdAtomicBool::new(false);

/// The accounting invariant (issue 17 §1): every `Ok` release ends exactly one
/// acquisition that returned true, also when a release races a handoff. Main
/// holds the lock and re-takes it after each release while X waits; the clock
/// moves 1 ms before each of two rounds, and X, woken by each release, loses and
/// sleeps again, so X asks for a handoff (it has waited 1 ms at its first
/// wake-up; before issue 17 its 1 ms ran from that wake-up). Then R1 and main both
/// release, racing each other and the handoff that one of them makes. X never
/// releases. At quiescence: acquisitions that returned true == `Ok` releases +
/// (1 if the lock is still held). The executions where X's acquisition (the
/// handoff) is ended by a release before X's `acquire` has returned must be
/// reached (X then sees the lock free at once).
#[test]
fn a_release_racing_a_handoff_keeps_the_count() {
    check("lock: a_release_racing_a_handoff", Some(3), || {
        let lock = Arc::new(Lock::new());
        // Acquisitions that returned true, and `Ok` releases.
        let acquired = Arc::new(AtomicUsize::new(0));
        let released = Arc::new(AtomicUsize::new(0));
        let count = |counter: &AtomicUsize, yes: bool| {
            if yes {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        };
        lock.acquire();
        count(&acquired, true);
        let x = {
            let (lock, acquired) = (Arc::clone(&lock), Arc::clone(&acquired));
            thread::spawn(move || {
                lock.acquire();
                acquired.fetch_add(1, Ordering::Relaxed);
                if !lock.locked() {
                    ENDED_BEFORE_IT_RETURNED.store(true, StdOrdering::Relaxed);
                }
            })
        };
        pythread::__loom::wait_for_sleepers(1);
        for _ in 0..2 {
            pythread::__loom::advance_clock(MS);
            count(&released, lock.release().is_ok());
            let retaken = lock.try_acquire();
            count(&acquired, retaken);
            if !retaken {
                break; // handed to X, or X barged in
            }
            // X, woken by the release, lost and is asleep again.
            pythread::__loom::wait_for_sleepers(1);
        }
        let r1 = {
            let (lock, released) = (Arc::clone(&lock), Arc::clone(&released));
            thread::spawn(move || {
                let ok = lock.release().is_ok();
                if ok {
                    released.fetch_add(1, Ordering::Relaxed);
                }
                ok
            })
        };
        let main_ok = lock.release().is_ok();
        count(&released, main_ok);
        let r1_ok = r1.join().unwrap();
        x.join().unwrap();
        let held = usize::from(lock.locked());
        assert_eq!(
            acquired.load(Ordering::Relaxed),
            released.load(Ordering::Relaxed) + held,
            "acquisitions that returned true != Ok releases + held (main {main_ok}, R1 {r1_ok})"
        );
    });
    assert!(
        ENDED_BEFORE_IT_RETURNED.load(StdOrdering::Relaxed),
        "no release ended the handoff before the waiter returned"
    );
}

/// Fairness across interruptions (issue 17 §2): `acquire_with_retries` on a held
/// lock, interrupted twice after its 1 ms has passed (each `pending_calls` returns
/// `Ok`). The 1 ms runs from the acquisition's start and is kept across the
/// retries, so after each retry the waiter asks for the handoff again before it
/// sleeps: main's release hands the lock to it, main's re-take fails, and the
/// waiter returns `Ok(true)`. (Before issue 17 the clock restarted at every retry
/// and only after a wake-up: frequent signals could starve the waiter.)
#[test]
fn a_waiter_interrupted_repeatedly_still_gets_its_handoff() {
    check(
        "lock: a_waiter_interrupted_repeatedly_still_gets_its_handoff",
        Some(3),
        || {
            let lock = Arc::new(Lock::new());
            lock.acquire();
            let calls = DropProbe::new();
            let waiter = {
                let (lock, calls) = (Arc::clone(&lock), calls.clone());
                thread::spawn(move || {
                    lock.acquire_with_retries(None, || {
                        drop(calls.token());
                        Ok::<(), ()>(())
                    })
                })
            };
            let id = waiter.thread().id();
            pythread::__loom::wait_for_sleepers(1);
            pythread::__loom::advance_clock(MS);
            for round in 1..=2 {
                pythread::__loom::interrupt(id);
                // Its `pending_calls` ran, and it is asleep again.
                calls.wait_for_drops(round);
                pythread::__loom::wait_for_sleepers(1);
            }
            lock.release().unwrap();
            assert!(!lock.try_acquire(), "barged past the interrupted waiter");
            assert_eq!(waiter.join().unwrap(), Ok(true));
            assert!(lock.locked());
        },
    );
}

static PENDING_CALLS_ERR: StdAtomicBool = StdAtomicBool::new(false);

/// An interrupted starving waiter withdraws its request before `pending_calls`
/// runs: when that returns `Err` (the waiter is gone), the next release frees
/// the lock for anybody instead of handing it to nobody. The waiter asks for the
/// handoff after 1 ms and one wake-up it lost (main releases and re-takes); if
/// it wins that race instead, it holds the lock and returns `Ok(true)`.
#[test]
fn an_interruption_whose_pending_calls_fails_leaves_the_lock_acquirable() {
    check(
        "lock: an_interruption_whose_pending_calls_fails_leaves_the_lock_acquirable",
        None,
        || {
            let lock = Arc::new(Lock::new());
            lock.acquire();
            let waiter = {
                let lock = Arc::clone(&lock);
                thread::spawn(move || lock.acquire_with_retries(None, || Err("KeyboardInterrupt")))
            };
            pythread::__loom::wait_for_sleepers(1);
            pythread::__loom::advance_clock(MS);
            lock.release().unwrap();
            let retaken = lock.try_acquire();
            if retaken {
                // The waiter woke, lost, asked for the handoff and sleeps again.
                pythread::__loom::wait_for_sleepers(1);
            }
            pythread::__loom::interrupt(waiter.thread().id());
            match waiter.join().unwrap() {
                Err(e) => {
                    assert_eq!(e, "KeyboardInterrupt");
                    assert!(retaken, "the waiter lost a free lock");
                    lock.release().unwrap();
                    assert!(lock.try_acquire(), "the release handed the lock to nobody");
                    PENDING_CALLS_ERR.store(true, StdOrdering::Relaxed);
                }
                Ok(got) => {
                    assert!(got && !retaken);
                    assert!(lock.locked());
                }
            }
        },
    );
    assert!(
        PENDING_CALLS_ERR.load(StdOrdering::Relaxed),
        "the Err never returned"
    );
}

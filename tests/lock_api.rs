//! The lock API a std or parking_lot user reaches for (issue 17 §6): `const`
//! constructors, `ReleaseError::kind`, `RLock::lock_timeout`, `RLock::state` as
//! one consistent read from another thread, `Ident` from an integer, both
//! `release_save` rules, and `reinit_after_fork` on both lock kinds.
#![cfg(not(loom))]

mod support;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pythread::{Ident, Lock, LockStatus, RLock, RLockState, ReleaseErrorKind};
use support::{WATCHDOG, bounded};

static STATIC_LOCK: Lock = Lock::new();
static STATIC_RLOCK: RLock = RLock::new();

/// A typed handle's value, bounded by the watchdog.
fn join_value<T: Clone>(handle: &pythread::Handle<T>) -> T {
    handle
        .join_timeout(WATCHDOG)
        .expect("watchdog: the thread never finished")
        .expect("the thread panicked")
}

#[test]
fn constructors_are_const() {
    assert!(STATIC_LOCK.try_acquire());
    assert!(!STATIC_LOCK.try_acquire());
    STATIC_LOCK.release().unwrap();
    STATIC_RLOCK.acquire();
    STATIC_RLOCK.acquire();
    assert_eq!(STATIC_RLOCK.recursion_count(), 2);
    STATIC_RLOCK.release().unwrap();
    STATIC_RLOCK.release().unwrap();
    assert!(!STATIC_RLOCK.locked());
}

#[test]
fn release_errors_have_kinds() {
    let lock = Lock::new();
    assert_eq!(
        lock.release().unwrap_err().kind(),
        ReleaseErrorKind::Unlocked
    );
    let rlock = RLock::new();
    assert_eq!(
        rlock.release().unwrap_err().kind(),
        ReleaseErrorKind::Unacquired
    );
    assert_eq!(
        rlock.release_save().unwrap_err().kind(),
        ReleaseErrorKind::Unacquired
    );
    assert_eq!(
        rlock.release_save_any_thread().unwrap_err().kind(),
        ReleaseErrorKind::Unacquired
    );
    // The kind and the message agree.
    assert_eq!(
        lock.release().unwrap_err().to_string(),
        "release unlocked lock"
    );
    assert_eq!(
        rlock.release().unwrap_err().to_string(),
        "cannot release un-acquired lock"
    );
}

#[test]
fn rlock_lock_timeout() {
    let lock = Arc::new(RLock::new());
    let outer = lock.lock_timeout(Duration::from_secs(1)).expect("free");
    let inner = lock.lock_timeout(Duration::ZERO).expect("reentrant");
    assert_eq!(lock.recursion_count(), 2);
    let other = Arc::clone(&lock);
    let (got, waited) = bounded("lock_timeout on a held RLock", move || {
        let start = Instant::now();
        let got = other.lock_timeout(Duration::from_millis(20)).is_some();
        (got, start.elapsed())
    });
    assert!(!got, "another thread's RLock was taken");
    assert!(waited >= Duration::from_millis(20), "{waited:?}");
    drop(inner);
    assert_eq!(lock.recursion_count(), 1);
    drop(outer);
    assert!(!lock.locked());
}

#[test]
fn ident_from_an_integer() {
    let handle = pythread::start(pythread::get_ident);
    let ident = join_value(&handle);
    assert_eq!(ident, handle.ident());
    assert_eq!(Ident::from_u64(ident.as_u64()), Some(ident));
    assert_eq!(Ident::try_from(ident.as_u64()), Ok(ident));
    assert_eq!(Ident::from_u64(0), None);
    assert!(Ident::try_from(0u64).is_err());
}

/// CPython: `_acquire_restore((count, owner))` makes `owner` the owner, whoever
/// calls it; the restored owner may release, the caller may not.
#[test]
fn restoring_another_threads_owner_makes_it_the_owner() {
    let lock = Arc::new(RLock::new());
    let (ident_tx, ident_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let other = Arc::clone(&lock);
    let thread = pythread::start(move || {
        ident_tx.send(pythread::get_ident()).unwrap();
        go_rx
            .recv_timeout(WATCHDOG)
            .expect("watchdog: never told to go");
        assert_eq!(other.recursion_count(), 3);
        for _ in 0..3 {
            other.release().unwrap();
        }
    });
    let owner = ident_rx.recv_timeout(WATCHDOG).unwrap();
    let restored = RLockState::new(NonZeroUsize::new(3).unwrap(), owner);
    lock.acquire_restore(restored);
    assert!(!lock.is_owned());
    assert_eq!(
        lock.release().unwrap_err().kind(),
        ReleaseErrorKind::Unacquired
    );
    let state = lock.state().expect("owned");
    assert_eq!((state.owner(), state.count()), (owner, 3));
    go_tx.send(()).unwrap();
    support::join(&thread).unwrap();
    assert_eq!(lock.state(), None);
    assert!(!lock.locked());
}

/// 3.11-3.13: a thread that does not own the lock may `_release_save` it; the
/// saved state names the owner, and the owner's own release then fails.
#[test]
fn release_save_any_thread_is_the_313_rule() {
    let lock = Arc::new(RLock::new());
    lock.acquire();
    lock.acquire();
    let me = pythread::get_ident();
    let other = Arc::clone(&lock);
    let state = bounded("release_save_any_thread", move || {
        assert!(
            other.release_save().is_err(),
            "3.14's rule lets a non-owner through"
        );
        other.release_save_any_thread().unwrap()
    });
    assert_eq!((state.owner(), state.count()), (me, 2));
    assert!(!lock.locked());
    assert_eq!(lock.state(), None);
    assert!(lock.release().is_err());
    // The owner's own release_save_any_thread is release_save.
    lock.acquire();
    let state = lock.release_save_any_thread().unwrap();
    assert_eq!((state.owner(), state.count()), (me, 1));
    lock.acquire_restore(state);
    assert!(lock.is_owned());
}

/// `state` from a third thread while two owners take turns, each restoring a
/// count only it uses (A: 2, B: 7): every read is unowned, `(A, 2)` or
/// `(B, 7)`. Bite (TESTING.md): with `state` reading the two fields without the
/// version check, this fails within a run (a count paired with the other owner,
/// or an owner with count 0).
#[test]
fn rlock_state_is_one_consistent_read() {
    let lock = Arc::new(RLock::new());
    let stop = Arc::new(AtomicBool::new(false));
    let owners: Vec<_> = [2usize, 7]
        .into_iter()
        .map(|count| {
            let (lock, stop) = (Arc::clone(&lock), Arc::clone(&stop));
            pythread::start(move || {
                let me = pythread::get_ident();
                let state = RLockState::new(NonZeroUsize::new(count).unwrap(), me);
                let mut rounds = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    lock.acquire_restore(state);
                    lock.acquire(); // count + 1 ...
                    lock.release().unwrap(); // ... and back
                    assert_eq!(lock.release_save().unwrap(), state);
                    rounds += 1;
                }
                (me, count, rounds)
            })
        })
        .collect();
    let start = Instant::now();
    let mut reads = 0u64;
    let mut seen = std::collections::HashMap::new();
    while start.elapsed() < Duration::from_millis(300) {
        if let Some(state) = lock.state() {
            *seen.entry((state.owner(), state.count())).or_insert(0u64) += 1;
        }
        reads += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let owners: Vec<_> = owners.iter().map(join_value).collect();
    for ((owner, count), n) in &seen {
        let (_, own, _) = owners
            .iter()
            .find(|(me, _, _)| me == owner)
            .unwrap_or_else(|| panic!("an owner that never held it: {owner} ({n} reads)"));
        assert!(
            *count == *own || *count == own + 1,
            "torn read: owner {owner} with count {count} ({n} of {reads} reads); {owners:?}"
        );
    }
    assert!(owners.iter().all(|o| o.2 > 0), "{owners:?}");
    assert_eq!(lock.state(), None);
}

#[test]
fn reinit_after_fork_gives_fresh_locks() {
    // A lock held, with a waiter registered that will never come back: the
    // word's waiter bookkeeping goes with the reinit.
    let lock = Arc::new(Lock::new());
    lock.acquire();
    let waiter = Arc::clone(&lock);
    let timed_out = bounded("a timed waiter", move || {
        waiter.acquire_timed(10_000, false)
    });
    assert_eq!(timed_out, LockStatus::Failure);
    lock.reinit_after_fork();
    assert!(!lock.locked());
    assert!(lock.try_acquire());
    lock.release().unwrap();
    assert!(lock.release().is_err());

    let rlock = RLock::new();
    rlock.acquire();
    rlock.acquire();
    rlock.reinit_after_fork();
    assert!(!rlock.locked());
    assert_eq!(rlock.state(), None);
    assert_eq!(rlock.recursion_count(), 0);
    rlock.acquire();
    assert_eq!(rlock.recursion_count(), 1);
    rlock.release().unwrap();
}

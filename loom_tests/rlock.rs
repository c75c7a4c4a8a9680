//! `RLock` under loom: reentrancy, owner handoff between threads, a non-owner's
//! release, and `release_save` / `acquire_restore` around another thread's
//! acquire. See loom_tests/README.md ("Locks").
#![cfg(loom)]

mod common;

use common::{RaceCell, check};
use loom::sync::Arc;
use loom::thread;
use pythread::RLock;

/// Two threads, each acquiring twice (reentrant) and writing a loom cell under
/// the lock: mutual exclusion across owners, counts per owner, the lock free at
/// the end; a non-owner's release always fails.
#[test]
fn reentrancy_and_owner_handoff() {
    check("rlock: reentrancy_and_owner_handoff", Some(3), || {
        let lock = Arc::new(RLock::new());
        let cell = RaceCell::new(0);
        let other = {
            let (lock, cell) = (Arc::clone(&lock), Arc::clone(&cell));
            thread::spawn(move || {
                lock.acquire();
                assert!(lock.try_acquire());
                assert_eq!(lock.recursion_count(), 2);
                cell.write(cell.read() + 1);
                lock.release().unwrap();
                lock.release().unwrap();
                assert!(lock.release().is_err());
            })
        };
        lock.acquire();
        lock.acquire();
        assert_eq!(lock.recursion_count(), 2);
        cell.write(cell.read() + 1);
        lock.release().unwrap();
        assert!(lock.is_owned());
        lock.release().unwrap();
        assert!(!lock.is_owned());
        other.join().unwrap();
        assert_eq!(cell.read(), 2);
        assert!(!lock.locked());
    });
}

/// Main owns the lock twice, `release_save`s it while another thread acquires,
/// writes and releases, then `acquire_restore`s: the count and ownership come
/// back, and the other thread's write is visible. The other thread's
/// `release_save` while main owns it fails (3.14's rule).
#[test]
fn release_save_acquire_restore_around_another_acquire() {
    check("rlock: release_save_acquire_restore", Some(3), || {
        let lock = Arc::new(RLock::new());
        let cell = RaceCell::new(0);
        lock.acquire();
        lock.acquire();
        cell.write(1);
        let other = {
            let (lock, cell) = (Arc::clone(&lock), Arc::clone(&cell));
            thread::spawn(move || {
                if lock.release_save().is_ok() {
                    panic!("release_save by a non-owner succeeded");
                }
                lock.acquire();
                assert_eq!(cell.read(), 1);
                cell.write(2);
                lock.release().unwrap();
            })
        };
        let state = lock.release_save().unwrap();
        assert_eq!(state.count(), 2);
        lock.acquire_restore(state);
        assert_eq!(lock.recursion_count(), 2);
        let seen = cell.read();
        assert!(seen == 1 || seen == 2);
        lock.release().unwrap();
        lock.release().unwrap();
        other.join().unwrap();
        assert_eq!(cell.read(), 2);
    });
}

/// `RLock::state` read by another thread while the lock changes owners, each
/// owner restored with a count no other owner has (A: 2, B: 1; B is an ident
/// rebuilt from an integer, as a runtime restores a saved owner): the reader
/// sees nothing, `(A, 2)`, `(A, 3)` (A's nested acquire, a change of the count
/// alone) or `(B, 1)`, never an owner with the other owner's count. Bite (TESTING.md): with `state` ignoring the version, loom finds a
/// torn `(B, 2)` or `(A, 1)`.
#[test]
fn state_is_never_torn() {
    check("rlock: state_is_never_torn", Some(1), || {
        let lock = Arc::new(RLock::new());
        let a = pythread::get_ident();
        let b = pythread::Ident::from_u64(a.as_u64() + 1_000).unwrap();
        let reader = {
            let lock = Arc::clone(&lock);
            thread::spawn(move || lock.state())
        };
        for (owner, count) in [(a, 2), (b, 1)] {
            let count = std::num::NonZeroUsize::new(count).unwrap();
            lock.acquire_restore(pythread::RLockState::new(count, owner));
            if owner == a {
                // The owner's nested acquire and release change the count alone.
                lock.acquire();
                lock.release().unwrap();
            }
            let state = lock.release_save_any_thread().unwrap();
            assert_eq!((state.owner(), state.count()), (owner, count.get()));
        }
        if let Some(state) = reader.join().unwrap() {
            let expected: &[usize] = if state.owner() == a { &[2, 3] } else { &[1] };
            assert!(state.owner() == a || state.owner() == b, "{state:?}");
            assert!(expected.contains(&state.count()), "torn: {state:?}");
        }
        assert_eq!(lock.state(), None);
    });
}

/// Another thread restores a state that names this one as the owner
/// (`RLockState::new` with this thread's ident, as CPython allows) while this
/// one releases: this thread sees itself as the owner with the restored count,
/// or not as the owner at all, never as an owner with a count of 0 (whose
/// release would wrap the count to `usize::MAX`). Bite (TESTING.md): with
/// `own_count`'s `count > 0` written `count >= 0` (the mutant that the plain
/// suite cannot tell apart), loom finds the wrapped count.
#[test]
fn a_restore_naming_this_thread_is_never_half_seen() {
    check(
        "rlock: a_restore_naming_this_thread_is_never_half_seen",
        Some(3),
        || {
            let lock = Arc::new(RLock::new());
            let me = pythread::get_ident();
            let restorer = {
                let lock = Arc::clone(&lock);
                thread::spawn(move || {
                    let two = std::num::NonZeroUsize::new(2).unwrap();
                    lock.acquire_restore(pythread::RLockState::new(two, me));
                })
            };
            let released = lock.release().is_ok();
            restorer.join().unwrap();
            let state = lock.state().expect("owned after the restore");
            let expected = if released { 1 } else { 2 };
            assert_eq!((state.owner(), state.count()), (me, expected));
            for _ in 0..expected {
                lock.release().unwrap();
            }
            assert!(!lock.locked());
        },
    );
}

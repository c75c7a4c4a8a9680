//! `_threadmodule.c`'s rules one at a time, on the Rust-only host: each test is the behaviour
//! that a slip in one comparison or one boolean of the layer would change (found by the
//! layer's mutation run, TESTING.md): a join or an acquire that must wait does, one that must
//! not does not, `stack_size`'s bounds, the RLock's `locked`, `_release_save` and
//! `_at_fork_reinit`.
//!
//! A waiting thread is known to wait when it is asleep in the kernel
//! (`support::wait_until_blocked`), never after a sleep; every step runs under the watchdog.
#![cfg(all(not(loom), target_os = "linux"))]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use threadmodule::minihost::{MiniFunction, MiniHost, MiniInterpreter};
use threadmodule::{
    Error, LocalDicts, ModuleState, RLockObject, ReleaseSaveRule, Runtime, ThreadHandle,
};

#[path = "../../tests/support/lock.rs"]
mod support;
use support::{bounded, gettid, wait_for, wait_until_blocked};

/// Runs `f` on a new thread attached to `interp` once it has reported its kernel id; returns
/// the thread and that id.
fn attached_thread<T: Send + 'static>(
    interp: &MiniInterpreter,
    f: impl FnOnce(&MiniHost) -> T + Send + 'static,
) -> (std::thread::JoinHandle<T>, i32) {
    let (tid_tx, tid_rx) = mpsc::channel();
    let interp = interp.clone();
    let thread = std::thread::spawn(move || {
        tid_tx.send(gettid()).unwrap();
        let host = interp.attach();
        f(&host)
    });
    let tid = tid_rx.recv().expect("the thread reports its id");
    (thread, tid)
}

#[test]
fn a_join_of_a_foreign_handle_waits_for_set_done_and_a_zero_timeout_never_waits() {
    bounded("foreign join", || {
        let interp = MiniInterpreter::new();
        let module = ModuleState::new(1);
        let main = Arc::new(ThreadHandle::foreign(&module, 1));
        let theirs = Arc::clone(&main);
        let (joiner, tid) = attached_thread(&interp, move |host| {
            theirs.join(host, None).unwrap();
            theirs.is_done()
        });
        wait_until_blocked(tid);
        main.set_done(&interp.attach()).unwrap();
        assert!(joiner.join().unwrap(), "the join returned before _set_done");

        let other = ThreadHandle::foreign(&module, 2);
        other.join(&interp.attach(), Some(Duration::ZERO)).unwrap();
        assert!(!other.is_done());
    });
}

#[test]
fn an_rlock_held_by_another_thread_is_waited_for_unless_the_call_only_tries() {
    bounded("rlock wait", || {
        let interp = MiniInterpreter::new();
        let rlock = Arc::new(RLockObject::new());
        rlock.acquire(&interp.attach(), None).unwrap();

        let l = Arc::clone(&rlock);
        let (trier, _) =
            attached_thread(&interp, move |host| l.acquire(host, Some(Duration::ZERO)));
        assert_eq!(trier.join().unwrap(), Ok(false), "a try never waits");

        let released = Arc::new(AtomicBool::new(false));
        let (l, r) = (Arc::clone(&rlock), Arc::clone(&released));
        let (waiter, tid) = attached_thread(&interp, move |host| {
            let got = l.acquire(host, None);
            let owned = l.is_owned::<MiniHost>();
            (got, r.load(Ordering::SeqCst), owned)
        });
        wait_until_blocked(tid);
        released.store(true, Ordering::SeqCst);
        rlock.release::<MiniHost>().unwrap();
        assert_eq!(
            waiter.join().unwrap(),
            (Ok(true), true, true),
            "the waiter got the lock, after the release, and owns it"
        );
    });
}

#[test]
fn an_rlocks_locked_release_save_and_fork_reinit() {
    bounded("rlock state", || {
        let interp = MiniInterpreter::new();
        let host = interp.attach();
        let rlock = RLockObject::new();
        assert!(!rlock.locked());
        assert_eq!(
            rlock.release_save::<MiniHost>(ReleaseSaveRule::AnyThread),
            Err(Error::ReleaseUnacquired),
            "an unheld RLock has nothing to save, whoever asks"
        );
        rlock.acquire(&host, None).unwrap();
        assert!(rlock.locked());
        rlock.release::<MiniHost>().unwrap();
        assert!(!rlock.locked());

        rlock.acquire(&host, None).unwrap();
        rlock.acquire(&host, None).unwrap();
        rlock.at_fork_reinit();
        assert!(!rlock.locked());
        assert!(!rlock.is_owned::<MiniHost>());
        assert_eq!(rlock.state(), (0, 0));
        drop(host);
        let rlock = Arc::new(rlock);
        let l = Arc::clone(&rlock);
        let (other, _) =
            attached_thread(&interp, move |host| l.acquire(host, Some(Duration::ZERO)));
        assert_eq!(
            other.join().unwrap(),
            Ok(true),
            "free for any thread after the reinit"
        );
    });
}

#[test]
fn stack_size_takes_zero_and_the_minimum_and_refuses_below() {
    let module = ModuleState::new(1);
    assert_eq!(module.stack_size(Some(0)), Ok(0), "0: the platform default");
    assert_eq!(
        module.stack_size(Some(0x8000)),
        Ok(0),
        "THREAD_STACK_MIN itself"
    );
    assert_eq!(
        module.stack_size(Some(0x7fff)),
        Err(Error::StackSizeInvalid(0x7fff))
    );
    assert_eq!(module.stack_size(Some(-1)), Err(Error::StackSizeNegative));
    assert_eq!(module.stack_size(None), Ok(0x8000));
}

#[test]
fn local_dicts_debug_names_the_type() {
    let local: LocalDicts<u8> = LocalDicts::new();
    assert!(format!("{local:?}").starts_with("LocalDicts"));
}

/// `_count()`: the threads the module started that still run (the only ones this test binary
/// starts through the crate).
#[test]
fn count_is_the_module_threads_still_running() {
    bounded("_count", || {
        let interp = MiniInterpreter::new();
        let host = interp.attach();
        let module = ModuleState::new(MiniHost::get_ident());
        let gate = Arc::new(pythread::Lock::new());
        gate.acquire();
        let (started, started_rx) = mpsc::channel();
        for _ in 0..2 {
            let (gate, started) = (Arc::clone(&gate), started.clone());
            let f = MiniFunction::new("counted", move |host| {
                started.send(()).unwrap();
                host.allow_threads(|| gate.acquire());
                let _ = gate.release();
                Ok(())
            });
            threadmodule::start_new_thread(&host, &module, interp.runner(f)).unwrap();
        }
        drop(host);
        for _ in 0..2 {
            started_rx.recv().unwrap();
        }
        assert_eq!(module.count(), 2);
        gate.release().unwrap();
        wait_for("both threads ended", || module.count() == 0);
    });
}

/// `join(timeout)`'s conversion: 0 is a poll, only a negative timeout waits forever.
#[test]
fn a_zero_join_timeout_polls() {
    assert_eq!(
        threadmodule::join_timeout(Some(0.0)),
        Ok(Some(Duration::ZERO))
    );
    assert_eq!(threadmodule::join_timeout(Some(-0.5)), Ok(None));
}

/// A `SentinelSlot`'s `Debug` says whether a sentinel is armed.
#[test]
fn a_sentinel_slot_shows_whether_it_is_armed() {
    let slot: threadmodule::SentinelSlot<Arc<threadmodule::LockObject>> =
        threadmodule::SentinelSlot::new();
    slot.set(Arc::new(threadmodule::LockObject::new()));
    assert!(format!("{slot:?}").contains("Armed"), "{slot:?}");
    slot.release();
    assert!(!format!("{slot:?}").contains("Armed"), "{slot:?}");
}

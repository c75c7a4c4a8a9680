//! Faults and bad input (issue 6), each provoked for real:
//!
//! - (a) spawn failure (Linux only: `RLIMIT_AS` is enforced there; macOS does not
//!   enforce it and Windows has no `sh` for `ulimit`, so elsewhere this test is not
//!   compiled and only the NUL-name error path of `try_start` is checked, in
//!   `tests/handle_extensions.rs`): a child process of this test binary, under
//!   `ulimit -v`, starts gated threads until `try_start` fails. The failure is an `Err` with `f` dropped
//!   unrun, `start` and `Builder::try_start` fail the same way (`start` panicking with
//!   "can't start new thread"), and once the gated threads are released and joined the
//!   crate starts as many threads again: nothing was lost or leaked on the way.
//! - (b) a panic payload whose own `Drop` panics, dropped by the last joiner or, when
//!   detached, by the started thread itself; also an endless chain of such payloads. Run
//!   in child processes: the process neither aborts nor hangs, the payload is dropped
//!   exactly where it should be, and later starts work.
//! - (c) a payload whose `Debug`/`Display` panic: `message()`, formatting the `Panic`
//!   or the `Handle`, joining and dropping never call them.
//! - (d) a function that panics while holding its own `std` locks: the user's lock is
//!   poisoned, the crate is not; later starts and joins work.
//!
//! Child processes are `#[ignore]`d tests of this binary that act only when the parent
//! sets `support::CHILD_ENV` to their name; the parent bounds their run time. Every
//! blocking wait is bounded by the shared watchdog (`support::WATCHDOG`).
#![cfg(not(loom))]

mod support;

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, mpsc};
use std::thread::ThreadId;
use std::time::Duration;

use pythread::{Builder, Handle, Panic};
use support::{
    current_tid, gate, is_child, join_std, recv, run_child, signal_on_exit, wait_until,
    wait_until_asleep,
};

const CHILD_LIMIT: Duration = Duration::from_secs(90);
const CHILD_OK: &str = "PYTHREAD-CHILD-OK";

/// Counts how often it was dropped (the spawn-failure test: Linux only).
#[cfg(target_os = "linux")]
struct DropCount(Arc<AtomicUsize>);

#[cfg(target_os = "linux")]
impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// `join()`, bounded by the watchdog.
fn join_bounded(handle: &Handle) -> Result<(), Panic> {
    support::join(handle)
}

/// The text of a string panic payload (the spawn-failure test: Linux only).
#[cfg(target_os = "linux")]
fn payload_text(payload: &(dyn std::any::Any + Send)) -> Option<String> {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
}

/// Starts and joins a few threads, one of them panicking: the crate still works.
fn crate_still_works() {
    let handles: Vec<_> = (0..4)
        .map(|i| {
            pythread::start(move || {
                if i == 3 {
                    panic!("a later, ordinary panic");
                }
            })
        })
        .collect();
    for (i, handle) in handles.iter().enumerate() {
        assert_eq!(join_bounded(handle).is_err(), i == 3);
    }
    assert!(join_bounded(&pythread::try_start(|| {}).unwrap()).is_ok());
}

fn assert_child_ok(name: &str, address_space_kib: Option<u64>) -> support::ChildRun {
    let run = run_child(name, address_space_kib, CHILD_LIMIT);
    assert!(
        run.status.success() && run.stdout.contains(CHILD_OK),
        "child {name} failed (an abort shows as a signal):\n{}",
        run.describe()
    );
    run
}

// ------------------------------------------------------------- (a) spawn failure
//
// Linux only (see the module doc): `sh -c "ulimit -v"` and an enforced `RLIMIT_AS`.

#[cfg(target_os = "linux")]
/// The address space the spawn-failure child gets: the test binary starts in far
/// less, and each thread's 2 MiB stack eats into the rest until the OS refuses one.
const SPAWN_FAILURE_AS_KIB: u64 = 128 * 1024;
#[cfg(target_os = "linux")]
/// More threads than fit in [`SPAWN_FAILURE_AS_KIB`]: reaching it means the limit did
/// not bite, and the child fails instead of starting threads forever.
const MAX_THREADS: usize = 2000;

/// `join_timeout(WATCHDOG)`: the bounded join of the spawn-failure child, which
/// cannot use `support::join` (its helper thread would not fit under the limit).
#[cfg(target_os = "linux")]
fn join_without_a_helper(handle: &Handle) -> Result<(), Panic> {
    handle.join_timeout(support::WATCHDOG).unwrap_or_else(|| {
        panic!(
            "watchdog: join_timeout of thread {}: timed out",
            handle.ident()
        )
    })
}

#[cfg(target_os = "linux")]
/// A function that must never run: it counts runs and (through `DropCount`) drops.
fn doomed(runs: &Arc<AtomicUsize>, drops: &Arc<AtomicUsize>) -> impl FnOnce() + Send + 'static {
    let (runs, dropped) = (Arc::clone(runs), DropCount(Arc::clone(drops)));
    move || {
        let _dropped = dropped;
        runs.fetch_add(1, Ordering::SeqCst);
    }
}

#[cfg(target_os = "linux")]
#[test]
#[ignore = "child process of spawn_failure_is_an_error_and_the_crate_recovers"]
fn child_spawn_failure() {
    if !is_child("child_spawn_failure") {
        return;
    }
    let ran = Arc::new(AtomicUsize::new(0));
    let mut openers: Vec<support::Opener> = Vec::new();
    let mut handles: Vec<Handle> = Vec::new();
    let (runs, drops) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let error = loop {
        assert!(
            handles.len() < MAX_THREADS,
            "{MAX_THREADS} threads started under the limit: it never bit"
        );
        let (opener, wait) = gate();
        let r = Arc::clone(&ran);
        let (f_runs, f_drops) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let counted = doomed(&f_runs, &f_drops);
        let f = move || {
            r.fetch_add(1, Ordering::SeqCst);
            wait();
            counted();
        };
        match pythread::try_start(f) {
            Ok(handle) => {
                handles.push(handle);
                openers.push(opener);
            }
            Err(error) => {
                // f dropped, not run, and nothing kept it alive.
                assert_eq!(f_drops.load(Ordering::SeqCst), 1, "f was not dropped");
                assert_eq!(f_runs.load(Ordering::SeqCst), 0, "f ran");
                assert_eq!(Arc::strong_count(&f_runs), 1, "f leaked");
                break error;
            }
        }
    };
    let started = handles.len();
    println!("try_start refused thread #{}: {error}", started + 1);
    assert!(
        started > 0,
        "not even one thread fit: the limit is too tight"
    );
    assert_ne!(error.kind(), std::io::ErrorKind::InvalidInput);

    // While the gated threads hold the address space, every way of starting fails.
    let err = Builder::new()
        .name("refused")
        .try_start(doomed(&runs, &drops))
        .expect_err("a named thread fit where none did");
    println!("Builder::try_start refused too: {err}");
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    let caught = panic::catch_unwind(AssertUnwindSafe(|| pythread::start(doomed(&runs, &drops))))
        .expect_err("start did not panic on a spawn failure");
    let text = payload_text(&*caught).expect("a string panic message");
    println!("start panicked: {text}");
    assert!(text.contains("can't start new thread"), "{text}");
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert_eq!(Arc::strong_count(&runs), 1);

    // Release and join every gated thread: each ran exactly once.
    drop(openers);
    for handle in &handles {
        assert!(join_without_a_helper(handle).is_ok());
    }
    assert_eq!(ran.load(Ordering::SeqCst), started);
    drop(handles);

    // The crate recovers fully: as many threads fit again. A joined thread's stack is
    // freed when its OS thread exits, just after the join, so retry for a while.
    let shared_gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let mut again = Vec::new();
    let deadline = std::time::Instant::now() + support::WATCHDOG;
    while again.len() < started {
        let g = Arc::clone(&shared_gate);
        let f = move || {
            let (open, cv) = &*g;
            let guard = open.lock().unwrap();
            let _ = cv.wait_timeout_while(guard, support::GATE_FALLBACK, |open| !*open);
        };
        match pythread::try_start(f) {
            Ok(handle) => again.push(handle),
            Err(error) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no recovery: {} of {started} threads fit again: {error}",
                    again.len()
                );
                std::thread::sleep(Duration::from_millis(5)); // retry pace
            }
        }
    }
    *shared_gate.0.lock().unwrap() = true;
    shared_gate.1.notify_all();
    for handle in &again {
        assert!(join_without_a_helper(handle).is_ok());
    }
    println!("{CHILD_OK}: {started} threads before the refusal, {started} again after");
}

#[cfg(target_os = "linux")]
#[test]
fn spawn_failure_is_an_error_and_the_crate_recovers() {
    let run = assert_child_ok("child_spawn_failure", Some(SPAWN_FAILURE_AS_KIB));
    assert!(
        run.stderr.contains("can't start new thread"),
        "the panic hook did not report start's panic:\n{}",
        run.describe()
    );
}

// ------------------------------------------------- (b) payloads whose Drop panics

/// Where and how often a [`Bomb`] was dropped.
#[derive(Default)]
struct BombLog {
    drops: AtomicUsize,
    dropped_on: Mutex<Vec<(ThreadId, Option<String>)>>,
}

/// A panic payload whose `Drop` panics. With `chain`, the panic it raises carries a
/// new `Bomb` in turn: an endless chain of them.
struct Bomb {
    log: Arc<BombLog>,
    chain: bool,
}

impl Drop for Bomb {
    fn drop(&mut self) {
        self.log.drops.fetch_add(1, Ordering::SeqCst);
        let me = std::thread::current();
        self.log
            .dropped_on
            .lock()
            .unwrap()
            .push((me.id(), me.name().map(str::to_owned)));
        if self.chain {
            panic::panic_any(Bomb {
                log: Arc::clone(&self.log),
                chain: true,
            });
        }
        panic!("the payload's Drop panics");
    }
}

fn joined_bomb(chain: bool) {
    let log = Arc::new(BombLog::default());
    let (exit_tx, exited) = mpsc::channel();
    let l = Arc::clone(&log);
    let handle = pythread::start(move || {
        signal_on_exit(exit_tx);
        panic::panic_any(Bomb { log: l, chain });
    });
    // Several joiners, one of them on another thread, all get the same Panic.
    let other = handle.clone();
    let remote = std::thread::spawn(move || other.join().unwrap_err());
    let panic = join_bounded(&handle).unwrap_err();
    assert!(panic.is::<Bomb>());
    assert!(Panic::ptr_eq(
        &panic,
        &join_std(remote, "the remote joiner")
    ));
    // Once the started thread has exited, the joiner holds the last reference.
    recv(&exited, "the started thread's exit");
    assert_eq!(log.drops.load(Ordering::SeqCst), 0, "dropped too early");
    drop(handle);
    drop(panic); // the last Panic: the payload is dropped here, and its panic caught
    let drops = log.drops.load(Ordering::SeqCst);
    if chain {
        assert!(drops >= 2, "the chain was not followed: {drops}");
    } else {
        assert_eq!(drops, 1);
    }
    let here = std::thread::current().id();
    assert!(
        log.dropped_on
            .lock()
            .unwrap()
            .iter()
            .all(|(id, _)| *id == here),
        "the payload was not dropped by its last joiner"
    );
}

fn detached_bomb(chain: bool) {
    let log = Arc::new(BombLog::default());
    let (exit_tx, exited) = mpsc::channel();
    let (opener, wait) = gate();
    let l = Arc::clone(&log);
    let handle = Builder::new().name("bomb-detached").start(move || {
        signal_on_exit(exit_tx);
        wait();
        panic::panic_any(Bomb { log: l, chain });
    });
    let clone = handle.clone();
    drop(handle);
    drop(clone); // detached while still at the gate
    opener.open();
    wait_until("the detached payload's drop", || {
        log.drops.load(Ordering::SeqCst) > 0
    });
    recv(&exited, "the detached thread's exit");
    let dropped_on = log.dropped_on.lock().unwrap();
    assert!(
        dropped_on
            .iter()
            .all(|(_, name)| name.as_deref() == Some("bomb-detached")),
        "the detached payload was not dropped on its own thread: {:?}",
        *dropped_on
    );
    if chain {
        assert!(dropped_on.len() >= 2, "the chain was not followed");
    } else {
        assert_eq!(dropped_on.len(), 1);
    }
}

#[test]
#[ignore = "child process of a_payload_whose_drop_panics_neither_aborts_nor_hangs"]
fn child_drop_bomb() {
    if !is_child("child_drop_bomb") {
        return;
    }
    for chain in [false, true] {
        joined_bomb(chain);
        crate_still_works();
        detached_bomb(chain);
        crate_still_works();
    }
    println!("{CHILD_OK}");
}

#[test]
fn a_payload_whose_drop_panics_neither_aborts_nor_hangs() {
    let run = assert_child_ok("child_drop_bomb", None);
    // The panics of the payloads' Drop were reported by the hook, not swallowed.
    assert!(
        run.stderr.contains("the payload's Drop panics"),
        "{}",
        run.describe()
    );
}

// ------------------------------------------- (c) payloads whose Debug/Display panic

/// A payload whose `Debug` and `Display` count their calls and panic.
struct Touchy(Arc<AtomicUsize>);

impl fmt::Debug for Touchy {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fetch_add(1, Ordering::SeqCst);
        panic!("the payload's Debug was called");
    }
}

impl fmt::Display for Touchy {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fetch_add(1, Ordering::SeqCst);
        panic!("the payload's Display was called");
    }
}

#[test]
fn payload_debug_and_display_are_never_called() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let handle = pythread::start(move || panic::panic_any(Touchy(c)));
    let panic = join_bounded(&handle).unwrap_err();
    let text = panic::catch_unwind(AssertUnwindSafe(|| {
        assert_eq!(panic.message(), None);
        assert!(panic.is::<Touchy>());
        let shown = format!("{panic} | {panic:?} | {panic:#?} | {handle:?}");
        let as_error: &dyn std::error::Error = &panic;
        let _ = as_error.source();
        let _ = as_error.to_string();
        assert!(Panic::ptr_eq(&panic, &handle.join().unwrap_err())); // finished
        shown
    }))
    .expect("formatting or querying the Panic called into the payload");
    assert!(text.contains("non-string payload"), "{text}");
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    // The payload comes back intact, still never formatted.
    let payload = panic.take_payload().expect("first take");
    let touchy = payload.downcast::<Touchy>().expect("a Touchy");
    assert!(Arc::ptr_eq(&touchy.0, &calls));
    drop((touchy, panic, handle));
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    // Detached: the started thread drops it, still without formatting it.
    let c = Arc::clone(&calls);
    let (exit_tx, exited) = mpsc::channel();
    drop(pythread::start(move || {
        signal_on_exit(exit_tx);
        panic::panic_any(Touchy(c));
    }));
    recv(&exited, "the detached thread's exit");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(Arc::strong_count(&calls), 1, "the payload was not dropped");
}

// ------------------------------------- (d) panicking while holding the user's locks

#[test]
fn panicking_while_holding_user_locks_does_not_poison_the_crate() {
    let mutex = Arc::new(Mutex::new(0_u32));
    let rwlock = Arc::new(RwLock::new(0_u32));
    let (opener, wait) = gate();
    let (m, r) = (Arc::clone(&mutex), Arc::clone(&rwlock));
    let handle = pythread::start(move || {
        wait();
        let mut count = m.lock().unwrap();
        let mut value = r.write().unwrap();
        *count += 1;
        *value += 1;
        panic!("panicking with the user's locks held");
    });
    // Joiners already asleep in the crate's wait when the panic unwinds (on Linux
    // seen in the kernel's thread states: each joiner reports its tid, then joins,
    // and blocks nowhere else).
    let (tid_tx, tids) = mpsc::channel();
    let joiners: Vec<_> = (0..3)
        .map(|_| {
            let (h, tid_tx) = (handle.clone(), tid_tx.clone());
            std::thread::spawn(move || {
                tid_tx.send(current_tid()).unwrap();
                h.join()
            })
        })
        .collect();
    let tids: Vec<_> = (0..3).map(|_| recv(&tids, "a joiner's tid")).collect();
    wait_until_asleep("the joiners", &tids);
    opener.open();
    let panic = join_bounded(&handle).unwrap_err();
    assert_eq!(
        panic.message(),
        Some("panicking with the user's locks held")
    );
    for joiner in joiners {
        let theirs = join_std(joiner, "a joiner").unwrap_err();
        assert!(Panic::ptr_eq(&panic, &theirs));
    }
    // The user's locks are poisoned (the scenario is real); the crate's are not.
    assert!(mutex.is_poisoned());
    assert!(rwlock.is_poisoned());
    for _ in 0..3 {
        crate_still_works();
    }
    let again = handle.join_timeout(Duration::ZERO).unwrap().unwrap_err();
    assert!(Panic::ptr_eq(&panic, &again));
    assert!(handle.is_finished());
    // A gated thread still blocks joiners and wakes them: the crate's condvar works.
    let (opener, wait) = gate();
    let gated = pythread::start(wait);
    assert!(gated.join_timeout(Duration::from_millis(10)).is_none());
    opener.open();
    assert!(join_bounded(&gated).is_ok());
}

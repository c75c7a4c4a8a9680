//! `count`, `Builder::daemon`, `shutdown` and `Builder::stack_size` (issue 11).
//!
//! `count` and the non-daemon list are process-wide, so every test here takes
//! [`serial`] first: no other test of this binary starts threads meanwhile.
#![cfg(not(loom))]

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use pythread::{Builder, Handle};

const WATCHDOG: Duration = Duration::from_secs(30);

fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Waits (bounded) until `condition` holds; fails with `what` otherwise.
fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + WATCHDOG;
    while !condition() {
        assert!(Instant::now() < deadline, "not within {WATCHDOG:?}: {what}");
        thread::yield_now();
    }
}

fn join_bounded<T: Clone>(handle: &Handle<T>) -> T {
    handle
        .join_timeout(WATCHDOG)
        .unwrap_or_else(|| {
            panic!(
                "thread {} did not finish within {WATCHDOG:?}",
                handle.ident()
            )
        })
        .unwrap_or_else(|panic| panic!("thread {} panicked: {panic:?}", handle.ident()))
}

/// Runs `shutdown` on a helper thread and fails if it does not return in time.
fn shutdown_bounded() {
    let (done, returned) = mpsc::channel();
    thread::spawn(move || {
        pythread::shutdown();
        done.send(()).unwrap();
    });
    returned
        .recv_timeout(WATCHDOG)
        .expect("shutdown returned within the watchdog");
}

#[test]
fn count_rises_while_fns_run_and_has_fallen_when_join_returns() {
    let _serial = serial();
    let base = pythread::count();
    assert_eq!(base, 0, "no thread of this binary runs between tests");
    let gates: Vec<_> = (0..4).map(|_| support::gate()).collect();
    let mut openers = Vec::new();
    let mut handles = Vec::new();
    for (opener, wait) in gates {
        openers.push(opener);
        handles.push(pythread::start(wait));
    }
    wait_until("all four fns counted", || pythread::count() == 4);
    for (i, (opener, handle)) in openers.into_iter().zip(&handles).enumerate() {
        opener.open();
        join_bounded(handle);
        // Exact: the decrement happens-before the outcome a join returns.
        assert_eq!(pythread::count(), 3 - i, "after joining thread {i}");
    }
    // Start then join, many times, panics included: never one too many after join.
    support::silence_intended_panics();
    for round in 0..200 {
        let handle = pythread::start(move || {
            if round % 3 == 0 {
                support::set_quiet(true);
                panic!("round {round}");
            }
        });
        let _ = handle.join_timeout(WATCHDOG).expect("finished in time");
        assert_eq!(pythread::count(), 0, "round {round}");
    }
}

#[test]
fn daemon_is_the_default_and_shutdown_does_not_wait_for_daemons() {
    let _serial = serial();
    let (opener, wait) = support::gate();
    let daemon = pythread::start(wait);
    let explicit = Builder::new().daemon(true).start(|| {});
    join_bounded(&explicit);
    shutdown_bounded(); // the daemon thread is still blocked at its gate
    assert!(!daemon.is_finished());
    opener.open();
    join_bounded(&daemon);
}

#[test]
fn shutdown_waits_for_a_detached_non_daemon_thread() {
    let _serial = serial();
    let entering = Arc::new(AtomicBool::new(false));
    let (opener, wait) = support::gate();
    let handle = Builder::new().daemon(false).start(wait);
    let watcher = handle.clone();
    drop(handle); // detached: only the registry still knows it
    let e = Arc::clone(&entering);
    let helper = thread::spawn(move || {
        wait_until("shutdown is being entered", || e.load(Ordering::SeqCst));
        opener.open();
    });
    entering.store(true, Ordering::SeqCst);
    pythread::shutdown();
    assert!(
        watcher.is_finished(),
        "shutdown returned before the non-daemon fn ended"
    );
    helper.join().unwrap();
}

#[test]
fn shutdown_waits_for_the_os_thread_exit() {
    let _serial = serial();
    thread_local! {
        static ON_EXIT: std::cell::RefCell<Option<mpsc::Sender<()>>> =
            const { std::cell::RefCell::new(None) };
    }
    let (tx, rx) = mpsc::channel::<()>();
    drop(Builder::new().daemon(false).start(move || {
        ON_EXIT.with(|slot| *slot.borrow_mut() = Some(tx));
    }));
    pythread::shutdown();
    // The sender lived in a thread-local of the thread: gone once it has exited,
    // unless shutdown missed the thread because it had already unregistered.
    match rx.recv_timeout(WATCHDOG) {
        Err(mpsc::RecvTimeoutError::Disconnected) => {}
        other => panic!("the thread had not exited: {other:?}"),
    }
}

#[test]
fn shutdown_from_a_non_daemon_fn_does_not_wait_for_itself() {
    let _serial = serial();
    let handle = Builder::new().daemon(false).start(|| {
        pythread::shutdown();
        "returned"
    });
    assert_eq!(join_bounded(&handle), "returned");
    shutdown_bounded();
}

#[test]
fn shutdown_waits_for_non_daemon_threads_started_meanwhile() {
    let _serial = serial();
    let entering = Arc::new(AtomicBool::new(false));
    let b_done = Arc::new(AtomicBool::new(false));
    let (a_opener, a_wait) = support::gate();
    let (b_opener, b_wait) = support::gate();
    let (b_handle_tx, b_handle_rx) = mpsc::channel();
    let bd = Arc::clone(&b_done);
    // A waits until shutdown is running, then starts B (non-daemon, detached) and
    // ends; B ends only after A has finished.
    let a = Builder::new().daemon(false).start(move || {
        a_wait();
        let b = Builder::new().daemon(false).start(move || {
            b_wait();
            bd.store(true, Ordering::SeqCst);
        });
        b_handle_tx.send(b.clone()).unwrap();
    });
    let (e, a_watch) = (Arc::clone(&entering), a.clone());
    drop(a);
    let helper = thread::spawn(move || {
        wait_until("shutdown is being entered", || e.load(Ordering::SeqCst));
        a_opener.open();
        wait_until("A finished", || a_watch.is_finished());
        b_opener.open();
    });
    entering.store(true, Ordering::SeqCst);
    pythread::shutdown();
    assert!(
        b_done.load(Ordering::SeqCst),
        "shutdown returned before B, started during shutdown, ended"
    );
    helper.join().unwrap();
    let b = b_handle_rx.recv_timeout(WATCHDOG).unwrap();
    assert!(b.is_finished());
}

#[test]
fn a_failed_non_daemon_start_is_unregistered() {
    let _serial = serial();
    // A stack the OS cannot map: CPython's deterministic "can't start new thread".
    let err = Builder::new()
        .daemon(false)
        .stack_size(1 << 46)
        .try_start(|| {})
        .expect_err("a 64 TiB stack cannot be mapped");
    assert_ne!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert_eq!(pythread::count(), 0);
    // Had it stayed registered, shutdown would wait for a thread that never ran.
    shutdown_bounded();
}

#[test]
fn stack_size_below_32_kib_is_invalid_input() {
    let _serial = serial();
    for bytes in [1, 4096, 16384, 32767] {
        let err = Builder::new()
            .daemon(false)
            .stack_size(bytes)
            .try_start(|| {})
            .expect_err("below THREAD_STACK_MIN");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{bytes}");
        assert!(err.to_string().contains("32768"), "{err}");
    }
    let panicked = std::panic::catch_unwind(|| Builder::new().stack_size(100).start(|| {}));
    let message = panicked.expect_err("start panics on a bad size");
    let message = message.downcast_ref::<String>().unwrap();
    assert!(message.contains("invalid stack size"), "{message}");
    // Nothing registered: shutdown returns at once.
    shutdown_bounded();
    for bytes in [0, 32768, 1 << 20] {
        let handle = Builder::new().stack_size(bytes).start(move || bytes);
        assert_eq!(join_bounded(&handle), bytes);
    }
}

/// Uses about `depth` KiB of stack.
#[inline(never)]
fn recurse(depth: usize) -> usize {
    let frame = std::hint::black_box([depth as u8; 1024]);
    if depth == 0 {
        return usize::from(frame[0]);
    }
    recurse(depth - 1) + usize::from(std::hint::black_box(frame)[1])
}

#[test]
fn stack_size_gives_the_thread_that_stack() {
    let _serial = serial();
    // In a child process: if the size were ignored, the overflow would abort it.
    let run = support::run_child("deep_recursion_on_a_64_mib_stack", None, WATCHDOG);
    assert!(run.status.success(), "{}", run.describe());
    assert!(
        run.stdout.contains("recursed 4096 KiB"),
        "{}",
        run.describe()
    );
}

#[test]
#[ignore = "run by stack_size_gives_the_thread_that_stack in a child process"]
fn deep_recursion_on_a_64_mib_stack() {
    if !support::is_child("deep_recursion_on_a_64_mib_stack") {
        return;
    }
    const DEPTH: usize = 4 * 1024; // at least 4 MiB of frames: twice the 2 MiB default
    let handle = Builder::new().stack_size(64 << 20).start(|| recurse(DEPTH));
    let expected: usize = (1..=DEPTH).map(|d| d % 256).sum();
    assert_eq!(join_bounded(&handle), expected);
    println!("recursed {DEPTH} KiB");
}

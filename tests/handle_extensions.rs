//! The handle extensions of issue 6, tested through the public API only:
//!
//! - `try_start` starts and joins like `start`;
//! - `Builder::name` is the thread's name inside it (`std::thread::current().name()`,
//!   and on Linux the OS thread name) and in the panic hook's message (checked in a
//!   child process, so the shared test binary's panic hook stays untouched); a name
//!   with a NUL byte is `InvalidInput` and `f` is dropped without running;
//! - `current_ident` is `None` outside started functions and `Some(own ident)` inside,
//!   including in the drops of the values the function captured;
//! - a function joining its own handle (`join`, `join_timeout`) panics with "cannot
//!   join current thread" instead of deadlocking, and the joiner outside gets that
//!   panic as `Err(Panic)`;
//! - `join_timeout`: `ZERO` polls without blocking, a short timeout waits at least that
//!   long and returns `None`, huge timeouts (`Duration::MAX`, `u64::MAX` seconds) do not
//!   overflow and wait until the end, and a `Some` is the very outcome of `join`;
//! - `is_finished`: `false` while the function is held at a gate, and once `true`,
//!   joining returns at once.
//!
//! Every blocking wait is bounded by the shared watchdog (`support::WATCHDOG`:
//! `support::join`, `join_std`, `recv`, `wait_until`; gated functions give up after
//! `support::GATE_FALLBACK`), so a bug fails a test with a message instead of
//! hanging it.
#![cfg(not(loom))]

mod support;

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use pythread::{Builder, Handle, Ident, Panic};
use support::{
    WATCHDOG, current_tid, gate, is_child, join_std, recv, run_child, wait_until_asleep,
};

/// Counts how often it was dropped.
struct DropCount(Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The message of a caught panic payload, when it is a string.
fn payload_text(payload: &(dyn std::any::Any + Send)) -> Option<String> {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
}

/// `join()`, bounded by the watchdog: a join that would hang fails the test instead.
fn join_bounded(handle: &Handle) -> Result<(), Panic> {
    support::join(handle)
}

// ---------------------------------------------------------------- try_start

#[test]
fn try_start_runs_the_function_once_and_joins() {
    let runs = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&runs);
    let handle = pythread::try_start(move || {
        r.fetch_add(1, Ordering::SeqCst);
    })
    .expect("the OS refused a single thread");
    assert!(join_bounded(&handle).is_ok());
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    let failing = pythread::try_start(|| panic!("from try_start")).unwrap();
    assert_eq!(
        join_bounded(&failing).unwrap_err().message(),
        Some("from try_start")
    );
}

// ---------------------------------------------------------------- Builder::name

#[test]
fn builder_name_is_the_thread_name_inside() {
    let (tx, rx) = mpsc::channel();
    let handle = Builder::new()
        .name("pythread-named")
        .try_start(move || {
            tx.send(std::thread::current().name().map(str::to_owned))
                .unwrap();
        })
        .unwrap();
    join_bounded(&handle).unwrap();
    assert_eq!(recv(&rx, "the name").as_deref(), Some("pythread-named"));

    // `start` names too, and an unnamed builder leaves the thread unnamed.
    let (tx, rx) = mpsc::channel();
    let t = tx.clone();
    let named = Builder::new().name("via-start").start(move || {
        t.send(std::thread::current().name().map(str::to_owned))
            .unwrap()
    });
    join_bounded(&named).unwrap();
    let unnamed = Builder::new().start(move || {
        tx.send(std::thread::current().name().map(str::to_owned))
            .unwrap()
    });
    join_bounded(&unnamed).unwrap();
    assert_eq!(recv(&rx, "the name").as_deref(), Some("via-start"));
    assert_eq!(recv(&rx, "the name"), None);
}

#[cfg(target_os = "linux")]
#[test]
fn builder_name_is_the_os_thread_name() {
    let (tx, rx) = mpsc::channel();
    let handle = Builder::new().name("os-visible").start(move || {
        tx.send(std::fs::read_to_string("/proc/thread-self/comm"))
            .unwrap()
    });
    join_bounded(&handle).unwrap();
    assert_eq!(recv(&rx, "the OS name").unwrap().trim_end(), "os-visible");
}

#[test]
#[ignore = "child process of builder_name_shows_in_the_panic_message"]
fn child_named_thread_panics() {
    if !is_child("child_named_thread_panics") {
        return;
    }
    // The default panic hook, untouched: it prints the thread's name.
    let handle = Builder::new()
        .name("named-panicker")
        .start(|| panic!("named boom"));
    let panic = join_bounded(&handle).unwrap_err();
    assert_eq!(panic.message(), Some("named boom"));
    println!("CHILD-DONE");
}

#[test]
fn builder_name_shows_in_the_panic_message() {
    let run = run_child("child_named_thread_panics", None, 2 * WATCHDOG);
    assert!(run.status.success(), "{}", run.describe());
    assert!(run.stdout.contains("CHILD-DONE"), "{}", run.describe());
    assert!(
        run.stderr.contains("thread 'named-panicker'") && run.stderr.contains("named boom"),
        "the panic hook did not name the thread: {}",
        run.describe()
    );
}

#[test]
fn nul_in_name_is_invalid_input_and_f_is_dropped_unrun() {
    let drops = Arc::new(AtomicUsize::new(0));
    let runs = Arc::new(AtomicUsize::new(0));
    let (d, r) = (DropCount(Arc::clone(&drops)), Arc::clone(&runs));
    let err = Builder::new()
        .name("bad\0name")
        .try_start(move || {
            let _keep = &d;
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(drops.load(Ordering::SeqCst), 1, "f was not dropped");
    assert_eq!(runs.load(Ordering::SeqCst), 0, "f ran");
    // No thread was left behind holding f: the counter is ours alone again.
    assert_eq!(Arc::strong_count(&runs), 1);

    let caught = panic::catch_unwind(|| Builder::new().name("\0").start(|| {})).unwrap_err();
    let text = payload_text(&*caught).expect("a string message");
    assert!(text.contains("NUL"), "{text}");
}

// ---------------------------------------------------------------- current_ident

#[test]
fn current_ident_is_none_outside_started_functions() {
    assert_eq!(pythread::current_ident(), None, "test thread");
    let on_std = join_std(std::thread::spawn(pythread::current_ident), "a std thread");
    assert_eq!(on_std, None, "std thread");
    // And again on a thread after a started function ran and finished there? A
    // started thread ends with its function; the test thread stays `None` after
    // joining one.
    let handle = pythread::start(|| assert!(pythread::current_ident().is_some()));
    join_bounded(&handle).unwrap();
    assert_eq!(pythread::current_ident(), None);
}

/// Records `current_ident()` when dropped.
struct RecordIdentOnDrop(Arc<Mutex<Vec<Option<Ident>>>>);

impl Drop for RecordIdentOnDrop {
    fn drop(&mut self) {
        self.0.lock().unwrap().push(pythread::current_ident());
    }
}

#[test]
fn current_ident_is_the_own_ident_inside_and_in_drops_of_captures() {
    for panics in [false, true] {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let captured = RecordIdentOnDrop(Arc::clone(&seen));
        let inside = Arc::clone(&seen);
        let handle = pythread::start(move || {
            let _captured = captured; // dropped at the end (or while unwinding)
            inside.lock().unwrap().push(pythread::current_ident());
            if panics {
                panic!("unwinding through the captures");
            }
        });
        assert_eq!(join_bounded(&handle).is_err(), panics);
        let own = Some(handle.ident());
        assert_eq!(*seen.lock().unwrap(), vec![own, own], "panics: {panics}");
    }
}

#[test]
fn current_ident_in_a_nested_start_is_the_inner_ident() {
    let (tx, rx) = mpsc::channel();
    let outer = pythread::start(move || {
        let outer_ident = pythread::current_ident();
        let t = tx.clone();
        let inner = pythread::start(move || t.send(pythread::current_ident()).unwrap());
        inner.join().unwrap(); // bounded: the outer join below is
        tx.send(Some(inner.ident())).unwrap();
        // Back in the outer function: its own ident again.
        tx.send(outer_ident).unwrap();
        tx.send(pythread::current_ident()).unwrap();
    });
    join_bounded(&outer).unwrap();
    let got: Vec<_> = rx.try_iter().collect();
    assert_eq!(got[0], got[1], "inner saw its own ident");
    assert_eq!(got[2], Some(outer.ident()));
    assert_eq!(got[3], Some(outer.ident()));
    assert_ne!(got[0], got[2]);
}

// ---------------------------------------------------------------- self-join

/// Starts a function that receives its own handle and calls `how` on it.
fn start_self_joining(how: fn(&Handle)) -> Handle {
    let (tx, rx) = mpsc::channel::<Handle>();
    let handle = pythread::start(move || {
        let me = rx.recv_timeout(WATCHDOG).expect("own handle");
        how(&me);
    });
    tx.send(handle.clone()).unwrap();
    handle
}

fn assert_cannot_join_current(handle: &Handle) {
    // A deadlocked self-join fails here, on the watchdog.
    let panic = join_bounded(handle).expect_err("self-join must panic");
    let message = panic.message().expect("a string message");
    assert!(
        message.contains("cannot join current thread"),
        "message: {message}"
    );
    // Delivered like any panic: every join sees the same one (finished: never blocks).
    assert!(Panic::ptr_eq(&panic, &handle.join().unwrap_err()));
}

#[test]
fn self_join_panics_instead_of_deadlocking() {
    assert_cannot_join_current(&start_self_joining(|me| {
        let _ = me.join(); // refused at once; the outer join is bounded
    }));
}

#[test]
fn self_join_timeout_panics_instead_of_waiting() {
    let cases: [fn(&Handle); 5] = [
        // ZERO too: CPython raises whatever the timeout; a self-poll can only say None.
        |me| drop(me.join_timeout(Duration::ZERO)),
        |me| drop(me.join_timeout(Duration::from_millis(1))),
        |me| drop(me.join_timeout(Duration::from_secs(3600))),
        |me| drop(me.join_timeout(Duration::from_secs(u64::MAX))),
        |me| drop(me.join_timeout(Duration::MAX)),
    ];
    for how in cases {
        assert_cannot_join_current(&start_self_joining(how));
    }
}

#[test]
fn self_join_panic_can_be_caught_inside_and_the_thread_goes_on() {
    let (tx, rx) = mpsc::channel();
    let handle = start_self_joining(|me| {
        let caught = panic::catch_unwind(AssertUnwindSafe(|| me.join())).unwrap_err();
        assert!(
            payload_text(&*caught)
                .unwrap()
                .contains("cannot join current thread")
        );
        // The handle is still perfectly usable from inside: a clone is `me`.
        assert!(!me.is_finished());
    });
    let watcher = handle.clone();
    let observer = pythread::start(move || tx.send(watcher.join().is_ok()).unwrap());
    assert!(join_bounded(&handle).is_ok());
    join_bounded(&observer).unwrap();
    assert!(recv(&rx, "the observer's join"));
}

// ---------------------------------------------------------------- join_timeout

#[test]
fn join_timeout_zero_polls_without_blocking() {
    let (opener, wait) = gate();
    let handle = pythread::start(wait);
    let started = Instant::now();
    for _ in 0..1000 {
        assert!(handle.join_timeout(Duration::ZERO).is_none());
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "ZERO blocked: {:?}",
        started.elapsed()
    );
    opener.open();
    assert!(join_bounded(&handle).is_ok());
    assert!(handle.join_timeout(Duration::ZERO).unwrap().is_ok());
}

#[test]
fn join_timeout_short_returns_none_after_at_least_the_timeout() {
    let (opener, wait) = gate();
    let handle = pythread::start(wait);
    for timeout in [
        Duration::from_nanos(1),
        Duration::from_millis(1),
        Duration::from_millis(50),
        Duration::from_millis(120),
    ] {
        let started = Instant::now();
        assert!(handle.join_timeout(timeout).is_none(), "{timeout:?}");
        let elapsed = started.elapsed();
        assert!(
            elapsed >= timeout,
            "returned after {elapsed:?} < {timeout:?}"
        );
    }
    assert!(!handle.is_finished());
    opener.open();
    assert!(join_bounded(&handle).is_ok());
}

#[test]
fn join_timeout_huge_values_do_not_overflow_and_wait_until_done() {
    let huge = [
        Duration::MAX,
        Duration::from_secs(u64::MAX),
        Duration::from_secs(u64::MAX / 2),
        Duration::from_secs(i64::MAX as u64),
        // Large, yet small enough to be a representable deadline.
        Duration::from_secs(1 << 40),
    ];
    for timeout in huge {
        for panics in [false, true] {
            let (opener, wait) = gate();
            let handle = pythread::start(move || {
                wait();
                if panics {
                    panic!("after the gate");
                }
            });
            // The joiner runs on its own thread (so the watchdog bounds it) and must
            // not return before the gate opens; the gate opens only once the joiner
            // is asleep in `join_timeout` (on Linux; elsewhere as soon as it has
            // reported in), and `opened` is set before it opens. No clock involved.
            let opened = Arc::new(AtomicBool::new(false));
            let (tid_tx, tid) = mpsc::channel();
            let joiner = {
                let (handle, opened) = (handle.clone(), Arc::clone(&opened));
                std::thread::spawn(move || {
                    tid_tx.send(current_tid()).unwrap();
                    let outcome = handle.join_timeout(timeout);
                    (outcome, opened.load(Ordering::SeqCst))
                })
            };
            let tid = recv(&tid, "the joiner's tid");
            wait_until_asleep(format!("join_timeout({timeout:?})"), &[tid]);
            opened.store(true, Ordering::SeqCst);
            opener.open();
            let (outcome, was_open) = join_std(joiner, format!("join_timeout({timeout:?})"));
            let outcome = outcome.unwrap_or_else(|| panic!("{timeout:?} timed out"));
            assert!(
                was_open,
                "{timeout:?} returned before the function was released"
            );
            assert_eq!(outcome.is_err(), panics);
        }
    }
}

#[test]
fn join_timeout_some_is_the_same_outcome_as_join() {
    let handle = pythread::start(|| panic!("shared outcome"));
    let deadline = Instant::now() + WATCHDOG;
    let from_timeout = loop {
        if let Some(outcome) = handle.join_timeout(Duration::from_millis(10)) {
            break outcome.unwrap_err();
        }
        assert!(Instant::now() < deadline, "never finished");
    };
    let from_join = handle.join().unwrap_err(); // finished: never blocks
    assert!(Panic::ptr_eq(&from_timeout, &from_join));
    let again = handle.join_timeout(Duration::ZERO).unwrap().unwrap_err();
    assert!(Panic::ptr_eq(&again, &from_join));
    assert_eq!(again.message(), Some("shared outcome"));

    let ok = pythread::start(|| {});
    assert!(ok.join_timeout(WATCHDOG).unwrap().is_ok());
    assert!(ok.join().is_ok()); // finished: never blocks
}

#[test]
fn join_timeout_from_many_threads_agrees() {
    let (opener, wait) = gate();
    let handle = pythread::start(move || {
        wait();
        std::panic::panic_any(17_u32);
    });
    // The joiners are asleep in the crate's wait (on Linux, seen in the kernel's
    // thread states) when the gate opens.
    let (tid_tx, tids) = mpsc::channel();
    let joiners: Vec<_> = (0..4)
        .map(|i| {
            let (h, tid_tx) = (handle.clone(), tid_tx.clone());
            std::thread::spawn(move || {
                tid_tx.send(current_tid()).unwrap();
                if i % 2 == 0 {
                    h.join_timeout(WATCHDOG).expect("in time")
                } else {
                    h.join()
                }
            })
        })
        .collect();
    let tids: Vec<_> = (0..4).map(|_| recv(&tids, "a joiner's tid")).collect();
    wait_until_asleep("the joiners", &tids);
    assert!(!handle.is_finished());
    opener.open();
    let first = join_bounded(&handle).unwrap_err();
    assert_eq!(first.downcast_cloned::<u32>(), Some(17));
    for joiner in joiners {
        let theirs = join_std(joiner, "a joiner").unwrap_err();
        assert!(Panic::ptr_eq(&first, &theirs));
    }
}

// ---------------------------------------------------------------- is_finished

#[test]
fn is_finished_is_false_while_gated() {
    let (opener, wait) = gate();
    let handle = pythread::start(wait);
    for _ in 0..20 {
        assert!(!handle.is_finished());
        assert!(!handle.clone().is_finished());
        std::thread::sleep(Duration::from_millis(1));
    }
    opener.open();
    join_bounded(&handle).unwrap();
    assert!(handle.is_finished());
}

#[test]
fn is_finished_true_means_join_returns_at_once() {
    for panics in [false, true] {
        let handle = pythread::start(move || {
            if panics {
                panic!("finished by panicking");
            }
        });
        support::wait_until("is_finished()", || handle.is_finished());
        // Returning at once: a pure poll already has the outcome...
        let polled = handle
            .join_timeout(Duration::ZERO)
            .expect("is_finished, yet a poll found no outcome");
        assert_eq!(polled.is_err(), panics);
        // ...and join agrees with it.
        let joined = handle.join(); // finished: never blocks
        assert_eq!(joined.is_err(), panics);
        if let (Err(a), Err(b)) = (polled, joined) {
            assert!(Panic::ptr_eq(&a, &b));
        }
    }
}

/// `Handle::pthread_t` is the number `pthread_self()` returns on the started thread (CPython's
/// `PyThread_get_thread_ident` of it), from the moment `start` returns, and after the join.
#[test]
fn pthread_t_is_the_threads_pthread_self() {
    let (tx, rx) = mpsc::channel();
    let handle = pythread::start(move || {
        // SAFETY: pthread_self has no preconditions and never fails.
        let me = unsafe { libc::pthread_self() } as u64;
        tx.send(me).unwrap();
    });
    let before = handle.pthread_t();
    let seen = support::recv(&rx, "the started thread's pthread_self()");
    assert_eq!(before, Some(seen));
    join_bounded(&handle).unwrap();
    handle.join_thread().unwrap();
    assert_eq!(handle.pthread_t(), Some(seen));
}

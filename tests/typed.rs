//! Typed results (`Handle<T>`): the value every join sees, who drops it and when,
//! `T::clone` panicking inside `join`, moving the value out with `into_output`
//! (racing the started thread's exit and other clones), many joiners on many
//! threads, `join_thread` (the OS thread's exit, checked with a thread-local whose
//! `Drop` records it), and where a self-join's panic points.
//!
//! Every blocking wait is bounded by [`bounded`] / [`recv`] / [`wait_until`], which
//! fail the test with a message after [`WATCHDOG`] instead of hanging.

#![cfg(not(loom))]

use std::cell::{Cell, RefCell};
use std::mem::size_of;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex, Once};
use std::thread::{self, ThreadId};
use std::time::Duration;

use pythread::{Handle, Panic};

// ------------------------------------------------------------------ watchdog

mod support;
use support::{WATCHDOG, bounded, recv, wait_until};

/// `join_ref` bounded by the watchdog (through the timed join, which is bounded by
/// itself).
#[track_caller]
fn wait_ref<T>(handle: &Handle<T>) -> Result<&T, Panic> {
    handle.join_timeout_ref(WATCHDOG).unwrap_or_else(|| {
        panic!(
            "watchdog: join of {} not done in {WATCHDOG:?}",
            handle.ident()
        )
    })
}

/// A handle's `join`, bounded, from a helper thread.
#[track_caller]
fn join_bounded<T: Clone + Send + Sync + 'static>(handle: &Handle<T>) -> Result<T, Panic> {
    let handle = handle.clone();
    bounded("join", move || handle.join())
}

// --------------------------------------------------------------- drop probes

/// Counts drops and records the OS thread each drop ran on.
#[derive(Clone, Default)]
struct Probe(Arc<ProbeState>);

#[derive(Default)]
struct ProbeState {
    drops: AtomicUsize,
    dropped_on: Mutex<Vec<ThreadId>>,
}

/// The value under test: dropping it is counted by its probe.
struct Counted {
    probe: Probe,
    payload: u64,
}

impl Probe {
    fn value(&self, payload: u64) -> Counted {
        Counted {
            probe: self.clone(),
            payload,
        }
    }
    fn drops(&self) -> usize {
        self.0.drops.load(Ordering::SeqCst)
    }
    fn dropped_on(&self) -> Vec<ThreadId> {
        self.0.dropped_on.lock().unwrap().clone()
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.probe.0.drops.fetch_add(1, Ordering::SeqCst);
        self.probe
            .0
            .dropped_on
            .lock()
            .unwrap()
            .push(thread::current().id());
    }
}

// ---------------------------------------------------------------- the basics

#[test]
fn a_handle_is_one_pointer_for_every_t() {
    assert_eq!(size_of::<Handle>(), size_of::<usize>());
    assert_eq!(size_of::<Handle<()>>(), size_of::<usize>());
    assert_eq!(size_of::<Handle<u64>>(), size_of::<usize>());
    assert_eq!(size_of::<Handle<String>>(), size_of::<usize>());
    assert_eq!(size_of::<Handle<[u8; 4096]>>(), size_of::<usize>());
    assert_eq!(size_of::<Option<Handle<u64>>>(), size_of::<usize>());
}

/// `Handle<T>` is Clone + Send + Sync + Debug whatever `T` is (T: Send + Sync, not
/// Clone, not Debug), and `start(|| {})` is still a `Handle<()>`.
#[test]
fn bounds_hold_without_clone_or_debug() {
    fn traits<H: Clone + Send + Sync + std::fmt::Debug + 'static>(_: &H) {}
    struct Opaque(#[allow(dead_code)] u8); // neither Clone nor Debug
    let opaque = pythread::start(|| Opaque(7));
    traits(&opaque);
    let unit: Handle = pythread::start(|| {});
    let outcome: Result<(), Panic> = unit.join();
    assert!(outcome.is_ok());
    assert_eq!(wait_ref(&opaque).unwrap().0, 7);
    let text = format!("{:?}", opaque.clone());
    assert!(text.contains("returned"), "{text}");
    assert!(text.contains(&opaque.ident().to_string()), "{text}");
    assert_eq!(opaque.join_ref().unwrap().0, 7);
}

#[test]
fn every_join_form_returns_the_value() {
    let (release, gate) = mpsc::channel::<()>();
    let handle = pythread::start(move || {
        gate.recv_timeout(WATCHDOG).expect("released");
        String::from("forty-two")
    });
    assert!(handle.join_timeout(Duration::ZERO).is_none());
    assert!(handle.join_timeout_ref(Duration::from_millis(1)).is_none());
    assert!(!handle.is_finished());
    release.send(()).unwrap();
    let by_value = join_bounded(&handle).unwrap();
    assert_eq!(by_value, "forty-two");
    assert_eq!(handle.join().unwrap(), "forty-two");
    assert_eq!(handle.join_ref().unwrap(), "forty-two");
    assert_eq!(
        handle.join_timeout(Duration::ZERO).unwrap().unwrap(),
        "forty-two"
    );
    assert_eq!(
        handle.join_timeout_ref(Duration::MAX).unwrap().unwrap(),
        "forty-two"
    );
    // Every `join_ref` borrows the one stored value.
    let a: *const String = handle.join_ref().unwrap();
    let b: *const String = handle.clone().join_ref().unwrap();
    assert_eq!(a, b);
    assert_eq!(handle.join_thread().unwrap(), "forty-two");
    assert_eq!(handle.join_thread_ref().unwrap(), "forty-two");
    assert!(format!("{handle:?}").contains("returned"));
}

#[test]
fn a_panic_is_delivered_by_every_typed_join() {
    let handle: Handle<u64> = pythread::start(|| {
        quiet_panics_here();
        panic!("typed boom")
    });
    let first = join_bounded(&handle).unwrap_err();
    assert_eq!(first.message(), Some("typed boom"));
    assert_eq!(first.ident(), handle.ident());
    let by_ref = handle.join_ref().unwrap_err();
    let timed = handle
        .join_timeout_ref(Duration::ZERO)
        .unwrap()
        .unwrap_err();
    let exited = handle.join_thread_ref().unwrap_err();
    for other in [&by_ref, &timed, &exited] {
        assert!(Panic::ptr_eq(&first, other));
    }
    assert!(format!("{handle:?}").contains("panicked"));
    let Err(panic) = handle.into_output().expect("the only handle") else {
        unreachable!("the thread panicked")
    };
    assert!(Panic::ptr_eq(&first, &panic));
}

// ------------------------------------------------------- drop exactly once

/// Joined, then every handle dropped: the value is dropped once, by the last handle,
/// on the thread that dropped it, and not before (the thread has exited by then).
#[test]
fn value_is_dropped_once_by_the_last_handle() {
    let probe = Probe::default();
    let value = probe.value(5);
    let handle = pythread::start(move || value);
    let clone = handle.clone();
    assert_eq!(wait_ref(&handle).unwrap().payload, 5);
    handle.join_thread_ref().unwrap(); // the started thread has exited
    assert_eq!(probe.drops(), 0, "dropped while handles remain");
    drop(handle);
    assert_eq!(probe.drops(), 0, "dropped while a clone remains");
    assert_eq!(clone.join_ref().unwrap().payload, 5);
    drop(clone);
    assert_eq!(probe.drops(), 1);
    assert_eq!(probe.dropped_on(), vec![thread::current().id()]);
}

/// Every handle dropped while the function runs (detached): the value is dropped
/// once, on the started thread itself.
#[test]
fn detached_value_is_dropped_once_on_the_started_thread() {
    let probe = Probe::default();
    let value = probe.value(9);
    let (release, gate) = mpsc::channel::<()>();
    let (id_tx, id_rx) = mpsc::channel();
    let (exit_tx, exit_rx) = mpsc::channel();
    let handle = pythread::start(move || {
        support::signal_on_exit(exit_tx);
        id_tx.send(thread::current().id()).unwrap();
        gate.recv_timeout(WATCHDOG).expect("released");
        value
    });
    let started_on = recv(&id_rx, "the started thread's id");
    drop(handle);
    release.send(()).unwrap();
    // The started thread has exited: every handle is gone, so nothing is left
    // that could drop the value a second time.
    recv(&exit_rx, "the started thread's exit");
    assert_eq!(probe.drops(), 1, "the detached value was not dropped once");
    assert_eq!(probe.dropped_on(), vec![started_on]);
}

/// The race of the last handle's drop with the thread's finish, many times: the
/// value is dropped exactly once whichever side goes last.
#[test]
fn drop_racing_finish_drops_once() {
    let probe = Probe::default();
    for round in 0..200 {
        let value = probe.value(round);
        let (exit_tx, exit_rx) = mpsc::channel();
        let handle = pythread::start(move || {
            support::signal_on_exit(exit_tx);
            value
        });
        let dropper = thread::spawn(move || drop(handle));
        support::join_std(dropper, "the dropper");
        // Both sides that could drop the value are done: the dropper is joined and
        // the started thread has exited, so the count is final for this round.
        recv(&exit_rx, "the started thread's exit");
        let expected = usize::try_from(round).unwrap() + 1;
        assert_eq!(
            probe.drops(),
            expected,
            "round {round}: dropped not exactly once"
        );
    }
}

// ----------------------------------------------------- a panicking T::clone

/// A result whose `Clone` panics while `FAIL_CLONE` is set on the cloning thread.
#[derive(Debug, PartialEq)]
struct Fragile(u32);

thread_local!(static FAIL_CLONE: Cell<bool> = const { Cell::new(false) });

impl Clone for Fragile {
    fn clone(&self) -> Fragile {
        if FAIL_CLONE.get() {
            quiet_panics_here();
            panic!("clone failed [expected]");
        }
        Fragile(self.0)
    }
}

/// `join` clones in the caller: a panicking clone is the caller's panic, and the
/// handle, its stored value and later joins (on any thread) are unaffected.
#[test]
fn a_panicking_clone_in_join_is_the_callers_panic() {
    let handle = pythread::start(|| Fragile(11));
    assert_eq!(join_bounded(&handle).unwrap(), Fragile(11));
    FAIL_CLONE.set(true);
    let payload = panic::catch_unwind(AssertUnwindSafe(|| handle.join())).unwrap_err();
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"clone failed [expected]")
    );
    let payload =
        panic::catch_unwind(AssertUnwindSafe(|| handle.join_timeout(Duration::ZERO))).unwrap_err();
    assert!(payload.is::<&str>());
    FAIL_CLONE.set(false);
    quiet_panics_off();
    assert_eq!(handle.join().unwrap(), Fragile(11));
    assert_eq!(handle.join_ref().unwrap(), &Fragile(11));
    assert_eq!(join_bounded(&handle).unwrap(), Fragile(11));
    assert!(handle.into_output().ok().unwrap().is_ok());
}

/// `Panic::downcast_cloned` runs `T::clone` under the payload lock; a panicking
/// clone poisons that lock, which the crate ignores: the payload is still there.
#[test]
fn a_panicking_clone_in_downcast_cloned_leaves_the_panic_usable() {
    let handle = pythread::start(|| {
        quiet_panics_here();
        panic::panic_any(Fragile(3))
    });
    let panic = join_bounded(&handle).unwrap_err();
    FAIL_CLONE.set(true);
    let payload =
        panic::catch_unwind(AssertUnwindSafe(|| panic.downcast_cloned::<Fragile>())).unwrap_err();
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"clone failed [expected]")
    );
    FAIL_CLONE.set(false);
    quiet_panics_off();
    assert!(panic.is::<Fragile>());
    assert_eq!(panic.downcast_cloned::<Fragile>(), Some(Fragile(3)));
    // From another thread, through another clone, too.
    let other = handle.clone();
    let seen = bounded("downcast on another thread", move || {
        other.join().unwrap_err().downcast_cloned::<Fragile>()
    });
    assert_eq!(seen, Some(Fragile(3)));
    let taken = panic.take_payload().expect("the payload is still there");
    assert_eq!(*taken.downcast::<Fragile>().unwrap(), Fragile(3));
}

// ------------------------------------------------------------- into_output

/// With no other clone, `into_output` moves the value out every time, however the
/// started thread's own reference (dropped after it publishes) races the call.
#[test]
fn into_output_of_the_only_handle_never_gives_it_back() {
    let probe = Probe::default();
    for round in 0..300 {
        let value = probe.value(round);
        let handle = pythread::start(move || value);
        if round % 2 == 0 {
            // Half the rounds: call while the thread is still finishing.
            while !handle.is_finished() {
                thread::yield_now();
            }
        }
        let out = bounded("into_output", move || handle.into_output().ok())
            .unwrap_or_else(|| panic!("round {round}: into_output gave the only handle back"));
        let out = out.unwrap_or_else(|_| unreachable!());
        assert_eq!(out.payload, round);
        assert_eq!(probe.drops(), round as usize, "moved, not dropped");
        drop(out);
    }
    assert_eq!(probe.drops(), 300);
}

/// A clone dropped on another thread at the same time: `into_output` either moves
/// the value out or gives the handle back intact; retried once the clone is
/// surely gone, it moves it out. The value is dropped exactly once either way.
#[test]
fn into_output_racing_a_clone_drop() {
    let probe = Probe::default();
    let (mut moved, mut given_back) = (0, 0);
    for round in 0..200 {
        let value = probe.value(round);
        let handle = pythread::start(move || value);
        let clone = handle.clone();
        let barrier = Arc::new(Barrier::new(2));
        let b = Arc::clone(&barrier);
        let dropper = thread::spawn(move || {
            b.wait();
            drop(clone);
        });
        let outcome = bounded("into_output racing a drop", move || {
            barrier.wait();
            match handle.into_output() {
                Ok(out) => Ok(out.expect("returned").payload),
                Err(handle) => Err(handle),
            }
        });
        bounded("the dropper", move || dropper.join()).unwrap();
        match outcome {
            Ok(payload) => {
                moved += 1;
                assert_eq!(payload, round);
            }
            Err(handle) => {
                given_back += 1;
                assert_eq!(handle.join_ref().unwrap().payload, round);
                let out = handle.into_output().expect("now the only handle");
                assert_eq!(out.ok().unwrap().payload, round);
            }
        }
        assert_eq!(probe.drops(), round as usize + 1);
    }
    eprintln!("into_output racing a drop: {moved} moved, {given_back} given back");
}

#[test]
fn into_output_gives_the_handle_back_while_clones_exist() {
    let probe = Probe::default();
    let handle = pythread::start({
        let value = probe.value(1);
        move || value
    });
    let clone = handle.clone();
    let Err(handle) = handle.into_output() else {
        panic!("a clone exists")
    };
    assert_eq!(probe.drops(), 0);
    assert_eq!(handle.join_ref().unwrap().payload, 1);
    let Err(clone) = clone.into_output() else {
        panic!("`handle` exists")
    };
    drop(handle);
    let out = clone.into_output().ok().unwrap().ok().unwrap();
    assert_eq!(probe.drops(), 0);
    drop(out);
    assert_eq!(probe.drops(), 1);
}

// ------------------------------------------------- many joiners, many threads

#[test]
fn many_joiners_on_many_threads_see_one_value() {
    const JOINERS: usize = 8;
    let (release, gate) = mpsc::channel::<()>();
    let handle = pythread::start(move || {
        gate.recv_timeout(WATCHDOG).expect("released");
        (0..1000u64).collect::<Vec<_>>()
    });
    let (ready_tx, ready_rx) = mpsc::channel();
    let joiners: Vec<_> = (0..JOINERS)
        .map(|i| {
            let handle = handle.clone();
            let ready = ready_tx.clone();
            thread::spawn(move || {
                ready.send(()).unwrap();
                let mut sums = Vec::new();
                for round in 0..50 {
                    let sum: u64 = if (i + round) % 2 == 0 {
                        handle.join_ref().unwrap().iter().sum()
                    } else {
                        handle.join().unwrap().iter().sum()
                    };
                    sums.push(sum);
                }
                (handle.join_ref().unwrap().as_ptr() as usize, sums)
            })
        })
        .collect();
    for _ in 0..JOINERS {
        recv(&ready_rx, "a joiner ready");
    }
    release.send(()).unwrap();
    let expected: u64 = (0..1000).sum();
    let here = handle.join_ref().unwrap().as_ptr() as usize;
    for joiner in joiners {
        let (ptr, sums) = bounded("a joiner", move || joiner.join()).unwrap();
        assert_eq!(ptr, here, "a joiner borrowed another copy of the value");
        assert!(sums.iter().all(|&s| s == expected), "{sums:?}");
    }
}

// -------------------------------------------------------------- join_thread

/// Records, on drop, that the thread it lived on ran its thread-local destructors.
struct TlsProbe(Arc<AtomicBool>);

impl Drop for TlsProbe {
    fn drop(&mut self) {
        // Slow enough that a join returning before the OS thread's exit would see
        // the flag unset.
        thread::sleep(Duration::from_millis(30));
        self.0.store(true, Ordering::SeqCst);
    }
}

thread_local!(static TLS_PROBE: RefCell<Option<TlsProbe>> = const { RefCell::new(None) });

/// `join_thread` returns only after the thread's thread-local destructors ran, for
/// every one of many concurrent callers; a later call returns at once.
#[test]
fn join_thread_waits_for_thread_local_destructors() {
    let destroyed = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&destroyed);
    let handle = pythread::start(move || {
        TLS_PROBE.with(|slot| *slot.borrow_mut() = Some(TlsProbe(flag)));
        17_u64
    });
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let handle = handle.clone();
            let destroyed = Arc::clone(&destroyed);
            thread::spawn(move || {
                let value = handle.join_thread().unwrap();
                (value, destroyed.load(Ordering::SeqCst))
            })
        })
        .collect();
    let here = {
        let handle = handle.clone();
        bounded("join_thread", move || handle.join_thread().unwrap())
    };
    assert_eq!(here, 17);
    assert!(
        destroyed.load(Ordering::SeqCst),
        "join_thread returned before TLS destructors"
    );
    for caller in callers {
        let (value, seen) = bounded("a join_thread caller", move || caller.join()).unwrap();
        assert_eq!(value, 17);
        assert!(
            seen,
            "a concurrent join_thread returned before the thread exited"
        );
    }
    assert_eq!(*handle.join_thread_ref().unwrap(), 17);
}

/// Plain `join` does not wait for the exit (the TLS destructor is still sleeping
/// when it returns, most of the time); `join_thread` afterwards does.
#[test]
fn join_then_join_thread() {
    let destroyed = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&destroyed);
    let handle = pythread::start(move || {
        TLS_PROBE.with(|slot| *slot.borrow_mut() = Some(TlsProbe(flag)));
    });
    join_bounded(&handle).unwrap();
    let h = handle.clone();
    bounded("join_thread after join", move || h.join_thread()).unwrap();
    assert!(destroyed.load(Ordering::SeqCst));
}

/// Dropping every handle without `join_thread` still detaches: the thread runs to
/// its end, its TLS is destroyed, and nothing waits for it.
#[test]
fn dropping_every_handle_still_detaches() {
    let destroyed = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&destroyed);
    let (release, gate) = mpsc::channel::<()>();
    let handle = pythread::start(move || {
        TLS_PROBE.with(|slot| *slot.borrow_mut() = Some(TlsProbe(flag)));
        gate.recv_timeout(WATCHDOG).expect("released");
    });
    drop(handle);
    release.send(()).unwrap();
    wait_until("the detached thread's TLS destructor", || {
        destroyed.load(Ordering::SeqCst)
    });
}

// ------------------------------------------- where a self-join panic points

static LOCATIONS: Mutex<Vec<(String, u32)>> = Mutex::new(Vec::new());

/// Installs (once) a hook that records where each "cannot join current thread"
/// panic was raised, and stays silent for panics marked quiet on their thread.
fn record_self_join_locations() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let text = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("");
            if text.contains("cannot join current thread") {
                let location = info.location().expect("a location");
                LOCATIONS
                    .lock()
                    .unwrap()
                    .push((location.file().to_owned(), location.line()));
            } else if !QUIET.get() {
                previous(info);
            }
        }));
    });
}

thread_local!(static QUIET: Cell<bool> = const { Cell::new(false) });

fn quiet_panics_here() {
    record_self_join_locations();
    QUIET.set(true);
}

fn quiet_panics_off() {
    QUIET.set(false);
}

/// "cannot join current thread" points at the user's call, for every join form:
/// `#[track_caller]` runs through the public method and its slow path.
#[test]
fn a_self_join_panic_points_at_the_callers_line() {
    record_self_join_locations();
    type Attempt = Box<dyn Fn(&Handle<u32>) -> u32 + Send + Sync>;
    // `line!()` names the line of the macro call, where the join call is.
    macro_rules! attempt {
        ($($call:tt)*) => {
            (Box::new(|h: &Handle<u32>| h.$($call)*.map_or(0_u32, |_| 1)) as Attempt, line!())
        };
    }
    let attempts: Vec<(Attempt, u32)> = vec![
        attempt!(join()),
        attempt!(join_ref()),
        attempt!(join_timeout(Duration::ZERO)),
        attempt!(join_timeout(Duration::from_secs(1))),
        attempt!(join_timeout_ref(Duration::ZERO)),
        attempt!(join_thread()),
        attempt!(join_thread_ref()),
        attempt!(clone().into_output()),
    ];
    let attempts = Arc::new(attempts);
    for index in 0..attempts.len() {
        let line = attempts[index].1;
        let attempts = Arc::clone(&attempts);
        let (tx, rx) = mpsc::channel::<Handle<u32>>();
        let handle = pythread::start(move || {
            let own = rx.recv_timeout(WATCHDOG).expect("own handle");
            attempts[index].0(&own)
        });
        tx.send(handle.clone()).unwrap();
        let panic = join_bounded(&handle).expect_err("a self-join must panic");
        assert!(
            panic
                .message()
                .unwrap()
                .contains("cannot join current thread")
        );
        let expected = (file!().to_owned(), line);
        let recorded = LOCATIONS.lock().unwrap().clone();
        assert!(
            recorded.contains(&expected),
            "attempt {index}: expected a panic at {expected:?}, recorded {recorded:?}"
        );
    }
}

//! The spec's five tests (`pythread/thread_test.go`, ported), then the v0.1
//! semantics: repeated and concurrent joins, clones, detach, every payload kind,
//! and the auto traits the API promises.
//!
//! Every blocking wait is bounded by the shared watchdog (`support`): a hang fails
//! the test with a message instead of hanging the suite.
#![cfg(not(loom))]

mod support;

use std::collections::HashSet;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::{self, ThreadId};
use std::time::Duration;

use pythread::{Handle, Ident, Panic};
use support::{current_tid, join_std, recv, signal_on_exit, wait_until, wait_until_asleep};

/// `join()`, bounded by the watchdog.
fn join_bounded(handle: &Handle) -> Result<(), Panic> {
    support::join(handle)
}

// ---- The spec's five tests ----

#[test]
fn init_and_stacksize_stubs_return_documented_values() {
    pythread::init();
    pythread::init();
    assert_eq!(pythread::get_stacksize(), 0);
    for size in [0, 1, 4096, 1 << 20, usize::MAX] {
        assert_eq!(pythread::set_stacksize(size), -2, "set_stacksize({size})");
    }
    assert_eq!(
        pythread::get_stacksize(),
        0,
        "set_stacksize must change nothing"
    );
}

#[test]
fn start_then_join_runs_fn_exactly_once_on_another_thread() {
    let runs = Arc::new(AtomicUsize::new(0));
    let caller = thread::current().id();
    let (tx, rx) = mpsc::channel();
    let r = Arc::clone(&runs);
    let handle = pythread::start(move || {
        r.fetch_add(1, Ordering::SeqCst);
        tx.send(thread::current().id()).unwrap();
    });
    join_bounded(&handle).unwrap();
    join_bounded(&handle).unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let ran_on = recv(&rx, "the fn's thread id");
    assert_ne!(ran_on, caller, "fn must run on a separate thread");
    assert!(rx.try_recv().is_err(), "fn ran more than once");
}

#[test]
fn ident_is_unique_across_many_starts() {
    let handles: Vec<Handle> = (0..200).map(|_| pythread::start(|| {})).collect();
    let idents: HashSet<Ident> = handles.iter().map(Handle::ident).collect();
    assert_eq!(idents.len(), handles.len());
    assert!(idents.iter().all(|i| i.as_u64() != 0));
    for pair in handles.windows(2) {
        assert!(
            pair[0].ident() < pair[1].ident(),
            "sequential starts increase"
        );
    }
    for h in &handles {
        join_bounded(h).unwrap();
    }
}

#[test]
fn panicking_fn_surfaces_through_join() {
    let handle = pythread::start(|| panic!("boom"));
    let panic = join_bounded(&handle).unwrap_err();
    assert_eq!(panic.message(), Some("boom"));
}

#[test]
fn timeout_max_is_positive_and_converts_to_nanoseconds() {
    const { assert!(pythread::TIMEOUT_MAX > 0) };
    assert_eq!(pythread::TIMEOUT_MAX, 9_223_372_036_854_775);
    assert!(pythread::TIMEOUT_MAX.checked_mul(1000).is_some());
    assert!((pythread::TIMEOUT_MAX + 1).checked_mul(1000).is_none());
}

// ---- v0.1 semantics ----

#[test]
fn concurrent_idents_are_unique() {
    let threads: Vec<_> = (0..4)
        .map(|_| thread::spawn(|| (0..100).map(|_| pythread::start(|| {})).collect::<Vec<_>>()))
        .collect();
    let mut seen = HashSet::new();
    for t in threads {
        let handles = join_std(t, "a starter thread");
        for pair in handles.windows(2) {
            assert!(pair[0].ident() < pair[1].ident());
        }
        for h in handles {
            assert!(seen.insert(h.ident()), "duplicate ident {}", h.ident());
            join_bounded(&h).unwrap();
        }
    }
    assert_eq!(seen.len(), 400);
}

#[test]
fn everything_fn_did_is_visible_after_join() {
    let data = Arc::new(std::sync::Mutex::new(Vec::new()));
    let d = Arc::clone(&data);
    let handle = pythread::start(move || d.lock().unwrap().extend(0..1000));
    join_bounded(&handle).unwrap();
    assert_eq!(data.lock().unwrap().len(), 1000);
}

#[test]
fn repeated_joins_return_the_same_outcome() {
    let ok = pythread::start(|| {});
    for _ in 0..5 {
        assert!(join_bounded(&ok).is_ok());
    }
    let bad = pythread::start(|| panic!("once"));
    let first = join_bounded(&bad).unwrap_err();
    for _ in 0..5 {
        let again = join_bounded(&bad).unwrap_err();
        assert!(Panic::ptr_eq(&first, &again));
        assert_eq!(again.message(), Some("once"));
    }
}

/// The joiners are all asleep in the crate's wait (seen in the kernel's thread
/// states, on Linux; elsewhere they may still be on their way) when `f` finishes:
/// the broadcast must wake every one of them, on both the untimed and the timed path.
#[test]
fn concurrent_joins_on_clones_all_see_one_outcome() {
    const JOINERS: usize = 8;
    let (release, gate) = mpsc::channel::<()>();
    let handle = pythread::start(move || {
        gate.recv().unwrap();
        panic!("shared {}", 7);
    });
    let (tid_tx, tids) = mpsc::channel();
    let joiners: Vec<_> = (0..JOINERS)
        .map(|i| {
            let (h, tid_tx) = (handle.clone(), tid_tx.clone());
            thread::spawn(move || {
                tid_tx.send(current_tid()).unwrap();
                // Nothing else blocks from here on: once asleep, it is in the join.
                if i % 2 == 0 {
                    h.join().unwrap_err()
                } else {
                    h.join_timeout(Duration::MAX)
                        .expect("no deadline")
                        .unwrap_err()
                }
            })
        })
        .collect();
    let tids: Vec<_> = (0..JOINERS)
        .map(|_| recv(&tids, "a joiner's tid"))
        .collect();
    wait_until_asleep("the joiners", &tids);
    assert!(!handle.is_finished());
    release.send(()).unwrap();
    let panics: Vec<Panic> = joiners
        .into_iter()
        .map(|j| join_std(j, "a joiner"))
        .collect();
    let own = join_bounded(&handle).unwrap_err();
    for p in &panics {
        assert!(Panic::ptr_eq(p, &own));
        assert_eq!(p.message(), Some("shared 7"));
    }
}

#[test]
fn clones_share_one_thread() {
    let handle = pythread::start(|| {});
    let clone = handle.clone();
    assert_eq!(handle.ident(), clone.ident());
    drop(handle);
    assert!(join_bounded(&clone).is_ok());
}

/// Counts its drops: proves an outcome or capture is dropped exactly once.
struct DropCounter(Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn dropping_every_handle_detaches_and_fn_runs_to_completion() {
    let (release, gate) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel();
    let handle = pythread::start(move || {
        gate.recv().unwrap();
        done_tx.send("finished").unwrap();
    });
    drop(handle.clone());
    drop(handle);
    release.send(()).unwrap();
    assert_eq!(recv(&done_rx, "the detached fn's end"), "finished");
}

/// A payload that records the thread that drops it.
struct DroppedOn(Arc<Mutex<Vec<ThreadId>>>);

impl Drop for DroppedOn {
    fn drop(&mut self) {
        self.0.lock().unwrap().push(thread::current().id());
    }
}

#[test]
fn detached_panic_outcome_is_dropped_once_when_the_thread_ends() {
    let dropped_on = Arc::new(Mutex::new(Vec::new()));
    let (release, gate) = mpsc::channel::<()>();
    let (ran_on_tx, ran_on) = mpsc::channel();
    let payload = DroppedOn(Arc::clone(&dropped_on));
    let handle = pythread::start(move || {
        ran_on_tx.send(thread::current().id()).unwrap();
        gate.recv().unwrap();
        std::panic::panic_any(payload);
    });
    drop(handle);
    let started_thread = recv(&ran_on, "the started thread's id");
    assert!(
        dropped_on.lock().unwrap().is_empty(),
        "dropped before the panic"
    );
    release.send(()).unwrap();
    wait_until("the detached payload to drop", || {
        !dropped_on.lock().unwrap().is_empty()
    });
    // Nobody else holds the outcome of a detached thread: the started thread drops it.
    assert_eq!(*dropped_on.lock().unwrap(), vec![started_thread]);
}

#[test]
fn joined_panic_payload_is_dropped_with_the_last_panic() {
    let drops = Arc::new(AtomicUsize::new(0));
    let payload = DropCounter(Arc::clone(&drops));
    let (exit_tx, exited) = mpsc::channel();
    let handle = pythread::start(move || {
        signal_on_exit(exit_tx);
        std::panic::panic_any(payload)
    });
    let first = join_bounded(&handle).unwrap_err();
    let second = join_bounded(&handle).unwrap_err();
    // Once the started thread has exited, it holds nothing of the outcome any more.
    recv(&exited, "the started thread's exit");
    drop(handle);
    drop(first);
    assert_eq!(drops.load(Ordering::SeqCst), 0, "a Panic is still alive");
    drop(second);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "dropping the last Panic did not drop the payload"
    );
}

#[test]
fn every_payload_kind_is_delivered() {
    let literal = join_bounded(&pythread::start(|| panic!("literal"))).unwrap_err();
    assert_eq!(literal.message(), Some("literal"));
    assert!(literal.is::<&'static str>());

    // A runtime argument: literal-only format strings are folded into a &'static str.
    let n = std::hint::black_box(42);
    let formatted = join_bounded(&pythread::start(move || panic!("for-{n}"))).unwrap_err();
    assert_eq!(formatted.message(), Some("for-42"));
    assert!(formatted.is::<String>());

    let owned = join_bounded(&pythread::start(|| {
        std::panic::panic_any(String::from("owned"))
    }))
    .unwrap_err();
    assert_eq!(owned.message(), Some("owned"));

    #[derive(Clone, Debug, PartialEq)]
    struct Custom(u32);
    let custom = join_bounded(&pythread::start(|| std::panic::panic_any(Custom(9)))).unwrap_err();
    assert_eq!(custom.message(), None);
    assert!(custom.is::<Custom>());
    assert_eq!(custom.downcast_cloned::<Custom>(), Some(Custom(9)));
    assert_eq!(custom.downcast_cloned::<u32>(), None);

    let unit = join_bounded(&pythread::start(|| std::panic::panic_any(()))).unwrap_err();
    assert_eq!(unit.message(), None);
    assert!(unit.is::<()>());
}

#[test]
fn take_payload_hands_out_the_original_once() {
    let handle = pythread::start(|| std::panic::panic_any(vec![1u8, 2, 3]));
    let a = join_bounded(&handle).unwrap_err();
    let b = join_bounded(&handle).unwrap_err();
    let payload = b.take_payload().expect("first take");
    assert_eq!(*payload.downcast::<Vec<u8>>().unwrap(), vec![1, 2, 3]);
    assert!(a.take_payload().is_none(), "shared across clones");
    assert!(a.is::<Vec<u8>>(), "type still known after take");
    assert_eq!(a.downcast_cloned::<Vec<u8>>(), None, "gone after take");
}

#[test]
fn resume_unwind_reraises_the_original_payload_or_the_panic() {
    let handle = pythread::start(|| std::panic::panic_any(5_i64));
    let panic = join_bounded(&handle).unwrap_err();
    let caught = std::panic::catch_unwind(move || panic.resume_unwind()).unwrap_err();
    assert_eq!(*caught.downcast::<i64>().unwrap(), 5);

    // Payload already taken: the Panic itself unwinds, so nothing is lost.
    let panic = join_bounded(&handle).unwrap_err();
    let caught = std::panic::catch_unwind(move || panic.resume_unwind()).unwrap_err();
    let inner = caught.downcast::<Panic>().expect("the Panic itself");
    assert!(Panic::ptr_eq(&inner, &join_bounded(&handle).unwrap_err()));
}

#[test]
fn panic_formats_and_is_an_error() {
    let handle = pythread::start(|| panic!("formatted"));
    let panic = join_bounded(&handle).unwrap_err();
    let ident = handle.ident();
    assert_eq!(
        panic.to_string(),
        format!("thread {ident} panicked: formatted")
    );
    assert!(format!("{panic:?}").contains("formatted"));
    let err: Box<dyn std::error::Error + Send + Sync> = Box::new(panic);
    assert!(err.to_string().contains("formatted"));

    let custom = join_bounded(&pythread::start(|| std::panic::panic_any(1u8))).unwrap_err();
    assert!(custom.to_string().contains("non-string payload"));
}

#[test]
fn handle_debug_shows_ident_and_state() {
    let (release, gate) = mpsc::channel::<()>();
    let handle = pythread::start(move || gate.recv().unwrap());
    let running = format!("{handle:?}");
    assert!(running.contains("running"), "{running}");
    assert!(
        running.contains(&format!("Ident({})", handle.ident())),
        "{running}"
    );
    release.send(()).unwrap();
    join_bounded(&handle).unwrap();
    assert!(format!("{handle:?}").contains("returned"));
    let bad = pythread::start(|| panic!("x"));
    let _ = join_bounded(&bad);
    assert!(format!("{bad:?}").contains("panicked"));
}

#[test]
fn panic_in_fn_poisons_nothing_and_later_starts_work() {
    for round in 0..20 {
        let h = pythread::start(move || {
            if round % 2 == 0 {
                panic!("round {round}");
            }
        });
        assert_eq!(join_bounded(&h).is_err(), round % 2 == 0);
    }
    assert!(join_bounded(&pythread::start(|| {})).is_ok());
}

#[test]
fn fn_may_block_until_released() {
    let (release, gate) = mpsc::channel::<()>();
    let handle = pythread::start(move || gate.recv().unwrap());
    assert!(handle.join_timeout(Duration::from_millis(50)).is_none());
    assert!(!handle.is_finished());
    release.send(()).unwrap();
    assert!(join_bounded(&handle).is_ok());
    assert!(handle.is_finished());
}

#[test]
fn api_types_have_the_promised_traits_and_size() {
    fn assert_traits<T: Send + Sync + Clone + std::fmt::Debug + UnwindSafe + RefUnwindSafe>() {}
    assert_traits::<Handle>();
    assert_traits::<Panic>();
    assert_traits::<Ident>();
    fn assert_error<T: std::error::Error + std::fmt::Display + 'static>() {}
    assert_error::<Panic>();
    fn assert_key<T: Copy + Eq + Ord + std::hash::Hash + std::fmt::Display>() {}
    assert_key::<Ident>();
    assert_eq!(std::mem::size_of::<Handle>(), std::mem::size_of::<usize>());
    assert_eq!(
        std::mem::size_of::<Option<Handle>>(),
        std::mem::size_of::<usize>()
    );
    assert_eq!(std::mem::size_of::<Option<Ident>>(), 8);
}

/// `Handle::pthread_t` is the started thread's own `pthread_self()`, set before
/// `start` returns and kept after the join.
#[cfg(unix)]
#[test]
fn pthread_t_is_the_threads_own_pthread_self() {
    // SAFETY: `pthread_self` has no preconditions.
    let handle = pythread::start(|| unsafe { libc::pthread_self() } as u64);
    let stored = handle.pthread_t();
    let own = handle
        .join_timeout(Duration::from_secs(20))
        .expect("watchdog: the thread did not finish within 20 s")
        .unwrap();
    assert_eq!(stored, Some(own));
    handle.join_thread().unwrap();
    assert_eq!(handle.pthread_t(), Some(own));
}

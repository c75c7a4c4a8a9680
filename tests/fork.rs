//! `fork()` while threads run (issue 18): the crate's `before_fork`,
//! `after_fork_parent` and `after_fork_child`, called around `libc::fork` as a
//! runtime (CPython's `PyOS_BeforeFork` / `PyOS_AfterFork_*`) calls them.
//!
//! `harness = false` (Cargo.toml): libtest's own threads (the test runner, output
//! capture) could hold the stdout lock or a runner lock at the fork, and the child
//! would hang on them; here the only threads are the ones this file starts.
//!
//! Each round the parent starts threads in every state a fork can meet: daemon and
//! non-daemon threads parked on a held [`Lock`] (which so has waiters), a thread
//! holding a `Lock` and an `RLock`, one blocked in a join, a thread that returned
//! and one that panicked before the fork, and a churn thread that keeps starting,
//! joining, registering non-daemon threads and using a [`Tss`] key, so that the
//! crate's locks are busy at the fork. The forking thread is the main thread in
//! even rounds and a started non-daemon thread in odd ones. The child checks the
//! lost handles (finished, joins return the "did not survive fork()" panic at once,
//! never an OS join), the count, the forking thread's ident, handle and TSS value,
//! starts and joins new threads (OS joins included, after every lost handle was
//! dropped), shuts down, reinitializes and takes every lock kind, calls
//! `after_fork_child` again (a no-op), and exits with status 0, or 1 on a failed
//! check. Bounds: `alarm()` in the child (its default action kills it: the parent
//! sees `SIGALRM`), a bounded `waitpid` loop in the parent (then `SIGKILL`).
//! The parent then checks that nothing was lost on its side.
//!
//! Under `--cfg loom` the crate's primitives work only inside a loom model, so
//! this binary does nothing there (the loom suite has its own registry models).
#![cfg_attr(loom, allow(dead_code, unused_imports))]

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::{Duration, Instant};

use pythread::{Builder, Handle, Lock, Panic, RLock, Tss};

/// Forks in the hammer phase ([`hammer`]); `FORK_HAMMER_ROUNDS` overrides it.
const HAMMER_ROUNDS: usize = 30;
/// Threads that loop on `Tss::get` during the hammer phase (the 8).
const READERS: usize = 8;

/// Rounds (forks); each forks once. `FORK_ROUNDS` overrides it (for soak runs).
const ROUNDS: usize = 40;
/// The child's own watchdog: `alarm()` kills it after this many seconds.
const CHILD_ALARM_SECS: u32 = 20;
/// The parent's bound on one child (then `SIGKILL`), and on every wait of its own.
const WATCHDOG: Duration = Duration::from_secs(30);

/// What the joins of a lost thread say (`pythread`'s message starts so).
const LOST: &str = "pythread: the thread did not survive fork()";

/// A key with a value on the forking thread, used by the churn thread meanwhile.
fn key() -> &'static Tss<String> {
    static KEY: OnceLock<Tss<String>> = OnceLock::new();
    KEY.get_or_init(|| {
        let key = Tss::new();
        key.create();
        key
    })
}

/// Everything the child looks at, built by the parent before the fork.
struct World {
    /// Held by the main thread: the parked threads wait on it (so it has waiters).
    gate: Arc<Lock>,
    /// Held by `holder`, which does not survive the fork.
    held: Arc<Lock>,
    rheld: Arc<RLock>,
    /// Threads that are running at the fork (none survives it).
    running: Vec<(&'static str, Handle<u32>)>,
    /// Finished before the fork.
    returned: Handle<u32>,
    panicked: Handle<u32>,
    stop_churn: Arc<AtomicBool>,
    /// In some rounds: a key whose value's `clone` runs (under the key's lock) when
    /// the fork starts, and the flag that tells it the fork is starting. The
    /// reader (the third part) may have returned (8) before the fork, or not.
    slow: Option<SlowKey>,
}

/// The key, the "fork is starting" flag, the reader (see [`World::slow`]).
type SlowKey = (Arc<Tss<SlowClone>>, Arc<AtomicBool>, Handle<u32>);

/// A value whose `clone`, which `Tss::get` runs under the key's lock, is still
/// running when the fork starts: it waits until the forking thread is about to
/// call `before_fork`, then keeps the lock 20 ms longer. `before_fork` does not
/// wait for it, so the child inherits that lock held by a thread that does not
/// exist: the key must still work there. (The 20 ms only widen that window for
/// the check to bite; the correct code passes whatever they are.)
struct SlowClone {
    cloning: Arc<AtomicBool>,
    forking: Arc<AtomicBool>,
}

impl Clone for SlowClone {
    fn clone(&self) -> SlowClone {
        if !self.forking.load(Ordering::SeqCst) {
            self.cloning.store(true, Ordering::SeqCst);
            let deadline = Instant::now() + WATCHDOG;
            while !self.forking.load(Ordering::SeqCst) {
                assert!(Instant::now() < deadline, "watchdog: no fork came");
                std::thread::yield_now();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        SlowClone {
            cloning: Arc::clone(&self.cloning),
            forking: Arc::clone(&self.forking),
        }
    }
}

#[cfg(loom)]
fn main() {
    eprintln!("fork: not run under --cfg loom (no model forks)");
}

#[cfg(not(loom))]
fn main() {
    if std::env::var_os(FRESH).is_some() {
        return stray_call_after_before_fork();
    }
    in_a_fresh_process();
    quiet_expected_panics();
    let began = Instant::now();
    // First, before anything calls `before_fork`: a stray `after_fork_child` in a
    // process that never forked (the pid recorded at the first start is ours)
    // marks no live thread lost.
    let (release, gate) = mpsc::channel::<()>();
    let live = pythread::start(move || gate.recv_timeout(WATCHDOG).is_ok());
    pythread::after_fork_child();
    assert!(
        !live.is_finished(),
        "a stray after_fork_child marked a live thread lost"
    );
    release.send(()).unwrap();
    assert_eq!(bounded_join(&live, "the live thread").ok(), Some(true));
    // Not lost: `into_output` of a panicked thread with another clone alive gives
    // the handle back, as always (only a lost thread's handle gives its panic).
    let panicked = pythread::start(|| -> u32 { panic!("boom before fork") });
    let other = panicked.clone();
    assert!(bounded_join(&panicked, "the panicking thread").is_err());
    assert!(panicked.into_output().is_err(), "another clone exists");
    assert!(matches!(other.into_output(), Ok(Err(_))));
    key().set("main".to_string()).unwrap();
    let rounds = std::env::var("FORK_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(ROUNDS);
    let mut forks_from_started_thread = 0;
    for round in 0..rounds {
        let world = start_world(round % 4 == 0);
        let from_started_thread = round % 2 == 1;
        if from_started_thread {
            forks_from_started_thread += 1;
            let (tx, rx) = mpsc::channel::<Handle>();
            let (world_tx, world_rx) = mpsc::channel();
            let forker = Builder::new().daemon(false).start(move || {
                let own = rx.recv().unwrap();
                key().set(format!("forker {round}")).unwrap();
                world_tx
                    .send(fork_and_check(round, Some(own), world))
                    .unwrap();
            });
            tx.send(forker.clone()).unwrap();
            if let Err(p) = bounded_join(&forker, "the forking thread") {
                panic!("the forking thread panicked: {:?}", p.message());
            }
            finish_world(world_rx.recv().unwrap());
        } else {
            let world = fork_and_check(round, None, world);
            finish_world(world);
        }
        assert_eq!(pythread::count(), 0, "round {round}: threads left counted");
    }
    assert_eq!(key().get().as_deref(), Some("main"));
    println!(
        "fork: {rounds} forks ({forks_from_started_thread} from a started thread), every child \
         exited 0, in {:.2?}",
        began.elapsed()
    );
    lost_values();
    hammer();
}

/// The variable that makes this binary run [`stray_call_after_before_fork`] only.
#[cfg(not(loom))]
const FRESH: &str = "PYTHREAD_FORK_TEST_FRESH_PROCESS";

/// Runs this binary again, as a process that has started no thread of the crate
/// (no pid recorded by a start), for [`stray_call_after_before_fork`].
#[cfg(not(loom))]
fn in_a_fresh_process() {
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .env(FRESH, "1")
        .spawn()
        .unwrap();
    let (exited, exit) = mpsc::channel();
    let waiter = std::thread::spawn(move || exited.send(child.wait()).unwrap());
    let status = exit
        .recv_timeout(WATCHDOG)
        .expect("watchdog: the fresh process did not exit")
        .unwrap();
    waiter.join().unwrap();
    assert!(status.success(), "the fresh process failed: {status}");
}

/// In a process that never started a thread of the crate: `before_fork` records
/// the pid, so a stray `after_fork_child` after it (no fork) marks no other
/// thread's `Tss` value lost.
#[cfg(not(loom))]
fn stray_call_after_before_fork() {
    let key = Arc::new(Tss::new());
    key.create();
    let (set, was_set) = mpsc::channel();
    let (release, gate) = mpsc::channel::<()>();
    let other = std::thread::spawn({
        let key = Arc::clone(&key);
        move || {
            key.set(1).unwrap();
            set.send(()).unwrap();
            let _ = gate.recv_timeout(WATCHDOG);
            key.get()
        }
    });
    was_set
        .recv_timeout(WATCHDOG)
        .expect("watchdog: the value was never set");
    pythread::before_fork();
    pythread::after_fork_child();
    assert!(
        key.take_lost_values().is_empty(),
        "a stray after_fork_child after before_fork marked a live thread's value lost"
    );
    release.send(()).unwrap();
    assert_eq!(other.join().unwrap(), Some(1));
}

/// Forks; runs `check` in the child (under its `alarm`, exit status 1 on a panic)
/// and checks the child's exit in the parent. Returns how long `before_fork` took.
fn in_child(what: &str, check: impl FnOnce()) -> Duration {
    // `before_fork` is bounded too: a watchdog thread ends the process if it has
    // not returned within WATCHDOG (joined before the fork).
    let (returned, watched) = mpsc::channel::<()>();
    let what_owned = what.to_owned();
    let watchdog = std::thread::spawn(move || {
        if watched.recv_timeout(WATCHDOG) == Err(mpsc::RecvTimeoutError::Timeout) {
            eprintln!("watchdog: {what_owned}: before_fork still waiting after {WATCHDOG:?}");
            std::process::exit(1);
        }
    });
    let began = Instant::now();
    pythread::before_fork();
    let before_fork = began.elapsed();
    returned.send(()).unwrap();
    watchdog.join().unwrap();
    // SAFETY: as in `fork_and_check`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
    if pid == 0 {
        pythread::after_fork_child();
        // SAFETY: alarm and _exit are async-signal-safe and take no lock.
        unsafe { libc::alarm(CHILD_ALARM_SECS) };
        let checked = panic::catch_unwind(AssertUnwindSafe(check));
        // SAFETY: as above.
        unsafe { libc::_exit(i32::from(checked.is_err())) };
    }
    pythread::after_fork_parent();
    let status = wait_child(pid);
    assert!(
        !libc::WIFSIGNALED(status),
        "{what}: the child died of signal {} (SIGALRM: it hung)",
        libc::WTERMSIG(status)
    );
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{what}: the child failed a check (status {status:#x}; its panic is above)"
    );
    before_fork
}

/// A value that counts its drops.
struct Counted {
    drops: Arc<AtomicUsize>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// `Tss::take_lost_values` in a real child: the values of the threads that did
/// not survive come back once, to be dropped where the caller drops them; the
/// forking thread keeps its own; nothing is dropped before the call.
fn lost_values() {
    let key = Arc::new(Tss::new());
    key.create();
    let drops = Arc::new(AtomicUsize::new(0));
    key.set(Counted {
        drops: Arc::clone(&drops),
    })
    .ok()
    .unwrap();
    let (set_tx, set_rx) = mpsc::channel();
    let mut stops = Vec::new();
    let holders: Vec<_> = (0..3)
        .map(|_| {
            let (key, drops, set_tx) = (Arc::clone(&key), Arc::clone(&drops), set_tx.clone());
            let (stop_tx, stop_rx) = mpsc::channel::<()>();
            stops.push(stop_tx);
            pythread::start(move || {
                key.set(Counted { drops }).ok().unwrap();
                set_tx.send(()).unwrap();
                // Holds its value until the parent is done (the channel closes).
                let _ = stop_rx.recv_timeout(WATCHDOG);
            })
        })
        .collect();
    for _ in 0..3 {
        set_rx
            .recv_timeout(WATCHDOG)
            .expect("watchdog: a holder set nothing");
    }
    in_child("lost values", || {
        assert_eq!(drops.load(Ordering::SeqCst), 0, "dropped before asked");
        let mut visited = 0;
        key.for_each(|_| visited += 1);
        assert_eq!(visited, 4, "for_each sees the lost values too");
        let lost = key.take_lost_values();
        assert_eq!(lost.len(), 3, "one value per lost thread");
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        drop(lost);
        assert_eq!(drops.load(Ordering::SeqCst), 3, "dropped by the caller");
        assert!(key.take_lost_values().is_empty(), "handed out twice");
        assert!(key.with(|v| v.is_some()), "the forking thread's value");
        let mut visited = 0;
        key.for_each(|_| visited += 1);
        assert_eq!(visited, 1);
        drop(key.take());
        assert_eq!(drops.load(Ordering::SeqCst), 4);
    });
    drop(stops);
    for holder in &holders {
        bounded_join(holder, "a holder").unwrap();
        // Its value drops with its thread-locals, at the OS thread's exit.
        holder.join_thread().unwrap();
    }
    assert!(key.take_lost_values().is_empty(), "the parent lost nothing");
    assert_eq!(drops.load(Ordering::SeqCst), 3, "the holders' exits");
    println!("fork: take_lost_values handed the 3 lost values back once, in the child");
}

/// Forks while threads hammer every `Tss` method and exit (issue 24): the child
/// must find every key usable (no lock left held by a vanished thread) and the
/// forking thread's values intact; `before_fork` must not wait for the readers.
///
/// `kept` holds the forking thread's value; the workers call every method on it
/// but `for_each` and `delete` (which visit the forking thread's slot: a worker
/// lost inside one would take that value with it, see `Tss`). `churned` gets
/// every method, `delete` and `create` included. [`READERS`] threads loop on
/// `kept.get()`; the exit churn starts threads that set a value and end.
fn hammer() {
    let kept = Arc::new(Tss::<Vec<u32>>::new());
    kept.create();
    kept.set(vec![7; 4]).unwrap();
    let churned = Arc::new(Tss::<Vec<u32>>::new());
    churned.create();
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    for _ in 0..READERS {
        let (kept, stop, calls) = (Arc::clone(&kept), Arc::clone(&stop), Arc::clone(&calls));
        threads.push(pythread::start(move || {
            kept.set(vec![1]).unwrap();
            while !stop.load(Ordering::Relaxed) {
                assert_eq!(kept.get(), Some(vec![1]));
                calls.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for worker in 0..2u32 {
        let (kept, churned, stop) = (Arc::clone(&kept), Arc::clone(&churned), Arc::clone(&stop));
        threads.push(pythread::start(move || {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                n = n.wrapping_add(1);
                let _ = kept.set(vec![worker, n]);
                let _ = kept.with(|v| v.map(Vec::len));
                let _ = kept.is_created();
                let _ = kept.take();
                churned.create();
                let _ = churned.set(vec![n]);
                let _ = churned.get();
                churned.for_each(|v| assert!(!v.is_empty()));
                let _ = format!("{churned:?}");
                if n % 64 == 0 {
                    churned.delete();
                }
                // A key made, set and dropped: its slot dies with it.
                let temporary = Tss::new();
                temporary.create();
                temporary.set(n).unwrap();
            }
        }));
    }
    {
        let (kept, churned, stop) = (Arc::clone(&kept), Arc::clone(&churned), Arc::clone(&stop));
        threads.push(pythread::start(move || {
            while !stop.load(Ordering::Relaxed) {
                let (kept, churned) = (Arc::clone(&kept), Arc::clone(&churned));
                // Threads whose exit drops their values while the forks happen.
                let exiting = pythread::start(move || {
                    kept.set(vec![9]).unwrap();
                    churned.create();
                    let _ = churned.set(vec![9]);
                });
                bounded_join(&exiting, "an exiting thread").unwrap();
            }
        }));
    }
    let deadline = Instant::now() + WATCHDOG;
    while calls.load(Ordering::Relaxed) < 1000 {
        assert!(Instant::now() < deadline, "watchdog: the readers never ran");
        std::thread::yield_now();
    }
    let rounds = std::env::var("FORK_HAMMER_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(HAMMER_ROUNDS);
    let mut slowest = Duration::ZERO;
    let began = Instant::now();
    for round in 0..rounds {
        let took = in_child(&format!("hammer round {round}"), || {
            assert_eq!(kept.get(), Some(vec![7; 4]), "the forking thread's value");
            for key in [&kept, &churned] {
                key.create();
                assert!(key.is_created());
                let mut seen = 0;
                key.for_each(|_| seen += 1);
                drop(key.take_lost_values());
                let _ = format!("{key:?}");
            }
            assert_eq!(churned.set(vec![3]), Ok(None));
            assert_eq!(churned.get(), Some(vec![3]));
            // A thread of the child uses both keys, and exits.
            let (k, c) = (Arc::clone(&kept), Arc::clone(&churned));
            let child = pythread::start(move || {
                assert_eq!(k.get(), None, "a child thread saw a value");
                k.set(vec![5]).unwrap();
                c.set(vec![5]).unwrap();
                c.for_each(|_| {});
                k.get()
            });
            assert_eq!(
                bounded_join(&child, "a child thread").ok(),
                Some(Some(vec![5]))
            );
            churned.delete();
            assert!(!churned.is_created());
            assert_eq!(kept.take(), Some(vec![7; 4]));
        });
        slowest = slowest.max(took);
    }
    stop.store(true, Ordering::Relaxed);
    for thread in &threads {
        bounded_join(thread, "a hammer thread").unwrap();
    }
    assert_eq!(kept.get(), Some(vec![7; 4]), "the parent's value");
    println!(
        "fork: {rounds} forks while {READERS} readers looped on Tss::get and workers called \
         every Tss method and exited threads; every child exited 0, in {:.2?}; the slowest \
         before_fork took {slowest:.2?}",
        began.elapsed()
    );
}

/// Starts the threads the fork meets (see the module docs).
fn start_world(slow_clone: bool) -> World {
    let gate = Arc::new(Lock::new());
    gate.acquire();
    let held = Arc::new(Lock::new());
    let rheld = Arc::new(RLock::new());
    let mut running = Vec::new();
    let parked = |gate: &Arc<Lock>, value| {
        let gate = Arc::clone(gate);
        move || {
            gate.acquire();
            gate.release().unwrap();
            value
        }
    };
    let slow = slow_clone.then(|| {
        let key = Arc::new(Tss::new());
        key.create();
        let forking = Arc::new(AtomicBool::new(false));
        let cloning = Arc::new(AtomicBool::new(false));
        let value = SlowClone {
            cloning: Arc::clone(&cloning),
            forking: Arc::clone(&forking),
        };
        let reader = {
            let key = Arc::clone(&key);
            pythread::start(move || {
                key.set(value).ok().unwrap();
                drop(key.get());
                8
            })
        };
        let deadline = Instant::now() + WATCHDOG;
        while !cloning.load(Ordering::SeqCst) {
            assert!(Instant::now() < deadline, "watchdog: the clone never began");
            std::thread::yield_now();
        }
        (key, forking, reader)
    });
    running.push(("daemon", pythread::start(parked(&gate, 1))));
    running.push((
        "non-daemon",
        Builder::new().daemon(false).start(parked(&gate, 2)),
    ));
    let (holding_tx, holding) = mpsc::channel();
    running.push(("holder", {
        let (gate, held, rheld) = (Arc::clone(&gate), Arc::clone(&held), Arc::clone(&rheld));
        pythread::start(move || {
            held.acquire();
            rheld.acquire();
            rheld.acquire();
            holding_tx.send(()).unwrap();
            gate.acquire();
            gate.release().unwrap();
            rheld.release().unwrap();
            rheld.release().unwrap();
            held.release().unwrap();
            3
        })
    }));
    holding
        .recv_timeout(WATCHDOG)
        .expect("the holder never held");
    running.push(("waiter on the held lock", {
        let held = Arc::clone(&held);
        pythread::start(move || {
            held.acquire();
            held.release().unwrap();
            4
        })
    }));
    let daemon = running[0].1.clone();
    running.push((
        "joiner",
        pythread::start(move || daemon.join().unwrap() + 4),
    ));
    let stop_churn = Arc::new(AtomicBool::new(false));
    let churned = Arc::new(AtomicUsize::new(0));
    running.push(("churn", {
        let (stop, churned) = (Arc::clone(&stop_churn), Arc::clone(&churned));
        pythread::start(move || {
            while !stop.load(Ordering::Relaxed) {
                key().set("churn".to_string()).unwrap();
                assert_eq!(key().get().as_deref(), Some("churn"));
                let daemon = pythread::start(|| 1);
                drop(Builder::new().daemon(false).start(|| ()));
                daemon.join_thread().unwrap();
                churned.fetch_add(1, Ordering::Relaxed);
            }
            6
        })
    }));
    // The fork must meet the churn running, not starting.
    let deadline = Instant::now() + WATCHDOG;
    while churned.load(Ordering::Relaxed) < 2 {
        assert!(Instant::now() < deadline, "watchdog: the churn never ran");
        std::thread::yield_now();
    }
    // Finished, and their OS threads exited (unjoined), before the fork: in the
    // child their handles are the last references to their state.
    let (tid_tx, tids) = mpsc::channel();
    let returned = pythread::start({
        let tid_tx = tid_tx.clone();
        move || {
            tid_tx.send(pythread::get_native_id()).unwrap();
            7
        }
    });
    let panicked = pythread::start(move || -> u32 {
        tid_tx.send(pythread::get_native_id()).unwrap();
        panic!("boom before fork")
    });
    for _ in 0..2 {
        let tid = tids.recv_timeout(WATCHDOG).expect("no native id");
        let deadline = Instant::now() + WATCHDOG;
        while std::path::Path::new(&format!("/proc/self/task/{tid}")).exists() {
            assert!(
                Instant::now() < deadline,
                "watchdog: thread {tid} never exited"
            );
            std::thread::yield_now();
        }
    }
    assert!(returned.is_finished() && panicked.is_finished());
    World {
        gate,
        held,
        rheld,
        running,
        returned,
        panicked,
        stop_churn,
        slow,
    }
}

/// Releases every thread of the round and checks that the parent lost nothing.
fn finish_world(world: World) {
    world.stop_churn.store(true, Ordering::Relaxed);
    world.gate.release().unwrap();
    let expected = [1, 2, 3, 4, 5, 6, 8];
    for ((name, handle), value) in world.running.iter().zip(expected) {
        let outcome = bounded_join(handle, name);
        assert_eq!(outcome.ok(), Some(value), "parent: {name}");
        handle.join_thread().unwrap();
    }
    assert_eq!(world.returned.join().ok(), Some(7));
    assert!(world.panicked.join().is_err());
    if let Some((_, _, reader)) = &world.slow {
        assert_eq!(bounded_join(reader, "the tss reader").ok(), Some(8));
    }
    pythread::shutdown();
    assert!(!world.held.locked() && !world.rheld.locked());
}

/// Forks on the calling thread (`own`: its handle, when it is a started thread),
/// runs [`child`] in the child and checks its exit status in the parent.
fn fork_and_check(round: usize, own: Option<Handle>, world: World) -> World {
    let ident = pythread::get_ident();
    let value = key().get();
    if let Some((_, forking, _)) = &world.slow {
        forking.store(true, Ordering::SeqCst);
    }
    pythread::before_fork();
    // SAFETY: the child calls only what a forked child of a multithreaded process
    // may (the crate's after-fork reset first, then code that takes no lock a
    // vanished thread can hold: the crate's are reset, malloc's are fork-safe in
    // glibc) and leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
    if pid == 0 {
        pythread::after_fork_child();
        // SAFETY: alarm and _exit are async-signal-safe and take no lock.
        unsafe { libc::alarm(CHILD_ALARM_SECS) };
        let checked = panic::catch_unwind(AssertUnwindSafe(|| {
            child(round, own.as_ref(), ident, value.as_deref(), world)
        }));
        // SAFETY: as above.
        unsafe { libc::_exit(i32::from(checked.is_err())) };
    }
    pythread::after_fork_parent();
    // Parent: the forker's state is untouched.
    assert_eq!(pythread::get_ident(), ident);
    if let Some(own) = &own {
        assert!(!own.is_finished());
    }
    let status = wait_child(pid);
    if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        let why = if signal == libc::SIGALRM {
            "its watchdog alarm fired: the child hung"
        } else {
            "killed"
        };
        panic!("round {round}: the child died of signal {signal} ({why})");
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "round {round}: the child failed a check (status {status:#x}; its panic is above)"
    );
    world
}

/// Waits for the child, bounded: polls `waitpid(WNOHANG)`, kills it after [`WATCHDOG`].
fn wait_child(pid: libc::pid_t) -> i32 {
    let deadline = Instant::now() + WATCHDOG;
    loop {
        let mut status = 0;
        // SAFETY: plain system calls on our own child.
        let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(done >= 0, "waitpid: {}", std::io::Error::last_os_error());
        if done == pid {
            return status;
        }
        if Instant::now() > deadline {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            unsafe { libc::waitpid(pid, &mut status, 0) };
            panic!("watchdog: child {pid} still running after {WATCHDOG:?}: killed (a hang)");
        }
        // Polling pace only; the child's exit is what is waited for.
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Everything checked in the child (a panic = a failed check: exit status 1).
fn child(
    round: usize,
    own: Option<&Handle>,
    ident: pythread::Ident,
    value: Option<&str>,
    world: World,
) {
    let forked_from_started = own.is_some();
    let survivor_count = usize::from(forked_from_started);
    assert_eq!(pythread::count(), survivor_count, "count after the fork");
    assert_eq!(pythread::get_ident(), ident, "get_ident changed");
    assert_eq!(pythread::current_ident().is_some(), forked_from_started);
    assert_eq!(
        key().get().as_deref(),
        value,
        "the forking thread's TSS value"
    );

    // Lost threads: finished, and every join returns the one "lost" panic at once.
    for (name, handle) in &world.running {
        assert!(handle.is_finished(), "{name}: lost but not finished");
        let first = handle.join().expect_err(name);
        assert!(
            first.message().is_some_and(|m| m.starts_with(LOST)),
            "{name}: {:?}",
            first.message()
        );
        assert_eq!(first.ident(), handle.ident());
        let again = handle.clone().join().expect_err(name);
        assert!(Panic::ptr_eq(&first, &again), "{name}: not one outcome");
        let polled = handle.join_timeout(Duration::ZERO).expect(name);
        assert!(Panic::ptr_eq(&polled.unwrap_err(), &first));
        assert!(handle.join_thread().is_err(), "{name}: join_thread");
        let retried = handle.join_with_retries(None, || Err::<(), _>("no interruption expected"));
        assert!(
            matches!(retried, Ok(Some(Err(_)))),
            "{name}: join_with_retries"
        );
        assert!(format!("{handle:?}").contains("lost in fork"));
        let moved = handle.clone().into_output();
        assert!(matches!(moved, Ok(Err(ref p)) if Panic::ptr_eq(p, &first)));
    }
    // Finished before the fork: their outcome stands.
    assert_eq!(world.returned.join().ok(), Some(7));
    assert_eq!(world.returned.join_thread().ok(), Some(7));
    let boom = world.panicked.join().unwrap_err();
    assert_eq!(boom.message(), Some("boom before fork"));

    // The forking thread's own handle, when it is a started thread: not lost.
    if let Some(own) = own {
        assert_eq!(Some(own.ident()), pythread::current_ident());
        assert!(!own.is_finished());
        let other = own.clone();
        let polled = pythread::start(move || other.join_timeout(Duration::ZERO).is_none());
        assert!(
            polled.join().unwrap(),
            "the survivor's handle looked finished"
        );
    }

    // Every lock kind: the user locks held by vanished threads, once reinitialized.
    assert!(!world.held.try_acquire(), "held by the vanished holder");
    assert!(!world.gate.try_acquire());
    for lock in [&world.held, &world.gate] {
        lock.reinit_after_fork();
        lock.acquire();
        assert!(!lock.try_acquire());
        lock.release().unwrap();
    }
    let holder = world.running.iter().find(|(name, _)| *name == "holder");
    let state = world.rheld.state().expect("held by the vanished holder");
    assert_eq!(
        (state.owner(), state.count()),
        (holder.unwrap().1.ident(), 2)
    );
    world.rheld.reinit_after_fork();
    assert!(world.rheld.state().is_none());
    world.rheld.acquire();
    world.rheld.acquire();
    assert_eq!(world.rheld.recursion_count(), 2);
    world.rheld.release().unwrap();
    world.rheld.release().unwrap();
    assert!(!world.rheld.locked());
    // The crate's internal ones: TSS keys (the churn thread used `key()`; a
    // thread was inside `slow`'s lock when the fork began), the registry
    // (non-daemon starts), OS joins.
    if let Some((slow, _, reader)) = &world.slow {
        assert!(
            slow.take().is_none(),
            "the reader's value is not this thread's"
        );
        assert!(slow.is_created());
        match reader.join() {
            Ok(value) => assert_eq!(value, 8),
            Err(lost) => assert!(lost.message().is_some_and(|m| m.starts_with(LOST))),
        }
    }
    let local = Tss::<u32>::new();
    local.create();
    local.set(1).unwrap();
    key().set(format!("child {round}")).unwrap();

    // New threads: started, counted, joined (OS joins too); non-daemon ones shut down.
    let gate = Arc::new(Lock::new());
    gate.acquire();
    let late = Builder::new().daemon(false).start({
        let gate = Arc::clone(&gate);
        move || {
            gate.acquire();
            gate.release().unwrap();
            key().set("late".to_string()).unwrap();
            key().get().map_or(0, |v| v.len())
        }
    });
    let deadline = Instant::now() + WATCHDOG;
    while pythread::count() != survivor_count + 1 {
        assert!(Instant::now() < deadline, "the late thread never counted");
        std::thread::yield_now();
    }
    // A stray second call: this process has not forked again, nothing changes.
    pythread::after_fork_child();
    assert!(
        !late.is_finished(),
        "a stray after_fork_child marked a live thread lost"
    );
    assert_eq!(pythread::count(), survivor_count + 1);
    gate.release().unwrap();
    // Waits for `late` only: the parent's non-daemon threads are not here.
    pythread::shutdown();
    assert!(late.is_finished());
    assert_eq!(late.join_thread().unwrap(), 4);
    assert_eq!(pythread::count(), survivor_count);
    assert_eq!(
        pythread::shutdown_with_retries(|| Err("nothing to wait for")),
        Ok(())
    );

    // Dropping the last handles of the lost threads detaches nothing. The threads
    // started here reuse the vanished threads' stacks and descriptors (glibc
    // recycles them in the child), so a `pthread_detach` of a vanished thread's
    // `pthread_t` would detach one of them, and its OS join would fail. The
    // handles of `returned` and `panicked` are the last references (their threads
    // exited before the fork), so their drop is where a detach would happen.
    gate.acquire();
    let fresh: Vec<_> = (0..8)
        .map(|i| {
            let gate = Arc::clone(&gate);
            pythread::start(move || {
                gate.acquire();
                gate.release().unwrap();
                i * 2
            })
        })
        .collect();
    drop(world);
    gate.release().unwrap();
    for (i, handle) in fresh.iter().enumerate() {
        assert_eq!(handle.join_thread().unwrap(), i as u32 * 2);
    }
    assert_eq!(local.get(), Some(1));
    assert_eq!(pythread::count(), survivor_count);
}

/// `handle.join()`, bounded by [`WATCHDOG`].
fn bounded_join<T: Clone>(handle: &Handle<T>, what: &str) -> Result<T, Panic> {
    handle
        .join_timeout(WATCHDOG)
        .unwrap_or_else(|| panic!("watchdog: join of {what} not done within {WATCHDOG:?}"))
}

/// The panics this file causes on purpose are not printed; any other is.
fn quiet_expected_panics() {
    let default = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str));
        if text != Some("boom before fork") {
            default(info);
        }
    }));
}

//! `make demo`: a few-second tour of the crate.
//!
//! 1. Threads, idents, outcomes: three threads (one returns, one panics with a
//!    message, one panics with a custom payload), each joined from several threads
//!    at once; the table shows what every joiner saw.
//! 2. Typed results: a thread returns a value; several threads join it and each
//!    gets a clone; `join_ref` borrows it; `into_output` moves it out.
//! 3. Locks: threads incrementing under a `Lock`, a timed acquire that times out,
//!    the CPython message of releasing an unlocked lock, `RLock` reentrancy.
//! 4. Interruption (Linux): the main thread blocked in `acquire_with_retries` is
//!    woken by a real SIGUSR1; `pending_calls` ends the wait or resumes it.
//!
//! Every blocking wait is bounded by [`BOUND`]; nothing sleeps to synchronize. The
//! output is the same on every run apart from idents and native ids.
#![cfg_attr(loom, allow(dead_code, unused_imports))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use pythread::{Builder, Handle, Lock, LockStatus, Panic, RLock};

/// A custom panic payload, as `std::panic::panic_any` raises it.
#[derive(Clone, Debug)]
struct ExitCode(i32);

const JOINERS: usize = 3;

/// The bound on every blocking wait of the demo: reaching it means a hang, and the
/// demo fails saying what hung instead of hanging `make demo`.
const BOUND: Duration = Duration::from_secs(20);

#[cfg(loom)]
fn main() {
    eprintln!("the demo runs on the std build: `cargo run --example demo`");
}

#[cfg(not(loom))]
fn main() {
    // One short line per caught panic instead of the default hook's report, so the
    // table stays readable; the crate never changes the hook itself.
    std::panic::set_hook(Box::new(|info| {
        let name = thread::current().name().unwrap_or("<unnamed>").to_owned();
        let at = info
            .location()
            .map_or_else(String::new, |l| format!(" at line {}", l.line()));
        println!("  (panic hook) thread '{name}' panicked{at}");
    }));

    let info = pythread::thread_info();
    println!(
        "pythread demo: thread_info name={} lock={} version={}",
        info.name,
        info.lock.unwrap_or("None"),
        info.version.as_deref().unwrap_or("None")
    );
    outcomes();
    typed();
    locks();
    interruptible();
    constants();
}

/// `handle.join()` with the demo's bound.
#[cfg(not(loom))]
fn join<T: Clone>(what: &str, handle: &Handle<T>) -> Result<T, Panic> {
    handle
        .join_timeout(BOUND)
        .unwrap_or_else(|| panic!("demo: {what} did not finish within {BOUND:?}"))
}

/// Receives one value with the demo's bound.
#[cfg(not(loom))]
fn recv<T>(what: &str, rx: &mpsc::Receiver<T>) -> T {
    rx.recv_timeout(BOUND)
        .unwrap_or_else(|e| panic!("demo: {what}: {e} within {BOUND:?}"))
}

#[cfg(not(loom))]
fn outcomes() {
    println!("\n1. threads, idents, outcomes");
    let mut releases = Vec::new();
    let mut held = || {
        let (release, gate) = mpsc::channel::<()>();
        releases.push(release);
        move || recv("the gate", &gate)
    };

    let workers: Vec<(&str, Handle)> = vec![
        ("returns", {
            let wait = held();
            Builder::new().name("returns").start(wait)
        }),
        ("panics-message", {
            let wait = held();
            Builder::new().name("panics-message").start(move || {
                wait();
                let path = "/tmp/out";
                panic!("disk full writing {path}");
            })
        }),
        ("panics-custom", {
            let wait = held();
            Builder::new().name("panics-custom").start(move || {
                wait();
                std::panic::panic_any(ExitCode(3));
            })
        }),
    ];

    // Every worker is held on its gate: start its joiners (they block until the
    // worker ends) and collect what each saw on one channel.
    let (seen_tx, seen_rx) = mpsc::channel::<(usize, Result<(), Panic>)>();
    for (w, (name, handle)) in workers.iter().enumerate() {
        for _ in 0..JOINERS {
            let (handle, seen) = (handle.clone(), seen_tx.clone());
            let name = name.to_string();
            pythread::start(move || seen.send((w, join(&name, &handle))).unwrap());
        }
    }
    drop(seen_tx);
    let held_now = workers.iter().filter(|(_, h)| !h.is_finished()).count();
    println!("{held_now} threads held, {JOINERS} joiners started on each");
    println!("releasing them; the default panic hook would report each panic here:");
    // One at a time, so the hook's lines come in a fixed order.
    for (release, (name, handle)) in releases.into_iter().zip(&workers) {
        release.send(()).unwrap();
        let _ = join(name, handle);
    }
    let mut results: Vec<Vec<Result<(), Panic>>> = vec![Vec::new(); workers.len()];
    for _ in 0..workers.len() * JOINERS {
        let (w, outcome) = recv("a joiner's outcome", &seen_rx);
        results[w].push(outcome);
    }

    println!("ident  name            joiners  outcome                            one Panic");
    println!("{:-<6} {:-<15} {:-<8} {:-<34} {:-<9}", "", "", "", "", "");
    for ((name, handle), seen) in workers.iter().zip(results) {
        let own = join(name, handle);
        let agree = seen.iter().all(|o| match (o, &own) {
            (Ok(()), Ok(())) => true,
            (Err(a), Err(b)) => Panic::ptr_eq(a, b),
            _ => false,
        });
        let (outcome, same) = match &own {
            Ok(()) => ("Ok(())".to_owned(), "-"),
            Err(panic) => {
                let what = match (panic.message(), panic.downcast_cloned::<ExitCode>()) {
                    (Some(text), _) => format!("Err: {text:?}"),
                    (None, Some(ExitCode(code))) => format!("Err: ExitCode({code}) (custom)"),
                    (None, None) => "Err: (unknown payload)".to_owned(),
                };
                (what, if agree { "yes" } else { "NO" })
            }
        };
        println!(
            "{:<6} {:<15} {:<8} {:<34} {}",
            handle.ident(),
            name,
            format!("{}/{}", seen.len(), JOINERS),
            outcome,
            same
        );
        assert!(agree, "joiners of {name} disagree");
    }
}

#[cfg(not(loom))]
fn typed() {
    println!("\n2. typed results: Handle<T>");
    let (release, gate) = mpsc::channel::<()>();
    let sum: Handle<u64> = pythread::start(move || {
        recv("the gate", &gate);
        (1..=100).sum()
    });
    let (seen_tx, seen_rx) = mpsc::channel();
    let joiners: Vec<Handle> = (0..JOINERS)
        .map(|_| {
            let (sum, seen) = (sum.clone(), seen_tx.clone());
            pythread::start(move || seen.send(join("the sum", &sum)).unwrap())
        })
        .collect();
    release.send(()).unwrap();
    let seen: Vec<u64> = (0..JOINERS)
        .map(|_| recv("a joiner's sum", &seen_rx).unwrap())
        .collect();
    println!("start(|| (1..=100).sum::<u64>()), joined by {JOINERS} threads: each got {seen:?}");
    for joiner in &joiners {
        join("a joiner", joiner).unwrap();
    }
    drop(joiners); // they held clones of `sum`; they have ended
    println!("join_ref()    -> {:?} (a borrow)", sum.join_ref());
    let other = sum.clone();
    let sum = match sum.into_output() {
        Err(sum) => {
            println!("into_output() -> Err(handle) while a clone exists");
            sum
        }
        Ok(_) => unreachable!("`other` is a clone"),
    };
    drop(other);
    let moved = sum.into_output().map_err(|_| "a clone exists");
    println!("into_output() -> {moved:?} (moved out of the last handle)");
}

#[cfg(not(loom))]
fn locks() {
    println!("\n3. locks");
    const THREADS: usize = 4;
    const ROUNDS: usize = 100_000;
    let lock = Arc::new(Lock::new());
    // A load then a store, not `fetch_add`: without the lock, increments would be lost.
    let counter = Arc::new(AtomicUsize::new(0));
    // All start counting together (the joins below bound this wait too).
    let together = Arc::new(std::sync::Barrier::new(THREADS));
    let workers: Vec<Handle> = (0..THREADS)
        .map(|_| {
            let (lock, counter) = (Arc::clone(&lock), Arc::clone(&counter));
            let together = Arc::clone(&together);
            pythread::start(move || {
                together.wait();
                for _ in 0..ROUNDS {
                    let _guard = lock.lock();
                    let n = counter.load(Ordering::Relaxed);
                    counter.store(n + 1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for worker in &workers {
        join("an incrementer", worker).unwrap();
    }
    let total = counter.load(Ordering::Relaxed);
    println!(
        "Lock: {THREADS} threads x {ROUNDS} increments under lock() -> {total} (of {})",
        THREADS * ROUNDS
    );
    assert_eq!(total, THREADS * ROUNDS);

    lock.acquire();
    let begin = Instant::now();
    let got = lock.acquire_timeout(Duration::from_millis(50));
    let waited = begin.elapsed();
    assert!(!got && waited >= Duration::from_millis(50));
    println!("Lock held: acquire_timeout(50 ms) -> {got}, after >= 50 ms");
    println!(
        "Lock held: acquire_timed(0, false) -> {:?}, (1000 us, false) -> {:?}",
        lock.acquire_timed(0, false),
        lock.acquire_timed(1_000, false)
    );
    lock.release().unwrap();
    match lock.release() {
        Err(e) => println!("Lock: release() when unlocked -> Err({:?})", e.to_string()),
        Ok(()) => unreachable!("the lock is unlocked"),
    }
    assert_eq!(lock.acquire_timed(-1, false), LockStatus::Acquired);
    lock.release().unwrap();

    let rlock = RLock::new();
    rlock.acquire();
    rlock.acquire();
    let guard = rlock.lock();
    println!(
        "RLock: acquire, acquire, lock() -> recursion_count {}, is_owned {}",
        rlock.recursion_count(),
        rlock.is_owned()
    );
    drop(guard);
    rlock.release().unwrap();
    rlock.release().unwrap();
    let err = rlock.release().unwrap_err();
    println!(
        "RLock: 3 releases -> recursion_count {}; a 4th -> Err({:?})",
        rlock.recursion_count(),
        err.to_string()
    );
}

/// A real SIGUSR1, sent with no `unsafe`: the handler is `signal_hook`'s (it sets
/// a flag), the signal goes to the process through the `kill` command, and Linux
/// hands a process-directed signal to the main thread first when that thread does
/// not block it; so the main thread is the one that waits.
///
/// signal-hook installs its handler with `SA_RESTART`, after which the kernel
/// restarts a futex wait with no timeout; the crate's wait never gives the kernel
/// "no timeout", so the first wait here has no deadline and still ends.
#[cfg(all(target_os = "linux", not(pythread_generic), not(loom)))]
fn interruptible() {
    use std::sync::atomic::AtomicBool;

    println!("\n4. interruption: a real SIGUSR1 ends acquire_with_retries (Linux)");
    let handled = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&handled))
        .expect("demo: install a SIGUSR1 handler");
    let lock = Arc::new(Lock::new());
    lock.acquire();
    for resume in [false, true] {
        // No deadline for the wait the signal ends; 300 ms for the one it resumes.
        let timeout = resume.then(|| Duration::from_millis(300));
        let (woke, sender) = signal_when_blocked(pythread::get_native_id(), Arc::clone(&lock));
        let begin = Instant::now();
        let mut calls = 0;
        let got = lock.acquire_with_retries(timeout, || {
            // CPython's Py_MakePendingCalls: run the Python-level handlers, which may raise.
            calls += 1;
            assert!(
                handled.swap(false, Ordering::SeqCst),
                "woken with no handler run"
            );
            let _ = woke.send(());
            if resume {
                Ok(())
            } else {
                Err("KeyboardInterrupt")
            }
        });
        let waited = begin.elapsed();
        drop(woke);
        let sent = join("the signal sender", &sender).unwrap();
        assert!(
            sent >= 1 && calls == 1,
            "sent {sent}, pending_calls ran {calls}x"
        );
        if let Some(timeout) = timeout {
            assert!(got == Ok(false) && waited >= timeout);
            println!("pending_calls -> Ok(()): the wait resumes; at its deadline -> {got:?}");
        } else {
            assert!(got == Err("KeyboardInterrupt"), "{got:?}");
            println!(
                "no deadline, SA_RESTART handler; pending_calls -> Err(e): the wait ends at once -> {got:?}"
            );
        }
    }
}

/// Starts a thread that waits until thread `tid` (this process's main thread) is
/// asleep in the `futex` system call, then sends SIGUSR1 to the process, again if
/// the waiter has not reported waking within a second (the signal can land just
/// before the wait). Returns the waiter's side of the report channel and the
/// sender, which returns how many signals it sent. If ten signals never end the
/// wait, it releases `lock` (any thread may release a `Lock`), so that a wait with
/// no deadline ends and the demo fails instead of hanging.
#[cfg(all(target_os = "linux", not(pythread_generic), not(loom)))]
fn signal_when_blocked(tid: u64, lock: Arc<Lock>) -> (mpsc::Sender<()>, Handle<usize>) {
    let (woke, woken) = mpsc::channel::<()>();
    let sender = pythread::start(move || {
        let syscall = format!("/proc/self/task/{tid}/syscall");
        let futex = libc::SYS_futex.to_string();
        let begin = Instant::now();
        let asleep = || {
            let text = std::fs::read_to_string(&syscall).unwrap_or_default();
            text.split_whitespace().next() == Some(futex.as_str())
        };
        while !asleep() {
            assert!(begin.elapsed() < BOUND, "demo: main thread never blocked");
            thread::yield_now();
        }
        let pid = std::process::id().to_string();
        for sent in 1..=10 {
            let kill = std::process::Command::new("kill")
                .args(["-USR1", &pid])
                .status();
            assert!(kill.is_ok_and(|s| s.success()), "demo: kill -USR1 {pid}");
            match woken.recv_timeout(Duration::from_secs(1)) {
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                _ => return sent, // woken, or the wait is over
            }
        }
        let _ = lock.release();
        panic!("demo: 10 signals sent, the waiter never woke");
    });
    (woke, sender)
}

/// Elsewhere (and under `--cfg pythread_generic`) the lock's wait cannot be
/// interrupted (a mutex + condition variable): `pending_calls` is never called.
#[cfg(all(any(not(target_os = "linux"), pythread_generic), not(loom)))]
fn interruptible() {
    println!("\n4. acquire_with_retries: not interruptible on this platform");
    let lock = Lock::new();
    lock.acquire();
    let begin = Instant::now();
    let mut calls = 0;
    let got = lock.acquire_with_retries(Some(Duration::from_millis(50)), || {
        calls += 1;
        Err("KeyboardInterrupt")
    });
    assert!(begin.elapsed() >= Duration::from_millis(50));
    println!("Lock held, 50 ms -> {got:?} after >= 50 ms; pending_calls ran {calls}x");
}

#[cfg(not(loom))]
fn constants() {
    println!(
        "\nTIMEOUT_MAX = {} us (about {} years); main's get_ident() = {}",
        pythread::TIMEOUT_MAX,
        pythread::TIMEOUT_MAX / 1_000_000 / 86_400 / 365,
        pythread::get_ident()
    );
    println!(
        "get_stacksize() = {}, set_stacksize(1 MiB) = {}",
        pythread::get_stacksize(),
        pythread::set_stacksize(1 << 20)
    );
}

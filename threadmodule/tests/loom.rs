//! Loom models of the layer's `_ThreadHandle` state machine and its interruptible wait, on the
//! Rust-only host (`threadmodule::minihost`), through the crate's `cfg(loom)` facade: the
//! handle's mutex and flags, the module state, the interpreter lock (a crate `Lock`), the crate
//! threads the layer starts and their waits are all loom's.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test --release -p threadmodule --test loom_threadmodule`
//! (also part of the verbatim root command: the layer is a default member).
#![cfg(loom)]

use std::time::Duration;

use loom::sync::Arc;
use loom::thread;
use threadmodule::minihost::{MiniException, MiniFunction, MiniHost, MiniInterpreter};
use threadmodule::{Error, ModuleState, Runtime, StartOptions, ThreadHandle};

/// Runs `model` under loom with at most `bound` preemptions (`None`: every interleaving),
/// a fresh model of the crate's wait primitive per execution; prints the iterations.
fn check(name: &str, bound: Option<usize>, model: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = bound;
    }
    let iterations = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&iterations);
    let started = std::time::Instant::now();
    builder.check(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        pythread::__loom::reset();
        model();
    });
    eprintln!(
        "loom: {name}: bound {bound:?}, {} iterations, {:.2?}",
        iterations.load(std::sync::atomic::Ordering::Relaxed),
        started.elapsed()
    );
}

fn not_started() -> MiniException {
    MiniException::Error(Error::ThreadNotStarted)
}

/// A start that fails (the OS refuses: a name with a NUL byte) racing a start that succeeds, on
/// one handle: exactly one claims it (the other gets "thread already started"); whichever
/// claimed it, the handle ends consistent: failed (done, ident 0) or started (joinable, its
/// ident the thread's host ident, published before the function runs).
#[test]
fn a_failing_start_racing_a_start() {
    check("a_failing_start_racing_a_start", Some(2), || {
        let interp = MiniInterpreter::new();
        let module = ModuleState::new(1);
        let handle = Arc::new(ThreadHandle::new(&module));
        let failing = {
            let (interp, handle) = (interp.clone(), Arc::clone(&handle));
            thread::spawn(move || {
                let host = interp.attach();
                let f = MiniFunction::new("never", |_| Err(MiniException::raised("ran")));
                handle.start(&host, &StartOptions::new().name("a\0b"), interp.runner(f))
            })
        };
        let host = interp.attach();
        let h = Arc::clone(&handle);
        let f = MiniFunction::new("f", move |_| {
            // Published before the function runs.
            if h.ident() == MiniHost::get_ident() {
                Ok(())
            } else {
                Err(MiniException::raised("ident not published"))
            }
        });
        let mine = handle.start(&host, &StartOptions::new(), interp.runner(f));
        drop(host);
        let theirs = failing.join().unwrap();
        let already = MiniException::Error(Error::ThreadAlreadyStarted);
        let host = interp.attach();
        match (&mine, &theirs) {
            (Ok(()), Err(e)) => {
                assert_eq!(*e, already);
                handle.join(&host, None).unwrap();
                assert!(handle.is_done());
                assert_ne!(handle.ident(), 0);
            }
            (Err(e), Err(f)) => {
                assert_eq!(*e, already, "mine lost the claim");
                assert_eq!(*f, MiniException::Error(Error::CantStartNewThread));
                assert!(handle.is_done());
                assert_eq!(handle.ident(), 0);
                handle.join(&host, None).unwrap();
            }
            other => panic!("both starts claimed the handle, or neither: {other:?}"),
        }
        assert!(interp.reports().is_empty(), "{:?}", interp.reports());
    });
}

/// A join racing the start of its handle: it sees "thread not started" or a started (or
/// failed) handle, never anything in between, and a join after the start always works.
#[test]
fn a_join_racing_a_failing_start() {
    check("a_join_racing_a_failing_start", Some(3), || {
        let interp = MiniInterpreter::new();
        let module = ModuleState::new(1);
        let handle = Arc::new(ThreadHandle::new(&module));
        let joiner = {
            let (interp, handle) = (interp.clone(), Arc::clone(&handle));
            thread::spawn(move || {
                let host = interp.attach();
                let joined = handle.join(&host, None);
                (joined, handle.is_done())
            })
        };
        let host = interp.attach();
        let f = MiniFunction::new("never", |_| Err(MiniException::raised("ran")));
        let started = handle.start(&host, &StartOptions::new().name("a\0b"), interp.runner(f));
        assert_eq!(
            started,
            Err(MiniException::Error(Error::CantStartNewThread))
        );
        drop(host);
        match joiner.join().unwrap() {
            (Err(e), done) => {
                assert_eq!(e, not_started());
                assert!(!done);
            }
            (Ok(()), done) => assert!(done, "joined a failed start: it reads as done"),
        }
        assert!(handle.is_done());
        assert_eq!(handle.ident(), 0);
    });
}

/// A foreign handle's end (`_make_thread_handle` then `_set_done`, threading's main thread at
/// shutdown): two joiners waiting on it both return, and a join after them returns at once.
#[test]
fn a_foreign_handles_end_releases_every_joiner() {
    check(
        "a_foreign_handles_end_releases_every_joiner",
        Some(2),
        || {
            let interp = MiniInterpreter::new();
            let module = ModuleState::new(1);
            let main = Arc::new(ThreadHandle::foreign(&module, 5));
            let joiners: Vec<_> = (0..2)
                .map(|_| {
                    let (interp, main) = (interp.clone(), Arc::clone(&main));
                    thread::spawn(move || {
                        let host = interp.attach();
                        main.join(&host, None)
                    })
                })
                .collect();
            let host = interp.attach();
            main.set_done(&host).unwrap();
            drop(host);
            for joiner in joiners {
                assert_eq!(joiner.join().unwrap(), Ok(()));
            }
            let host = interp.attach();
            main.join(&host, None).unwrap();
            assert!(main.is_done());
        },
    );
}

/// A join of a foreign handle racing `_set_done` and a fork that the thread did not survive
/// (`after_fork_child` of another thread): the join returns whichever comes first, and the
/// handle reads as done.
#[test]
fn a_join_racing_set_done_and_a_fork() {
    check("a_join_racing_set_done_and_a_fork", Some(3), || {
        let interp = MiniInterpreter::new();
        let module = ModuleState::new(5);
        let main = Arc::new(ThreadHandle::foreign(&module, 5));
        let joiner = {
            let (interp, main) = (interp.clone(), Arc::clone(&main));
            thread::spawn(move || {
                let host = interp.attach();
                main.join(&host, None)
            })
        };
        let setter = {
            let (interp, main) = (interp.clone(), Arc::clone(&main));
            thread::spawn(move || {
                let host = interp.attach();
                main.set_done(&host)
            })
        };
        module.__forked(6);
        assert_eq!(joiner.join().unwrap(), Ok(()));
        assert_eq!(setter.join().unwrap(), Ok(()));
        assert!(main.is_done());
    });
}

/// A join interrupted by a signal (a model interrupt) runs the pending calls attached: one
/// that raises ends the join with its exception, the thread still running.
#[test]
fn an_interrupted_join_ends_with_the_pending_calls_exception() {
    check(
        "an_interrupted_join_ends_with_the_pending_calls_exception",
        Some(2),
        || {
            let interp = MiniInterpreter::new();
            let module = ModuleState::new(1);
            let handle = Arc::new(ThreadHandle::new(&module));
            let gate = Arc::new(pythread::Lock::new());
            gate.acquire();
            {
                let host = interp.attach();
                let g = Arc::clone(&gate);
                let f = MiniFunction::new("blocked", move |host: &MiniHost| {
                    host.allow_threads(|| g.acquire());
                    Ok(())
                });
                handle
                    .start(&host, &StartOptions::new(), interp.runner(f))
                    .unwrap();
            }
            interp.add_pending_call(|| Err(MiniException::raised("KeyboardInterrupt")));
            let joiner = {
                let (interp, handle) = (interp.clone(), Arc::clone(&handle));
                thread::spawn(move || {
                    let host = interp.attach();
                    handle.join(&host, Some(Duration::from_secs(1)))
                })
            };
            // Both other threads asleep: the blocked function on its gate, and the joiner in its
            // join (a thread asleep on the interpreter lock would need a holder awake). A signal
            // sent earlier would end the joiner's wait for the interpreter lock, which retries.
            pythread::__loom::wait_for_sleepers(2);
            pythread::__loom::interrupt(joiner.thread().id());
            assert_eq!(
                joiner.join().unwrap(),
                Err(MiniException::raised("KeyboardInterrupt"))
            );
            assert!(interp.pending_runs() >= 1);
            let _ = gate.release();
            let host = interp.attach();
            handle.join(&host, None).unwrap();
            assert!(handle.is_done());
        },
    );
}

/// A started thread's handle: a join racing `_set_done` and the thread's end. The join
/// returns (at `_set_done` or at the end), the handle's ident is the host ident the thread
/// sees (published by the start handshake before the start returns), and the function ran
/// once, its exception reported.
#[test]
fn a_join_racing_set_done_and_the_threads_end() {
    check(
        "a_join_racing_set_done_and_the_threads_end",
        Some(2),
        || {
            let interp = MiniInterpreter::new();
            let module = ModuleState::new(1);
            let handle = Arc::new(ThreadHandle::new(&module));
            let seen = Arc::new(loom::sync::atomic::AtomicU64::new(0));
            let host = interp.attach();
            let s = Arc::clone(&seen);
            let f = MiniFunction::new("f", move |_| {
                s.store(MiniHost::get_ident(), loom::sync::atomic::Ordering::Release);
                Err(MiniException::raised("boom"))
            });
            handle
                .start(&host, &StartOptions::new(), interp.runner(f))
                .unwrap();
            let ident = handle.ident();
            assert_ne!(
                ident, 0,
                "the start returned before the thread published its ident"
            );
            drop(host);
            let joiner = {
                let (interp, handle) = (interp.clone(), Arc::clone(&handle));
                thread::spawn(move || {
                    let host = interp.attach();
                    handle.join(&host, None)
                })
            };
            let host = interp.attach();
            handle.set_done(&host).unwrap();
            drop(host);
            assert_eq!(joiner.join().unwrap(), Ok(()));
            assert!(handle.is_done());
            let host = interp.attach();
            handle.join(&host, None).unwrap();
            drop(host);
            // The thread may still be running (a set_done join returns at once): wait for it
            // through the crate, then check what it saw.
            while interp.exited() == 0 {
                thread::yield_now();
            }
            assert_eq!(seen.load(loom::sync::atomic::Ordering::Acquire), ident);
            assert_eq!(
                interp.reports(),
                ["Exception ignored in thread started by f: boom"]
            );
        },
    );
}

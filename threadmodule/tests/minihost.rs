//! The layer's behaviour, on the Rust-only host (`threadmodule::minihost`), with real threads:
//! start, join, join timeouts, exception reports, `SystemExit`, refusing starts at shutdown,
//! `_shutdown`, `_set_done` racing a join, lost foreign threads after a fork, the `locked`
//! flag, RLock `_release_save` / `_acquire_restore` with owner idents of other threads, and
//! waits interrupted by a real signal re-running the pending calls.
//!
//! Every blocking step runs under [`bounded`], which fails with a message instead of hanging.
#![cfg(not(loom))]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use threadmodule::minihost::{
    IDENT_OFFSET, MiniException, MiniFunction, MiniHost, MiniInterpreter,
};
use threadmodule::{
    Error, LocalDicts, LockObject, LockedReport, ModuleState, RLockObject, ReleaseSaveRule,
    Runtime, StartOptions, ThreadHandle,
};

// The crate's watchdog: every blocking step runs under `bounded`, which fails with a message.
#[path = "../../tests/support/lock.rs"]
mod support;
use support::{WATCHDOG, bounded};

/// A Rust-only interpreter, this thread attached to it, and a module made by this thread.
fn interpreter() -> (MiniInterpreter, MiniHost, Arc<ModuleState>) {
    let interp = MiniInterpreter::new();
    let host = interp.attach();
    (interp, host, ModuleState::new(MiniHost::get_ident()))
}

fn err(e: Error) -> MiniException {
    MiniException::Error(e)
}

/// A gate a test thread waits on (attached threads wait with the interpreter lock released).
fn gate() -> Arc<pythread::Lock> {
    let gate = Arc::new(pythread::Lock::new());
    gate.acquire();
    gate
}

fn waits_for(
    gate: &Arc<pythread::Lock>,
) -> impl Fn(&MiniHost) -> Result<(), MiniException> + use<> {
    let gate = Arc::clone(gate);
    move |host: &MiniHost| {
        host.allow_threads(|| gate.acquire());
        let _ = gate.release();
        Ok(())
    }
}

/// A thread started by the module (`start_joinable_thread`) that waits on `gate`.
fn start_blocked(
    interp: &MiniInterpreter,
    host: &MiniHost,
    module: &Arc<ModuleState>,
    gate: &Arc<pythread::Lock>,
) -> ThreadHandle {
    let handle = ThreadHandle::new(module);
    let f = MiniFunction::new("blocked", waits_for(gate));
    handle
        .start(host, &StartOptions::new(), interp.runner(f))
        .unwrap();
    handle
}

#[test]
fn start_join_reports_the_exception_and_ignores_system_exit() {
    bounded("start/join", || {
        let (interp, host, module) = interpreter();
        let raising = ThreadHandle::new(&module);
        let exiting = ThreadHandle::new(&module);
        let f = MiniFunction::new("raiser", |_| Err(MiniException::raised("ValueError: boom")));
        let g = MiniFunction::new("exiter", |_| Err(MiniException::SystemExit));
        raising
            .start(&host, &StartOptions::new(), interp.runner(f))
            .unwrap();
        exiting
            .start(&host, &StartOptions::new(), interp.runner(g))
            .unwrap();
        raising.join(&host, None).unwrap();
        exiting.join(&host, None).unwrap();
        assert!(raising.is_done() && exiting.is_done());
        assert_eq!(
            interp.reports(),
            ["Exception ignored in thread started by raiser: ValueError: boom"]
        );
        assert_eq!(interp.exited(), 2, "thread_exiting ran on both threads");
    });
}

#[test]
fn idents_are_the_hosts_own() {
    bounded("idents", || {
        let (interp, host, module) = interpreter();
        let (tx, rx) = mpsc::channel();
        let f = MiniFunction::new("f", move |_| {
            tx.send((MiniHost::get_ident(), pythread::get_ident().as_u64()))
                .unwrap();
            Ok(())
        });
        let ident = threadmodule::start_new_thread(&host, &module, interp.runner(f)).unwrap();
        drop(host);
        let (seen, crate_ident) = rx.recv().unwrap();
        assert_eq!(
            ident, seen,
            "start_new_thread returns the thread's host ident"
        );
        assert_eq!(seen, crate_ident + IDENT_OFFSET);

        let host = interp.attach();
        let (tx, rx) = mpsc::channel();
        let handle = ThreadHandle::new(&module);
        let f = MiniFunction::new("g", move |_| {
            tx.send(MiniHost::get_ident())
                .map_err(|_| MiniException::raised("send"))
        });
        handle
            .start(&host, &StartOptions::new(), interp.runner(f))
            .unwrap();
        handle.join(&host, None).unwrap();
        assert_eq!(handle.ident(), rx.recv().unwrap());
    });
}

/// A host whose starting thread can tell a new thread's ident from the crate's handle
/// (`Runtime::ident_of`; as the PyO3 host, with the `pthread_t`): the rest is [`MiniHost`].
struct KnownIdents(MiniHost);

impl Runtime for KnownIdents {
    type Exception = MiniException;
    type Function = MiniFunction;

    fn get_ident() -> u64 {
        MiniHost::get_ident()
    }
    fn ident_of(thread: &pythread::Handle) -> Option<u64> {
        thread.pthread_t()
    }
    fn allow_threads<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        self.0.allow_threads(f)
    }
    fn make_pending_calls(&self) -> Result<(), MiniException> {
        self.0.make_pending_calls()
    }
    fn is_finalizing(&self) -> bool {
        self.0.is_finalizing()
    }
    fn new_exception(&self, error: Error) -> MiniException {
        self.0.new_exception(error)
    }
    fn call(&self, function: &MiniFunction) -> Result<(), MiniException> {
        self.0.call(function)
    }
    fn is_system_exit(&self, exception: &MiniException) -> bool {
        self.0.is_system_exit(exception)
    }
    fn report_thread_exception(&self, exception: MiniException, function: &MiniFunction) {
        self.0.report_thread_exception(exception, function)
    }
    fn write_unraisable(&self, exception: MiniException) {
        self.0.write_unraisable(exception)
    }
}

#[test]
fn an_ident_the_starter_can_tell_is_the_one_a_start_returns() {
    bounded("idents told by the starter", || {
        let interp = MiniInterpreter::new();
        let host = KnownIdents(interp.attach());
        let module = ModuleState::new(KnownIdents::get_ident());
        let (tx, rx) = mpsc::channel();
        let f = MiniFunction::new("f", move |_| {
            tx.send(libc_pthread_self()).unwrap();
            Ok(())
        });
        let ident = threadmodule::start_new_thread(&host, &module, interp.runner(f)).unwrap();
        drop(host);
        let pthread = rx.recv().unwrap();
        assert_eq!(ident, pthread, "start_new_thread returns Runtime::ident_of");
        assert_ne!(ident, 0);

        let host = KnownIdents(interp.attach());
        let (tx, rx) = mpsc::channel();
        let handle = ThreadHandle::new(&module);
        let f = MiniFunction::new("g", move |_| {
            tx.send(libc_pthread_self())
                .map_err(|_| MiniException::raised("send"))
        });
        handle
            .start(&host, &StartOptions::new(), interp.runner(f))
            .unwrap();
        handle.join(&host, None).unwrap();
        assert_eq!(handle.ident(), rx.recv().unwrap());
    });
}

fn libc_pthread_self() -> u64 {
    // SAFETY: pthread_self has no preconditions (tests may use libc).
    #[allow(unsafe_code)]
    unsafe {
        libc::pthread_self() as u64
    }
}

#[test]
fn join_timeout_waits_at_least_the_timeout_then_join_ends_it() {
    bounded("join timeout", || {
        let (interp, host, module) = interpreter();
        let gate = gate();
        let handle = start_blocked(&interp, &host, &module, &gate);
        let timeout = threadmodule::join_timeout(Some(0.05)).unwrap();
        let started = Instant::now();
        handle.join(&host, timeout).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(!handle.is_done());
        handle.join(&host, Some(Duration::ZERO)).unwrap();
        assert!(!handle.is_done());
        let _ = gate.release();
        handle.join(&host, None).unwrap();
        assert!(handle.is_done());
    });
}

#[test]
fn joining_ones_own_handle_is_refused() {
    bounded("self join", || {
        let (interp, host, module) = interpreter();
        let handle = Arc::new(ThreadHandle::new(&module));
        let (tx, rx) = mpsc::channel();
        let gate = gate();
        let f = {
            let handle = Arc::clone(&handle);
            let gate = Arc::clone(&gate);
            MiniFunction::new("self-joiner", move |host| {
                host.allow_threads(|| gate.acquire());
                tx.send(handle.join(host, None)).unwrap();
                Ok(())
            })
        };
        handle
            .start(&host, &StartOptions::new(), interp.runner(f))
            .unwrap();
        let _ = gate.release();
        handle.join(&host, None).unwrap();
        assert_eq!(rx.recv().unwrap(), Err(err(Error::CannotJoinCurrentThread)));
        // A foreign handle naming the caller too.
        let me = ThreadHandle::foreign(&module, MiniHost::get_ident());
        assert_eq!(
            me.join(&host, None),
            Err(err(Error::CannotJoinCurrentThread))
        );
    });
}

#[test]
fn starts_are_refused_at_shutdown() {
    bounded("shutdown refusal", || {
        let (interp, host, module) = interpreter();
        interp.set_finalizing(true);
        let ran = Arc::new(AtomicBool::new(false));
        let f = {
            let ran = Arc::clone(&ran);
            MiniFunction::new("late", move |_| {
                ran.store(true, Ordering::SeqCst);
                Ok(())
            })
        };
        let handle = ThreadHandle::new(&module);
        assert_eq!(
            handle.start(&host, &StartOptions::new(), interp.runner(f.clone())),
            Err(err(Error::StartAtShutdown))
        );
        assert_eq!(handle.ident(), 0);
        assert_eq!(
            handle.join(&host, None),
            Err(err(Error::ThreadNotStarted)),
            "a refused start leaves the handle not started"
        );
        assert_eq!(
            threadmodule::start_new_thread(&host, &module, interp.runner(f)),
            Err(err(Error::StartAtShutdown))
        );
        assert!(!ran.load(Ordering::SeqCst));
    });
}

#[test]
fn a_failed_start_leaves_a_done_handle() {
    bounded("failed start", || {
        let (interp, host, module) = interpreter();
        let handle = ThreadHandle::new(&module);
        let bad = StartOptions::new().name("a\0b");
        let f = MiniFunction::new("never", |_| panic!("a failed start ran its function"));
        assert_eq!(
            handle.start(&host, &bad, interp.runner(f)),
            Err(err(Error::CantStartNewThread))
        );
        assert!(handle.is_done());
        assert_eq!(handle.ident(), 0);
        assert_eq!(handle.join(&host, None), Ok(()));
        assert_eq!(handle.set_done(&host), Ok(()));
    });
}

#[test]
fn shutdown_joins_non_daemon_threads() {
    bounded("_shutdown", || {
        let (interp, host, module) = interpreter();
        let finished = Arc::new(AtomicBool::new(false));
        let gate = gate();
        let f = {
            let finished = Arc::clone(&finished);
            let wait = waits_for(&gate);
            MiniFunction::new("worker", move |host| {
                wait(host)?;
                finished.store(true, Ordering::SeqCst);
                Ok(())
            })
        };
        let handle = ThreadHandle::new(&module);
        handle
            .start(&host, &StartOptions::new().daemon(false), interp.runner(f))
            .unwrap();
        let opener = std::thread::spawn({
            let gate = Arc::clone(&gate);
            move || {
                std::thread::sleep(Duration::from_millis(50));
                let _ = gate.release();
            }
        });
        module.shutdown(&host);
        assert!(
            finished.load(Ordering::SeqCst),
            "_shutdown returned before the non-daemon thread ended"
        );
        opener.join().unwrap();
        assert!(interp.unraisable().is_empty());
    });
}

#[test]
fn set_done_racing_a_join_of_a_foreign_handle() {
    for _ in 0..50 {
        bounded("_set_done racing join", || {
            let interp = MiniInterpreter::new();
            let module = ModuleState::new(1);
            let main = Arc::new(ThreadHandle::foreign(&module, 1));
            let joiners: Vec<_> = (0..2)
                .map(|_| {
                    let (interp, main) = (interp.clone(), Arc::clone(&main));
                    std::thread::spawn(move || {
                        let host = interp.attach();
                        main.join(&host, None)
                    })
                })
                .collect();
            main.set_done(&interp.attach()).unwrap();
            for joiner in joiners {
                assert_eq!(joiner.join().unwrap(), Ok(()));
            }
            assert!(main.is_done());
            main.join(&interp.attach(), None).unwrap();
        });
    }
}

/// `_set_done()` on a started handle (CPython detaches the thread there): the handle reads as
/// done and joins return at once, while the thread still runs.
#[test]
fn set_done_on_a_started_handle_makes_joins_return_while_the_thread_runs() {
    bounded("_set_done on a started handle", || {
        let (interp, host, module) = interpreter();
        let release = gate();
        let handle = start_blocked(&interp, &host, &module, &release);
        assert!(!handle.is_done());
        handle.set_done(&host).unwrap();
        assert!(handle.is_done());
        handle.join(&host, None).unwrap(); // at once: the thread still waits on `release`
        release.release().unwrap();
        drop(host);
    });
}

#[test]
fn a_foreign_thread_lost_in_a_fork_reads_as_done() {
    bounded("a_foreign_thread_lost_in_a_fork_reads_as_done", || {
        let interp = MiniInterpreter::new();
        let host = interp.attach();
        let module = ModuleState::new(10);
        let lost = ThreadHandle::foreign(&module, 10);
        let survivor = ThreadHandle::foreign(&module, 20);
        module.__forked(20);
        assert_eq!(module.get_main_thread_ident(), 20);
        assert!(lost.is_done());
        lost.join(&host, None).unwrap(); // at once
        assert!(!survivor.is_done(), "the forking thread survives");
        let later = ThreadHandle::foreign(&module, 30);
        assert!(
            !later.is_done(),
            "a handle made after the fork names a live thread"
        );
    });
}

#[test]
fn the_locked_flag_follows_the_module_not_the_lock() {
    bounded("the_locked_flag_follows_the_module_not_the_lock", || {
        let interp = MiniInterpreter::new();
        let host = interp.attach();
        let lock = LockObject::new();
        assert_eq!(lock.acquire(&host, None), Ok(true));
        assert!(lock.locked(LockedReport::Flag) && lock.locked(LockedReport::Lock));
        lock.release().unwrap();
        // Taken behind the module's back (a waiter that has not re-taken the interpreter lock).
        lock.lock().acquire();
        assert!(!lock.locked(LockedReport::Flag));
        assert!(lock.locked(LockedReport::Lock));
        lock.release().unwrap();
        assert_eq!(lock.release(), Err(Error::ReleaseUnlocked));
        assert_eq!(
            threadmodule::acquire_timeout(true, -2.0).map_err(|e| e.message()),
            Err("timeout value must be a non-negative number".to_owned())
        );
    });
}

#[test]
fn rlock_release_save_and_acquire_restore_use_host_idents() {
    bounded("rlock", || {
        let interp = MiniInterpreter::new();
        let rlock = Arc::new(RLockObject::new());
        // Thread A takes it twice and keeps it.
        let (tx, rx) = mpsc::channel();
        let (resume, wait_resume) = mpsc::channel::<()>();
        let a = {
            let (interp, rlock) = (interp.clone(), Arc::clone(&rlock));
            std::thread::spawn(move || {
                let host = interp.attach();
                rlock.acquire(&host, None).unwrap();
                rlock.acquire(&host, None).unwrap();
                assert_eq!(rlock.recursion_count::<MiniHost>(), 2);
                tx.send(MiniHost::get_ident()).unwrap();
                drop(host);
                wait_resume.recv().unwrap();
                let host = interp.attach();
                // The restore made A the owner again, though B took the lock.
                assert!(rlock.is_owned::<MiniHost>());
                rlock.release::<MiniHost>().unwrap();
                rlock.release::<MiniHost>().unwrap();
                assert!(!rlock.locked());
                drop(host);
            })
        };
        let a_ident = rx.recv().unwrap();
        let host = interp.attach();
        assert!(!rlock.is_owned::<MiniHost>());
        assert_eq!(rlock.recursion_count::<MiniHost>(), 0);
        assert_eq!(rlock.state(), (a_ident, 2));
        assert_eq!(rlock.release::<MiniHost>(), Err(Error::ReleaseUnacquired));
        assert_eq!(
            rlock.release_save::<MiniHost>(ReleaseSaveRule::Owner),
            Err(Error::ReleaseUnacquired),
            "3.14: only the owner"
        );
        let saved = rlock
            .release_save::<MiniHost>(ReleaseSaveRule::AnyThread)
            .unwrap();
        assert_eq!(
            saved,
            (2, a_ident),
            "3.11-3.13: any thread; the owner is A's host ident"
        );
        assert!(!rlock.locked());
        rlock.acquire_restore(&host, saved).unwrap();
        assert!(!rlock.is_owned::<MiniHost>(), "B restored A's ownership");
        assert_eq!(rlock.release::<MiniHost>(), Err(Error::ReleaseUnacquired));
        assert_eq!(
            rlock.acquire_restore(&host, (0, a_ident)),
            Err(err(Error::CouldntAcquireLock))
        );
        drop(host);
        resume.send(()).unwrap();
        a.join().unwrap();
    });
}

/// A `_local`'s dict: records, when dropped, whether its thread was attached.
struct Dict {
    value: u32,
    dropped_attached: Arc<std::sync::Mutex<Vec<(u32, bool)>>>,
}

impl Drop for Dict {
    fn drop(&mut self) {
        self.dropped_attached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((self.value, MiniHost::is_attached()));
    }
}

#[test]
fn local_dicts_are_per_thread_and_go_attached_when_a_module_thread_ends() {
    bounded("_local", || {
        let (interp, host, module) = interpreter();
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let local = Arc::new(LocalDicts::<Dict>::new());
        let make = |value: u32| {
            let log = Arc::clone(&log);
            move || Dict {
                value,
                dropped_attached: log,
            }
        };
        assert!(threadmodule::local_check_init_args(true, false).is_err());
        let mine = local.get_or_init(|d| d.value, make(1), |_| Ok::<(), ()>(()));
        assert_eq!(mine, Ok(1));
        let inits = Arc::new(AtomicU64::new(0));
        let f = {
            let (local, inits, make2, make3) =
                (Arc::clone(&local), Arc::clone(&inits), make(2), make(3));
            MiniFunction::new("user", move |_| {
                // `__init__` raising: the dict is forgotten and made again on the next access.
                let failed = local.get_or_init(
                    |d| d.value,
                    make3.clone(),
                    |_| Err(MiniException::raised("init")),
                );
                assert_eq!(failed, Err(MiniException::raised("init")));
                let first = local.get_or_init(
                    |d| d.value,
                    make2.clone(),
                    |_| {
                        inits.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    },
                )?;
                let again = local.get_or_init(
                    |d| d.value,
                    make2.clone(),
                    |_| {
                        inits.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    },
                )?;
                assert_eq!((first, again), (2, 2));
                Ok(())
            })
        };
        let handle = ThreadHandle::new(&module);
        handle
            .start(&host, &StartOptions::new(), interp.runner(f))
            .unwrap();
        handle.join(&host, None).unwrap();
        assert!(interp.reports().is_empty(), "{:?}", interp.reports());
        assert_eq!(
            inits.load(Ordering::SeqCst),
            1,
            "__init__ runs once per thread"
        );
        assert_eq!(
            *log.lock().unwrap(),
            [(3, true), (2, true)],
            "the failed dict, then the thread's dict at its end, both attached"
        );
        assert_eq!(
            local.with(|d| d.map(|d| d.value)),
            Some(1),
            "the main thread's dict stays"
        );
        drop(host);
    });
}

/// `_set_sentinel` as 3.11/3.12's `threading` uses it: the thread acquires its sentinel lock,
/// and a join waits for the lock; the thread's end releases it (attached for a thread of the
/// module, by the thread-local destructors for any other). A replaced sentinel is forgotten.
#[test]
fn a_sentinel_is_released_when_its_thread_ends_and_a_replaced_one_is_forgotten() {
    bounded("_set_sentinel", || {
        let (interp, host, module) = interpreter();
        let (first, second) = (Arc::new(LockObject::new()), Arc::new(LockObject::new()));
        let (taken, taken_rx) = mpsc::channel();
        let f = {
            let (first, second) = (Arc::clone(&first), Arc::clone(&second));
            MiniFunction::new("sentinels", move |_| {
                assert!(threadmodule::set_sentinel(Arc::clone(&first)).is_ok());
                first.lock().acquire();
                assert!(threadmodule::set_sentinel(Arc::clone(&second)).is_ok());
                second.lock().acquire();
                taken.send(()).unwrap();
                Ok(())
            })
        };
        let handle = ThreadHandle::new(&module);
        handle
            .start(&host, &StartOptions::new(), interp.runner(f))
            .unwrap();
        host.allow_threads(move || taken_rx.recv_timeout(WATCHDOG))
            .expect("the thread took its sentinels");
        // `Thread.join` on 3.11: the sentinel's acquire, with the interpreter lock released.
        assert_eq!(second.acquire(&host, None), Ok(true));
        handle.join(&host, None).unwrap();
        assert!(
            first.lock().locked(),
            "the replaced sentinel is never released"
        );

        // A thread the module did not start: its thread-local destructors release it.
        let other = Arc::new(LockObject::new());
        let theirs = Arc::clone(&other);
        std::thread::spawn(move || {
            assert!(threadmodule::set_sentinel(Arc::clone(&theirs)).is_ok());
            theirs.lock().acquire();
        })
        .join()
        .unwrap();
        assert!(!other.lock().locked(), "released at the thread's end");
        drop(host);
    });
}

// ---- Waits interrupted by a real signal (Linux: the crate's futex wait reports EINTR). ----

extern "C" fn on_sigusr1(_: libc::c_int) {}

/// A SIGUSR1 handler without `SA_RESTART`, installed once.
fn install_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: a zeroed `sigaction` with a handler that does nothing (async-signal-safe),
        // no flags; installed once for the process.
        #[allow(unsafe_code)]
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigusr1 as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut action.sa_mask);
            assert_eq!(
                libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()),
                0
            );
        }
    });
}

/// Runs `wait` on a thread attached to `interp`, signalling it every millisecond until it
/// returns; returns its result.
fn interrupted_wait<T: Send + 'static>(
    interp: &MiniInterpreter,
    wait: impl FnOnce(&MiniHost) -> T + Send + 'static,
    until_signalled: impl Fn() -> bool,
) -> T {
    install_handler();
    let (tx, rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let interp2 = interp.clone();
    let waiter = std::thread::spawn(move || {
        // SAFETY: pthread_self has no preconditions.
        #[allow(unsafe_code)]
        let me = unsafe { libc::pthread_self() };
        tx.send(me as u64).unwrap();
        let host = interp2.attach();
        let result = wait(&host);
        drop(host);
        done_tx.send(()).unwrap();
        result
    });
    let thread = rx.recv().unwrap() as libc::pthread_t;
    let deadline = Instant::now() + WATCHDOG;
    loop {
        if until_signalled() || done_rx.try_recv().is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "watchdog: the wait was never interrupted"
        );
        // SAFETY: the waiter has not been joined yet, so its pthread_t is valid.
        #[allow(unsafe_code)]
        unsafe {
            libc::pthread_kill(thread, libc::SIGUSR1);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    waiter.join().unwrap()
}

/// A test of a wait interrupted by a real signal: Linux only (the crate's futex wait reports
/// `EINTR`), and ignored, with the reason, on the generic wait backend.
macro_rules! interruption_test {
    (fn $name:ident() $body:block) => {
        #[cfg(target_os = "linux")]
        #[test]
        #[cfg_attr(
            pythread_generic,
            ignore = "the generic wait backend never reports an interruption"
        )]
        fn $name() $body
    };
}

interruption_test! {
fn an_interrupted_acquire_runs_the_pending_calls_and_ends_with_their_exception() {
    bounded("interrupted acquire", || {
        let interp = MiniInterpreter::new();
        let lock = Arc::new(LockObject::new());
        lock.lock().acquire();
        interp.add_pending_call(|| Err(MiniException::raised("KeyboardInterrupt")));
        let l = Arc::clone(&lock);
        let got = interrupted_wait(&interp, move |host| l.acquire(host, None), || false);
        assert_eq!(got, Err(MiniException::raised("KeyboardInterrupt")));
        assert!(interp.pending_runs() >= 1);
        assert!(!lock.locked(LockedReport::Flag));
    });
}
}

interruption_test! {
fn an_interrupted_acquire_resumes_when_the_pending_calls_succeed() {
    bounded("resumed acquire", || {
        let interp = MiniInterpreter::new();
        let lock = Arc::new(LockObject::new());
        lock.lock().acquire();
        let l = Arc::clone(&lock);
        let runs = interp.clone();
        let releaser = Arc::clone(&lock);
        let released = AtomicBool::new(false);
        // Once the pending calls have run twice, the lock is released: the resumed wait takes it.
        let got = interrupted_wait(
            &interp,
            move |host| l.acquire(host, None),
            move || {
                if runs.pending_runs() >= 2 && !released.swap(true, Ordering::SeqCst) {
                    releaser.lock().release().unwrap();
                }
                false
            },
        );
        assert_eq!(got, Ok(true));
        assert!(interp.pending_runs() >= 2);
        assert!(lock.locked(LockedReport::Flag));
    });
}
}

interruption_test! {
fn interruptions_never_extend_a_timed_acquire() {
    bounded("timed acquire", || {
        let interp = MiniInterpreter::new();
        let lock = Arc::new(LockObject::new());
        lock.lock().acquire();
        let l = Arc::clone(&lock);
        let elapsed = Arc::new(AtomicU64::new(0));
        let e = Arc::clone(&elapsed);
        let got = interrupted_wait(
            &interp,
            move |host| {
                let started = Instant::now();
                let got = l.acquire(host, Some(Duration::from_millis(200)));
                e.store(started.elapsed().as_millis() as u64, Ordering::SeqCst);
                got
            },
            || false,
        );
        assert_eq!(got, Ok(false));
        let ms = elapsed.load(Ordering::SeqCst);
        assert!((200..10_000).contains(&ms), "took {ms} ms");
        assert!(
            interp.pending_runs() >= 1,
            "no interruption reached the wait"
        );
    });
}
}

interruption_test! {
fn an_interrupted_join_and_shutdown_end_with_the_pending_calls_exception() {
    bounded("interrupted join", || {
        let interp = MiniInterpreter::new();
        let module = ModuleState::new(1);
        let gate = gate();
        let handle = Arc::new(ThreadHandle::new(&module));
        {
            let host = interp.attach();
            let f = MiniFunction::new("blocked", waits_for(&gate));
            handle
                .start(&host, &StartOptions::new().daemon(false), interp.runner(f))
                .unwrap();
        }
        interp.add_pending_call(|| Err(MiniException::raised("KeyboardInterrupt")));
        let h = Arc::clone(&handle);
        let got = interrupted_wait(&interp, move |host| h.join(host, None), || false);
        assert_eq!(got, Err(MiniException::raised("KeyboardInterrupt")));
        assert!(!handle.is_done());

        interp.add_pending_call(|| Err(MiniException::raised("KeyboardInterrupt")));
        let m = Arc::clone(&module);
        interrupted_wait(&interp, move |host| m.shutdown(host), || false);
        assert_eq!(
            interp.unraisable(),
            [MiniException::raised("KeyboardInterrupt")]
        );
        let _ = gate.release();
        handle.join(&interp.attach(), None).unwrap();
        assert!(handle.is_done());
    });
}
}

use super::*;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, mpsc};

const WATCHDOG: Duration = Duration::from_secs(20);

std::thread_local! {
    /// How many times this thread entered `acquire_slow`.
    pub(super) static SLOW_PATHS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// How many wake system calls this thread's releases and handoff claims made.
    pub(super) static WAKES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// A release makes a wake system call only when `PARKED` says a thread is
/// asleep (or about to be): never for a request, a pending handoff or a plain
/// unlock (issue 17 §4). A handoff claimed after the lock was released again
/// passes a wake on only for a thread that has slept.
#[test]
fn wake_calls_only_for_parked_threads() {
    let lock = Lock::new();
    for (word, wakes) in [
        (LOCKED, 0),
        (LOCKED | STARVING, 0),
        (LOCKED | HANDOFF, 0),
        (LOCKED | PARKED, 1),
        (LOCKED | PARKED | STARVING, 1),
        (LOCKED | PARKED | HANDOFF, 1),
    ] {
        lock.word.store(word, Ordering::SeqCst);
        let before = WAKES.get();
        assert_eq!(lock.release(), Ok(()));
        assert_eq!(WAKES.get() - before, wakes, "release from {word:#06b}");
    }
    for (parked, wakes) in [(0, 0), (PARKED, 1)] {
        lock.word.store(HANDOFF, Ordering::SeqCst);
        let before = WAKES.get();
        assert!(lock.claim_handoff(HANDOFF, parked));
        assert_eq!(WAKES.get() - before, wakes, "claim, parked {parked}");
    }
    // The guards take a free lock too.
    assert!(lock.try_lock().is_some());
    assert!(lock.lock_timeout(Duration::ZERO).is_some());
    assert!(!lock.locked());
}

/// A zero timeout only tries: on a held lock no form of it spins, registers
/// or sleeps (the slow path's first act is to count itself here).
#[test]
fn zero_timeouts_never_enter_the_slow_path() {
    let lock = Lock::new();
    lock.acquire();
    let before = SLOW_PATHS.get();
    assert!(!lock.acquire_timeout(Duration::ZERO));
    assert_eq!(lock.acquire_timed(0, true), LockStatus::Failure);
    assert_eq!(
        lock.acquire_with_retries(Some(Duration::ZERO), || Err("no wait, no signal")),
        Ok(false)
    );
    assert_eq!(SLOW_PATHS.get(), before);
    // The counter counts: a 1 us wait is one entry.
    assert_eq!(lock.acquire_timed(1, true), LockStatus::Failure);
    assert_eq!(SLOW_PATHS.get(), before + 1);
    assert_eq!(state(&lock) & !PARKED, LOCKED);
}

fn state(lock: &Lock) -> u32 {
    lock.word.load(Ordering::SeqCst)
}

#[test]
fn release_transitions() {
    let lock = Lock::new();
    // A starving waiter: handed off, still locked, no barging; PARKED cleared
    // (every sleeper is woken).
    lock.word
        .store(LOCKED | PARKED | STARVING, Ordering::SeqCst);
    assert_eq!(lock.release(), Ok(()));
    assert_eq!(state(&lock), LOCKED | HANDOFF);
    assert!(!lock.try_acquire());
    assert!(lock.locked());
    // Released again before the waiter claimed it: free, and the handoff
    // stays for the waiter to claim (that acquisition is its own).
    assert_eq!(lock.release(), Ok(()));
    assert_eq!(state(&lock), HANDOFF);
    assert!(!lock.locked());
    assert_eq!(lock.release(), Err(ReleaseError::UNLOCKED));
    assert_eq!(state(&lock), HANDOFF);
    // A barging try takes it meanwhile; its release keeps the handoff too.
    assert!(lock.try_acquire());
    assert_eq!(state(&lock), LOCKED | HANDOFF);
    lock.word.store(LOCKED | HANDOFF | PARKED, Ordering::SeqCst);
    assert_eq!(lock.release(), Ok(()));
    assert_eq!(state(&lock), HANDOFF);
    // A sleeper: plain unlock, PARKED cleared (the woken sleeper sets it again).
    lock.word.store(LOCKED | PARKED, Ordering::SeqCst);
    assert_eq!(lock.release(), Ok(()));
    assert_eq!(state(&lock), 0);
    // A barging try takes a free lock.
    assert!(lock.try_acquire());
    assert_eq!(state(&lock), LOCKED);
    assert_eq!(lock.release(), Ok(()));
    assert_eq!(state(&lock), 0);
}

#[test]
fn leave_claims_a_handoff_and_times_out_cleanly() {
    let lock = Lock::new();
    // The starving waiter claims its handoff even when interrupted, with
    // PARKED once it has slept.
    lock.word.store(LOCKED | HANDOFF, Ordering::SeqCst);
    assert_eq!(
        lock.leave(LockStatus::Intr, true, PARKED),
        LockStatus::Acquired
    );
    assert_eq!(state(&lock), LOCKED | PARKED);
    // A handoff released meanwhile is still its acquisition; the lock stays free.
    lock.word.store(HANDOFF, Ordering::SeqCst);
    assert_eq!(
        lock.leave(LockStatus::Failure, true, 0),
        LockStatus::Acquired
    );
    assert_eq!(state(&lock), 0);
    // Another waiter leaves a handoff that is not its own where it is.
    lock.word.store(LOCKED | HANDOFF, Ordering::SeqCst);
    assert_eq!(
        lock.leave(LockStatus::Failure, false, PARKED),
        LockStatus::Failure
    );
    assert_eq!(
        lock.leave(LockStatus::Intr, false, PARKED),
        LockStatus::Intr
    );
    assert_eq!(state(&lock), LOCKED | HANDOFF);
    // An interrupted waiter leaves a free lock free: only a timed-out one
    // makes a last try (with PARKED: it has slept).
    lock.word.store(0, Ordering::SeqCst);
    assert_eq!(
        lock.leave(LockStatus::Intr, false, PARKED),
        LockStatus::Intr
    );
    assert_eq!(state(&lock), 0);
    assert_eq!(
        lock.leave(LockStatus::Failure, false, PARKED),
        LockStatus::Acquired
    );
    assert_eq!(state(&lock), LOCKED | PARKED);
    // The starving waiter withdraws its request, whatever its status; PARKED
    // stays.
    for status in [LockStatus::Failure, LockStatus::Intr] {
        lock.word
            .store(LOCKED | PARKED | STARVING, Ordering::SeqCst);
        assert_eq!(lock.leave(status, true, PARKED), status);
        assert_eq!(state(&lock), LOCKED | PARKED);
    }
    // Another waiter's request stays while that waiter waits.
    lock.word
        .store(LOCKED | PARKED | STARVING, Ordering::SeqCst);
    assert_eq!(
        lock.leave(LockStatus::Intr, false, PARKED),
        LockStatus::Intr
    );
    assert_eq!(state(&lock), LOCKED | PARKED | STARVING);
}

/// The word after each kind of claim.
#[test]
fn claims_set_exactly_their_bits() {
    let lock = Lock::new();
    let handed = LOCKED | HANDOFF | PARKED;
    lock.word.store(handed, Ordering::SeqCst);
    assert!(lock.claim_handoff(handed, PARKED));
    assert_eq!(state(&lock), LOCKED | PARKED);
    // A stale state: the compare-exchange fails and nothing changes.
    assert!(!lock.claim_handoff(handed, PARKED));
    assert_eq!(state(&lock), LOCKED | PARKED);
    // Held, PARKED clear: a thread that has slept sets it, one that has not
    // leaves it clear.
    for (parked, after) in [(PARKED, LOCKED | PARKED), (0, LOCKED)] {
        lock.word.store(LOCKED | HANDOFF, Ordering::SeqCst);
        assert!(lock.claim_handoff(LOCKED | HANDOFF, parked));
        assert_eq!(state(&lock), after);
    }
    // Released meanwhile: still the claimer's acquisition, the lock stays free.
    lock.word.store(HANDOFF, Ordering::SeqCst);
    assert!(lock.claim_handoff(HANDOFF, PARKED));
    assert_eq!(state(&lock), 0);
    // A free lock is anybody's (a pending handoff stays); a held one nobody's.
    assert_eq!(lock.claim_free(0, PARKED), Some(true));
    assert_eq!(state(&lock), LOCKED | PARKED);
    assert_eq!(lock.claim_free(LOCKED | PARKED, 0), None);
    assert_eq!(lock.claim_free(0, 0), Some(false)); // stale
    lock.word.store(HANDOFF, Ordering::SeqCst);
    assert_eq!(lock.claim_free(HANDOFF, 0), Some(true));
    assert_eq!(state(&lock), LOCKED | HANDOFF);
}

/// Starts a waiter whose 1 ms has passed when it enters: it asks for the
/// handoff before it first sleeps. It flags when it holds the lock and
/// returns the wait's status.
fn starving_waiter(lock: &Arc<Lock>) -> (Arc<AtomicBool>, std::thread::JoinHandle<LockStatus>) {
    let acquired = Arc::new(AtomicBool::new(false));
    let (l, a) = (Arc::clone(lock), Arc::clone(&acquired));
    let waiter = std::thread::spawn(move || {
        let status = l.acquire_slow(None, false, now() - FAIR_AFTER);
        a.store(true, Ordering::SeqCst);
        status
    });
    (acquired, waiter)
}

/// A second release racing the handoff (before or after the starving waiter
/// claims it) ends the waiter's acquisition: the waiter still returns
/// `Acquired`, both releases are `Ok`, and the lock is free afterwards with
/// no bit left behind.
#[cfg(target_os = "linux")]
#[test]
fn a_release_racing_a_handoff_ends_the_waiters_acquisition() {
    for _ in 0..20 {
        let lock = Arc::new(Lock::new());
        lock.acquire();
        let (acquired, waiter) = starving_waiter(&lock);
        wait_for("the starving waiter asleep", || {
            sleeping_waiters(&lock) == 1 && state(&lock) & STARVING != 0
        });
        assert_eq!(lock.release(), Ok(()), "the handoff");
        assert_eq!(lock.release(), Ok(()), "ends the waiter's acquisition");
        assert_eq!(waiter.join().unwrap(), LockStatus::Acquired);
        assert!(acquired.load(Ordering::SeqCst));
        assert_eq!(state(&lock), 0);
        assert_eq!(lock.release(), Err(ReleaseError::UNLOCKED));
    }
}

/// How many threads of this process are asleep in `futex` on `lock`'s word
/// (`/proc/self/task/*/syscall`: the system call number, then its first
/// argument, the word's address; and `stat`'s state `S`: a thread preempted
/// inside the system call before it slept shows the same `syscall` line, and
/// would count its sleep as a context switch after the caller looked).
fn sleeping_waiters(lock: &Lock) -> usize {
    if cfg!(pythread_generic) {
        return sync::generic_sleepers(&lock.word); // each on its own condvar
    }
    let futex = libc::SYS_futex.to_string();
    let address = format!("{:#x}", &lock.word as *const AtomicU32 as usize);
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| {
            let path = task.ok()?.path();
            let syscall = std::fs::read_to_string(path.join("syscall")).ok()?;
            let stat = std::fs::read_to_string(path.join("stat")).ok()?;
            Some((syscall, stat))
        })
        .filter(|(syscall, stat)| {
            let mut fields = syscall.split_whitespace();
            // `stat`: "pid (comm) S ..."; comm may hold spaces, so after the last ')'.
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next());
            fields.next() == Some(futex.as_str())
                && fields.next() == Some(address.as_str())
                && state == Some("S")
        })
        .count()
}

/// Runs `body` on a new thread; returns the thread's kernel id (once it runs)
/// and its handle.
#[cfg(target_os = "linux")]
fn spawn_with_tid<T: Send + 'static>(
    body: impl FnOnce() -> T + Send + 'static,
) -> (i32, std::thread::JoinHandle<T>) {
    let (tid_tx, tid_rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        tid_tx
            .send(rustix::thread::gettid().as_raw_nonzero().get())
            .unwrap();
        body()
    });
    (tid_rx.recv_timeout(WATCHDOG).unwrap(), thread)
}

#[cfg(target_os = "linux")]
use crate::sync::tests::voluntary_switches;

/// A plain release (nobody starving) wakes one sleeper, not all of them: the
/// waiter it does not wake stays asleep without a single context switch.
#[cfg(target_os = "linux")]
#[test]
fn a_plain_release_wakes_one_sleeper() {
    let lock = Arc::new(Lock::new());
    lock.acquire();
    let mut waiters = Vec::new();
    for sleeping in 1..=2 {
        let (done, done_rx) = mpsc::channel::<()>();
        let acquired = Arc::new(AtomicBool::new(false));
        let (l, a) = (Arc::clone(&lock), Arc::clone(&acquired));
        let (tid, thread) = spawn_with_tid(move || {
            // Patient: on a loaded machine the spin before the first sleep can
            // pass its 1 ms, and a request would make the release a handoff.
            let entered = now() + Duration::from_secs(3600);
            assert_eq!(l.acquire_slow(None, false, entered), LockStatus::Acquired);
            a.store(true, Ordering::SeqCst);
            let _ = done_rx.recv_timeout(WATCHDOG);
            l.release().unwrap();
        });
        wait_for("the waiter asleep", || sleeping_waiters(&lock) == sleeping);
        waiters.push((tid, acquired, done, thread));
    }
    let before: Vec<u64> = waiters.iter().map(|w| voluntary_switches(w.0)).collect();
    lock.release().unwrap();
    wait_for("a waiter acquired", || {
        waiters.iter().any(|w| w.1.load(Ordering::SeqCst))
    });
    let other = waiters
        .iter()
        .position(|w| !w.1.load(Ordering::SeqCst))
        .unwrap();
    wait_for("the other waiter asleep", || sleeping_waiters(&lock) == 1);
    assert_eq!(
        voluntary_switches(waiters[other].0),
        before[other],
        "the waiter that was not woken woke up"
    );
    let threads: Vec<_> = waiters.into_iter().map(|w| w.3).collect(); // drops `done`s
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(state(&lock), 0);
}

/// A release that hands the lock off wakes every sleeper, not one: the kernel
/// would pick the waiter that slept first, and the handoff is the starving
/// waiter's. Two plain waiters sleep ahead of the starving one here.
#[cfg(target_os = "linux")]
#[test]
fn a_handoff_wakes_the_starving_waiter_behind_others() {
    let lock = Arc::new(Lock::new());
    lock.acquire();
    // Patient: a spurious wake-up (allowed; other tests' threads make them)
    // must not make them ask for the handoff first.
    let (first, done_first, first_waiter) = parked_waiter(&lock, 1, true);
    let (second, done_second, second_waiter) = parked_waiter(&lock, 2, true);
    // The third waiter is the starving one: it sleeps last.
    let (starving_acquired, starving) = starving_waiter(&lock);
    wait_for("the starving waiter asleep", || {
        sleeping_waiters(&lock) == 3
    });
    lock.release().unwrap();
    wait_for("the handoff was claimed", || {
        starving_acquired.load(Ordering::SeqCst)
    });
    assert_eq!(starving.join().unwrap(), LockStatus::Acquired);
    assert!(!first.load(Ordering::SeqCst) && !second.load(Ordering::SeqCst));
    lock.release().unwrap();
    wait_for("a plain waiter acquired", || {
        first.load(Ordering::SeqCst) || second.load(Ordering::SeqCst)
    });
    drop((done_first, done_second));
    first_waiter.join().unwrap();
    second_waiter.join().unwrap();
    assert_eq!(state(&lock), 0);
}

/// A waiter that times out leaves no request behind (a request left
/// standing would hand the lock to nobody at the next release and keep it
/// locked forever). These waiters ask for one: their futex wait returns at
/// the kernel's timeout, and 5 ms is past their 1 ms, before their own
/// clock says the deadline has passed. `PARKED` stays (they slept).
#[test]
fn timed_out_waiters_leave_no_request() {
    let lock = Arc::new(Lock::new());
    lock.acquire();
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let lock = Arc::clone(&lock);
            std::thread::spawn(move || {
                (
                    lock.acquire_timeout(Duration::from_millis(5)),
                    lock.acquire_timed(5_000, true),
                    lock.acquire_with_retries(Some(Duration::from_millis(5)), || Err(())),
                )
            })
        })
        .collect();
    for waiter in waiters {
        assert_eq!(
            waiter.join().unwrap(),
            (false, LockStatus::Failure, Ok(false))
        );
    }
    assert_eq!(state(&lock), LOCKED | PARKED);
    lock.release().unwrap();
    assert_eq!(state(&lock), 0);
}

/// Starts a waiter that acquires `lock`, flags it, and holds it until the
/// returned sender is dropped. Returns once `sleeping` threads (this one
/// included) are asleep on the lock. A `patient` waiter never asks for a
/// handoff (its 1 ms ends in an hour).
fn parked_waiter(
    lock: &Arc<Lock>,
    sleeping: usize,
    patient: bool,
) -> (
    Arc<AtomicBool>,
    mpsc::Sender<()>,
    std::thread::JoinHandle<()>,
) {
    let acquired = Arc::new(AtomicBool::new(false));
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let (l, a) = (Arc::clone(lock), Arc::clone(&acquired));
    let waiter = std::thread::spawn(move || {
        if patient {
            let entered = now() + Duration::from_secs(3600);
            assert_eq!(l.acquire_slow(None, false, entered), LockStatus::Acquired);
        } else {
            l.acquire();
        }
        a.store(true, Ordering::SeqCst);
        let _ = done_rx.recv_timeout(WATCHDOG);
        l.release().unwrap();
    });
    wait_for("the waiter asleep", || sleeping_waiters(lock) == sleeping);
    (acquired, done_tx, waiter)
}

fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !condition() {
        assert!(start.elapsed() < WATCHDOG, "watchdog: {what}");
        std::thread::yield_now();
    }
}

/// The starving waiter is handed the lock at the next release: the releaser's
/// immediate re-take fails, and the waiter gets it.
#[test]
fn a_starving_waiter_is_handed_the_lock() {
    let lock = Arc::new(Lock::new());
    lock.acquire();
    let (acquired, waiter) = starving_waiter(&lock);
    wait_for("the waiter registered", || state(&lock) & STARVING != 0);
    lock.release().unwrap();
    assert!(!lock.try_acquire(), "barged past a starving waiter");
    wait_for("the handoff was claimed", || {
        acquired.load(Ordering::SeqCst)
    });
    assert_eq!(waiter.join().unwrap(), LockStatus::Acquired);
    assert_eq!(
        state(&lock) & !PARKED,
        LOCKED,
        "claimed: no HANDOFF, no STARVING"
    );
    lock.release().unwrap();
    assert_eq!(state(&lock), 0);
}

/// A waiter that keeps waking (spurious wake-ups here) while the lock stays
/// held asks for a handoff once it has waited 1 ms since it entered, not
/// before.
#[test]
fn a_passed_over_waiter_sets_starving_after_a_millisecond() {
    let lock = Arc::new(Lock::new());
    lock.acquire();
    let before = std::time::Instant::now(); // before the waiter enters
    let (acquired, done, waiter) = parked_waiter(&lock, 1, false);
    while state(&lock) & STARVING == 0 {
        assert!(
            before.elapsed() < WATCHDOG,
            "the waiter never asked for a handoff"
        );
        sync::wake_one(&lock.word);
    }
    assert!(before.elapsed() >= FAIR_AFTER, "STARVING before 1 ms");
    assert!(!acquired.load(Ordering::SeqCst));
    lock.release().unwrap();
    assert!(!lock.try_acquire(), "barged past a starving waiter");
    wait_for("the handoff was claimed", || {
        acquired.load(Ordering::SeqCst)
    });
    drop(done);
    waiter.join().unwrap();
}

/// No request before 1 ms has passed since the waiter entered: a waiter that
/// is asleep within that 1 ms has not asked. (Seen asleep 1 ms or more after
/// it entered, as on a loaded machine, a case decides nothing and another is
/// tried.)
#[cfg(target_os = "linux")]
#[test]
fn no_request_before_a_millisecond() {
    let mut decided = 0;
    for _ in 0..50 {
        let lock = Arc::new(Lock::new());
        lock.acquire();
        let l = Arc::clone(&lock);
        let entered = now();
        let waiter = std::thread::spawn(move || l.acquire_slow(None, false, entered));
        wait_for("the waiter asleep", || sleeping_waiters(&lock) == 1);
        let asked = state(&lock) & STARVING != 0;
        if entered.elapsed() < FAIR_AFTER {
            assert!(!asked, "asked for the handoff before 1 ms");
            decided += 1;
        }
        lock.release().unwrap();
        assert_eq!(waiter.join().unwrap(), LockStatus::Acquired);
        lock.release().unwrap();
        if decided == 5 {
            return;
        }
    }
    eprintln!("no_request_before_a_millisecond: only {decided} of 50 cases decided");
}

/// A waiter asleep when its millisecond ends wakes by itself to ask for the
/// handoff: no release and no other wake-up comes here, and the request
/// appears (once: the waiter then sleeps again without polling), not before
/// its millisecond. Its acquisition is dated 100 ms ahead, so that it is seen
/// asleep before it may ask (a case where it asked before it was seen asleep,
/// as on a machine too loaded to run it within 100 ms, decides nothing and is
/// retried; five such cases in a row are reported, not failed).
#[cfg(target_os = "linux")]
#[test]
fn a_sleeper_asks_when_its_millisecond_is_up() {
    // Untimed, and timed with a deadline far past its millisecond.
    for timed in [false, true] {
        let mut decided = false;
        for _ in 0..5 {
            let lock = Arc::new(Lock::new());
            lock.acquire();
            let entered = now() + 100 * FAIR_AFTER;
            let fair_at = entered + FAIR_AFTER;
            let deadline = timed.then(|| now() + WATCHDOG);
            let l = Arc::clone(&lock);
            let (tid, waiter) = spawn_with_tid(move || l.acquire_slow(deadline, false, entered));
            wait_for("the waiter asleep", || sleeping_waiters(&lock) == 1);
            let asked_early = state(&lock) & STARVING != 0;
            if !asked_early {
                wait_for("the waiter asked for the handoff, asleep", || {
                    state(&lock) & STARVING != 0
                });
                assert!(now() >= fair_at, "asked before its millisecond");
                wait_for("the waiter asleep again", || sleeping_waiters(&lock) == 1);
                let switches = voluntary_switches(tid);
                let asleep = std::time::Instant::now();
                // The span measured, not a synchronization: no more wake-ups.
                wait_for("20 ms to pass", || asleep.elapsed() >= 20 * FAIR_AFTER);
                assert_eq!(voluntary_switches(tid), switches, "polled while starving");
            }
            lock.release().unwrap();
            if !asked_early {
                assert!(!lock.try_acquire(), "barged past a starving waiter");
            }
            assert_eq!(waiter.join().unwrap(), LockStatus::Acquired);
            lock.release().unwrap();
            assert_eq!(state(&lock), 0);
            if !asked_early {
                decided = true;
                break;
            }
        }
        if !decided {
            eprintln!("a_sleeper_asks: timed {timed}: 5 cases, none decided (loaded machine)");
        }
    }
}

/// An interruptible waiter does not wake by itself (a signal must find it
/// asleep): asleep through its 1 ms, it has not asked, and it asks at its
/// first wake-up after it (a spurious one here). Its acquisition is dated
/// 50 ms ahead, so that it is seen asleep before its 1 ms ends (a case where
/// it was not, on a loaded machine, decides nothing and is retried; five such
/// cases in a row are reported, not failed).
#[cfg(target_os = "linux")]
#[test]
fn an_interruptible_sleeper_asks_at_its_first_wake_up() {
    for _ in 0..5 {
        let lock = Arc::new(Lock::new());
        lock.acquire();
        let entered = now() + 50 * FAIR_AFTER;
        let fair_at = entered + FAIR_AFTER;
        let l = Arc::clone(&lock);
        let (tid, waiter) = spawn_with_tid(move || l.acquire_slow(None, true, entered));
        wait_for("the waiter asleep", || sleeping_waiters(&lock) == 1);
        let decided = now() < fair_at;
        if decided {
            // Time, not synchronization: its 1 ms must have passed.
            wait_for("its 1 ms to pass", || now() >= fair_at + FAIR_AFTER);
            let switches = voluntary_switches(tid);
            assert_eq!(state(&lock) & STARVING, 0, "asked without a wake-up");
            assert_eq!(voluntary_switches(tid), switches, "woke by itself");
            sync::wake_one(&lock.word); // one spurious wake-up
            wait_for("the waiter asleep again", || {
                voluntary_switches(tid) > switches && sleeping_waiters(&lock) == 1
            });
            assert_ne!(
                state(&lock) & STARVING,
                0,
                "no request at its first wake-up"
            );
        }
        lock.release().unwrap();
        if decided {
            assert!(!lock.try_acquire(), "barged past a starving waiter");
        }
        assert_eq!(waiter.join().unwrap(), LockStatus::Acquired);
        lock.release().unwrap();
        assert_eq!(state(&lock), 0);
        if decided {
            return;
        }
    }
    eprintln!("an_interruptible_sleeper_asks: 5 cases, none decided (loaded machine)");
}

/// A deadline that comes before the waiter's millisecond ends the wait: the
/// waiter does not sleep on to its millisecond (an hour away here) to ask.
#[test]
fn a_deadline_before_the_millisecond_ends_the_wait() {
    let lock = Arc::new(Lock::new());
    lock.acquire();
    let start = now();
    let deadline = start + Duration::from_millis(20);
    let (tx, rx) = mpsc::channel();
    let l = Arc::clone(&lock);
    std::thread::spawn(move || {
        let status = l.acquire_slow(Some(deadline), false, start + Duration::from_secs(3600));
        tx.send((status, now())).unwrap();
    });
    let (status, returned) = rx
        .recv_timeout(WATCHDOG)
        .expect("watchdog: a wait with a 20 ms deadline did not end");
    assert_eq!(status, LockStatus::Failure);
    assert!(returned >= deadline, "returned before its deadline");
    lock.release().unwrap();
}

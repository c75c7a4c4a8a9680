//! The sequential lock model: random schedules of lock calls by three real
//! threads ("actors"), each call checked against a model of who holds the lock,
//! the counts, which calls must block (seen asleep in the kernel, not guessed by
//! sleeping), which errors are due, and, after a release that frees a lock with
//! blocked actors, that exactly one of them gets it. For a `Lock` a step may also
//! be a release followed at once by a second release by another thread, racing
//! the blocked actor the first one let through; the model counts the holders
//! (acquisitions that returned true minus `Ok` releases, from the real replies)
//! and checks that count against the lock after every step: every `Ok` release
//! ends exactly one acquisition.
//!
//! `cargo test` runs [`DEFAULT_CASES`] cases per lock type; `PROPTEST_CASES`
//! overrides that. Failing seeds persist to `proptest-regressions/lock_model.txt`.
//! Linux only: "blocked" is read from `/proc/self/task/<tid>/syscall`.
#![cfg(all(target_os = "linux", not(loom)))]

#[path = "support/lock.rs"]
mod lock_support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use lock_support::{WATCHDOG, gettid, wait_until_blocked};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use pythread::{Lock, LockStatus, RLock, RLockState, ReleaseError};

const DEFAULT_CASES: u32 = 48;
const ACTORS: usize = 3;
/// The timed acquisitions' timeout: short, the case runs it often.
const TIMED_US: i64 = 2_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Acquire,
    TryAcquire,
    /// `acquire_timed(TIMED_US, intr)` (no signals here: `intr` changes nothing).
    Timed(bool),
    /// `acquire_timeout(TIMED_US)`.
    Timeout,
    /// `acquire_with_retries(Some(TIMED_US))`.
    Retries,
    Release,
    /// Lock only (turned into `Release` for an RLock): `Release` by this actor,
    /// then, once it has returned, a second `Release` by another thread (another
    /// actor that is not blocked, else the test thread).
    ReleaseByTwo,
    /// RLock only (turned into `Release` for a Lock).
    ReleaseSave,
    /// RLock only; only by an actor holding a saved state and not owning it.
    AcquireRestore,
}

#[derive(Debug, PartialEq, Eq)]
enum Reply {
    /// Whether it acquired, how long it took, and the actor's view afterwards:
    /// (locked, is_owned, recursion_count) (the last two 0/false for a Lock).
    Acquired(bool, Duration, (bool, bool, usize)),
    Released(Result<(), ReleaseError>, (bool, bool, usize)),
    Saved(Result<(usize, u64), ReleaseError>, (bool, bool, usize)),
}

enum Subject {
    Lock(Lock),
    RLock(RLock),
}

impl Subject {
    fn view(&self) -> (bool, bool, usize) {
        match self {
            Subject::Lock(l) => (l.locked(), false, 0),
            Subject::RLock(r) => (r.locked(), r.is_owned(), r.recursion_count()),
        }
    }
}

struct Actor {
    commands: Sender<Option<Op>>,
    tid: i32,
    thread: std::thread::JoinHandle<()>,
}

fn spawn_actor(index: usize, subject: Arc<Subject>, replies: Sender<(usize, Reply)>) -> Actor {
    let (commands, inbox): (Sender<Option<Op>>, Receiver<Option<Op>>) = mpsc::channel();
    let (tid_tx, tid_rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        tid_tx.send(gettid()).unwrap();
        let mut saved: Option<RLockState> = None;
        while let Ok(Some(op)) = inbox.recv() {
            let start = Instant::now();
            let timed = Duration::from_micros(TIMED_US as u64);
            let reply = match (&*subject, op) {
                (Subject::Lock(l), Op::Acquire) => {
                    l.acquire();
                    Some(true)
                }
                (Subject::RLock(r), Op::Acquire) => {
                    r.acquire();
                    Some(true)
                }
                (Subject::Lock(l), Op::TryAcquire) => Some(l.try_acquire()),
                (Subject::RLock(r), Op::TryAcquire) => Some(r.try_acquire()),
                (Subject::Lock(l), Op::Timed(intr)) => {
                    Some(l.acquire_timed(TIMED_US, intr) == LockStatus::Acquired)
                }
                (Subject::RLock(r), Op::Timed(intr)) => {
                    Some(r.acquire_timed(TIMED_US, intr) == LockStatus::Acquired)
                }
                (Subject::Lock(l), Op::Timeout) => Some(l.acquire_timeout(timed)),
                (Subject::RLock(r), Op::Timeout) => Some(r.acquire_timeout(timed)),
                (Subject::Lock(l), Op::Retries) => {
                    Some(l.acquire_with_retries(Some(timed), || Err(())).unwrap())
                }
                (Subject::RLock(r), Op::Retries) => {
                    Some(r.acquire_with_retries(Some(timed), || Err(())).unwrap())
                }
                (Subject::RLock(r), Op::AcquireRestore) => {
                    r.acquire_restore(saved.take().expect("a saved state"));
                    Some(true)
                }
                _ => None,
            };
            let view = subject.view();
            let reply = match (reply, op) {
                (Some(got), _) => Reply::Acquired(got, start.elapsed(), view),
                (None, Op::ReleaseSave) => {
                    let Subject::RLock(r) = &*subject else {
                        unreachable!()
                    };
                    let result = r.release_save();
                    let out = result.map(|s| (s.count(), s.owner().as_u64()));
                    // A failed release_save keeps the state saved earlier.
                    if let Ok(state) = result {
                        saved = Some(state);
                    }
                    Reply::Saved(out, subject.view())
                }
                (None, _) => {
                    let result = match &*subject {
                        Subject::Lock(l) => l.release(),
                        Subject::RLock(r) => r.release(),
                    };
                    Reply::Released(result, subject.view())
                }
            };
            if replies.send((index, reply)).is_err() {
                return;
            }
        }
    });
    let tid = tid_rx.recv_timeout(WATCHDOG).expect("actor started");
    Actor {
        commands,
        tid,
        thread,
    }
}

/// The model: who holds the lock, with what count, who is blocked (and on what),
/// and each actor's saved `release_save` state and ident.
#[derive(Debug, Default)]
struct Model {
    reentrant: bool,
    owner: Option<usize>,
    /// Lock: held by nobody in particular (any actor may release).
    held: bool,
    /// Lock: acquisitions that returned true, and releases that returned `Ok`,
    /// counted from the replies; their difference is the number of holders.
    acquired: usize,
    released: usize,
    count: usize,
    /// Blocked actors and the count they will hold once they get it.
    blocked: Vec<(usize, usize)>,
    saved: [Option<usize>; ACTORS],
}

struct World {
    model: Model,
    actors: Vec<Actor>,
    replies: Receiver<(usize, Reply)>,
    /// Replies that arrived while another actor's was awaited (a release's
    /// reply races the reply of the blocked actor it let through).
    pending: std::collections::VecDeque<(usize, Reply)>,
    idents: [u64; ACTORS],
    subject: Arc<Subject>,
}

impl World {
    fn locked(&self) -> bool {
        if self.model.reentrant {
            self.model.owner.is_some()
        } else {
            self.model.held
        }
    }

    fn expected_view(&self, actor: usize) -> (bool, bool, usize) {
        if self.model.reentrant {
            let owns = self.model.owner == Some(actor);
            (self.locked(), owns, if owns { self.model.count } else { 0 })
        } else {
            (self.locked(), false, 0)
        }
    }

    fn reply(&mut self) -> (usize, Reply) {
        if let Some(reply) = self.pending.pop_front() {
            return reply;
        }
        self.replies
            .recv_timeout(WATCHDOG)
            .expect("watchdog: a call the model says returns did not")
    }

    /// The reply of `actor`, keeping any other actor's for later.
    fn reply_from(&mut self, actor: usize) -> Reply {
        if let Some(i) = self.pending.iter().position(|(who, _)| *who == actor) {
            return self.pending.remove(i).unwrap().1;
        }
        loop {
            let (who, reply) = self
                .replies
                .recv_timeout(WATCHDOG)
                .expect("watchdog: a call the model says returns did not");
            if who == actor {
                return reply;
            }
            self.pending.push_back((who, reply));
        }
    }

    fn no_stray_reply(&mut self, what: &str) {
        if let Ok(reply) = self.replies.try_recv() {
            self.pending.push_back(reply);
        }
        if let Some((who, reply)) = self.pending.front() {
            panic!("actor {who} returned {reply:?}: {what}");
        }
    }

    /// `actor` must now be asleep (blocked in the lock), with no reply from it.
    fn assert_blocked(&mut self, actor: usize, op: Op) {
        wait_until_blocked(self.actors[actor].tid);
        self.no_stray_reply(&format!("actor {actor}'s {op:?} must block"));
    }

    /// The next reply, which must come from a blocked actor: that actor is no
    /// longer blocked. Returns it, its reply, and the count it was to hold.
    fn reply_of_a_blocked_actor(&mut self) -> (usize, Reply, usize) {
        let (who, reply) = self.reply();
        let position = self
            .model
            .blocked
            .iter()
            .position(|(a, _)| *a == who)
            .unwrap_or_else(|| panic!("actor {who} replied but was not blocked: {reply:?}"));
        let (_, count) = self.model.blocked.remove(position);
        (who, reply, count)
    }

    /// After the lock became free: if actors are blocked, exactly one gets it.
    fn hand_to_a_blocked_actor(&mut self) {
        if self.locked() || self.model.blocked.is_empty() {
            return;
        }
        let (who, reply, count) = self.reply_of_a_blocked_actor();
        if self.model.reentrant {
            self.model.owner = Some(who);
            self.model.count = count;
        } else {
            self.model.held = true;
            self.model.acquired += 1;
        }
        match reply {
            Reply::Acquired(true, _, view) => assert_eq!(view, self.expected_view(who)),
            other => panic!("a blocked acquire returned {other:?}"),
        }
        for &(other, _) in &self.model.blocked {
            wait_until_blocked(self.actors[other].tid);
        }
        self.no_stray_reply("a second blocked actor got the lock too");
    }

    fn step(&mut self, actor: usize, op: Op) {
        if self.model.blocked.iter().any(|(a, _)| *a == actor) {
            return; // busy: the schedule moves on
        }
        let reentrant = self.model.reentrant;
        let op = match op {
            Op::ReleaseSave | Op::AcquireRestore if !reentrant => Op::Release,
            Op::ReleaseByTwo if reentrant => Op::Release,
            Op::AcquireRestore if self.model.saved[actor].is_none() => Op::Acquire,
            // Its own saved state while owning it again would block forever.
            Op::AcquireRestore if self.model.owner == Some(actor) => Op::Release,
            Op::Acquire if !reentrant && self.model.held => {
                // A Lock held by anyone blocks, even the actor that acquired it
                // (not reentrant): fine, someone else releases it later.
                Op::Acquire
            }
            op => op,
        };
        let mine = self.model.owner == Some(actor);
        let free = !self.locked();
        let available = free || (reentrant && mine);
        self.actors[actor].commands.send(Some(op)).unwrap();
        match op {
            Op::Acquire | Op::AcquireRestore
                if !available || (op == Op::AcquireRestore && !free) =>
            {
                let count = if op == Op::AcquireRestore {
                    self.model.saved[actor].take().unwrap()
                } else {
                    1
                };
                self.assert_blocked(actor, op);
                self.model.blocked.push((actor, count));
            }
            Op::Acquire
            | Op::AcquireRestore
            | Op::TryAcquire
            | Op::Timed(_)
            | Op::Timeout
            | Op::Retries => {
                let restore = if op == Op::AcquireRestore {
                    self.model.saved[actor].take()
                } else {
                    None
                };
                if available {
                    if reentrant {
                        self.model.count = if mine {
                            self.model.count + 1
                        } else {
                            restore.unwrap_or(1)
                        };
                        self.model.owner = Some(actor);
                    } else {
                        self.model.held = true;
                    }
                }
                let reply = self.reply_from(actor);
                let Reply::Acquired(got, elapsed, view) = reply else {
                    panic!("{op:?} gave {reply:?}")
                };
                assert_eq!(got, available, "actor {actor} {op:?}: {:?}", self.model);
                self.model.acquired += usize::from(got && !reentrant);
                if !got && matches!(op, Op::Timed(_) | Op::Timeout | Op::Retries) {
                    assert!(
                        elapsed >= Duration::from_micros(TIMED_US as u64),
                        "early: {elapsed:?}"
                    );
                }
                assert_eq!(
                    view,
                    self.expected_view(actor),
                    "actor {actor} after {op:?}"
                );
            }
            Op::Release => {
                let due = if reentrant { mine } else { self.model.held };
                if due {
                    if reentrant {
                        self.model.count -= 1;
                        if self.model.count == 0 {
                            self.model.owner = None;
                        }
                    } else {
                        self.model.held = false;
                    }
                }
                let reply = self.reply_from(actor);
                let Reply::Released(result, view) = reply else {
                    panic!("{reply:?}")
                };
                if due {
                    assert_eq!(result, Ok(()));
                    self.model.released += usize::from(!reentrant);
                } else {
                    let message = if reentrant {
                        "cannot release un-acquired lock"
                    } else {
                        "release unlocked lock"
                    };
                    assert_eq!(result.map_err(|e| e.to_string()), Err(message.to_owned()));
                }
                // The view races with a blocked actor taking it: checked by the
                // hand-over below instead when someone was blocked.
                if self.model.blocked.is_empty() {
                    assert_eq!(view, self.expected_view(actor));
                }
                self.hand_to_a_blocked_actor();
            }
            Op::ReleaseByTwo => self.release_by_two(actor),
            Op::ReleaseSave => {
                let reply = self.reply_from(actor);
                let Reply::Saved(result, view) = reply else {
                    panic!("{reply:?}")
                };
                if mine {
                    assert_eq!(result, Ok((self.model.count, self.idents[actor])));
                    self.model.saved[actor] = Some(self.model.count);
                    self.model.owner = None;
                    self.model.count = 0;
                } else {
                    assert!(result.is_err(), "release_save by a non-owner: {result:?}");
                }
                if self.model.blocked.is_empty() {
                    assert_eq!(view, self.expected_view(actor));
                }
                self.hand_to_a_blocked_actor();
            }
        }
    }

    /// A `Lock` released by `actor` (its `Release` already sent), then at once by
    /// another thread, racing whichever blocked actor the first release let
    /// through: before it takes the lock (`Err`: the lock is free), or after (`Ok`:
    /// that acquisition is ended, and a second blocked actor, if any, gets the
    /// lock). A handoff to a starving actor is its acquisition at once. Every
    /// outcome must keep the count of holders equal to the lock's state.
    fn release_by_two(&mut self, actor: usize) {
        let held = self.model.held;
        let blocked = self.model.blocked.len();
        assert!(
            held || blocked == 0,
            "blocked on a free lock: {:?}",
            self.model
        );
        let Reply::Released(first, _) = self.reply_from(actor) else {
            panic!("a release gave another reply")
        };
        assert_eq!(first.is_ok(), held, "the first release");
        let second =
            (0..ACTORS).find(|&b| b != actor && !self.model.blocked.iter().any(|(a, _)| *a == b));
        let second_ok = match second {
            Some(other) => {
                self.actors[other].commands.send(Some(Op::Release)).unwrap();
                let Reply::Released(result, _) = self.reply_from(other) else {
                    panic!("a release gave another reply")
                };
                result.is_ok()
            }
            None => {
                let Subject::Lock(lock) = &*self.subject else {
                    unreachable!()
                };
                lock.release().is_ok()
            }
        };
        if blocked == 0 {
            assert!(!second_ok, "two Ok releases of one acquisition");
        }
        // The blocked actors that get the lock: one if the first release freed
        // it, and a second one if the second release ended the first one's
        // acquisition.
        let through = if held && blocked > 0 {
            1 + usize::from(second_ok && blocked >= 2)
        } else {
            0
        };
        for _ in 0..through {
            let (_, reply, _) = self.reply_of_a_blocked_actor();
            let Reply::Acquired(true, _, _) = reply else {
                panic!("a blocked acquire returned {reply:?}")
            };
        }
        self.model.acquired += through;
        self.model.released += usize::from(first.is_ok()) + usize::from(second_ok);
        let holders = self.model.acquired - self.model.released;
        assert!(
            holders <= 1,
            "{holders} holders of a Lock: {:?}",
            self.model
        );
        self.model.held = holders == 1;
        for &(other, _) in &self.model.blocked {
            wait_until_blocked(self.actors[other].tid);
        }
        self.no_stray_reply("a blocked actor got a lock that stayed held");
    }

    /// For a `Lock`: the holders the model counted (acquisitions that returned
    /// true minus `Ok` releases) are what the lock says, 1 if held, else 0.
    fn check_holders(&self) {
        if let Subject::Lock(lock) = &*self.subject {
            assert_eq!(
                self.model.acquired - self.model.released,
                usize::from(lock.locked()),
                "holders counted vs the lock: {:?}",
                self.model
            );
        }
    }

    /// Frees every blocked actor (the holder releases until nobody waits) and
    /// stops the threads.
    fn finish(mut self) {
        while let Some(&(_, _)) = self.model.blocked.first() {
            let releaser = if self.model.reentrant {
                Some(self.model.owner.expect("blocked behind an owner"))
            } else {
                (0..ACTORS).find(|a| !self.model.blocked.iter().any(|(b, _)| b == a))
            };
            match releaser {
                Some(releaser) => self.step(releaser, Op::Release),
                None => {
                    // Every actor is blocked on the Lock (even its holder): the
                    // test thread releases it, as any thread may.
                    let Subject::Lock(lock) = &*self.subject else {
                        unreachable!()
                    };
                    assert_eq!(lock.release(), Ok(()));
                    self.model.held = false;
                    self.model.released += 1;
                    self.hand_to_a_blocked_actor();
                }
            }
        }
        self.check_holders();
        for actor in &self.actors {
            let _ = actor.commands.send(None);
        }
        for actor in self.actors {
            actor.thread.join().unwrap();
        }
    }
}

fn run(reentrant: bool, steps: &[(usize, Op)]) {
    let subject = Arc::new(if reentrant {
        Subject::RLock(RLock::new())
    } else {
        Subject::Lock(Lock::new())
    });
    let (replies_tx, replies) = mpsc::channel();
    let actors: Vec<_> = (0..ACTORS)
        .map(|i| spawn_actor(i, Arc::clone(&subject), replies_tx.clone()))
        .collect();
    // Each actor's get_ident, through release_save on a private RLock.
    let mut world = World {
        model: Model {
            reentrant,
            ..Model::default()
        },
        actors,
        replies,
        pending: Default::default(),
        idents: [0; ACTORS],
        subject: Arc::clone(&subject),
    };
    if reentrant {
        for actor in 0..ACTORS {
            // Acquire + release_save once to learn the ident, then restore the
            // model's starting point (nobody owns it).
            world.step(actor, Op::Acquire);
            world.actors[actor]
                .commands
                .send(Some(Op::ReleaseSave))
                .unwrap();
            let reply = world.reply_from(actor);
            let Reply::Saved(Ok((_, ident)), _) = reply else {
                panic!("{reply:?}")
            };
            world.idents[actor] = ident;
            world.model.owner = None;
            world.model.count = 0;
            world.model.saved[actor] = None;
        }
        let distinct: BTreeSet<_> = world.idents.iter().collect();
        assert_eq!(distinct.len(), ACTORS);
    }
    for &(actor, op) in steps {
        world.step(actor, op);
        world.check_holders();
    }
    world.finish();
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Acquire),
        2 => Just(Op::TryAcquire),
        1 => any::<bool>().prop_map(Op::Timed),
        1 => Just(Op::Timeout),
        1 => Just(Op::Retries),
        4 => Just(Op::Release),
        2 => Just(Op::ReleaseByTwo),
        2 => Just(Op::ReleaseSave),
        3 => Just(Op::AcquireRestore),
    ]
}

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/lock_model.txt",
        ))),
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn lock_matches_the_model(steps in prop::collection::vec((0..ACTORS, op()), 1..24)) {
        run(false, &steps);
    }

    #[test]
    fn rlock_matches_the_model(steps in prop::collection::vec((0..ACTORS, op()), 1..24)) {
        run(true, &steps);
    }
}

//! Random schedules of start / join / clone / drop / release operations, run on real
//! threads and checked step by step against a sequential reference model.
//!
//! # What it proves
//!
//! For every generated schedule (proptest, shrunk to a minimal one on failure):
//!
//! - every observed outcome (`join`, `join` from several threads at once,
//!   `join_timeout`, the joiners still pending when a gate opens) is the one the
//!   model predicts from the started function's body: `Ok(v)` for a body that
//!   returns the `u64` `v` (through `join`, `join_ref`, `join_timeout` and
//!   `join_timeout_ref` alike), an
//!   `Err(Panic)` whose [`Panic::message`], [`Panic::is`], [`Panic::downcast_cloned`],
//!   `Display` and `Debug` describe exactly the `&'static str`, `String` or custom
//!   payload it panicked with;
//! - all observations of one thread's panic are the same value ([`Panic::ptr_eq`]),
//!   and panics of different threads never are;
//! - idents are unique and strictly increasing in start order (all starts happen on
//!   the harness thread), clones keep their ident;
//! - a function held on a closed gate has not finished: `is_finished` is `false`,
//!   `join_timeout` returns `None` (never before its timeout has passed), `Debug`
//!   says "running", and none of the threads blocked joining it has returned;
//! - once anything showed that a thread finished, `is_finished` stays `true` and
//!   `Debug` shows its outcome;
//! - the function ran exactly once, saw its own ident as [`pythread::current_ident`],
//!   ran its body to the end (returned, or unwound from its panic) and everything it
//!   did is visible to whoever joined it; a detached function (every handle
//!   dropped) still runs to its end, its thread exits after publishing the outcome,
//!   and a custom panic payload is dropped once nothing refers to it any more (by
//!   the started thread itself when detached).
//! - threads are started daemon or not (`Builder::daemon`), and once every one of
//!   them has exited, [`pythread::count`] is back at its value when the case began.
//!
//! # How
//!
//! [`proptest_state_machine`] drives it: [`Model`] is the [`ReferenceStateMachine`]
//! (which threads exist, what each one's body is, which handle slot refers to which
//! thread, how often each gate was opened) and [`World`] is the system under test
//! ([`StateMachineTest`]): real [`Handle`]s in the same slots, real threads, real
//! gates. Transitions run one after another on the harness thread, so the
//! concurrency lives inside transitions: a `join_from(h, k)` fans out `k` joiner
//! threads, and when `h` is held on a gate they stay blocked in the crate's wait
//! path across later transitions until a `release` of that gate, which then collects
//! and checks them. (On Linux the step waits until those joiners are really asleep,
//! as the kernel reports their thread states, so the release meets sleeping joiners.) The joiners alternate `join()`, `join_timeout(generous)`,
//! `join_timeout(Duration::MAX)` and `join_ref()`, so all four wait paths meet a finisher that has to
//! wake them.
//!
//! Handles live in a few named slots (`h0`..`h3`) and gates are named (`g0`, `g1`);
//! each transition names the slots it uses, so a shrunk schedule reads like a
//! program (see `TESTING.md` for one) and deleting a step only invalidates the steps
//! that use the slot it filled.
//!
//! # Bounded waits, no timing claims
//!
//! Every blocking call the harness makes is bounded by the shared watchdog
//! ([`WATCHDOG`], `tests/support`): a `join` runs on a helper thread whose answer is
//! awaited with `recv_timeout`, and pending joiners are collected the same way, so a hang fails the case with a message naming the
//! operation instead of hanging the suite. Started functions wait on gates that the
//! harness opens for good when a case ends or fails (`Drop for World`), so no thread
//! outlives its case by more than its body. Nothing asserts that anything is fast;
//! the one timing check is a lower bound (`join_timeout(d)` returning `None` has
//! waited at least `d`), which is a correctness property.
//!
//! # Case counts and replay
//!
//! `cargo test` runs [`DEFAULT_CASES`] cases; `PROPTEST_CASES` overrides that
//! (`make proptest-long` runs 10,000). Failures persist to
//! `proptest-regressions/model.txt` at the crate root (set explicitly: proptest's
//! default would put them next to this file, proptest#233), and the seeds committed
//! there replay first in every run.
#![cfg(not(loom))]

mod support;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use pythread::{Handle, Ident, Panic};
use support::WATCHDOG;

/// Handle slots `h0`..`h3`.
const SLOTS: usize = 4;
/// Gates `g0`, `g1`.
const GATES: usize = 2;
/// Cases per `cargo test` run unless `PROPTEST_CASES` says otherwise.
const DEFAULT_CASES: u32 = 256;
/// The literals a body may `panic!` with (each yields a `&'static str` payload).
const LITERALS: [&str; 3] = ["boom", "", "ünïcode ✓"];
/// `join_timeout` durations the schedules use, in milliseconds (0 polls).
const SHORT_MS: [u64; 3] = [0, 1, 3];

// ---------------------------------------------------------------------------
// Transitions

/// A handle slot.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Slot(usize);

/// A gate: started functions may be held on it until it is released.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Gate(usize);

/// The custom payload of `panic_any`: a number, and the count of live `Custom`s
/// (clones included) of its thread, so that teardown sees the payload dropped.
struct Custom(u32, Arc<AtomicUsize>);

impl Custom {
    fn new(n: u32, live: &Arc<AtomicUsize>) -> Custom {
        live.fetch_add(1, Ordering::SeqCst);
        Custom(n, Arc::clone(live))
    }
}

impl Clone for Custom {
    fn clone(&self) -> Custom {
        Custom::new(self.0, &self.1)
    }
}

impl Drop for Custom {
    fn drop(&mut self) {
        self.1.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a started function does once past its gate.
#[derive(Clone, PartialEq)]
enum Body {
    /// Returns this value: the thread's result, `Handle<u64>`.
    Return(u64),
    /// `panic!` with `LITERALS[i]`: a `&'static str` payload.
    PanicStr(usize),
    /// `panic!("{}", s)`: a `String` payload.
    PanicString(String),
    /// `panic_any(Custom(n))`.
    PanicCustom(u32),
}

#[derive(Clone)]
enum Transition {
    /// `into = Builder::new().daemon(daemon).start(body)`, held on `gate` (until
    /// its next release) if `Some`.
    Start {
        into: Slot,
        body: Body,
        gate: Option<Gate>,
        daemon: bool,
    },
    /// Opens the gate: every function held on it goes on.
    Release(Gate),
    /// `join()` on the harness thread.
    Join(Slot),
    /// `k` threads join clones of the handle at once.
    JoinFrom(Slot, usize),
    /// `into = from.clone()`.
    Clone {
        from: Slot,
        into: Slot,
    },
    /// Drops the handle in the slot (the last one detaches the thread).
    Drop(Slot),
    IsFinished(Slot),
    /// `join_timeout` of a short duration (milliseconds).
    JoinTimeout(Slot, u64),
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "h{}", self.0)
    }
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "g{}", self.0)
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Return(v) => write!(f, "return {v}"),
            Body::PanicStr(i) => write!(f, "panic!({:?})", LITERALS[*i]),
            Body::PanicString(s) => write!(f, "panic!(\"{{}}\", {s:?})"),
            Body::PanicCustom(n) => write!(f, "panic_any(Custom({n}))"),
        }
    }
}

impl Body {
    /// Whether the body returns (a value) rather than panics.
    fn returns(&self) -> bool {
        matches!(self, Body::Return(_))
    }
}

/// One line per step, such as `h1 = start(panic!("boom")) held on g0`.
impl fmt::Debug for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transition::Start {
                into,
                body,
                gate,
                daemon,
            } => {
                let daemon = if *daemon { "daemon " } else { "" };
                write!(f, "{into:?} = {daemon}start({body:?})")?;
                if let Some(gate) = gate {
                    write!(f, " held on {gate:?}")?;
                }
                Ok(())
            }
            Transition::Release(gate) => write!(f, "release({gate:?})"),
            Transition::Join(h) => write!(f, "join({h:?})"),
            Transition::JoinFrom(h, k) => write!(f, "join_from({h:?}, {k} threads)"),
            Transition::Clone { from, into } => write!(f, "{into:?} = clone({from:?})"),
            Transition::Drop(h) => write!(f, "drop({h:?})"),
            Transition::IsFinished(h) => write!(f, "is_finished({h:?})"),
            Transition::JoinTimeout(h, ms) => write!(f, "join_timeout({h:?}, {ms}ms)"),
        }
    }
}

// ---------------------------------------------------------------------------
// The reference model

/// The sequential model of the handle world.
#[derive(Clone, Default)]
struct Model {
    /// Every thread started so far, in start order (`t0`, `t1`, ...).
    threads: Vec<ModelThread>,
    /// Which thread each handle slot refers to.
    slots: [Option<usize>; SLOTS],
    /// How many times each gate was released.
    releases: [u32; GATES],
}

#[derive(Clone, Debug)]
struct ModelThread {
    body: Body,
    /// The gate and its release count at start: held until that count grows.
    hold: Option<(Gate, u32)>,
}

/// On one line even in `{:#?}`: proptest prints the initial state (always the empty
/// world) above every minimal failing schedule, and the schedule is what matters.
impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Model {{ threads: {}, slots: {:?}, releases: {:?} }}",
            self.threads.len(),
            self.slots,
            self.releases
        )
    }
}

impl Model {
    /// The thread a live slot refers to.
    fn thread(&self, slot: Slot) -> Option<usize> {
        self.slots[slot.0]
    }

    /// Whether thread `t` is still held on its gate (so it cannot have finished).
    fn held(&self, t: usize) -> bool {
        self.threads[t]
            .hold
            .is_some_and(|(gate, at)| self.releases[gate.0] == at)
    }

    fn live(&self) -> Vec<Slot> {
        (0..SLOTS)
            .filter(|&i| self.slots[i].is_some())
            .map(Slot)
            .collect()
    }

    fn empty(&self) -> Vec<Slot> {
        (0..SLOTS)
            .filter(|&i| self.slots[i].is_none())
            .map(Slot)
            .collect()
    }

    /// Live slots whose thread can be joined without waiting for a gate.
    fn joinable(&self) -> Vec<Slot> {
        self.live()
            .into_iter()
            .filter(|&h| !self.held(self.thread(h).expect("live")))
            .collect()
    }
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        2 => any::<u64>().prop_map(Body::Return),
        1 => (0..LITERALS.len()).prop_map(Body::PanicStr),
        1 => "[a-z ]{0,6}".prop_map(Body::PanicString),
        1 => any::<u32>().prop_map(Body::PanicCustom),
    ]
}

fn gate() -> impl Strategy<Value = Gate> {
    (0..GATES).prop_map(Gate)
}

impl ReferenceStateMachine for Model {
    type State = Model;
    type Transition = Transition;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model::default()).boxed()
    }

    /// Only well-formed steps are generated (so hardly anything is rejected);
    /// `preconditions` re-checks them for the schedules shrinking produces. A new
    /// handle always goes to the lowest empty slot, so schedules read `h0`, `h1`, ...
    fn transitions(state: &Model) -> BoxedStrategy<Transition> {
        let (live, empty, joinable) = (state.live(), state.empty(), state.joinable());
        let mut choices: Vec<(u32, BoxedStrategy<Transition>)> =
            vec![(1, gate().prop_map(Transition::Release).boxed())];
        if let Some(&first_empty) = empty.first() {
            let start = (
                Just(first_empty),
                body(),
                prop::option::weighted(0.5, gate()),
                any::<bool>(),
            )
                .prop_map(|(into, body, gate, daemon)| Transition::Start {
                    into,
                    body,
                    gate,
                    daemon,
                });
            choices.push((4, start.boxed()));
        }
        if !live.is_empty() {
            let pick = || prop::sample::select(live.clone());
            choices.push((1, pick().prop_map(Transition::Drop).boxed()));
            choices.push((1, pick().prop_map(Transition::IsFinished).boxed()));
            choices.push((
                2,
                (pick(), prop::sample::select(SHORT_MS.to_vec()))
                    .prop_map(|(h, ms)| Transition::JoinTimeout(h, ms))
                    .boxed(),
            ));
            choices.push((
                2,
                (pick(), 2..=4_usize)
                    .prop_map(|(h, k)| Transition::JoinFrom(h, k))
                    .boxed(),
            ));
            if let Some(&first_empty) = empty.first() {
                choices.push((
                    1,
                    (pick(), Just(first_empty))
                        .prop_map(|(from, into)| Transition::Clone { from, into })
                        .boxed(),
                ));
            }
        }
        if !joinable.is_empty() {
            choices.push((
                2,
                prop::sample::select(joinable)
                    .prop_map(Transition::Join)
                    .boxed(),
            ));
        }
        prop::strategy::Union::new_weighted(choices).boxed()
    }

    fn preconditions(state: &Model, transition: &Transition) -> bool {
        let live = |h: &Slot| state.thread(*h).is_some();
        match transition {
            Transition::Start { into, .. } => !live(into),
            Transition::Release(_) => true,
            // A join of a held thread would wait for a release that cannot come.
            Transition::Join(h) => state.thread(*h).is_some_and(|t| !state.held(t)),
            Transition::Clone { from, into } => live(from) && !live(into),
            Transition::JoinFrom(h, _)
            | Transition::Drop(h)
            | Transition::IsFinished(h)
            | Transition::JoinTimeout(h, _) => live(h),
        }
    }

    fn apply(mut state: Model, transition: &Transition) -> Model {
        match transition {
            Transition::Start {
                into, body, gate, ..
            } => {
                state.threads.push(ModelThread {
                    body: body.clone(),
                    hold: gate.map(|g| (g, state.releases[g.0])),
                });
                state.slots[into.0] = Some(state.threads.len() - 1);
            }
            Transition::Release(gate) => state.releases[gate.0] += 1,
            Transition::Clone { from, into } => state.slots[into.0] = state.slots[from.0],
            Transition::Drop(h) => state.slots[h.0] = None,
            Transition::Join(_)
            | Transition::JoinFrom(..)
            | Transition::IsFinished(_)
            | Transition::JoinTimeout(..) => {}
        }
        state
    }
}

// ---------------------------------------------------------------------------
// The system under test

/// Gates the started functions wait on: a release count per gate, and a shutdown
/// flag that opens all of them for good when a case ends.
#[derive(Default)]
struct Gates {
    state: Mutex<GateState>,
    opened: Condvar,
}

#[derive(Default)]
struct GateState {
    releases: [u32; GATES],
    shutdown: bool,
}

impl Gates {
    fn lock(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until `gate` has been released more than `at` times (or shutdown).
    fn pass(&self, gate: Gate, at: u32) {
        let mut state = self.lock();
        while state.releases[gate.0] == at && !state.shutdown {
            state = self.opened.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn release(&self, gate: Gate) {
        self.lock().releases[gate.0] += 1;
        self.opened.notify_all();
    }

    fn shutdown(&self) {
        self.lock().shutdown = true;
        self.opened.notify_all();
    }
}

/// What a started function records about its own run.
#[derive(Default)]
struct Probe {
    /// How many times the function was entered.
    entered: AtomicUsize,
    /// Set (Relaxed) as the function's last act, after its body returned or while
    /// its panic unwinds out of it (the drop of [`Finish`]): a joiner must see it,
    /// because everything the function did happens-before `join` returns.
    done: AtomicBool,
    /// Whether the body ended by unwinding (stored with `done`).
    unwound: AtomicBool,
    /// `current_ident()` as the function saw it.
    inside: OnceLock<Option<Ident>>,
    /// Live `Custom` payloads of this thread's panic (clones included).
    payloads: Arc<AtomicUsize>,
}

/// Dropped at the very end of the started function, after its body: records that
/// the body ended, and how.
struct Finish(Arc<Probe>);

impl Drop for Finish {
    fn drop(&mut self) {
        self.0
            .unwound
            .store(std::thread::panicking(), Ordering::Relaxed);
        self.0.done.store(true, Ordering::Relaxed);
    }
}

/// What the harness knows about one started thread.
struct Observed {
    ident: Ident,
    probe: Arc<Probe>,
    /// The first `Panic` observed; all later ones must be `ptr_eq` to it.
    panic: Option<Panic>,
    /// Some observation proved the function finished.
    finished: bool,
    /// Joiner threads of `join_from` steps on a held thread, not collected yet: for
    /// each step, how many joiners and the channel they answer on.
    pending: Vec<(usize, Receiver<Answer>)>,
    /// Receives once the started thread has exited.
    exited: Receiver<()>,
}

/// What a joiner thread reports: `None` if its `join_timeout` timed out.
type Answer = Option<Result<u64, Panic>>;

/// The real handle world, slot for slot and thread for thread like [`Model`].
struct World {
    gates: Arc<Gates>,
    slots: [Option<Handle<u64>>; SLOTS],
    threads: Vec<Observed>,
    last_ident: Option<Ident>,
    /// `pythread::count()` when the case began: 0 unless threads of an earlier,
    /// failed case (during shrinking) are still running.
    count_at_start: usize,
}

impl Drop for World {
    /// Opens every gate for good, also when a check failed and the case unwinds, so
    /// that no held function outlives its case.
    fn drop(&mut self) {
        self.gates.shutdown();
    }
}

/// Runs `body`, as the started function does once past its gate; `live` counts
/// the `Custom` payloads. Returns the body's value unless it panics.
fn perform(body: &Body, live: &Arc<AtomicUsize>) -> u64 {
    if !body.returns() {
        support::set_quiet(true);
    }
    match body {
        Body::Return(v) => *v,
        // `panic!` with a literal: the payload is that `&'static str`.
        Body::PanicStr(0) => panic!("boom"),
        Body::PanicStr(1) => panic!(""),
        Body::PanicStr(_) => panic!("ünïcode ✓"),
        Body::PanicString(s) => panic!("{}", s),
        Body::PanicCustom(n) => std::panic::panic_any(Custom::new(*n, live)),
    }
}

/// Waits for one answer from `rx`, failing the case after [`WATCHDOG`].
fn await_answer<T>(rx: &Receiver<T>, what: &dyn fmt::Display) -> T {
    support::recv(rx, what)
}

impl World {
    fn handle(&self, h: Slot) -> &Handle<u64> {
        self.slots[h.0]
            .as_ref()
            .unwrap_or_else(|| panic!("{h:?} is empty in the world but live in the model"))
    }

    /// `join()` on a helper thread, awaited for at most [`WATCHDOG`].
    fn bounded_join(handle: &Handle<u64>, what: &dyn fmt::Display) -> Result<u64, Panic> {
        let handle = handle.clone();
        support::bounded(what.to_string(), move || handle.join())
    }

    /// Checks an observed outcome of thread `t` against the model, and records it.
    fn check_outcome(&mut self, model: &Model, t: usize, got: Result<u64, Panic>, what: &str) {
        let body = &model.threads[t].body;
        let ident = self.threads[t].ident;
        match got {
            Ok(v) => assert!(
                *body == Body::Return(v),
                "{what}: t{t} ({body:?}) joined as Ok({v})"
            ),
            Err(panic) => {
                assert!(
                    !body.returns(),
                    "{what}: t{t} returned, but joined as Err({panic:?})"
                );
                check_panic(body, ident, &panic, &format!("{what}: t{t}"));
                match &self.threads[t].panic {
                    Some(first) => assert!(
                        Panic::ptr_eq(first, &panic),
                        "{what}: t{t}: not the same Panic as its first join (ptr_eq false)"
                    ),
                    None => {
                        for (u, other) in self.threads.iter().enumerate() {
                            if let Some(other) = &other.panic {
                                assert!(
                                    !Panic::ptr_eq(other, &panic),
                                    "{what}: the Panic of t{t} is ptr_eq to the Panic of t{u}"
                                );
                            }
                        }
                        self.threads[t].panic = Some(panic);
                    }
                }
            }
        }
        let observed = &mut self.threads[t];
        let probe = &observed.probe;
        assert_eq!(
            probe.entered.load(Ordering::Relaxed),
            1,
            "{what}: t{t} must run exactly once"
        );
        assert!(
            probe.done.load(Ordering::Relaxed),
            "{what}: t{t} was joined, but its last write is not visible"
        );
        assert_eq!(
            probe.unwound.load(Ordering::Relaxed),
            !body.returns(),
            "{what}: t{t} ({body:?}): its body ended the wrong way (unwound?)"
        );
        assert_eq!(
            probe.inside.get(),
            Some(&Some(ident)),
            "{what}: current_ident() inside t{t}"
        );
        observed.finished = true;
    }

    /// Collects every pending joiner of `t` (whose function may now finish).
    fn collect_pending(&mut self, model: &Model, t: usize, when: &str) {
        for (k, rx) in std::mem::take(&mut self.threads[t].pending) {
            for i in 0..k {
                let what = format!("join_from joiner {i}/{k} of t{t}, {when}");
                match await_answer(&rx, &what) {
                    Some(outcome) => self.check_outcome(model, t, outcome, &what),
                    None => panic!("{what}: join_timeout timed out: the join hangs"),
                }
            }
        }
    }

    fn start(&mut self, model: &Model, into: Slot, daemon: bool) {
        let t = model.thread(into).expect("started");
        assert_eq!(t, self.threads.len(), "threads are numbered in start order");
        let ModelThread { body, hold } = model.threads[t].clone();
        let probe = Arc::new(Probe::default());
        let gates = Arc::clone(&self.gates);
        let theirs = Arc::clone(&probe);
        let (exit_tx, exited) = mpsc::channel();
        let handle = pythread::Builder::new().daemon(daemon).start(move || {
            support::signal_on_exit(exit_tx);
            theirs.entered.fetch_add(1, Ordering::Relaxed);
            let _ = theirs.inside.set(pythread::current_ident());
            if let Some((gate, at)) = hold {
                gates.pass(gate, at);
            }
            let _finish = Finish(Arc::clone(&theirs));
            perform(&body, &theirs.payloads)
        });
        let ident = handle.ident();
        if let Some(last) = self.last_ident {
            assert!(
                ident > last && ident.as_u64() > last.as_u64(),
                "start of t{t}: ident {ident:?} does not follow the previous start's {last:?}"
            );
        }
        self.last_ident = Some(ident);
        if model.held(t) {
            assert!(!handle.is_finished(), "start of t{t}: held, yet finished");
            assert!(
                handle.join_timeout(Duration::ZERO).is_none(),
                "start of t{t}: held, yet join_timeout(ZERO) returned"
            );
        }
        self.threads.push(Observed {
            ident,
            probe,
            panic: None,
            finished: false,
            pending: Vec::new(),
            exited,
        });
        self.slots[into.0] = Some(handle);
    }

    fn join_from(&mut self, model: &Model, h: Slot, k: usize) {
        let t = model.thread(h).expect("live");
        let (tx, rx) = mpsc::channel::<Answer>();
        let (tid_tx, tids) = mpsc::channel();
        for i in 0..k {
            let (handle, tx, tid_tx) = (self.handle(h).clone(), tx.clone(), tid_tx.clone());
            std::thread::spawn(move || {
                let _ = tid_tx.send(support::current_tid());
                // Nothing else blocks from here on: once asleep, it is in the join.
                let answer = match i % 4 {
                    0 => Some(handle.join()),
                    1 => handle.join_timeout(WATCHDOG),
                    2 => handle.join_timeout(Duration::MAX),
                    _ => Some(handle.join_ref().copied()),
                };
                let _ = tx.send(answer);
            });
        }
        self.threads[t].pending.push((k, rx));
        if model.held(t) {
            // They must still be blocked when the gate opens: see them asleep.
            let what = format!("join_from({h:?}, {k} threads) on held t{t}");
            let tids: Vec<_> = (0..k)
                .map(|i| support::recv(&tids, format!("{what}: joiner {i}'s tid")))
                .collect();
            support::wait_until_asleep(what, &tids);
        } else {
            self.collect_pending(model, t, "at once");
        }
    }

    fn is_finished(&mut self, model: &Model, h: Slot) {
        let t = model.thread(h).expect("live");
        let finished = self.handle(h).is_finished();
        if model.held(t) {
            assert!(!finished, "is_finished({h:?}): t{t} is held, yet finished");
        }
        if self.threads[t].finished {
            assert!(
                finished,
                "is_finished({h:?}): t{t} finished before, not now"
            );
        }
        if finished {
            // is_finished() == true promises that join returns at once.
            let outcome = self.handle(h).join_timeout(Duration::ZERO);
            let what = format!("join_timeout({h:?}, 0) after is_finished() == true");
            let outcome = outcome.unwrap_or_else(|| panic!("{what}: None"));
            self.check_outcome(model, t, outcome, &what);
            let what = format!("join_timeout_ref({h:?}, 0) after is_finished() == true");
            let outcome = self.handle(h).join_timeout_ref(Duration::ZERO);
            let outcome = outcome.unwrap_or_else(|| panic!("{what}: None")).copied();
            self.check_outcome(model, t, outcome, &what);
        }
    }

    fn join_timeout(&mut self, model: &Model, h: Slot, ms: u64) {
        let t = model.thread(h).expect("live");
        let timeout = Duration::from_millis(ms);
        let began = Instant::now();
        let outcome = self.handle(h).join_timeout(timeout);
        let waited = began.elapsed();
        let what = format!("join_timeout({h:?}, {ms}ms)");
        match outcome {
            Some(outcome) => {
                assert!(!model.held(t), "{what}: t{t} is held, yet it returned");
                self.check_outcome(model, t, outcome, &what);
            }
            None => {
                assert!(
                    !self.threads[t].finished,
                    "{what}: t{t} finished before, yet it timed out"
                );
                assert!(waited >= timeout, "{what}: timed out after only {waited:?}");
            }
        }
    }
}

/// Checks that `panic` describes exactly the payload `body` panicked with.
fn check_panic(body: &Body, ident: Ident, panic: &Panic, what: &str) {
    let expected_message = match body {
        Body::Return(_) => unreachable!("checked by the caller"),
        Body::PanicStr(i) => Some(LITERALS[*i]),
        Body::PanicString(s) => Some(s.as_str()),
        Body::PanicCustom(_) => None,
    };
    assert_eq!(panic.message(), expected_message, "{what}: message()");
    assert_eq!(
        panic.is::<&'static str>(),
        matches!(body, Body::PanicStr(_)),
        "{what}: is::<&str>()"
    );
    assert_eq!(
        panic.is::<String>(),
        matches!(body, Body::PanicString(_)),
        "{what}: is::<String>()"
    );
    assert_eq!(
        panic.is::<Custom>(),
        matches!(body, Body::PanicCustom(_)),
        "{what}: is::<Custom>()"
    );
    let custom = match body {
        Body::PanicCustom(n) => Some(*n),
        _ => None,
    };
    assert_eq!(
        panic.downcast_cloned::<Custom>().map(|custom| custom.0),
        custom,
        "{what}: downcast"
    );
    assert_eq!(
        panic.downcast_cloned::<String>().as_deref(),
        match body {
            Body::PanicString(s) => Some(s.as_str()),
            _ => None,
        },
        "{what}: downcast_cloned::<String>()"
    );
    let expected_display = match expected_message {
        Some(message) => format!("thread {ident} panicked: {message}"),
        None => format!("thread {ident} panicked with a non-string payload"),
    };
    assert_eq!(
        panic.to_string(),
        expected_display,
        "{what}: Display must name the thread and the message"
    );
    let debug = format!("{panic:?}");
    assert!(
        debug.starts_with("Panic {")
            && debug.contains(&format!("thread: {ident:?},"))
            && debug.contains(&format!("message: {expected_message:?}")),
        "{what}: Debug {debug:?} must show the thread and the message"
    );
}

impl StateMachineTest for World {
    type SystemUnderTest = World;
    type Reference = Model;

    fn init_test(_: &Model) -> World {
        support::silence_intended_panics();
        World {
            gates: Arc::default(),
            slots: Default::default(),
            threads: Vec::new(),
            last_ident: None,
            count_at_start: pythread::count(),
        }
    }

    fn apply(mut world: World, model: &Model, transition: Transition) -> World {
        match transition {
            Transition::Start { into, daemon, .. } => world.start(model, into, daemon),
            Transition::Release(gate) => {
                world.gates.release(gate);
                for t in 0..world.threads.len() {
                    let freed = model.threads[t]
                        .hold
                        .is_some_and(|(g, at)| g == gate && model.releases[g.0] == at + 1);
                    if freed {
                        world.collect_pending(model, t, &format!("after release({gate:?})"));
                    }
                }
            }
            Transition::Join(h) => {
                let t = model.thread(h).expect("live");
                let what = format!("join({h:?})");
                let outcome = World::bounded_join(world.handle(h), &what);
                world.check_outcome(model, t, outcome, &what);
                // Finished now: `join_ref` answers at once, by reference.
                let outcome = world.handle(h).join_ref().copied();
                world.check_outcome(model, t, outcome, &format!("join_ref({h:?}) after join"));
            }
            Transition::JoinFrom(h, k) => world.join_from(model, h, k),
            Transition::Clone { from, into } => {
                let clone = world.handle(from).clone();
                assert_eq!(
                    clone.ident(),
                    world.handle(from).ident(),
                    "{into:?} = clone({from:?}): a clone has the same ident"
                );
                world.slots[into.0] = Some(clone);
            }
            Transition::Drop(h) => world.slots[h.0] = None,
            Transition::IsFinished(h) => world.is_finished(model, h),
            Transition::JoinTimeout(h, ms) => world.join_timeout(model, h, ms),
        }
        world
    }

    /// After every step: each live slot holds a handle of the right thread; a held
    /// thread looks unfinished from every angle, a thread seen finished stays so.
    fn check_invariants(world: &World, model: &Model) {
        for (i, slot) in world.slots.iter().enumerate() {
            let (handle, t) = match (slot, model.slots[i]) {
                (Some(handle), Some(t)) => (handle, t),
                (None, None) => continue,
                (slot, t) => panic!("h{i}: world has {slot:?}, model has thread {t:?}"),
            };
            let observed = &world.threads[t];
            assert_eq!(handle.ident(), observed.ident, "h{i}: ident of t{t}");
            let debug = format!("{handle:?}");
            assert!(
                debug.contains(&format!("{:?}", observed.ident)),
                "h{i}: Debug {debug:?} must show the ident"
            );
            if model.held(t) {
                assert!(!handle.is_finished(), "h{i}: t{t} is held, yet finished");
                assert!(debug.contains("running"), "h{i}: held t{t}: {debug:?}");
            }
            if observed.finished {
                assert!(handle.is_finished(), "h{i}: t{t} finished, then unfinished");
                let state = match model.threads[t].body {
                    Body::Return(_) => "returned",
                    _ => "panicked",
                };
                assert!(debug.contains(state), "h{i}: finished t{t}: {debug:?}");
            }
        }
        for (t, observed) in world.threads.iter().enumerate() {
            if model.held(t) {
                for (_, rx) in &observed.pending {
                    match rx.try_recv() {
                        Err(TryRecvError::Empty) => {}
                        Ok(answer) => panic!("t{t} is held, yet a joiner returned {answer:?}"),
                        Err(TryRecvError::Disconnected) => panic!("t{t}: a joiner died"),
                    }
                }
            }
        }
    }

    /// Opens all gates, then collects every pending joiner, joins every live handle
    /// and waits for every thread (detached ones too) to have run exactly once to
    /// its end and exited; then, with every handle and `Panic` of the harness
    /// dropped, every custom payload must be dropped too.
    fn teardown(mut world: World, model: Model) {
        world.gates.shutdown();
        for t in 0..world.threads.len() {
            world.collect_pending(&model, t, "at teardown");
        }
        for i in 0..SLOTS {
            if let Some(handle) = world.slots[i].clone() {
                let t = model.slots[i].expect("live");
                let what = format!("final join(h{i})");
                let outcome = World::bounded_join(&handle, &what);
                world.check_outcome(&model, t, outcome, &what);
            }
        }
        world.slots = Default::default();
        for (t, observed) in world.threads.iter_mut().enumerate() {
            observed.panic = None;
            // The thread exits only after `f` and the crate's `finish` (and, when
            // detached, the drop of the outcome) have returned on it.
            support::recv(
                &observed.exited,
                format!("teardown: t{t} (detached or not) exiting"),
            );
            let probe = &observed.probe;
            assert_eq!(probe.entered.load(Ordering::Relaxed), 1, "t{t} runs");
            assert!(
                probe.done.load(Ordering::Relaxed),
                "teardown: t{t} exited, yet its body never ran to its end"
            );
            let body = &model.threads[t].body;
            assert_eq!(
                probe.unwound.load(Ordering::Relaxed),
                !body.returns(),
                "teardown: t{t} ({body:?}): its body ended the wrong way"
            );
        }
        // Every thread of the case, daemon or not, has exited, and a started fn leaves
        // the count before its outcome is published: `count()` is back at its value
        // when the case began. Exact: in this test binary only this test starts
        // `pythread` threads (joiners and helpers are `std` threads, never counted)
        // and cases run one after another, so that value is 0, except after a failed
        // case (while shrinking), whose threads may still be ending (its gates were
        // shut down): they can only lower the count, so check `<=` (`==` when 0).
        let count = pythread::count();
        assert!(
            count <= world.count_at_start,
            "teardown: every started thread exited, yet count() is {count}, \
             not back to {} as at the start of the case",
            world.count_at_start
        );
        // Joiner and helper threads may still be dropping their handle clones.
        for (t, observed) in world.threads.iter().enumerate() {
            support::wait_until(
                format!("teardown: t{t}: its panic payload dropped (nothing refers to it)"),
                || observed.probe.payloads.load(Ordering::SeqCst) == 0,
            );
        }
    }
}

/// The proptest configuration: [`DEFAULT_CASES`] unless `PROPTEST_CASES` is set
/// (every other `PROPTEST_*` variable applies as usual), failures persisted at the
/// crate root.
fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/model.txt",
        ))),
        ..Config::default()
    }
}

prop_state_machine! {
    #![proptest_config(config())]

    /// Schedules of up to 24 steps against the model.
    #[test]
    fn handle_world_matches_the_model(sequential 1..24 => World);
}

/// The persistence path is relative to the working directory, which `cargo test`
/// sets to the crate root: check that the committed seeds are where proptest looks.
#[test]
fn regressions_file_is_found_at_the_crate_root() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("proptest-regressions")
        .join("model.txt");
    assert_eq!(
        std::env::current_dir().unwrap(),
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
    );
    let seeds = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    assert!(
        seeds.lines().any(|line| line.starts_with("cc ")),
        "{path:?} holds no seeds"
    );
}

//! pythread side by side with `std::thread` (and `shared_thread`, the closest Rust
//! peer), one criterion group per question, so that every ratio comes from one run
//! on one machine state. Run with `make bench`; see `BENCHMARKS.md` for results.
//!
//! Every group puts pythread next to the thing a user would otherwise write:
//!
//! - `start_join`: start an empty fn on a new OS thread and join it. pythread's
//!   `start` + `join` against `std::thread::spawn` + `JoinHandle::join` and
//!   `SharedThread::spawn` + `join`. All three create one OS thread through std and
//!   wait until the fn has run; the difference is the crate's own bookkeeping
//!   (ident, completion cell, catch_unwind).
//! - `finished_join`: ask an already finished thread for its outcome. pythread's
//!   `join` against `JoinHandle::is_finished`, which is std's only repeatable
//!   question (its `join` consumes the handle), and `SharedThread::join`. The std
//!   call is one load of an `Arc` strong count: the physical limit pythread's
//!   one-Acquire-load fast path is held to. `pythread_join` hands the whole
//!   `Result<(), Panic>` to `black_box`, which costs a store and a reload that a
//!   `bool` does not; `pythread_join_is_ok` reduces the outcome to a `bool` as
//!   `is_finished` does, and is the like-for-like row. `pythread_is_finished` is
//!   there for reference.
//! - `wake_16_joiners`: sixteen threads are asleep joining one fn; the fn returns.
//!   Timed from the instant the fn is released to the instant the last joiner is
//!   back, against a bare `Mutex<bool>` + `Condvar` broadcast that does exactly the
//!   same (set under the lock, `notify_all` after it). The joiners are spawned once
//!   and reused; before each release they are verified asleep in the kernel, and the
//!   fn spins on an atomic so that waking *it* is not part of either measurement.
//! - `start_from_2_threads`: two threads each start+join in a loop at once: ident
//!   minting and spawning under contention, against std doing the same.
//!
//! `std_detached` (groups 1 and 4) is std given pythread's join semantics and
//! nothing else: the joiner waits until the fn has run, not until the OS thread
//! has exited (pythread's `join` cannot wait for the exit: the handle is shared and
//! the thread detached). It separates the cost of that semantic choice from the
//! cost of pythread's own code.
//!
//! After the groups, `cargo bench` also prints an interleaved cross-check of the
//! headline ratios (`interleaved_ratios`): criterion runs benchmarks one after the
//! other, so on a shared machine a change of load between the two sides of a ratio
//! shows up in it; batches that alternate between the sides do not have that bias.
//!
//! Heap use per start and `size_of::<Handle>()` are counted, not timed, by the
//! `alloc` bench (`benches/alloc.rs`), which needs its own global allocator.
//!
//! Under `--cfg loom` every pythread primitive is a loom model that only works
//! inside `loom::model`; this file still compiles there, and `main` then only says
//! that benchmarks need a normal build.

mod common;

use common::std_detached;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex, mpsc};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode};
use shared_thread::SharedThread;

/// Group 1: the full cost of one thread that does nothing.
fn start_join(c: &mut Criterion) {
    let mut group = c.benchmark_group("start_join");
    group.bench_function("std", |b| b.iter(|| thread::spawn(|| {}).join()));
    group.bench_function("pythread", |b| b.iter(|| pythread::start(|| {}).join()));
    group.bench_function("std_detached", |b| b.iter(std_detached));
    group.bench_function("shared_thread", |b| {
        b.iter(|| *SharedThread::spawn(|| {}).join())
    });
    group.finish();
}

/// A std thread and a pythread thread, both already finished.
fn finished_threads() -> (JoinHandle<()>, pythread::Handle) {
    let std_handle = thread::spawn(|| {});
    while !std_handle.is_finished() {
        thread::yield_now();
    }
    let handle = pythread::start(|| {});
    handle.join().expect("the empty fn returns");
    (std_handle, handle)
}

/// Group 2: the repeatable "is it done, and how did it end?" on a finished thread.
fn finished_join(c: &mut Criterion) {
    let (std_handle, handle) = finished_threads();
    let shared = SharedThread::spawn(|| {});
    shared.join();

    let mut group = c.benchmark_group("finished_join");
    group.bench_function("std_is_finished", |b| {
        b.iter(|| black_box(&std_handle).is_finished())
    });
    group.bench_function("pythread_join", |b| b.iter(|| black_box(&handle).join()));
    group.bench_function("pythread_join_is_ok", |b| {
        b.iter(|| black_box(&handle).join().is_ok())
    });
    group.bench_function("pythread_is_finished", |b| {
        b.iter(|| black_box(&handle).is_finished())
    });
    // A typed result: the finished join of a `Handle<u64>` copies the value out.
    let typed = pythread::start(|| 42_u64);
    assert_eq!(typed.join().expect("returns 42"), 42);
    group.bench_function("pythread_join_u64", |b| b.iter(|| black_box(&typed).join()));
    group.bench_function("pythread_join_u64_is_ok", |b| {
        b.iter(|| black_box(&typed).join().is_ok())
    });
    group.bench_function("shared_thread", |b| b.iter(|| *black_box(&shared).join()));
    group.finish();
    std_handle.join().expect("the empty fn returns");
}

/// Group 3: one fn finishing with `JOINERS` threads blocked on it.
fn wake_16_joiners(c: &mut Criterion) {
    let joiners = Joiners::spawn();
    let mut group = c.benchmark_group("wake_16_joiners");
    // One round costs far more wall time (spawning the fn, putting 16 threads to
    // sleep) than the part that is timed; flat sampling with few, small samples
    // keeps the group to seconds rather than minutes.
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(3));
    for target in [Target::CondvarBroadcast, Target::Pythread] {
        group.bench_function(BenchmarkId::from_parameter(target.name()), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| joiners.round(target)).sum())
        });
    }
    group.finish();
    joiners.stop();
}

/// Group 4: start+join from two threads at once; one iteration is one start+join
/// on each of them.
fn start_from_2_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("start_from_2_threads");
    group.bench_function("std", |b| {
        b.iter_custom(|iters| in_two_threads(iters, || thread::spawn(|| {}).join().unwrap()))
    });
    group.bench_function("pythread", |b| {
        b.iter_custom(|iters| in_two_threads(iters, || pythread::start(|| {}).join().unwrap()))
    });
    group.bench_function("std_detached", |b| {
        b.iter_custom(|iters| in_two_threads(iters, std_detached))
    });
    group.finish();
}

/// Runs `work` `iters` times on each of two threads, released together; returns the
/// wall time until both are done.
fn in_two_threads(iters: u64, work: fn()) -> Duration {
    let barrier = Barrier::new(3);
    thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                barrier.wait();
                for _ in 0..iters {
                    work();
                }
                barrier.wait();
            });
        }
        barrier.wait();
        let start = Instant::now();
        barrier.wait();
        start.elapsed()
    })
}

const JOINERS: usize = 16;

/// What the joiners of one round wait for.
#[derive(Clone, Copy)]
enum Target {
    /// A `pythread::start`ed fn, joined with `Handle::join`.
    Pythread,
    /// A `std::thread::spawn`ed fn that sets a `Mutex<bool>` and broadcasts.
    CondvarBroadcast,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Pythread => "pythread",
            Target::CondvarBroadcast => "condvar_broadcast",
        }
    }
}

/// The baseline: what a hand-written "wait until done" looks like.
#[derive(Default)]
struct Broadcast {
    done: Mutex<bool>,
    finished: Condvar,
}

impl Broadcast {
    fn finish(&self) {
        *self.done.lock().unwrap() = true;
        self.finished.notify_all();
    }

    fn wait(&self) {
        let mut done = self.done.lock().unwrap();
        while !*done {
            done = self.finished.wait(done).unwrap();
        }
    }
}

/// What one joiner is handed for one round: its own clone of the handle.
#[derive(Clone)]
enum Job {
    Pythread(pythread::Handle),
    Broadcast(Arc<Broadcast>),
}

/// Where the joiners of a round report: how many are armed, how many are still
/// waiting, and the latest return time seen, in nanoseconds since `epoch`.
struct Tally {
    epoch: Instant,
    armed: AtomicUsize,
    waiting: AtomicUsize,
    last_return: AtomicU64,
    main: Thread,
}

impl Tally {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).expect("a bench lasts < 584 years")
    }
}

/// A pool of joiner threads, reused across rounds so that spawning them is not
/// part of any measurement. Rounds must run on the thread that spawned the pool:
/// the joiners unpark that thread.
struct Joiners {
    jobs: Vec<mpsc::Sender<Job>>,
    tids: Vec<Option<String>>,
    threads: Vec<JoinHandle<()>>,
    tally: Arc<Tally>,
}

impl Joiners {
    fn spawn() -> Joiners {
        let tally = Arc::new(Tally {
            epoch: Instant::now(),
            armed: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            last_return: AtomicU64::new(0),
            main: thread::current(),
        });
        let (tid_tx, tid_rx) = mpsc::channel();
        let (jobs, threads) = (0..JOINERS)
            .map(|_| {
                let (job_tx, job_rx) = mpsc::channel::<Job>();
                let tally = Arc::clone(&tally);
                let tid_tx = tid_tx.clone();
                let thread = thread::spawn(move || {
                    tid_tx.send(kernel_tid()).unwrap();
                    for job in job_rx {
                        if tally.armed.fetch_add(1, Ordering::AcqRel) + 1 == JOINERS {
                            tally.main.unpark();
                        }
                        match &job {
                            Job::Pythread(handle) => handle.join().expect("the fn returns"),
                            Job::Broadcast(broadcast) => broadcast.wait(),
                        }
                        tally.last_return.fetch_max(tally.now(), Ordering::AcqRel);
                        if tally.waiting.fetch_sub(1, Ordering::AcqRel) == 1 {
                            tally.main.unpark();
                        }
                        drop(job);
                    }
                });
                (job_tx, thread)
            })
            .unzip();
        drop(tid_tx);
        Joiners {
            jobs,
            tids: tid_rx.iter().take(JOINERS).collect(),
            threads,
            tally,
        }
    }

    /// One round: start the fn, let every joiner block on it, release it, and
    /// return the time from the release to the last joiner's return.
    fn round(&self, target: Target) -> Duration {
        let tally = &self.tally;
        tally.armed.store(0, Ordering::Relaxed);
        tally.waiting.store(self.jobs.len(), Ordering::Relaxed);
        tally.last_return.store(0, Ordering::Relaxed);

        let release = Arc::new(AtomicBool::new(false));
        let gate = Arc::clone(&release);
        let spin_until_released = move || {
            while !gate.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
        };
        let (job, finisher) = match target {
            Target::Pythread => (Job::Pythread(pythread::start(spin_until_released)), None),
            Target::CondvarBroadcast => {
                let broadcast = Arc::new(Broadcast::default());
                let theirs = Arc::clone(&broadcast);
                let finisher = thread::spawn(move || {
                    spin_until_released();
                    theirs.finish();
                });
                (Job::Broadcast(broadcast), Some(finisher))
            }
        };
        for joiner in &self.jobs {
            joiner.send(job.clone()).unwrap();
        }
        while tally.armed.load(Ordering::Acquire) < self.jobs.len() {
            thread::park();
        }
        self.wait_until_asleep();

        let released_at = tally.now();
        release.store(true, Ordering::Release);
        while tally.waiting.load(Ordering::Acquire) != 0 {
            thread::park();
        }
        let elapsed = tally.last_return.load(Ordering::Acquire) - released_at;
        if let Some(finisher) = finisher {
            finisher.join().unwrap();
        }
        Duration::from_nanos(elapsed)
    }

    /// Waits until every joiner is asleep in the kernel (state `S` in
    /// `/proc/self/task/TID/stat`). An armed joiner has its job and goes straight
    /// into `join`, so once all of them sleep at the same moment, all of them are
    /// waiting on the condition variable. Where `/proc` is not available, sleeps a
    /// generous while instead.
    fn wait_until_asleep(&self) {
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            let asleep = self.tids.iter().all(|tid| match tid {
                Some(tid) => task_state(tid) == Some('S'),
                None => false,
            });
            if asleep {
                return;
            }
            if self.tids.iter().any(Option::is_none) || Instant::now() > deadline {
                thread::sleep(Duration::from_millis(5));
                return;
            }
            thread::yield_now();
        }
    }

    fn stop(self) {
        drop(self.jobs);
        for thread in self.threads {
            thread.join().unwrap();
        }
    }
}

/// The calling thread's kernel task id, as a `/proc/self/task` entry name.
fn kernel_tid() -> Option<String> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    Some(link.file_name()?.to_str()?.to_owned())
}

/// The scheduler state letter of one of this process's tasks.
fn task_state(tid: &str) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // "TID (COMM) STATE ...": COMM may contain spaces and parentheses.
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

fn main() {
    if cfg!(loom) {
        eprintln!("benchmarks need a normal build: not --cfg loom");
        return;
    }
    let mut criterion = Criterion::default().configure_from_args();
    start_join(&mut criterion);
    finished_join(&mut criterion);
    wake_16_joiners(&mut criterion);
    start_from_2_threads(&mut criterion);
    criterion.final_summary();
    // Only under `cargo bench` (which passes `--bench`), not in `cargo test --benches`.
    if std::env::args().any(|arg| arg == "--bench") {
        interleaved_ratios();
    }
}

/// Criterion runs one benchmark after the other, so on a shared machine a change of
/// load between two of them shows up as a ratio. This repeats the headline
/// comparisons in alternating batches (A, B, C, then B, C, A, ...) and prints the
/// median time per iteration of each, so that both sides of every ratio saw the
/// same load. It is a cross-check of the criterion groups, printed after them.
fn interleaved_ratios() {
    println!("\ninterleaved batches, median per iteration (ratio to the first row)");
    let (std_handle, handle) = finished_threads();
    let typed = pythread::start(|| 42_u64);
    assert_eq!(typed.join().expect("returns 42"), 42);
    let joiners = Joiners::spawn();

    report(
        "start_join",
        &mut [
            ("std", &mut |n| {
                timed(n, || thread::spawn(|| {}).join().unwrap())
            }),
            ("pythread", &mut |n| {
                timed(n, || pythread::start(|| {}).join().unwrap())
            }),
            ("std_detached", &mut |n| timed(n, std_detached)),
        ],
        301,
        10,
    );
    report(
        "finished_join",
        &mut [
            ("std_is_finished", &mut |n| {
                timed(n, || black_box(&std_handle).is_finished())
            }),
            ("pythread_join_is_ok", &mut |n| {
                timed(n, || black_box(&handle).join().is_ok())
            }),
            ("pythread_join", &mut |n| {
                timed(n, || black_box(&handle).join())
            }),
            ("pythread_join_u64_is_ok", &mut |n| {
                timed(n, || black_box(&typed).join().is_ok())
            }),
            ("pythread_join_u64", &mut |n| {
                timed(n, || black_box(&typed).join())
            }),
        ],
        101,
        1_000_000,
    );
    report(
        "wake_16_joiners",
        &mut [
            ("condvar_broadcast", &mut |n| {
                (0..n)
                    .map(|_| joiners.round(Target::CondvarBroadcast))
                    .sum()
            }),
            ("pythread", &mut |n| {
                (0..n).map(|_| joiners.round(Target::Pythread)).sum()
            }),
        ],
        501,
        1,
    );
    report(
        "start_from_2_threads",
        &mut [
            ("std", &mut |n| {
                in_two_threads(n, || thread::spawn(|| {}).join().unwrap())
            }),
            ("pythread", &mut |n| {
                in_two_threads(n, || pythread::start(|| {}).join().unwrap())
            }),
            ("std_detached", &mut |n| in_two_threads(n, std_detached)),
        ],
        151,
        10,
    );
    joiners.stop();
    std_handle.join().expect("the empty fn returns");
}

/// A variant of one comparison: runs `n` iterations and returns their total time.
type Variant<'a> = (&'a str, &'a mut dyn FnMut(u64) -> Duration);

/// Runs `rounds` batches of `batch` iterations of every variant, rotating which goes
/// first, and prints each one's median time per iteration and its ratio to the first.
fn report(group: &str, variants: &mut [Variant<'_>], rounds: usize, batch: u64) {
    let mut samples = vec![Vec::with_capacity(rounds); variants.len()];
    for round in 0..rounds {
        for k in 0..variants.len() {
            let which = (round + k) % variants.len();
            let elapsed = (variants[which].1)(batch);
            samples[which].push(elapsed.as_secs_f64() * 1e9 / batch as f64);
        }
    }
    let medians: Vec<f64> = samples.iter_mut().map(|s| median(s)).collect();
    for ((name, _), median) in variants.iter().zip(&medians) {
        let shown = if *median >= 1e3 {
            format!("{:.2} µs", median / 1e3)
        } else {
            format!("{median:.3} ns")
        };
        println!(
            "{group:<22} {name:<20} {shown:>10} {:>6.2}x",
            median / medians[0]
        );
    }
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// The wall time of `n` calls of `work`, each result passed to `black_box` as
/// criterion's `iter` does.
fn timed<O>(n: u64, mut work: impl FnMut() -> O) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        black_box(work());
    }
    start.elapsed()
}

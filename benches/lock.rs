//! `pythread::Lock` next to `parking_lot::RawMutex` (what RustPython's
//! `_thread.lock` is, through `lock_api`) and `std::sync::Mutex<()>`, in one run.
//! Run with `cargo bench --bench lock`; see `BENCHMARKS.md` ("Locks").
//!
//! - `lock_uncontended`: one acquire + release on one thread.
//! - `lock_contended_4x100000`: 4 threads x 100 000 increments of a shared counter under
//!   the lock (the counter is a relaxed atomic, read and written separately, so a
//!   broken lock would lose increments; checked). Each lock is locked, the counter
//!   incremented and the lock unlocked in one scope (`BenchLock::with`).
//!
//! Then, printed (not criterion):
//! - contended at 2, 4 and 8 threads x 100 000, best and median of 5 rounds with the three
//!   locks interleaved in each round;
//! - the worst (and 99th percentile) wait of a thread that blocks on a lock that
//!   two other threads release and re-take in a tight loop, holding it 20 us each
//!   time (200 trials per lock);
//! - on Linux, the latency from `pthread_kill(SIGUSR1)` (handler without
//!   `SA_RESTART`) to `acquire_timed(-1, true)` returning `Intr` (200 trials).
//!
//! `PYTHREAD_BENCH_ONLY=<name>` (`pythread_Lock`, `parking_lot_RawMutex`,
//! `std_Mutex`) runs 20 contended 4 x 100 000 runs of that lock and nothing
//! else, for counting system calls (BENCHMARKS.md).
//!
//! Under `--cfg loom` this compiles but only says that benchmarks need a normal build.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use criterion::Criterion;

/// The three locks behind one interface: `with` locks, runs `f`, unlocks, in
/// one scope (std's guard cannot leave it, and storing it elsewhere would time a
/// second lock).
trait BenchLock: Send + Sync + 'static {
    const NAME: &'static str;
    fn make() -> Self;
    fn with<R>(&self, f: impl FnOnce() -> R) -> R;
}

impl BenchLock for pythread::Lock {
    const NAME: &'static str = "pythread_Lock";
    fn make() -> Self {
        pythread::Lock::new()
    }
    fn with<R>(&self, f: impl FnOnce() -> R) -> R {
        self.acquire();
        let r = f();
        self.release().unwrap();
        r
    }
}

impl BenchLock for parking_lot::RawMutex {
    const NAME: &'static str = "parking_lot_RawMutex";
    fn make() -> Self {
        <parking_lot::RawMutex as lock_api::RawMutex>::INIT
    }
    fn with<R>(&self, f: impl FnOnce() -> R) -> R {
        lock_api::RawMutex::lock(self);
        let r = f();
        // SAFETY: locked on the first line by this thread.
        unsafe { lock_api::RawMutex::unlock(self) };
        r
    }
}

impl BenchLock for Mutex<()> {
    const NAME: &'static str = "std_Mutex";
    fn make() -> Self {
        Mutex::new(())
    }
    fn with<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = self.lock().unwrap();
        f()
    }
}

fn uncontended(c: &mut Criterion) {
    let mut group = c.benchmark_group("lock_uncontended");
    let lock = pythread::Lock::new();
    group.bench_function("pythread_Lock", |b| {
        b.iter(|| {
            lock.acquire();
            black_box(lock.release()).unwrap();
        })
    });
    let raw = <parking_lot::RawMutex as lock_api::RawMutex>::INIT;
    group.bench_function("parking_lot_RawMutex", |b| {
        b.iter(|| {
            lock_api::RawMutex::lock(&raw);
            // SAFETY: locked on the line above by this thread.
            unsafe { lock_api::RawMutex::unlock(&raw) };
        })
    });
    let mutex = Mutex::new(());
    group.bench_function("std_Mutex", |b| {
        b.iter(|| drop(black_box(mutex.lock().unwrap())))
    });
    group.finish();
}

const THREADS: usize = 4;
const INCREMENTS: usize = 100_000;

fn contended_run<L: BenchLock>(lock: &Arc<L>) -> Duration {
    contended_threads(lock, THREADS)
}

/// `threads` threads x [`INCREMENTS`] increments of a shared counter under the
/// lock: the time from the first thread's start to the last thread's end, each
/// read by the workers themselves (the main thread may not run again until they
/// are done, so its own clock would miss the work).
fn contended_threads<L: BenchLock>(lock: &Arc<L>, threads: usize) -> Duration {
    let counter = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (lock, counter, barrier) =
                (Arc::clone(lock), Arc::clone(&counter), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                let start = Instant::now();
                for _ in 0..INCREMENTS {
                    lock.with(|| {
                        let v = counter.load(Ordering::Relaxed);
                        counter.store(v + 1, Ordering::Relaxed);
                    });
                }
                (start, Instant::now())
            })
        })
        .collect();
    let spans: Vec<(Instant, Instant)> = handles.into_iter().map(|t| t.join().unwrap()).collect();
    let start = spans.iter().map(|s| s.0).min().unwrap();
    let end = spans.iter().map(|s| s.1).max().unwrap();
    assert_eq!(counter.load(Ordering::Relaxed), threads * INCREMENTS);
    end - start
}

fn contended(c: &mut Criterion) {
    let mut group = c.benchmark_group("lock_contended_4x100000");
    group.sample_size(10);
    fn one<L: BenchLock>(
        group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    ) {
        let lock = Arc::new(L::make());
        group.bench_function(L::NAME, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| contended_run(&lock)).sum())
        });
    }
    one::<pythread::Lock>(&mut group);
    one::<parking_lot::RawMutex>(&mut group);
    one::<Mutex<()>>(&mut group);
    group.finish();
}

/// Worst and 99th-percentile wait of a thread blocking on a lock that two hogs
/// release and re-take in a tight loop.
fn starvation<L: BenchLock>() -> (Duration, Duration) {
    let lock = Arc::new(L::make());
    let stop = Arc::new(AtomicBool::new(false));
    let hogs: Vec<_> = (0..2)
        .map(|_| {
            let (lock, stop) = (Arc::clone(&lock), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    lock.with(|| {
                        let held = Instant::now();
                        while held.elapsed() < Duration::from_micros(20) {
                            std::hint::spin_loop();
                        }
                    });
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(20)); // let the hogs get going
    let mut waits = Vec::new();
    for _ in 0..200 {
        let lock2 = Arc::clone(&lock);
        let waited = std::thread::spawn(move || {
            let start = Instant::now();
            lock2.with(|| start.elapsed())
        })
        .join()
        .unwrap();
        waits.push(waited);
    }
    stop.store(true, Ordering::Relaxed);
    for h in hogs {
        h.join().unwrap();
    }
    waits.sort();
    (waits[waits.len() - 1], waits[waits.len() * 99 / 100])
}

// Not under `--cfg pythread_generic`: that backend never reports Intr.
#[cfg(all(target_os = "linux", not(pythread_generic)))]
mod signals {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, mpsc};
    use std::time::{Duration, Instant};

    static HANDLED: AtomicUsize = AtomicUsize::new(0);

    extern "C" fn on_usr1(_: libc::c_int) {
        HANDLED.fetch_add(1, Ordering::SeqCst);
    }

    fn blocked_in_futex(tid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall"))
            .map(|t| t.split_whitespace().next() == Some(&libc::SYS_futex.to_string()))
            .unwrap_or(false)
    }

    /// Median and worst signal-to-Intr latency over `trials`.
    pub fn intr_latency(trials: usize) -> (Duration, Duration) {
        // SAFETY: a zeroed sigaction is valid; the handler only touches an atomic.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_usr1 as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut action.sa_mask);
            assert_eq!(
                libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()),
                0
            );
        }
        let lock = Arc::new(pythread::Lock::new());
        lock.acquire();
        let mut latencies = Vec::new();
        for _ in 0..trials {
            let (tx, rx) = mpsc::channel();
            let other = Arc::clone(&lock);
            let waiter = std::thread::spawn(move || {
                // SAFETY: always safe to call.
                tx.send(unsafe { (libc::pthread_self(), libc::gettid()) })
                    .unwrap();
                let status = other.acquire_timed(-1, true);
                (status, Instant::now())
            });
            let (thread, tid) = rx.recv().unwrap();
            let start = Instant::now();
            while !blocked_in_futex(tid) {
                assert!(start.elapsed() < Duration::from_secs(20), "never blocked");
                std::thread::yield_now();
            }
            let sent = Instant::now();
            // SAFETY: the thread is alive, blocked in the acquire.
            unsafe { libc::pthread_kill(thread, libc::SIGUSR1) };
            let (status, returned) = waiter.join().unwrap();
            assert_eq!(status, pythread::LockStatus::Intr);
            latencies.push(returned - sent);
        }
        latencies.sort();
        (
            latencies[latencies.len() / 2],
            latencies[latencies.len() - 1],
        )
    }
}

/// Uncontended acquire+release, interleaved: 40 alternating batches of 1M
/// operations per lock, the best batch of each (criterion runs one benchmark
/// after the other, so on a shared machine a load change biases its ratios).
fn interleaved_uncontended() -> [(&'static str, f64); 3] {
    const OPS: u32 = 1_000_000;
    let lock = pythread::Lock::new();
    let raw = <parking_lot::RawMutex as lock_api::RawMutex>::INIT;
    let mutex = Mutex::new(());
    let mut best = [f64::MAX; 3];
    for _ in 0..40 {
        let start = Instant::now();
        for _ in 0..OPS {
            lock.acquire();
            black_box(lock.release()).unwrap();
        }
        best[0] = best[0].min(start.elapsed().as_nanos() as f64 / f64::from(OPS));
        let start = Instant::now();
        for _ in 0..OPS {
            lock_api::RawMutex::lock(&raw);
            // SAFETY: locked on the line above by this thread.
            unsafe { lock_api::RawMutex::unlock(&raw) };
        }
        best[1] = best[1].min(start.elapsed().as_nanos() as f64 / f64::from(OPS));
        let start = Instant::now();
        for _ in 0..OPS {
            drop(black_box(mutex.lock().unwrap()));
        }
        best[2] = best[2].min(start.elapsed().as_nanos() as f64 / f64::from(OPS));
    }
    [
        ("pythread_Lock", best[0]),
        ("parking_lot_RawMutex", best[1]),
        ("std_Mutex", best[2]),
    ]
}

/// Contended time at 2, 4 and 8 threads x [`INCREMENTS`] over `rounds` rounds,
/// the three locks interleaved within each round (so a load change on a shared
/// machine hits all three alike): per thread count and lock, the sorted times.
fn interleaved_contended(rounds: usize) -> Vec<(usize, [Vec<Duration>; 3])> {
    let pythread = Arc::new(pythread::Lock::new());
    let parking_lot = Arc::new(<parking_lot::RawMutex as lock_api::RawMutex>::INIT);
    let std = Arc::new(Mutex::new(()));
    let mut all: Vec<(usize, [Vec<Duration>; 3])> = [2, 4, 8]
        .into_iter()
        .map(|threads| (threads, Default::default()))
        .collect();
    for _ in 0..rounds {
        for (threads, times) in &mut all {
            times[0].push(contended_threads(&pythread, *threads));
            times[1].push(contended_threads(&parking_lot, *threads));
            times[2].push(contended_threads(&std, *threads));
        }
    }
    for (_, times) in &mut all {
        for lock in times.iter_mut() {
            lock.sort();
        }
    }
    all
}

/// How many contended runs `PYTHREAD_BENCH_ONLY` makes.
const ONLY_RUNS: u32 = 20;

/// `PYTHREAD_BENCH_ONLY=<lock name>`: [`ONLY_RUNS`] contended runs of 4 threads
/// and nothing else, for a system call counter (`perf stat -e
/// syscalls:sys_enter_futex`, BENCHMARKS.md).
fn only(name: &str) {
    let time: Duration = (0..ONLY_RUNS)
        .map(|_| match name {
            "pythread_Lock" => contended_run(&Arc::new(pythread::Lock::new())),
            "parking_lot_RawMutex" => contended_run(&Arc::new(
                <parking_lot::RawMutex as lock_api::RawMutex>::INIT,
            )),
            "std_Mutex" => contended_run(&Arc::new(Mutex::new(()))),
            other => panic!("unknown lock {other}"),
        })
        .sum();
    println!(
        "{name}: {ONLY_RUNS} runs of {THREADS} x {INCREMENTS} in {time:?} ({:?} per run)",
        time / ONLY_RUNS
    );
}

fn main() {
    if cfg!(loom) {
        eprintln!("benchmarks need a normal build: not --cfg loom");
        return;
    }
    if let Ok(name) = std::env::var("PYTHREAD_BENCH_ONLY") {
        only(&name);
        return;
    }
    let mut criterion = Criterion::default().configure_from_args();
    uncontended(&mut criterion);
    contended(&mut criterion);
    criterion.final_summary();

    println!("\ncontended, threads x {INCREMENTS} increments, 5 interleaved rounds: best (median)");
    for (threads, [pythread, parking_lot, std]) in interleaved_contended(5) {
        let best = |times: &[Duration]| times[0];
        let median = |times: &[Duration]| times[times.len() / 2];
        let ratio = |pick: &dyn Fn(&[Duration]) -> Duration| {
            pick(&pythread).as_secs_f64() / pick(&parking_lot).as_secs_f64()
        };
        println!(
            "  {threads} threads: pythread_Lock {:>10.3?} ({:>10.3?})  parking_lot_RawMutex {:>10.3?} \
             ({:>10.3?})  std_Mutex {:>10.3?} ({:>10.3?})  pythread/parking_lot {:.2}x ({:.2}x)",
            best(&pythread),
            median(&pythread),
            best(&parking_lot),
            median(&parking_lot),
            best(&std),
            median(&std),
            ratio(&best),
            ratio(&median),
        );
    }
    println!("\nuncontended acquire+release, interleaved batches (best of 40 x 1M):");
    for (name, ns) in interleaved_uncontended() {
        println!("  {name:22} {ns:6.2} ns");
    }
    println!("\nworst / p99 wait of a blocked thread under two re-acquiring hogs (200 trials):");
    for (name, (worst, p99)) in [
        ("pythread_Lock", starvation::<pythread::Lock>()),
        (
            "parking_lot_RawMutex",
            starvation::<parking_lot::RawMutex>(),
        ),
        ("std_Mutex", starvation::<Mutex<()>>()),
    ] {
        println!("  {name:22} worst {worst:>12.3?}  p99 {p99:>12.3?}");
    }
    #[cfg(all(target_os = "linux", not(pythread_generic)))]
    {
        let (median, worst) = signals::intr_latency(200);
        println!("\nsignal-to-Intr latency (200 trials): median {median:.3?}, worst {worst:.3?}");
    }
}

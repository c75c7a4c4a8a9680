//! `pythread::Lock` next to `parking_lot::RawMutex` (what RustPython's
//! `_thread.lock` is, through `lock_api`) and `std::sync::Mutex<()>`, in one run.
//! Run with `cargo bench --bench lock`; see `BENCHMARKS.md` ("Locks").
//!
//! - `lock_uncontended`: one acquire + release on one thread.
//! - `lock_contended_4x100000`: 4 threads x 100 000 increments of a shared counter under
//!   the lock (the counter is a relaxed atomic, read and written separately, so a
//!   broken lock would lose increments; checked).
//!
//! Then, printed (not criterion):
//! - the worst (and 99th percentile) wait of a thread that blocks on a lock that
//!   two other threads release and re-take in a tight loop, holding it 20 us each
//!   time (200 trials per lock);
//! - on Linux, the latency from `pthread_kill(SIGUSR1)` (handler without
//!   `SA_RESTART`) to `acquire_timed(-1, true)` returning `Intr` (200 trials).
//!
//! Under `--cfg loom` this compiles but only says that benchmarks need a normal build.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use criterion::Criterion;

/// The three locks behind one interface.
trait BenchLock: Send + Sync + 'static {
    const NAME: &'static str;
    fn make() -> Self;
    fn lock(&self);
    fn unlock(&self);
}

impl BenchLock for pythread::Lock {
    const NAME: &'static str = "pythread_Lock";
    fn make() -> Self {
        pythread::Lock::new()
    }
    fn lock(&self) {
        self.acquire()
    }
    fn unlock(&self) {
        self.release().unwrap()
    }
}

impl BenchLock for parking_lot::RawMutex {
    const NAME: &'static str = "parking_lot_RawMutex";
    fn make() -> Self {
        <parking_lot::RawMutex as lock_api::RawMutex>::INIT
    }
    fn lock(&self) {
        lock_api::RawMutex::lock(self)
    }
    fn unlock(&self) {
        // SAFETY: only called after this thread's lock/try_lock succeeded.
        unsafe { lock_api::RawMutex::unlock(self) }
    }
}

/// std's guard cannot outlive the call, so the std side keeps its guards in a
/// slot: lock stores the guard, unlock drops it (only one holder at a time).
struct StdLock {
    mutex: &'static Mutex<()>,
    guard: Mutex<Option<std::sync::MutexGuard<'static, ()>>>,
}

// The guard is only ever dropped by the thread that holds the lock (lock and
// unlock are paired on one thread in every use below).
unsafe impl Send for StdLock {}
unsafe impl Sync for StdLock {}

impl BenchLock for StdLock {
    const NAME: &'static str = "std_Mutex";
    fn make() -> Self {
        StdLock {
            mutex: Box::leak(Box::new(Mutex::new(()))),
            guard: Mutex::new(None),
        }
    }
    fn lock(&self) {
        let guard = self.mutex.lock().unwrap();
        *self.guard.lock().unwrap() = Some(guard);
    }
    fn unlock(&self) {
        drop(self.guard.lock().unwrap().take());
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
    let counter = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(THREADS + 1));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (lock, counter, barrier) =
                (Arc::clone(lock), Arc::clone(&counter), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                for _ in 0..INCREMENTS {
                    lock.lock();
                    let v = counter.load(Ordering::Relaxed);
                    counter.store(v + 1, Ordering::Relaxed);
                    lock.unlock();
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for t in threads {
        t.join().unwrap();
    }
    let elapsed = start.elapsed();
    assert_eq!(counter.load(Ordering::Relaxed), THREADS * INCREMENTS);
    elapsed
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
    one::<StdLock>(&mut group);
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
                    lock.lock();
                    let held = Instant::now();
                    while held.elapsed() < Duration::from_micros(20) {
                        std::hint::spin_loop();
                    }
                    lock.unlock();
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
            lock2.lock();
            let waited = start.elapsed();
            lock2.unlock();
            waited
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
    use std::sync::{mpsc, Arc};
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

fn main() {
    if cfg!(loom) {
        eprintln!("benchmarks need a normal build: not --cfg loom");
        return;
    }
    let mut criterion = Criterion::default().configure_from_args();
    uncontended(&mut criterion);
    contended(&mut criterion);
    criterion.final_summary();

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
        ("std_Mutex", starvation::<StdLock>()),
    ] {
        println!("  {name:22} worst {worst:>12.3?}  p99 {p99:>12.3?}");
    }
    #[cfg(all(target_os = "linux", not(pythread_generic)))]
    {
        let (median, worst) = signals::intr_latency(200);
        println!("\nsignal-to-Intr latency (200 trials): median {median:.3?}, worst {worst:.3?}");
    }
}

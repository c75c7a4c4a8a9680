//! What the futex backend's finite timeout costs (issue 17 §3): a ping-pong
//! between two threads over one futex word, each round trip two sleeps and two
//! wakes, with an untimed `FUTEX_WAIT` and with the `i32::MAX`-second timeout the
//! crate gives the kernel when there is no deadline, interleaved 7 times. Prints
//! wall time (best and median) and the process's CPU time per round trip (user +
//! system, from `/proc/self/stat`, less sensitive to a loaded machine than wall
//! time). Linux only. `cargo bench --bench futex_timeout`; see BENCHMARKS.md.

#[cfg(all(target_os = "linux", not(loom)))]
mod pingpong {
    use rustix::thread::futex;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, Instant};

    fn wait(word: &AtomicU32, expected: u32, timed: bool) {
        let timeout = futex::Timespec {
            tv_sec: i64::from(i32::MAX),
            tv_nsec: 0,
        };
        let timeout = timed.then_some(&timeout);
        let _ = futex::wait(word, futex::Flags::PRIVATE, expected, timeout);
    }

    fn wake(word: &AtomicU32) {
        let _ = futex::wake(word, futex::Flags::PRIVATE, 1);
    }

    /// User + system CPU time of the process, in clock ticks (1/100 s).
    fn cpu_ticks() -> u64 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
            .split_whitespace()
            .collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    /// `rounds` round trips; wall time and CPU ticks.
    fn run(rounds: u32, timed: bool) -> (Duration, u64) {
        let turn = Arc::new(AtomicU32::new(0)); // 0: this thread's turn, 1: the other's
        let other = Arc::clone(&turn);
        let partner = std::thread::spawn(move || {
            for _ in 0..rounds {
                while other.load(Ordering::Acquire) != 1 {
                    wait(&other, 0, timed);
                }
                other.store(0, Ordering::Release);
                wake(&other);
            }
        });
        let ticks = cpu_ticks();
        let start = Instant::now();
        for _ in 0..rounds {
            turn.store(1, Ordering::Release);
            wake(&turn);
            while turn.load(Ordering::Acquire) != 0 {
                wait(&turn, 1, timed);
            }
        }
        let elapsed = start.elapsed();
        partner.join().unwrap();
        (elapsed, cpu_ticks() - ticks)
    }

    pub fn main() {
        const ROUNDS: u32 = 50_000;
        const REPEATS: u32 = 7;
        let (mut walls, mut cpus) = ([Vec::new(), Vec::new()], [0u64, 0u64]);
        for _ in 0..REPEATS {
            for (i, timed) in [false, true].into_iter().enumerate() {
                let (wall, cpu) = run(ROUNDS, timed);
                walls[i].push(wall);
                cpus[i] += cpu;
            }
        }
        let per = |d: Duration| d.as_nanos() as f64 / f64::from(ROUNDS);
        let cpu_per = |ticks: u64| ticks as f64 * 1e7 / f64::from(ROUNDS * REPEATS);
        println!("futex ping-pong, {REPEATS} x {ROUNDS} round trips (2 sleeps + 2 wakes each):");
        for (i, name) in ["untimed", "timed (i32::MAX s)"].into_iter().enumerate() {
            walls[i].sort();
            println!(
                "  {name:20} wall best {:7.0} ns, median {:7.0} ns; CPU {:6.0} ns per round trip",
                per(walls[i][0]),
                per(walls[i][walls[i].len() / 2]),
                cpu_per(cpus[i]),
            );
        }
        println!(
            "  timed/untimed: wall best {:.2}x, median {:.2}x; CPU {:.2}x",
            per(walls[1][0]) / per(walls[0][0]),
            per(walls[1][walls[1].len() / 2]) / per(walls[0][walls[0].len() / 2]),
            cpus[1] as f64 / cpus[0] as f64,
        );
    }
}

fn main() {
    #[cfg(all(target_os = "linux", not(loom)))]
    pingpong::main();
    #[cfg(not(all(target_os = "linux", not(loom))))]
    eprintln!("futex_timeout: Linux only, not under --cfg loom");
}

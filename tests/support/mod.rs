//! Helpers shared by the integration tests: the watchdog that bounds every
//! blocking wait, a gate that a started function waits on, a way to see that
//! threads are asleep, a signal sent when a thread has exited, a way to re-run one
//! test of the current test binary in a child process (to observe stderr, survive
//! an abort, or run under a resource limit), and a panic hook that keeps deliberate
//! panics quiet.
#![allow(dead_code)] // each test crate uses a different subset

use std::cell::{Cell, RefCell};
use std::fmt::Display;
use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Once;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pythread::{Handle, Panic};

// ------------------------------------------------------------------ the watchdog

/// The one bound on every blocking wait of the integration tests. Generous (the
/// machine may be loaded): reaching it means a hang, such as a lost wake-up, and
/// the test fails with a message naming what hung instead of hanging the suite.
pub const WATCHDOG: Duration = Duration::from_secs(20);

/// Fails the test: `what` did not happen within [`WATCHDOG`].
#[track_caller]
fn hang(what: &dyn Display) -> ! {
    panic!("watchdog: {what}: not done within {WATCHDOG:?} (a hang)")
}

/// Runs `f` on a helper thread and returns its result (re-raising its panic), or
/// fails the test if it has not returned within [`WATCHDOG`]. The way to bound a
/// call that has no timeout of its own: `Handle::join`, std's `JoinHandle::join`,
/// `Barrier::wait`, a whole example. On a hang the helper thread is left behind.
#[track_caller]
pub fn bounded<T: Send + 'static>(what: impl Display, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let helper = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(WATCHDOG) {
        Ok(value) => value,
        Err(RecvTimeoutError::Timeout) => hang(&what),
        // `f` panicked: the helper is unwinding (it dropped `tx`), so it ends soon.
        Err(RecvTimeoutError::Disconnected) => match helper.join() {
            Err(payload) => std::panic::resume_unwind(payload),
            Ok(()) => unreachable!("the helper ended without sending"),
        },
    }
}

/// `handle.join()` (the untimed wait), bounded by the watchdog.
#[track_caller]
pub fn join(handle: &Handle) -> Result<(), Panic> {
    let handle = handle.clone();
    let what = format!("join() of thread {}", handle.ident());
    bounded(what, move || handle.join())
}

/// std's `JoinHandle::join`, bounded by the watchdog; a panic of that thread is
/// re-raised here.
#[track_caller]
pub fn join_std<T: Send + 'static>(thread: JoinHandle<T>, what: impl Display) -> T {
    bounded(what, move || thread.join())
        .unwrap_or_else(|payload| std::panic::resume_unwind(payload))
}

/// `rx.recv()`, bounded by the watchdog; a disconnected channel fails too.
#[track_caller]
pub fn recv<T>(rx: &Receiver<T>, what: impl Display) -> T {
    match rx.recv_timeout(WATCHDOG) {
        Ok(value) => value,
        Err(RecvTimeoutError::Timeout) => hang(&what),
        Err(RecvTimeoutError::Disconnected) => {
            panic!("{what}: the sender is gone without sending")
        }
    }
}

/// Polls `done` until it returns `true`, failing the test after the watchdog: for
/// a state that nothing blocking can wait on (a drop count, a flag, a thread
/// state). This polls the real state; it is not a sleep standing in for one.
#[track_caller]
pub fn wait_until(what: impl Display, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WATCHDOG;
    while !done() {
        if Instant::now() >= deadline {
            hang(&what);
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

// ------------------------------------------------------ threads asleep, exited

/// The calling thread's kernel thread id, to watch it with [`wait_until_asleep`]:
/// `Some` on Linux (read from `/proc/thread-self/stat`), `None` elsewhere.
pub fn current_tid() -> Option<u32> {
    #[cfg(target_os = "linux")]
    {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
        stat.split_whitespace().next()?.parse().ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// Whether the kernel reports thread `tid` of this process as sleeping (state
/// `S`: blocked in the kernel, e.g. in a futex wait, where std's `Mutex` and
/// `Condvar` put a blocked thread).
#[cfg(target_os = "linux")]
fn asleep(tid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")) else {
        return false;
    };
    // `pid (comm) state ...`: the name may contain spaces and parentheses.
    stat.rfind(')')
        .and_then(|end| stat[end + 1..].split_whitespace().next())
        == Some("S")
}

/// Waits (bounded by the watchdog) until every thread in `tids` is asleep in the
/// kernel, seen so in 3 polls in a row, and returns `true`; the caller makes sure
/// that the only blocking call those threads can be in is the one it means (e.g.
/// a join: each joiner reports its tid, then joins). Returns `false` at once where
/// thread states cannot be read (not Linux, or a `None` tid): there the test still
/// checks every outcome, but cannot prove that the threads were asleep.
#[track_caller]
pub fn wait_until_asleep(what: impl Display, tids: &[Option<u32>]) -> bool {
    #[cfg(target_os = "linux")]
    {
        let Some(tids) = tids.iter().copied().collect::<Option<Vec<u32>>>() else {
            return false;
        };
        let mut in_a_row = 0;
        wait_until(format!("{what}: threads {tids:?} asleep"), || {
            in_a_row = if tids.iter().all(|&tid| asleep(tid)) {
                in_a_row + 1
            } else {
                0
            };
            in_a_row >= 3
        });
        true
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (what, tids);
        false
    }
}

thread_local! {
    /// Sends on the thread's exit, after everything else on it has run.
    static ON_EXIT: RefCell<Option<ExitSignal>> = const { RefCell::new(None) };
}

struct ExitSignal(mpsc::Sender<()>);

impl Drop for ExitSignal {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// Called on a thread (inside a started function): `tx` gets a message once the
/// thread exits, that is after the crate's code on it has fully returned
/// (publishing the outcome, and dropping it if the thread was detached).
pub fn signal_on_exit(tx: mpsc::Sender<()>) {
    ON_EXIT.with(|slot| *slot.borrow_mut() = Some(ExitSignal(tx)));
}

/// The environment variable that tells a child-process test to act; its value is
/// the test's name, so a stray `--include-ignored` run does nothing.
pub const CHILD_ENV: &str = "PYTHREAD_TEST_CHILD";

/// How long any gated function waits at most before going on by itself: a bug that
/// never opens the gate makes the test fail on its timing asserts, not hang.
pub const GATE_FALLBACK: Duration = Duration::from_secs(30);

/// Opens the gate when dropped.
pub struct Opener(#[allow(dead_code)] mpsc::Sender<()>);

impl Opener {
    pub fn open(self) {}
}

/// A gate: the returned closure blocks until the [`Opener`] is dropped (or
/// [`GATE_FALLBACK`] has passed).
pub fn gate() -> (Opener, impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel::<()>();
    let wait = move || {
        let _ = rx.recv_timeout(GATE_FALLBACK);
    };
    (Opener(tx), wait)
}

/// Whether this process is the child run of the test `name`.
pub fn is_child(name: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|value| value == name)
}

/// What a child process left behind.
pub struct ChildRun {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl ChildRun {
    pub fn describe(&self) -> String {
        format!(
            "status: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs the `#[ignore]`d test `name` of this test binary in a child process, with
/// [`CHILD_ENV`] set, optionally under `ulimit -v <kib>` (through `sh`: callers gate
/// that on Linux, where `RLIMIT_AS` is enforced; Windows has no `sh`, macOS does
/// not enforce the limit), and kills it if it has not exited within `limit`.
pub fn run_child(name: &str, address_space_kib: Option<u64>, limit: Duration) -> ChildRun {
    let exe = std::env::current_exe().expect("current test binary");
    let args = [
        "--exact",
        name,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ];
    let mut command = match address_space_kib {
        Some(kib) => {
            let mut sh = Command::new("sh");
            sh.arg("-c")
                .arg(format!("ulimit -v {kib} && exec \"$0\" \"$@\""))
                .arg(&exe)
                .args(args);
            sh
        }
        None => {
            let mut direct = Command::new(&exe);
            direct.args(args);
            direct
        }
    };
    if address_space_kib.is_some() {
        // One malloc arena: glibc otherwise reserves 64 MiB of address space for each
        // new per-thread arena, whenever there happens to be room, which makes how
        // many thread stacks fit under the limit vary from run to run.
        command.env("MALLOC_ARENA_MAX", "1");
    }
    command
        .env(CHILD_ENV, name)
        // The default thread stack size is part of what the limit is sized for.
        .env_remove("RUST_MIN_STACK")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn the child test process");
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the child") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "child test {name} still running after {limit:?} (hang); killed it\n\
                 --- stdout ---\n{}\n--- stderr ---\n{}",
                stdout.join().unwrap(),
                stderr.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    ChildRun {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

thread_local! {
    /// Set by a thread right before it panics on purpose.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Installs, once per test binary, a panic hook that stays silent for the panics
/// of a thread that called [`set_quiet`]`(true)` (deliberate panics, thousands per
/// run in the model test) and hands every other panic to the previous hook.
pub fn silence_intended_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                report(info);
            }
        }));
    });
}

/// Marks the calling thread's coming panics as deliberate (`true`) or not.
pub fn set_quiet(quiet: bool) {
    QUIET.with(|cell| cell.set(quiet));
}

//! Helpers shared by the integration tests: a gate that a started function waits
//! on, a way to re-run one test of the current test binary in a child process (to
//! observe stderr, survive an abort, or run under a resource limit), and a panic
//! hook that keeps deliberate panics quiet.
#![allow(dead_code)] // each test crate uses a different subset

use std::cell::Cell;
use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{mpsc, Once};
use std::time::{Duration, Instant};

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
/// [`CHILD_ENV`] set, optionally under `ulimit -v <kib>`, and kills it if it has not
/// exited within `limit`.
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

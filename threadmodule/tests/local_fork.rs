//! A `_local`'s dicts of the threads lost in a fork are dropped in the child, at the `_local`'s
//! first access there (with the interpreter attached, in a real host), as CPython frees them
//! with the lost threads' states.
//!
//! `harness = false` (Cargo.toml): libtest's own threads could hold the stdout lock or a runner
//! lock at the fork, and the child would hang on them; here the only other thread is the one
//! this file starts. Bounds: `alarm()` in the child (its default action kills it), a bounded
//! `waitpid` loop in the parent (then `SIGKILL`), and a bounded wait for the worker.
//!
//! Under `--cfg loom` the crate's primitives work only inside a loom model: nothing runs.
#![cfg_attr(loom, allow(dead_code, unused_imports))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use threadmodule::{LocalDicts, ModuleState};

/// The parent's bound on the child, and on every wait of its own.
const WATCHDOG: Duration = Duration::from_secs(30);

/// How many `Dict`s were dropped in this process.
static DROPS: AtomicUsize = AtomicUsize::new(0);

/// A thread's `_local` dict: its drop counted.
struct Dict(&'static str);

impl Drop for Dict {
    fn drop(&mut self) {
        DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

/// The child's checks: a message for each that fails.
fn child(module: &ModuleState, local: &LocalDicts<Dict>) -> Vec<String> {
    let mut failed = Vec::new();
    module.after_fork_child(2);
    if module.get_main_thread_ident() != 2 {
        failed.push("the forking thread (ident 2) is not the main thread".to_owned());
    }
    if DROPS.load(Ordering::SeqCst) != 0 {
        failed.push("a dict was dropped before the local's first access".to_owned());
    }
    let mine = local.with(|d| d.map(|d| d.0));
    if mine != Some("main's") {
        failed.push(format!("the forking thread's dict is {mine:?}"));
    }
    let drops = DROPS.load(Ordering::SeqCst);
    if drops != 1 {
        failed.push(format!(
            "{drops} dicts dropped at the first access, not 1 (the lost worker's)"
        ));
    }
    local.with(|_| ());
    let again = DROPS.load(Ordering::SeqCst);
    if again != 1 {
        failed.push(format!(
            "{again} dicts dropped after a second access, not 1"
        ));
    }
    failed
}

#[cfg(not(loom))]
fn main() {
    let module = ModuleState::new(1);
    let local = Arc::new(LocalDicts::new());
    assert!(local.insert(Dict("main's")));

    let (stored_tx, stored_rx) = mpsc::channel();
    let (leave_tx, leave_rx) = mpsc::channel::<()>();
    let theirs = Arc::clone(&local);
    let worker = std::thread::spawn(move || {
        assert!(theirs.insert(Dict("worker's")));
        stored_tx.send(()).unwrap();
        leave_rx
            .recv_timeout(WATCHDOG)
            .expect("the parent lets the worker end");
    });
    stored_rx
        .recv_timeout(WATCHDOG)
        .expect("the worker stored its dict");

    module.before_fork();
    // SAFETY: fork() in a process whose only other thread waits on a channel; the child runs
    // the checks above and leaves with `_exit`, never returning into the test's code.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: alarm() only arms the timer; its default action kills the child.
        unsafe { libc::alarm(20) };
        let failed = child(&module, &local);
        for message in &failed {
            eprintln!("local_fork child: {message}");
        }
        // SAFETY: leaves the child at once, without running the parent's exit handlers.
        unsafe { libc::_exit(i32::from(!failed.is_empty())) };
    }
    module.after_fork_parent();

    let deadline = Instant::now() + WATCHDOG;
    let mut status = 0;
    loop {
        // SAFETY: waitpid on the child this process forked, with a valid status pointer.
        let got = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(got >= 0, "waitpid failed");
        if got == pid {
            break;
        }
        if Instant::now() > deadline {
            // SAFETY: kills the child this process forked.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("the child did not exit within {WATCHDOG:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child failed (status {status:#x}; its messages above)"
    );

    leave_tx.send(()).unwrap();
    worker.join().unwrap();
    assert_eq!(
        DROPS.load(Ordering::SeqCst),
        1,
        "the worker's dict went at its exit"
    );
    println!("local_fork: the lost worker's dict dropped at the child's first access: ok");
}

#[cfg(loom)]
fn main() {}

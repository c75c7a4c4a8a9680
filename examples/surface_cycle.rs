//! Cycles through the surface of issue 11 for many rounds — thread-specific storage
//! (values dropped at thread exit, by `delete`, and with the key), non-daemon threads
//! (on chosen stacks, started by each other, a failed start) collected by `shutdown`,
//! and exit joins (`join_thread`) — then waits until every thread has fully exited,
//! so that a memory checker sees everything freed.
//!
//! `make valgrind` runs it under valgrind memcheck after `examples/cycle.rs`, with the
//! same rule: 0 bytes definitely and indirectly lost.
//!
//! ```text
//! cargo run --release --example surface_cycle [rounds]
//! ```

#[cfg(not(loom))]
fn main() {
    use std::cell::RefCell;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, mpsc};
    use std::time::Duration;

    use pythread::Tss;

    thread_local! {
        /// Dropped when a thread exits, after every other thread-local it set up.
        static ON_EXIT: RefCell<Option<mpsc::Sender<()>>> = const { RefCell::new(None) };
    }

    /// A heap value that counts its drops.
    struct Value(#[allow(dead_code)] Vec<u8>, Arc<AtomicUsize>);
    impl Drop for Value {
        fn drop(&mut self) {
            self.1.fetch_add(1, Ordering::Relaxed);
        }
    }

    let rounds: usize = std::env::args()
        .nth(1)
        .map(|arg| arg.parse().expect("rounds: a number"))
        .unwrap_or(200);

    let dropped = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    let (exit_tx, exited) = mpsc::channel::<()>();
    let mut values = 0;

    for round in 0..rounds {
        let value = || Value(vec![round as u8; 48], Arc::clone(&dropped));

        // TSS: one key; a value per thread, dropped at that thread's exit; the main
        // thread's value dropped by delete; a second key dropped with values in it.
        let key = Arc::new(Tss::new());
        key.create();
        key.set(value()).ok().expect("created");
        let held = Arc::new(Tss::new());
        held.create();
        for _ in 0..2 {
            let (key, held, tx) = (Arc::clone(&key), Arc::clone(&held), exit_tx.clone());
            let (a, b) = (value(), value());
            drop(pythread::start(move || {
                ON_EXIT.with(|slot| *slot.borrow_mut() = Some(tx));
                // Racing the main thread's delete and drop: stored (then dropped at
                // this thread's exit or by the delete) or handed back (dropped here).
                drop(key.set(a));
                drop(held.set(b));
            }));
        }
        values += 5;
        held.set(value()).ok().expect("created");
        values += 1;
        key.delete();
        drop(held);
        drop(key);

        // Non-daemon threads, detached, one of them on a chosen stack and one
        // starting another non-daemon thread: `shutdown` below waits for them all.
        for stack in [0, 64 << 10] {
            let (ran, tx) = (Arc::clone(&ran), exit_tx.clone());
            drop(
                pythread::Builder::new()
                    .daemon(false)
                    .stack_size(stack)
                    .start(move || {
                        ON_EXIT.with(|slot| *slot.borrow_mut() = Some(tx.clone()));
                        let inner = Arc::clone(&ran);
                        drop(pythread::Builder::new().daemon(false).start(move || {
                            ON_EXIT.with(|slot| *slot.borrow_mut() = Some(tx));
                            inner.fetch_add(1, Ordering::Relaxed);
                        }));
                        ran.fetch_add(1, Ordering::Relaxed);
                    }),
            );
        }
        // A failed non-daemon start (invalid stack size): unregistered, nothing kept.
        assert!(
            pythread::Builder::new()
                .daemon(false)
                .stack_size(1024)
                .try_start(|| {})
                .is_err()
        );

        // An exit join: the thread-local destructors have run when it returns.
        let exited = pythread::start(move || vec![round; 16]);
        assert_eq!(exited.join_thread().expect("returns").len(), 16);
    }
    pythread::shutdown();
    assert_eq!(
        ran.load(Ordering::Relaxed),
        rounds * 4,
        "shutdown waited for every fn"
    );
    drop(exit_tx);

    // Every thread holds a sender in a thread-local, dropped only when its OS thread
    // exits: the channel disconnects after the last one is gone.
    match exited.recv_timeout(Duration::from_secs(60)) {
        Err(mpsc::RecvTimeoutError::Disconnected) => {}
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("a thread never exited"),
        Ok(()) => unreachable!("nothing is ever sent"),
    }
    assert_eq!(
        dropped.load(Ordering::Relaxed),
        values,
        "every TSS value dropped once"
    );
    println!(
        "surface_cycle: {rounds} rounds, {values} TSS values all dropped, {} non-daemon \
         fns waited for by shutdown",
        rounds * 4
    );
}

/// Under `--cfg loom` the crate's primitives work only inside `loom::model`; this
/// example is for real threads, so it does nothing there.
#[cfg(loom)]
fn main() {}

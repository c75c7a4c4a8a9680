//! Cycles through every way a pythread can live and die — start then join, a panic
//! delivered through join, detach (returning and panicking), `try_start`, a named
//! `Builder`, `join_timeout`, a payload whose `Drop` panics, typed results
//! (joined by reference and by clone, moved out, detached), `join_thread` — for many rounds, then waits until every detached
//! thread has fully exited, so that a memory checker sees everything freed.
//!
//! `make valgrind` runs it under valgrind memcheck, which must report no error and
//! 0 bytes definitely, indirectly and possibly lost (one block of std's, the main
//! thread's handle, is suppressed by name in `examples/cycle.supp`).
//!
//! ```text
//! cargo run --release --example cycle [rounds]
//! ```

#[cfg(not(loom))]
fn main() {
    use std::cell::RefCell;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, mpsc};
    use std::time::Duration;

    thread_local! {
        /// Dropped when a detached thread exits, after the crate's code on it returned.
        static ON_EXIT: RefCell<Option<mpsc::Sender<()>>> = const { RefCell::new(None) };
    }

    /// A panic payload whose `Drop` panics (after which its heap data must be freed).
    struct DropBomb(#[allow(dead_code)] Vec<u8>);
    const BOMB: &str = "a payload's Drop panicked";
    impl Drop for DropBomb {
        fn drop(&mut self) {
            std::panic::panic_any(BOMB);
        }
    }

    // std allocates the main thread's handle lazily (when main first blocks in a
    // channel, say) and never frees it; memcheck may count it as possibly lost.
    // Taking it here makes that one block always present, and always matched by
    // the suppression in examples/cycle.supp, instead of depending on the schedule.
    drop(std::thread::current());

    let rounds: usize = std::env::args()
        .nth(1)
        .map(|arg| arg.parse().expect("rounds: a number"))
        .unwrap_or(300);

    // The started threads' panics are expected: keep the output readable, but still
    // report a failure of this program itself.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let expected = pythread::current_ident().is_some()
            || info.payload().downcast_ref::<&str>() == Some(&BOMB);
        if !expected {
            default_hook(info);
        }
    }));

    let ran = Arc::new(AtomicUsize::new(0));
    let (exit_tx, exited) = mpsc::channel::<()>();
    let mut detached = 0;
    let (mut returned, mut panicked) = (0, 0);

    for round in 0..rounds {
        let count = |ran: &Arc<AtomicUsize>| {
            let ran = Arc::clone(ran);
            move || {
                ran.fetch_add(1, Ordering::Relaxed);
            }
        };

        // Start, then join from here and from a clone on another thread.
        let joined = pythread::start(count(&ran));
        let other = joined.clone();
        let observer = pythread::start(move || other.join().unwrap());
        joined.join().unwrap();
        observer.join().unwrap();
        returned += 2;

        // A panic, with a String payload and with a custom one, joined twice.
        let failing = pythread::Builder::new()
            .name(format!("cycle-{round}"))
            .start(move || panic!("round {round} panicked"));
        let first = failing.join().unwrap_err();
        let second = failing.join_timeout(Duration::MAX).unwrap().unwrap_err();
        assert!(pythread::Panic::ptr_eq(&first, &second));
        assert!(first.message().is_some());
        let custom =
            pythread::try_start(|| std::panic::panic_any(vec![1_u8; 64])).expect("try_start");
        let payload = custom.join().unwrap_err().take_payload();
        assert!(payload.is_some());
        panicked += 2;

        // A payload whose own Drop panics: the last joiner drops it, panic caught.
        let bomb = pythread::start(|| std::panic::panic_any(DropBomb(vec![0_u8; 32])));
        drop(bomb.join().unwrap_err());
        drop(bomb);
        panicked += 1;

        // Detached: every handle dropped while (possibly) still running; one returns,
        // one panics. Each reports when its OS thread is gone.
        for panics in [false, true] {
            let tx = exit_tx.clone();
            let work = count(&ran);
            drop(pythread::start(move || {
                ON_EXIT.with(|slot| *slot.borrow_mut() = Some(tx));
                work();
                if panics {
                    std::panic::panic_any(String::from("detached panic"));
                }
            }));
            detached += 1;
        }

        // Typed results: a heap value joined by reference and by clone, then moved
        // out of the last handle after its thread's exit; another returned by a
        // detached thread, dropped there.
        let typed = pythread::start(|| vec![7_u8; 48]);
        let by_clone = typed.clone();
        let cloner = pythread::start(move || by_clone.join().unwrap().len());
        assert_eq!(typed.join_ref().unwrap().len(), 48);
        assert_eq!(cloner.join_thread().unwrap(), 48);
        match typed.into_output() {
            Ok(value) => assert_eq!(value.unwrap(), vec![7_u8; 48]),
            Err(_) => panic!("into_output: another handle is still alive"),
        }
        returned += 2;
        let tx = exit_tx.clone();
        drop(pythread::start(move || {
            ON_EXIT.with(|slot| *slot.borrow_mut() = Some(tx));
            vec![9_u8; 40]
        }));
        detached += 1;

        // Polls and a short timed wait.
        let polled = pythread::start(count(&ran));
        while polled.join_timeout(Duration::from_millis(1)).is_none() {}
        assert!(polled.is_finished());
        returned += 1;
    }
    drop(exit_tx);

    // Wait for every detached thread to have exited, so nothing is still running:
    // each holds a sender in a thread-local, dropped only when its OS thread exits,
    // so the channel disconnects after the last one is gone.
    match exited.recv_timeout(Duration::from_secs(60)) {
        Err(mpsc::RecvTimeoutError::Disconnected) => {}
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("a detached thread never exited"),
        Ok(()) => unreachable!("nothing is ever sent"),
    }
    let _ = std::panic::take_hook();

    let expected = rounds * 4;
    assert_eq!(ran.load(Ordering::Relaxed), expected);
    println!(
        "cycle: {rounds} rounds, {} threads ({returned} joined returns, {panicked} joined \
         panics, {detached} detached), all finished",
        returned + panicked + detached
    );
}

/// Under `--cfg loom` the crate's primitives work only inside `loom::model`; this
/// example is for real threads, so it does nothing there.
#[cfg(loom)]
fn main() {}

use super::*;
use std::cell::Cell;
use std::{io, panic};

std::thread_local! {
    /// Makes the next `Builder::spawn` on this thread fail with this error kind
    /// before the OS is asked, as a refusal from the OS would.
    pub(super) static FAIL_SPAWN: Cell<Option<io::ErrorKind>> = const { Cell::new(None) };
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => payload.downcast_ref::<&str>().unwrap().to_string(),
    }
}

/// Joining a thread that has returned only reads: the fast path of
/// `join_ref`, `join_timeout_ref` and the cloning joins built on them never
/// announces a waiter (the slow path's first act), so joiners of a finished
/// thread never write to the shared state or contend on it.
#[test]
fn joins_of_a_returned_thread_only_read() {
    let handle = crate::start(|| 7_u64);
    let start = std::time::Instant::now();
    while !handle.is_finished() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "watchdog: never finished"
        );
        std::thread::yield_now();
    }
    assert_eq!(*handle.join_ref().unwrap(), 7);
    assert_eq!(
        *handle.join_timeout_ref(Duration::ZERO).unwrap().unwrap(),
        7
    );
    assert_eq!(handle.join().unwrap(), 7);
    assert_eq!(
        handle
            .join_timeout(Duration::from_secs(1))
            .unwrap()
            .unwrap(),
        7
    );
    assert!(
        !handle.0.completion.has_waiters(),
        "a join of a finished thread took the slow path"
    );
}

/// An `InvalidInput` from the OS (as `EINVAL` from `pthread_create`) is a refusal
/// to start, not a bad name: only the name check says "invalid thread name".
#[test]
fn an_os_invalid_input_is_not_reported_as_a_bad_name() {
    FAIL_SPAWN.set(Some(io::ErrorKind::InvalidInput));
    let payload = panic::catch_unwind(|| Builder::new().name("fine").start(|| {}))
        .expect_err("the injected spawn failure must make start panic");
    let message = panic_message(payload);
    assert!(
        message.starts_with("pythread: can't start new thread:"),
        "got {message:?}"
    );
    FAIL_SPAWN.set(Some(io::ErrorKind::InvalidInput));
    let err = Builder::new().try_start(|| {}).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(FAIL_SPAWN.get(), None, "the injection was consumed");

    // The name is checked before spawning: the injection is not even reached.
    FAIL_SPAWN.set(Some(io::ErrorKind::Other));
    let payload = panic::catch_unwind(|| Builder::new().name("a\0b").start(|| {}))
        .expect_err("a NUL in the name must make start panic");
    assert!(panic_message(payload).starts_with("pythread: invalid thread name:"));
    assert_eq!(
        FAIL_SPAWN.take(),
        Some(io::ErrorKind::Other),
        "spawn was reached"
    );
}

//! Self-join detection: a started function that joins its own handle.
//!
//! Without the check it would wait for itself forever (loom would report the
//! deadlock). With it, `join` and `join_timeout` (whatever the timeout, zero
//! included: polling oneself can only ever answer `None`) panic with "cannot
//! join current thread" inside the started thread; the crate's `catch_unwind`
//! there turns that panic into the thread's outcome, which the real joiner gets
//! as `Err(Panic)` through pythread's `join` (loom's own `JoinHandle::join`
//! would not return a model thread's panic, loom#417; pythread does not use it).
#![cfg(loom)]

mod common;

use std::time::Duration;

use common::{Mailbox, check};
use loom::sync::Arc;
use pythread::Handle;

/// Starts a function that receives its own handle, then runs `body` with it.
fn start_with_own_handle(body: fn(&Handle)) -> Handle {
    let mailbox: Arc<Mailbox<Handle>> = Mailbox::new();
    let handle = pythread::start({
        let mailbox = Arc::clone(&mailbox);
        move || body(&mailbox.take())
    });
    mailbox.put(handle.clone());
    handle
}

fn assert_self_join_refused(handle: &Handle) {
    let panic = handle.join().expect_err("the self-join panicked");
    let message = panic.message().expect("a text message");
    assert!(message.contains("cannot join current thread"), "{message}");
    let again = handle.join().expect_err("the self-join panicked");
    assert!(pythread::Panic::ptr_eq(&panic, &again));
}

#[test]
fn self_join_panics_and_is_delivered() {
    check("self_join_panics_and_is_delivered", None, || {
        let handle = start_with_own_handle(|me| {
            assert!(!me.is_finished(), "a running fn reported finished");
            let _ = me.join();
            unreachable!("self-join returned");
        });
        assert_self_join_refused(&handle);
    });
}

#[test]
fn self_join_timeout_panics_and_is_delivered() {
    check("self_join_timeout_panics_and_is_delivered", None, || {
        let handle = start_with_own_handle(|me| {
            let _ = me.join_timeout(Duration::from_secs(3600));
            unreachable!("self-join with a timeout returned");
        });
        assert_self_join_refused(&handle);
    });
}

#[test]
fn self_poll_with_zero_timeout_panics_and_is_delivered() {
    check(
        "self_poll_with_zero_timeout_panics_and_is_delivered",
        None,
        || {
            let handle = start_with_own_handle(|me| {
                let _ = me.join_timeout(Duration::ZERO);
                unreachable!("a zero-timeout self-poll returned");
            });
            assert_self_join_refused(&handle);
        },
    );
}

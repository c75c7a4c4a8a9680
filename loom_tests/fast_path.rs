//! `is_finished` and the lock-free fast path of `join`.
//!
//! The joiner spins on `is_finished` (with loom's `yield_now`, so loom explores
//! every point at which it may first see `true`) and only then joins, so every
//! join here takes the fast path: one Acquire load of the state byte, no lock.
//! What they prove:
//!
//! - `is_finished() == true` alone (before any `join`) makes everything `f` did
//!   visible: `f`'s write through a loom `UnsafeCell` is read without a race;
//! - `is_finished() == true` implies `join` does not block: a
//!   `join_timeout(Duration::ZERO)` poll already returns the outcome;
//! - on the fast path, a panic's payload (stored in a loom-modelled `OnceLock`
//!   before the state is published) and the writes `f` made before panicking are
//!   both visible, typed access to the payload works, and every join returns the
//!   same `Panic`.
#![cfg(loom)]

mod common;

use std::time::Duration;

use common::{Expected, RaceCell, check, expect_payload, spin_until_finished};
use loom::sync::Arc;
use pythread::Panic;

/// `is_finished` seen `true` publishes `f`'s writes and makes `join` immediate.
#[test]
fn is_finished_implies_join_is_immediate_and_sees_data() {
    check(
        "is_finished_implies_join_is_immediate_and_sees_data",
        None,
        || {
            let cell = RaceCell::new(0);
            let handle = pythread::start({
                let cell = Arc::clone(&cell);
                move || cell.write(42)
            });

            spin_until_finished(&handle);
            // No join yet: `is_finished`'s load alone must order the read after the write.
            assert_eq!(
                cell.read(),
                42,
                "is_finished true before f's write was visible"
            );
            let polled = handle.join_timeout(Duration::ZERO);
            assert!(
                matches!(polled, Some(Ok(()))),
                "is_finished was true but a zero-timeout join did not return at once"
            );
            handle.join().expect("f returned");
        },
    );
}

/// A panic read on the fast path: payload, message-less custom type, earlier
/// writes, one shared `Panic`.
#[test]
fn panic_payload_read_on_fast_path() {
    check("panic_payload_read_on_fast_path", None, || {
        let cell = RaceCell::new(0);
        let handle = pythread::start({
            let cell = Arc::clone(&cell);
            move || {
                cell.write(9);
                std::panic::panic_any(Expected(9));
            }
        });

        spin_until_finished(&handle);
        assert_eq!(
            cell.read(),
            9,
            "is_finished true before f's write was visible"
        );
        let polled = handle
            .join_timeout(Duration::ZERO)
            .expect("is_finished was true but the poll found no outcome")
            .expect_err("f panicked");
        let joined = expect_payload::<Expected>(handle.join());
        assert!(Panic::ptr_eq(&polled, &joined), "a fresh Panic per join");
        assert_eq!(joined.message(), None);
        assert_eq!(joined.downcast_cloned::<Expected>(), Some(Expected(9)));

        // The payload is shared: taken once, through any clone.
        let payload = polled.take_payload().expect("the payload, taken first");
        assert_eq!(*payload.downcast::<Expected>().unwrap(), Expected(9));
        assert!(
            joined.take_payload().is_none(),
            "the payload was taken twice"
        );
        assert!(joined.is::<Expected>(), "type info lost after take_payload");
    });
}

//! The Linux backend of the wait primitive: `futex(FUTEX_WAIT_PRIVATE)` through
//! rustix's safe API, which (unlike std's `Condvar`, `parking_lot_core` and
//! `atomic-wait`) reports `EINTR` to the caller.

use std::time::Duration;

use rustix::io::Errno;
use rustix::thread::futex;

use super::{now, AtomicU32, Instant, Wake};

/// The relative timeout the kernel is given, recomputed from the absolute
/// monotonic deadline on every call, so that a wait resumed after a spurious
/// wake-up or an interruption neither ends early nor extends the deadline.
/// `None` when the deadline has passed.
fn remaining(deadline: Instant) -> Option<futex::Timespec> {
    let left = deadline.checked_duration_since(now())?;
    if left.is_zero() {
        return None;
    }
    Some(timespec(left))
}

/// `Duration` to `Timespec`, saturating at `i64::MAX` seconds (a wait that long
/// never ends anyway; `Instant` deadlines cannot be further away than that).
fn timespec(left: Duration) -> futex::Timespec {
    futex::Timespec {
        tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(left.subsec_nanos()),
    }
}

pub(crate) fn wait(word: &AtomicU32, expected: u32, deadline: Option<Instant>) -> Wake {
    let timeout = match deadline {
        None => None,
        Some(deadline) => match remaining(deadline) {
            Some(timeout) => Some(timeout),
            None => return Wake::TimedOut,
        },
    };
    match futex::wait(word, futex::Flags::PRIVATE, expected, timeout.as_ref()) {
        Err(Errno::INTR) => Wake::Interrupted,
        // Ok (woken), EAGAIN (the word had changed), ETIMEDOUT, or an error that
        // cannot happen with a valid reference and timeout: the caller re-checks
        // and, if it still has to wait, calls again. Only that call's look at our
        // own clock (`remaining`) reports `TimedOut`, so it is never early, whatever
        // the kernel's timer did.
        _ => Wake::Woken,
    }
}

pub(crate) fn wake_one(word: &AtomicU32) {
    // Cannot fail for a valid, aligned reference.
    let _ = futex::wake(word, futex::Flags::PRIVATE, 1);
}

pub(crate) fn wake_all(word: &AtomicU32) {
    // The kernel reads the count as an `int`: `u32::MAX` would be -1 and wake one.
    let _ = futex::wake(word, futex::Flags::PRIVATE, i32::MAX as u32);
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// The kernel is given what is left until the deadline, never more, never a
    /// zero that would turn the wait into a busy loop; nothing once it has passed.
    #[test]
    fn remaining_is_the_time_left_until_the_deadline() {
        let deadline = now() + Duration::from_secs(10);
        let left = remaining(deadline).expect("10 s are left");
        assert!(left.tv_sec >= 9 && left.tv_sec <= 10, "{left:?}");
        assert!(left.tv_sec < 10 || left.tv_nsec == 0, "{left:?}");
        assert_eq!(remaining(now()), None);
        assert_eq!(remaining(now() - Duration::from_millis(1)), None);
        let near = remaining(now() + Duration::from_millis(500)).expect("500 ms are left");
        assert_eq!(near.tv_sec, 0);
        assert!(near.tv_nsec > 0 && near.tv_nsec <= 500_000_000, "{near:?}");
    }

    #[test]
    fn timespec_saturates() {
        let ts = timespec(Duration::new(u64::MAX, 999_999_999));
        assert_eq!((ts.tv_sec, ts.tv_nsec), (i64::MAX, 999_999_999));
        let ts = timespec(Duration::new(3, 7));
        assert_eq!((ts.tv_sec, ts.tv_nsec), (3, 7));
    }
}

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
        // The kernel's timer ends the wait at or after the relative time; the
        // deadline is checked on our own clock so that `TimedOut` is never early.
        Err(Errno::TIMEDOUT) if deadline.is_some_and(|d| now() >= d) => Wake::TimedOut,
        // Ok (woken), EAGAIN (the word had changed), an early ETIMEDOUT, or an error
        // that cannot happen with a valid reference and timeout: the caller re-checks.
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

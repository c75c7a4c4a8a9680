//! The Linux backend of the wait primitive: `futex(FUTEX_WAIT_PRIVATE)` through
//! rustix's safe API, which (unlike std's `Condvar`, `parking_lot_core` and
//! `atomic-wait`) reports `EINTR` to the caller.
//!
//! Every wait gives the kernel a finite timeout, also when the caller has no
//! deadline. The kernel restarts an untimed `FUTEX_WAIT` after a handler installed
//! with `SA_RESTART` (signal-hook's default) instead of returning `EINTR`, but a
//! wait with a timeout returns `EINTR` either way (the restart goes through
//! `ERESTART_RESTARTBLOCK`, which a handler always turns into `EINTR`). So a finite
//! timeout makes [`Wake::Interrupted`] independent of how the handler was
//! installed. With no deadline the timeout is [`MAX_TIMEOUT`] (68 years): the
//! waiter makes no extra wake-up, and if it ever expires the wait returns
//! [`Wake::Woken`] and the caller's loop waits again.

use std::time::Duration;

use rustix::io::Errno;
use rustix::thread::futex;

use super::{AtomicU32, Instant, Wake, now};

/// The longest timeout the kernel is given: `i32::MAX` seconds (about 68 years).
///
/// Long enough that an idle waiter never wakes for it, and it fits the 32-bit
/// `tv_sec` of the old `futex` system call, which rustix uses on 32-bit targets
/// whenever the timeout fits (a longer one would need `futex_time64`, Linux 5.1).
/// The kernel accepts any `tv_sec >= 0` on 64-bit targets and saturates the
/// absolute expiry; capping here keeps every target on one valid path.
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(i32::MAX as u64);

/// The relative timeout the kernel is given, recomputed from the absolute
/// monotonic deadline on every call, so that a wait resumed after a spurious
/// wake-up or an interruption neither ends early nor extends the deadline; at most
/// [`MAX_TIMEOUT`], which is also what a wait with no deadline gets. `None` when
/// the deadline has passed.
fn kernel_timeout(deadline: Option<Instant>) -> Option<futex::Timespec> {
    let left = match deadline {
        None => MAX_TIMEOUT,
        Some(deadline) => deadline
            .checked_duration_since(now())
            .filter(|left| !left.is_zero())?
            .min(MAX_TIMEOUT),
    };
    Some(timespec(left))
}

/// `Duration` to `Timespec`; `left` is at most [`MAX_TIMEOUT`], so the seconds fit.
fn timespec(left: Duration) -> futex::Timespec {
    futex::Timespec {
        tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(left.subsec_nanos()),
    }
}

pub(crate) fn wait(word: &AtomicU32, expected: u32, deadline: Option<Instant>) -> Wake {
    let Some(timeout) = kernel_timeout(deadline) else {
        return Wake::TimedOut;
    };
    wait_for(word, expected, &timeout)
}

/// [`wait`] for a caller that ignores [`Wake::Interrupted`] (a plain acquire or
/// join): with no deadline the kernel gets no timeout at all, which saves arming
/// and cancelling a timer on every sleep. A handler installed with `SA_RESTART`
/// then restarts the wait instead of ending it; one without may still end it with
/// `Interrupted`, which such a caller treats as a spurious wake-up.
pub(crate) fn wait_uninterruptible(
    word: &AtomicU32,
    expected: u32,
    deadline: Option<Instant>,
) -> Wake {
    match deadline {
        None => outcome(futex::wait(word, futex::Flags::PRIVATE, expected, None)),
        Some(_) => wait(word, expected, deadline),
    }
}

/// One `FUTEX_WAIT` with the given relative timeout.
fn wait_for(word: &AtomicU32, expected: u32, timeout: &futex::Timespec) -> Wake {
    outcome(futex::wait(
        word,
        futex::Flags::PRIVATE,
        expected,
        Some(timeout),
    ))
}

/// What a `FUTEX_WAIT` result means to the caller.
///
/// Success (woken, or spuriously), `EAGAIN` (the word had changed) and `ETIMEDOUT`
/// are all [`Wake::Woken`]: the caller re-checks and, if it still has to wait,
/// calls again, and only that call's look at our own clock ([`kernel_timeout`])
/// reports `TimedOut`, so it is never early, whatever the kernel's timer did.
///
/// Any other error (`EFAULT`, `EINVAL`, `ENOSYS`: impossible with a reference and a
/// timeout built from a `Duration` below [`MAX_TIMEOUT`], unless a seccomp filter
/// or a broken kernel refuses the call) panics with the errno: returning `Woken`
/// would make every caller's loop call again at once, a busy loop that never ends.
fn outcome(result: rustix::io::Result<()>) -> Wake {
    match result {
        Ok(()) | Err(Errno::AGAIN) | Err(Errno::TIMEDOUT) => Wake::Woken,
        Err(Errno::INTR) => Wake::Interrupted,
        Err(errno) => panic!(
            "pythread: futex wait failed with errno {}: {errno}",
            errno.raw_os_error()
        ),
    }
}

pub(crate) fn wake_one(word: &AtomicU32) {
    wake(word, 1);
}

pub(crate) fn wake_all(word: &AtomicU32) {
    // The kernel reads the count as an `int`: `u32::MAX` would be -1 and wake one.
    wake(word, i32::MAX as u32);
}

/// `FUTEX_WAKE`. It cannot fail for a valid, aligned reference; if it does anyway
/// (a seccomp filter), a waiter would sleep forever, so it panics with the errno
/// instead of losing the wake-up silently.
fn wake(word: &AtomicU32, count: u32) {
    if let Err(errno) = futex::wake(word, futex::Flags::PRIVATE, count) {
        panic!(
            "pythread: futex wake failed with errno {}: {errno}",
            errno.raw_os_error()
        );
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// The kernel is given what is left until the deadline, never more, never a
    /// zero that would turn the wait into a busy loop; nothing once it has passed.
    #[test]
    fn kernel_timeout_is_the_time_left_until_the_deadline() {
        let deadline = now() + Duration::from_secs(10);
        let left = kernel_timeout(Some(deadline)).expect("10 s are left");
        assert!(left.tv_sec >= 9 && left.tv_sec <= 10, "{left:?}");
        assert!(left.tv_sec < 10 || left.tv_nsec == 0, "{left:?}");
        assert_eq!(kernel_timeout(Some(now())), None);
        assert_eq!(kernel_timeout(Some(now() - Duration::from_millis(1))), None);
        let near = kernel_timeout(Some(now() + Duration::from_millis(500))).expect("500 ms left");
        assert_eq!(near.tv_sec, 0);
        assert!(near.tv_nsec > 0 && near.tv_nsec <= 500_000_000, "{near:?}");
    }

    /// No deadline, or one further away than the cap: the kernel gets exactly the
    /// cap, a finite timeout whose seconds fit a 32-bit `time_t`.
    #[test]
    fn kernel_timeout_is_finite_and_capped() {
        let cap = timespec(MAX_TIMEOUT);
        assert_eq!((cap.tv_sec, cap.tv_nsec), (i64::from(i32::MAX), 0));
        assert_eq!(kernel_timeout(None), Some(cap));
        let far = now() + MAX_TIMEOUT + Duration::from_secs(3600);
        assert_eq!(kernel_timeout(Some(far)), Some(cap));
    }

    #[test]
    fn timespec_splits_seconds_and_nanoseconds() {
        let ts = timespec(Duration::new(3, 7));
        assert_eq!((ts.tv_sec, ts.tv_nsec), (3, 7));
        let ts = timespec(Duration::new(u64::MAX, 999_999_999));
        assert_eq!((ts.tv_sec, ts.tv_nsec), (i64::MAX, 999_999_999));
    }

    #[test]
    fn expected_results_map_to_wakes() {
        assert_eq!(outcome(Ok(())), Wake::Woken);
        assert_eq!(outcome(Err(Errno::AGAIN)), Wake::Woken);
        assert_eq!(outcome(Err(Errno::TIMEDOUT)), Wake::Woken);
        assert_eq!(outcome(Err(Errno::INTR)), Wake::Interrupted);
    }

    /// A real unexpected errno, provoked safely: the kernel refuses a timeout with
    /// `tv_nsec` of a whole second (`EINVAL`). The wait panics with the errno; it
    /// does not return `Woken` for the caller to retry forever.
    #[test]
    fn an_unexpected_errno_panics_with_it() {
        let word = AtomicU32::new(0);
        let invalid = futex::Timespec {
            tv_sec: 0,
            tv_nsec: 1_000_000_000,
        };
        let panic = std::panic::catch_unwind(|| wait_for(&word, 0, &invalid))
            .expect_err("EINVAL must panic");
        let message = panic.downcast_ref::<String>().expect("a formatted message");
        assert!(
            message.contains("futex wait failed with errno 22"),
            "{message}"
        );
        // A real wait with a valid timeout on the same word still works.
        assert_eq!(
            wait_for(&word, 0, &timespec(Duration::from_millis(1))),
            Wake::Woken
        );
    }
}

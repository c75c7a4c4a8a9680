//! Timeout arguments as CPython 3.13 reads them: `PyThread_ParseTimeoutArg` and the
//! argument rules of `_thread.lock.acquire(blocking=True, timeout=-1)`.
//!
//! Both turn a timeout in seconds (a Python `float`) into what a wait needs:
//! `None` = wait forever, `Some(Duration::ZERO)` = do not block, `Some(d)` = wait at
//! most `d`. The conversion is CPython's `_PyTime_FromSecondsObject` with
//! `_PyTime_ROUND_TIMEOUT`: the seconds are multiplied by 10⁹ in `f64` arithmetic,
//! the product is rounded away from zero to whole nanoseconds, and the result must
//! fit an `i64` (`PyTime_t`). Only then are the rules about `blocking` and negative
//! values applied, so the quirks of that order are kept (measured on CPython 3.13.0):
//! `-0.9999999999` s rounds to exactly -1 s, the "unset" value, and waits forever in
//! `lock.acquire`; `1e-10` s becomes 1 ns; a NaN is a `ValueError`, and so on. The
//! `f64` product itself is rounded to the nearest double before the rounding to whole
//! nanoseconds, so beyond 2⁶² ns (about 146 years) a timeout can come out a few hundred
//! nanoseconds short: `5000000001.0` s is 5000000000999999488 ns, in CPython too.

use std::error::Error;
use std::fmt;
use std::time::Duration;

/// `_thread.TIMEOUT_MAX`, in seconds: the largest timeout, as a Python `float`, that
/// CPython 3.13 on Linux documents for `lock.acquire`, `9223372036.0`.
///
/// It is `floor(min(PY_TIMEOUT_MAX * 1e-6, PyTime_MAX s))`, [`TIMEOUT_MAX`](crate::TIMEOUT_MAX)
/// microseconds rounded down to whole seconds. [`parse_acquire_args`] accepts it;
/// one second more is out of range.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// use pythread::{parse_acquire_args, TimeoutErrorKind, TIMEOUT_MAX_SECS};
///
/// assert_eq!(TIMEOUT_MAX_SECS, 9223372036.0);
/// assert!(parse_acquire_args(true, TIMEOUT_MAX_SECS).is_ok());
/// let err = parse_acquire_args(true, TIMEOUT_MAX_SECS + 1.0).unwrap_err();
/// assert_eq!(err.kind(), TimeoutErrorKind::Overflow);
/// # });
/// ```
pub const TIMEOUT_MAX_SECS: f64 = 9_223_372_036.0;

/// `_PyTime_FromSeconds(-1)`: the "unset" timeout of `lock.acquire`, -1 s in ns.
const UNSET_NS: i64 = -1_000_000_000;
/// The same in seconds, the `timeout=-1` default, which converts to exactly [`UNSET_NS`].
const UNSET_SECS: f64 = -1.0;

/// 2⁶³ as an `f64`: `-(double)PyTime_MIN`, the first value past the range of `PyTime_t`.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

/// What kind of Python exception CPython raises for a rejected timeout.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// use pythread::{parse_acquire_args, TimeoutErrorKind};
///
/// assert_eq!(parse_acquire_args(true, f64::NAN).unwrap_err().kind(), TimeoutErrorKind::Value);
/// assert_eq!(parse_acquire_args(true, 1e100).unwrap_err().kind(), TimeoutErrorKind::Overflow);
/// # });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeoutErrorKind {
    /// CPython's `ValueError`: a NaN, a negative timeout, or a timeout given to a
    /// non-blocking call.
    Value,
    /// CPython's `OverflowError`: the timeout does not fit a 64-bit count of
    /// nanoseconds (infinities included).
    Overflow,
}

/// A timeout argument that CPython 3.13 rejects: the exception's kind, and its exact
/// message as [`Display`](fmt::Display) text.
///
/// The messages are CPython's, byte for byte:
///
/// | kind | message |
/// |---|---|
/// | [`Value`](TimeoutErrorKind::Value) | `Invalid value NaN (not a number)` |
/// | [`Value`](TimeoutErrorKind::Value) | `can't specify a timeout for a non-blocking call` |
/// | [`Value`](TimeoutErrorKind::Value) | `timeout value must be a non-negative number` |
/// | [`Overflow`](TimeoutErrorKind::Overflow) | `timestamp out of range for platform time_t` |
///
/// (CPython's third check, `OverflowError("timeout value is too large")` for more
/// than `PY_TIMEOUT_MAX` microseconds, cannot trigger: every value that passes the
/// range check is at most [`TIMEOUT_MAX`](crate::TIMEOUT_MAX) µs. The crate's tests
/// check that claim.)
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// use pythread::{parse_acquire_args, TimeoutErrorKind};
///
/// let err = parse_acquire_args(false, 1.0).unwrap_err();
/// assert_eq!(err.kind(), TimeoutErrorKind::Value);
/// assert_eq!(err.to_string(), "can't specify a timeout for a non-blocking call");
/// # });
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeoutError {
    kind: TimeoutErrorKind,
    message: &'static str,
}

impl TimeoutError {
    const NAN: TimeoutError = TimeoutError {
        kind: TimeoutErrorKind::Value,
        message: "Invalid value NaN (not a number)",
    };
    const NON_BLOCKING: TimeoutError = TimeoutError {
        kind: TimeoutErrorKind::Value,
        message: "can't specify a timeout for a non-blocking call",
    };
    const NEGATIVE: TimeoutError = TimeoutError {
        kind: TimeoutErrorKind::Value,
        message: "timeout value must be a non-negative number",
    };
    const OUT_OF_RANGE: TimeoutError = TimeoutError {
        kind: TimeoutErrorKind::Overflow,
        message: "timestamp out of range for platform time_t",
    };

    /// Which Python exception CPython raises here: `ValueError` or `OverflowError`.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use pythread::{parse_timeout_arg, TimeoutErrorKind};
    ///
    /// let err = parse_timeout_arg(Some(-1.0), true).unwrap_err();
    /// assert_eq!(err.kind(), TimeoutErrorKind::Value);
    /// assert_eq!(err.to_string(), "timeout value must be a non-negative number");
    /// # });
    /// ```
    pub fn kind(&self) -> TimeoutErrorKind {
        self.kind
    }
}

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message)
    }
}

impl Error for TimeoutError {}

/// `_PyTime_FromSecondsObject(float, _PyTime_ROUND_TIMEOUT)`: seconds to nanoseconds,
/// multiplied in `f64`, rounded away from zero, range-checked against `PyTime_t`.
fn seconds_to_ns(seconds: f64) -> Result<i64, TimeoutError> {
    if seconds.is_nan() {
        return Err(TimeoutError::NAN);
    }
    let ns = seconds * 1e9;
    let ns = if ns >= 0.0 { ns.ceil() } else { ns.floor() };
    // `!(a <= x && x < b)`, as CPython writes it; infinities fail it.
    if !((-TWO_POW_63..TWO_POW_63).contains(&ns)) {
        return Err(TimeoutError::OUT_OF_RANGE);
    }
    // Exact: `ns` is a whole number inside the range of `i64`.
    Ok(ns as i64)
}

/// A non-negative nanosecond count as a `Duration`.
fn from_ns(ns: i64) -> Duration {
    Duration::from_nanos(u64::try_from(ns).expect("checked non-negative"))
}

/// Reads a timeout argument as `PyThread_ParseTimeoutArg` (CPython 3.13) does.
///
/// `timeout` is the Python argument in seconds, `None` for Python's `None` (or an
/// absent argument). The checks, in CPython's order:
///
/// 1. `None`: `Ok(None)` (wait forever) if `blocking`, else `Ok(Some(Duration::ZERO))`.
/// 2. A timeout with `blocking == false`: `ValueError` "can't specify a timeout for
///    a non-blocking call" (even for a NaN or an infinity).
/// 3. The conversion to nanoseconds: a NaN is a
///    `ValueError` "Invalid value NaN (not a number)"; a value outside the range of
///    an `i64` of nanoseconds (infinities, `1e100`, more than about 292 years) is an
///    `OverflowError` "timestamp out of range for platform time_t".
/// 4. Any negative number of nanoseconds, -1 s included: `ValueError` "timeout value
///    must be a non-negative number". `-0.0` is zero, not negative.
///
/// Otherwise `Ok(Some(d))`: wait at most `d` (`Duration::ZERO`: do not block).
///
/// # Errors
///
/// A [`TimeoutError`] whose [`kind`](TimeoutError::kind) and message are CPython's
/// exception for that argument.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// use std::time::Duration;
/// use pythread::parse_timeout_arg;
///
/// assert_eq!(parse_timeout_arg(None, true), Ok(None));
/// assert_eq!(parse_timeout_arg(None, false), Ok(Some(Duration::ZERO)));
/// assert_eq!(parse_timeout_arg(Some(1.5), true), Ok(Some(Duration::from_millis(1500))));
/// assert_eq!(parse_timeout_arg(Some(1e-10), true), Ok(Some(Duration::from_nanos(1))));
/// assert!(parse_timeout_arg(Some(-1.0), true).is_err()); // no "unset" value here
/// assert!(parse_timeout_arg(Some(0.0), false).is_err());
/// # });
/// ```
pub fn parse_timeout_arg(
    timeout: Option<f64>,
    blocking: bool,
) -> Result<Option<Duration>, TimeoutError> {
    let Some(seconds) = timeout else {
        return Ok(if blocking { None } else { Some(Duration::ZERO) });
    };
    if !blocking {
        return Err(TimeoutError::NON_BLOCKING);
    }
    let ns = seconds_to_ns(seconds)?;
    if ns < 0 {
        return Err(TimeoutError::NEGATIVE);
    }
    Ok(Some(from_ns(ns)))
}

/// Reads the arguments of `_thread.lock.acquire(blocking=True, timeout=-1)` as
/// CPython 3.13's `lock_acquire_parse_args` does; `timeout` is `-1.0` when the caller
/// gave none ("unset").
///
/// CPython converts first and checks after, in this order:
///
/// 1. The conversion to nanoseconds: NaN is a
///    `ValueError` "Invalid value NaN (not a number)"; out of range (`1e100`,
///    `-1e100`, infinities, [`TIMEOUT_MAX_SECS`]` + 1.0`) is an `OverflowError`
///    "timestamp out of range for platform time_t", whatever `blocking` is.
/// 2. `blocking == false` with any timeout but the unset -1 s (even `0.0` and
///    `-0.0`): `ValueError` "can't specify a timeout for a non-blocking call".
/// 3. A negative timeout other than the unset -1 s: `ValueError` "timeout value
///    must be a non-negative number".
///
/// The unset value is compared after rounding, so any `timeout` in
/// `(-1.000000001, -0.999999999]` such as `-0.9999999999` *is* the unset value.
///
/// # Returns
///
/// `Ok(Some(Duration::ZERO))` when not blocking (do not block); `Ok(None)` when
/// blocking with the unset timeout (wait forever); otherwise `Ok(Some(d))`, wait at
/// most `d` (`-0.0` and `0.0` give `Duration::ZERO`).
///
/// # Errors
///
/// A [`TimeoutError`] whose [`kind`](TimeoutError::kind) and message are CPython's
/// exception for those arguments.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// use std::time::Duration;
/// use pythread::parse_acquire_args;
///
/// assert_eq!(parse_acquire_args(true, -1.0), Ok(None)); // acquire()
/// assert_eq!(parse_acquire_args(false, -1.0), Ok(Some(Duration::ZERO))); // acquire(False)
/// assert_eq!(parse_acquire_args(true, 0.25), Ok(Some(Duration::from_millis(250))));
/// assert_eq!(parse_acquire_args(true, -0.9999999999), Ok(None)); // rounds to -1 s
/// assert!(parse_acquire_args(true, -0.5).is_err());
/// assert!(parse_acquire_args(false, 0.0).is_err());
/// # });
/// ```
#[inline]
pub fn parse_acquire_args(blocking: bool, timeout: f64) -> Result<Option<Duration>, TimeoutError> {
    // The default `timeout=-1` of nearly every call, answered without the
    // conversion (which gives exactly the unset value for it): a compare, inlined
    // into the caller, where the conversion costs tens of instructions per acquire.
    if timeout == UNSET_SECS {
        return Ok(if blocking { None } else { Some(Duration::ZERO) });
    }
    parse_converted(blocking, timeout)
}

/// [`parse_acquire_args`] for a timeout other than exactly -1.0.
fn parse_converted(blocking: bool, timeout: f64) -> Result<Option<Duration>, TimeoutError> {
    let ns = seconds_to_ns(timeout)?;
    if !blocking && ns != UNSET_NS {
        return Err(TimeoutError::NON_BLOCKING);
    }
    if ns < 0 && ns != UNSET_NS {
        return Err(TimeoutError::NEGATIVE);
    }
    if !blocking {
        Ok(Some(Duration::ZERO))
    } else if ns == UNSET_NS {
        Ok(None)
    } else {
        Ok(Some(from_ns(ns)))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_away_from_zero() {
        assert_eq!(seconds_to_ns(2.5e-9), Ok(3));
        assert_eq!(seconds_to_ns(-2.5e-9), Ok(-3));
        assert_eq!(seconds_to_ns(-0.0), Ok(0));
        assert_eq!(seconds_to_ns(-TWO_POW_63 / 1e9), Ok(i64::MIN));
        assert_eq!(
            seconds_to_ns(f64::INFINITY),
            Err(TimeoutError::OUT_OF_RANGE)
        );
    }
}

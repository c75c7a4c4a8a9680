//! `parse_timeout_arg` and `parse_acquire_args` against CPython 3.13.0.
//!
//! Three layers:
//!
//! - [`cpython_313_measured`]: 2,500 argument pairs run through CPython 3.13.0 itself
//!   (`tests/data/cpython313_timeouts.txt`, generated during development by
//!   `tests/data/gen_cpython313_timeouts.py`: no Python is needed to run the test):
//!   every kind, every message and every nanosecond count must match;
//! - proptest properties against [`model`], a direct, separately written statement of
//!   CPython's rules, over every `f64` and over dense samples of the edges: around
//!   `TIMEOUT_MAX` and the end of the `i64` nanosecond range, next to -1 s (the
//!   "unset" value), and around zero (the rounding);
//! - the examples the issue names, one by one, with their exact messages.
#![cfg(not(loom))]

use std::time::Duration;

use proptest::prelude::*;
use pythread::{
    TIMEOUT_MAX, TIMEOUT_MAX_SECS, TimeoutError, TimeoutErrorKind, parse_acquire_args,
    parse_timeout_arg,
};

const NAN: &str = "Invalid value NaN (not a number)";
const NON_BLOCKING: &str = "can't specify a timeout for a non-blocking call";
const NEGATIVE: &str = "timeout value must be a non-negative number";
const RANGE: &str = "timestamp out of range for platform time_t";

type Parsed = Result<Option<Duration>, TimeoutError>;

/// The model: CPython 3.13's rules, written out directly.
mod model {
    use super::*;

    /// What `_PyTime_FromSecondsObject(float, ROUND_TIMEOUT)` makes of `seconds`.
    #[derive(Clone, Copy, Debug, PartialEq)]
    pub enum Converted {
        Nan,
        OutOfRange,
        Ns(i64),
    }

    pub fn convert(seconds: f64) -> Converted {
        if seconds.is_nan() {
            return Converted::Nan;
        }
        // The product as C computes it (one f64 multiplication), then rounded away
        // from zero: whole products stay, others move one step outward.
        let product = seconds * 1e9;
        let rounded = if product.fract() == 0.0 {
            product
        } else {
            product.trunc() + product.signum()
        };
        if !rounded.is_finite() {
            return Converted::OutOfRange;
        }
        // Saturating, so anything too big for i128 still lands outside the i64 range.
        match i64::try_from(rounded as i128) {
            Ok(ns) => Converted::Ns(ns),
            Err(_) => Converted::OutOfRange,
        }
    }

    fn error(kind: TimeoutErrorKind, message: &'static str) -> (TimeoutErrorKind, &'static str) {
        (kind, message)
    }

    pub type Outcome = Result<Option<u64>, (TimeoutErrorKind, &'static str)>;

    /// `lock_acquire_parse_args`: convert, then (blocking, unset, sign).
    pub fn acquire(blocking: bool, seconds: f64) -> Outcome {
        const UNSET: i64 = -1_000_000_000;
        match (convert(seconds), blocking) {
            (Converted::Nan, _) => Err(error(TimeoutErrorKind::Value, NAN)),
            (Converted::OutOfRange, _) => Err(error(TimeoutErrorKind::Overflow, RANGE)),
            (Converted::Ns(UNSET), false) => Ok(Some(0)),
            (Converted::Ns(_), false) => Err(error(TimeoutErrorKind::Value, NON_BLOCKING)),
            (Converted::Ns(UNSET), true) => Ok(None),
            (Converted::Ns(ns), true) if ns < 0 => Err(error(TimeoutErrorKind::Value, NEGATIVE)),
            (Converted::Ns(ns), true) => Ok(Some(ns as u64)),
        }
    }

    /// `PyThread_ParseTimeoutArg`: None, then blocking, then convert, then sign.
    pub fn timeout_arg(timeout: Option<f64>, blocking: bool) -> Outcome {
        match (timeout, blocking) {
            (None, true) => Ok(None),
            (None, false) => Ok(Some(0)),
            (Some(_), false) => Err(error(TimeoutErrorKind::Value, NON_BLOCKING)),
            (Some(seconds), true) => match convert(seconds) {
                Converted::Nan => Err(error(TimeoutErrorKind::Value, NAN)),
                Converted::OutOfRange => Err(error(TimeoutErrorKind::Overflow, RANGE)),
                Converted::Ns(ns) if ns < 0 => Err(error(TimeoutErrorKind::Value, NEGATIVE)),
                Converted::Ns(ns) => Ok(Some(ns as u64)),
            },
        }
    }
}

/// The crate's answer in the model's terms (nanoseconds, kind, message).
fn observe(parsed: Parsed) -> model::Outcome {
    match parsed {
        Ok(None) => Ok(None),
        Ok(Some(d)) => Ok(Some(
            u64::try_from(d.as_nanos()).expect("a parsed timeout fits u64 ns"),
        )),
        Err(e) => {
            let message = e.to_string();
            let known = [NAN, NON_BLOCKING, NEGATIVE, RANGE]
                .into_iter()
                .find(|m| *m == message)
                .unwrap_or_else(|| panic!("unexpected message {message:?}"));
            Err((e.kind(), known))
        }
    }
}

fn code_of(outcome: &model::Outcome) -> String {
    match outcome {
        Ok(Some(ns)) => format!("ns={ns}"),
        Ok(None) => "forever".to_string(),
        Err((_, m)) if *m == NAN => "V-nan".to_string(),
        Err((_, m)) if *m == NON_BLOCKING => "V-nonblocking".to_string(),
        Err((_, m)) if *m == NEGATIVE => "V-negative".to_string(),
        Err((_, m)) if *m == RANGE => "O-range".to_string(),
        Err(other) => format!("{other:?}"),
    }
}

#[test]
fn cpython_313_measured() {
    let data = include_str!("data/cpython313_timeouts.txt");
    let mut checked = 0;
    for line in data.lines().filter(|l| !l.starts_with('#')) {
        let fields: Vec<&str> = line.split(' ').collect();
        let [bits, blocking, acquire, timeout_arg] = fields[..] else {
            panic!("malformed line {line:?}");
        };
        let seconds = f64::from_bits(u64::from_str_radix(bits, 16).unwrap());
        let blocking = blocking == "1";

        // PyThread_ParseTimeoutArg: CPython reported the nanoseconds it stored.
        let ours = observe(parse_timeout_arg(Some(seconds), blocking));
        assert_eq!(
            code_of(&ours),
            timeout_arg,
            "parse_timeout_arg(Some({seconds:e}), {blocking})"
        );
        if let Err((kind, _)) = ours {
            let python = if timeout_arg.starts_with('V') {
                TimeoutErrorKind::Value
            } else {
                TimeoutErrorKind::Overflow
            };
            assert_eq!(kind, python, "kind for {seconds:e}");
        }

        // lock.acquire: CPython only says ok or which exception; when ok, the wait is
        // the converted nanoseconds (as ParseTimeoutArg reported them), or forever for
        // the unset value, or no wait when not blocking.
        let ours = observe(parse_acquire_args(blocking, seconds));
        match (acquire, &ours) {
            ("ok", Ok(None)) => {
                assert!(blocking, "forever only when blocking ({seconds:e})");
                assert_eq!(
                    timeout_arg, "V-negative",
                    "only the unset value waits forever ({seconds:e})"
                );
            }
            ("ok", Ok(Some(0))) if !blocking => {}
            ("ok", Ok(Some(ns))) => {
                assert!(blocking);
                assert_eq!(timeout_arg, format!("ns={ns}"), "acquire({seconds:e})");
            }
            (code, outcome) => assert_eq!(
                code_of(outcome),
                code,
                "parse_acquire_args({blocking}, {seconds:e})"
            ),
        }
        if let Err((kind, _)) = ours {
            let python = if acquire.starts_with('V') {
                TimeoutErrorKind::Value
            } else {
                TimeoutErrorKind::Overflow
            };
            assert_eq!(kind, python, "kind for {seconds:e}");
        }
        checked += 1;
    }
    assert!(checked > 2000, "the data file has {checked} cases");
}

/// Doubles within `n` representable steps of `x`.
fn near(x: f64, n: i64) -> impl Strategy<Value = f64> {
    (-n..=n).prop_map(move |step| f64::from_bits(x.to_bits().wrapping_add_signed(step)))
}

/// Every kind of `f64`, weighted towards the edges of CPython's rules.
fn seconds() -> impl Strategy<Value = f64> {
    let edge = 2f64.powi(63) / 1e9; // the first second count past i64 nanoseconds
    prop_oneof![
        proptest::num::f64::ANY,
        any::<u64>().prop_map(f64::from_bits), // NaN payloads, subnormals, everything
        -2.0f64..1.0,                          // unset, negatives, zero, rounding
        near(-1.0, 4096),                      // next to the unset value
        near(0.0, 64),
        near(-0.0, 64),
        (-3e-9f64..3e-9), // sub-nanosecond rounding
        near(TIMEOUT_MAX_SECS, 4096),
        near(TIMEOUT_MAX_SECS + 1.0, 4096),
        near(edge, 4096),
        near(edge, 8), // products that round to exactly 2^63 ns
        near(-edge, 8),
        near(-edge, 4096),
        (TIMEOUT_MAX_SECS - 2.0)..(TIMEOUT_MAX_SECS + 2.0),
        (-TIMEOUT_MAX_SECS - 2.0)..(-TIMEOUT_MAX_SECS + 2.0),
        any::<i64>().prop_map(|ns| ns as f64 / 1e9), // whole nanosecond counts
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::NAN),
        Just(-f64::NAN),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn acquire_args_follow_the_model(blocking: bool, seconds in seconds()) {
        prop_assert_eq!(
            observe(parse_acquire_args(blocking, seconds)),
            model::acquire(blocking, seconds),
            "parse_acquire_args({}, {:e})", blocking, seconds
        );
    }

    #[test]
    fn timeout_arg_follows_the_model(blocking: bool, seconds in proptest::option::of(seconds())) {
        prop_assert_eq!(
            observe(parse_timeout_arg(seconds, blocking)),
            model::timeout_arg(seconds, blocking),
            "parse_timeout_arg({:?}, {})", seconds, blocking
        );
    }

    /// An accepted timeout is `seconds` rounded up to the next nanosecond: never
    /// shorter, less than 1 ns longer (up to the `f64` product's own rounding), and
    /// never more than `TIMEOUT_MAX` microseconds, which is why CPython's "timeout
    /// value is too large" cannot be raised.
    #[test]
    fn accepted_timeouts_round_up_within_timeout_max(seconds in seconds()) {
        if let Ok(Some(d)) = parse_timeout_arg(Some(seconds), true) {
            let product = seconds * 1e9;
            let ns = d.as_nanos() as f64;
            prop_assert!(ns >= product && ns - product <= 1.0, "{:e} s -> {:?}", seconds, d);
            prop_assert!(d.as_nanos().div_ceil(1000) <= TIMEOUT_MAX as u128);
            prop_assert_eq!(parse_acquire_args(true, seconds), Ok(Some(d)));
        }
    }
}

// ---- The examples, one by one ----

fn err(parsed: Parsed) -> (TimeoutErrorKind, String) {
    let e = parsed.expect_err("CPython raises here");
    (e.kind(), e.to_string())
}

#[test]
fn acquire_examples() {
    use TimeoutErrorKind::{Overflow, Value};
    assert_eq!(parse_acquire_args(true, -1.0), Ok(None));
    assert_eq!(parse_acquire_args(false, -1.0), Ok(Some(Duration::ZERO)));
    assert_eq!(parse_acquire_args(true, -0.9999999999), Ok(None));
    assert_eq!(
        parse_acquire_args(false, -0.9999999999),
        Ok(Some(Duration::ZERO))
    );
    assert_eq!(
        parse_acquire_args(true, 1e-10),
        Ok(Some(Duration::from_nanos(1)))
    );
    assert_eq!(parse_acquire_args(true, 0.0), Ok(Some(Duration::ZERO)));
    assert_eq!(parse_acquire_args(true, -0.0), Ok(Some(Duration::ZERO)));
    assert_eq!(
        parse_acquire_args(true, TIMEOUT_MAX_SECS),
        Ok(Some(Duration::from_secs(9_223_372_036)))
    );
    assert_eq!(err(parse_acquire_args(true, f64::NAN)), (Value, NAN.into()));
    assert_eq!(
        err(parse_acquire_args(false, f64::NAN)),
        (Value, NAN.into())
    );
    for big in [
        1e100,
        -1e100,
        f64::INFINITY,
        f64::NEG_INFINITY,
        TIMEOUT_MAX_SECS + 1.0,
    ] {
        for blocking in [true, false] {
            assert_eq!(
                err(parse_acquire_args(blocking, big)),
                (Overflow, RANGE.into()),
                "{big:e}"
            );
        }
    }
    for t in [0.0, -0.0, 1.0, -0.5, 1e-10, TIMEOUT_MAX_SECS] {
        assert_eq!(
            err(parse_acquire_args(false, t)),
            (Value, NON_BLOCKING.into()),
            "{t}"
        );
    }
    for t in [-2.0, -0.5, -1e-10, -1.0000000001, -100.0] {
        assert_eq!(
            err(parse_acquire_args(true, t)),
            (Value, NEGATIVE.into()),
            "{t}"
        );
    }
}

#[test]
fn timeout_arg_examples() {
    use TimeoutErrorKind::{Overflow, Value};
    assert_eq!(parse_timeout_arg(None, true), Ok(None));
    assert_eq!(parse_timeout_arg(None, false), Ok(Some(Duration::ZERO)));
    assert_eq!(
        parse_timeout_arg(Some(-0.0), true),
        Ok(Some(Duration::ZERO))
    );
    assert_eq!(
        parse_timeout_arg(Some(2.5e-9), true),
        Ok(Some(Duration::from_nanos(3)))
    );
    for t in [-1.0, -0.9999999999, -1e-10] {
        assert_eq!(
            err(parse_timeout_arg(Some(t), true)),
            (Value, NEGATIVE.into()),
            "{t}"
        );
    }
    // blocking is checked before the value is even converted
    for t in [f64::NAN, f64::INFINITY, -1.0, 0.0] {
        assert_eq!(
            err(parse_timeout_arg(Some(t), false)),
            (Value, NON_BLOCKING.into())
        );
    }
    assert_eq!(
        err(parse_timeout_arg(Some(f64::NAN), true)),
        (Value, NAN.into())
    );
    assert_eq!(
        err(parse_timeout_arg(Some(-1e100), true)),
        (Overflow, RANGE.into())
    );
}

#[test]
fn the_error_type_is_a_std_error() {
    fn bounds<T: std::error::Error + Clone + Eq + Send + Sync + 'static>() {}
    bounds::<TimeoutError>();
    let e = parse_acquire_args(true, f64::NAN).unwrap_err();
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(e.clone());
    assert_eq!(boxed.to_string(), NAN);
    assert!(format!("{e:?}").contains("Value"));
    assert_ne!(e, parse_acquire_args(true, -5.0).unwrap_err());
}

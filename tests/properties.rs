//! quickcheck properties of the small algebra around threads: idents, the
//! timeout limit as the timeout parsers apply it, and the message of a caught panic.
//!
//! What they prove:
//!
//! - [`ident_order`]: the idents minted by any number of starts on one thread are
//!   never 0, unique, and strictly increasing in start order (as `Ident` values, as
//!   numbers, and as printed);
//! - [`accepted_timeouts_fit_timeout_max`]: every timeout that
//!   [`parse_acquire_args`] or [`parse_timeout_arg`] accepts, for any `f64` at all, is
//!   at most `TIMEOUT_MAX` microseconds and fits an `i64` of nanoseconds (so CPython's
//!   "timeout value is too large" is unreachable, as measured on 3.13);
//! - [`past_timeout_max_overflows`]: every whole second count up to
//!   `TIMEOUT_MAX_SECS` is accepted (exactly below 2^62 ns, within 512 ns above), and everything from one second past it
//!   (either sign) is an `OverflowError`, blocking or not;
//! - [`message_is_the_string_payload`], [`message_is_the_str_payload`] and
//!   [`no_message_for_other_payloads`]: [`Panic::message`] returns exactly the text
//!   of any `String` or `&'static str` payload, and `None` for any other payload,
//!   even ones that merely look like text (`Box<str>`, `Cow<str>`, `char`, ...).
#![cfg(not(loom))]

mod support;

use std::borrow::Cow;
use std::time::Duration;

use pythread::{
    Panic, TIMEOUT_MAX, TIMEOUT_MAX_SECS, TimeoutErrorKind, parse_acquire_args, parse_timeout_arg,
};
use quickcheck::{QuickCheck, TestResult};

/// The bound on every join here: reaching it means a hang.
const WATCHDOG: Duration = Duration::from_secs(10);

/// Starts a thread that panics with `payload` and returns what joining it gives.
fn caught<P: std::any::Any + Send>(payload: P) -> Panic {
    support::silence_intended_panics();
    let handle = pythread::start(move || {
        support::set_quiet(true);
        std::panic::panic_any(payload)
    });
    handle
        .join_timeout(WATCHDOG)
        .expect("the panicking thread finished within the watchdog")
        .expect_err("the thread panicked")
}

#[test]
fn ident_order() {
    fn prop(starts: u8) -> bool {
        let handles: Vec<_> = (0..starts % 48).map(|_| pythread::start(|| {})).collect();
        let idents: Vec<_> = handles.iter().map(|h| h.ident()).collect();
        for handle in &handles {
            handle
                .join_timeout(WATCHDOG)
                .expect("an empty fn finishes within the watchdog")
                .expect("an empty fn returns");
        }
        idents.iter().all(|ident| ident.as_u64() != 0)
            && idents.windows(2).all(|pair| {
                let (a, b) = (pair[0], pair[1]);
                a < b
                    && a.as_u64() < b.as_u64()
                    && a.to_string() == a.as_u64().to_string()
                    && b != a
            })
    }
    QuickCheck::new()
        .tests(50)
        .quickcheck(prop as fn(u8) -> bool);
}

#[test]
fn accepted_timeouts_fit_timeout_max() {
    /// Any `f64` at all (every bit pattern: NaN payloads, infinities, subnormals), and
    /// one scaled to land in the wide range of plausible timeouts.
    fn prop(bits: u64, scaled: i32, blocking: bool) -> bool {
        let any = f64::from_bits(bits);
        let plausible = f64::from(scaled) * 4.4; // about +-9.4e9 s, past TIMEOUT_MAX_SECS
        [any, plausible].iter().all(|&seconds| {
            [
                parse_acquire_args(blocking, seconds),
                parse_timeout_arg(Some(seconds), blocking),
            ]
            .into_iter()
            .all(|parsed| match parsed {
                // CPython's "timeout value is too large" check (more than TIMEOUT_MAX
                // microseconds) can never fire: whatever the parsers accept fits.
                Ok(Some(d)) => {
                    d.as_nanos() <= i64::MAX as u128
                        && d.as_nanos().div_ceil(1000) <= TIMEOUT_MAX as u128
                        && d.as_secs_f64() <= TIMEOUT_MAX_SECS + 1.0
                }
                Ok(None) => blocking,
                Err(e) => !e.to_string().is_empty(),
            })
        })
    }
    QuickCheck::new().quickcheck(prop as fn(u64, i32, bool) -> bool);
}

#[test]
fn past_timeout_max_overflows() {
    /// Any whole number of seconds up to `TIMEOUT_MAX_SECS` is accepted (as CPython's
    /// `f64` arithmetic gives it); any
    /// timeout at least one second past it is an OverflowError, on both parsers and
    /// whether or not the call blocks (conversion comes first in `lock.acquire`).
    fn prop(below: u64, above: u32, fraction: u16, blocking: bool) -> bool {
        let max = TIMEOUT_MAX_SECS as u64;
        let whole = below % (max + 1);
        // Exact below 2^62 ns; above, the f64 product `whole * 1e9` is a multiple of
        // 1024 ns and may miss by up to 512 ns either way (CPython 3.13 measured:
        // 5000000001.0 s is 5000000000999999488 ns).
        let close = |parsed: Result<Option<Duration>, pythread::TimeoutError>| {
            parsed.is_ok_and(|d| {
                let (got, want) = (
                    d.expect("finite").as_nanos(),
                    u128::from(whole) * 1_000_000_000,
                );
                if want < 1 << 62 {
                    got == want
                } else {
                    got.abs_diff(want) <= 512
                }
            })
        };
        let accepted = close(parse_acquire_args(true, whole as f64))
            && close(parse_timeout_arg(Some(whole as f64), true));
        let past = TIMEOUT_MAX_SECS + 1.0 + f64::from(above) + f64::from(fraction) / 65536.0;
        let overflows = [past, -past].iter().all(|&seconds| {
            parse_acquire_args(blocking, seconds)
                .is_err_and(|e| e.kind() == TimeoutErrorKind::Overflow)
                && parse_timeout_arg(Some(seconds), true)
                    .is_err_and(|e| e.kind() == TimeoutErrorKind::Overflow)
        });
        accepted && overflows
    }
    QuickCheck::new().quickcheck(prop as fn(u64, u32, u16, bool) -> bool);
}

#[test]
fn message_is_the_string_payload() {
    fn prop(text: String) -> bool {
        let panic = caught(text.clone());
        panic.message() == Some(text.as_str())
    }
    QuickCheck::new()
        .tests(100)
        .quickcheck(prop as fn(String) -> bool);
}

#[test]
fn message_is_the_str_payload() {
    /// Every case leaks its text to get a `&'static str`: few, small cases.
    fn prop(text: String) -> TestResult {
        if text.len() > 64 {
            return TestResult::discard();
        }
        let text: &'static str = Box::leak(text.into_boxed_str());
        let panic = caught(text);
        TestResult::from_bool(panic.message() == Some(text) && panic.is::<&'static str>())
    }
    QuickCheck::new()
        .tests(30)
        .quickcheck(prop as fn(String) -> TestResult);
}

#[test]
fn no_message_for_other_payloads() {
    fn prop(kind: u8, text: String, number: i64) -> bool {
        let panic = match kind % 7 {
            0 => caught(number),
            1 => caught(text.clone().into_boxed_str()),
            2 => caught(Cow::<'static, str>::Owned(text.clone())),
            3 => caught(text.chars().next().unwrap_or('x')),
            4 => caught(text.clone().into_bytes()),
            5 => caught(Box::new(text.clone())),
            _ => caught(()),
        };
        panic.message().is_none()
    }
    QuickCheck::new()
        .tests(100)
        .quickcheck(prop as fn(u8, String, i64) -> bool);
}

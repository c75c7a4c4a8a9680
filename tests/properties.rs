//! quickcheck properties of the small algebra around threads: idents, the C
//! timeout limit, and the message of a caught panic.
//!
//! What they prove:
//!
//! - [`ident_order`]: the idents minted by any number of starts on one thread are
//!   never 0, unique, and strictly increasing in start order (as `Ident` values, as
//!   numbers, and as printed);
//! - [`timeout_max_fits_in_nanoseconds`] and [`past_timeout_max_overflows`]:
//!   `TIMEOUT_MAX` is the exact C limit, every value in `0..=TIMEOUT_MAX` converts
//!   from microseconds to nanoseconds without overflowing an `i64`, and every value
//!   beyond it would overflow;
//! - [`message_is_the_string_payload`], [`message_is_the_str_payload`] and
//!   [`no_message_for_other_payloads`]: [`Panic::message`] returns exactly the text
//!   of any `String` or `&'static str` payload, and `None` for any other payload,
//!   even ones that merely look like text (`Box<str>`, `Cow<str>`, `char`, ...).
#![cfg(not(loom))]

mod support;

use std::borrow::Cow;
use std::time::Duration;

use pythread::{Panic, TIMEOUT_MAX};
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
fn timeout_max_fits_in_nanoseconds() {
    assert_eq!(TIMEOUT_MAX, i64::MAX / 1000);
    /// Any value up to the limit, sampled uniformly, and the values right at it.
    fn prop(raw: u64, near_top: u16) -> bool {
        let limit = TIMEOUT_MAX as u64 + 1;
        let anywhere = (raw % limit) as i64;
        let at_top = TIMEOUT_MAX - i64::from(near_top);
        [anywhere, at_top, 0, TIMEOUT_MAX]
            .iter()
            .all(|us| us.checked_mul(1000).is_some_and(|ns| ns / 1000 == *us))
    }
    QuickCheck::new().quickcheck(prop as fn(u64, u16) -> bool);
}

#[test]
fn past_timeout_max_overflows() {
    /// Any value beyond the limit, sampled uniformly, and the values right above it.
    fn prop(raw: u64, near_top: u16) -> bool {
        let beyond = (i64::MAX - TIMEOUT_MAX) as u64; // values in TIMEOUT_MAX+1..=i64::MAX
        let anywhere = TIMEOUT_MAX + 1 + (raw % beyond) as i64;
        let just_above = TIMEOUT_MAX + 1 + i64::from(near_top);
        [anywhere, just_above, TIMEOUT_MAX + 1, i64::MAX]
            .iter()
            .all(|us| us.checked_mul(1000).is_none())
    }
    QuickCheck::new().quickcheck(prop as fn(u64, u16) -> bool);
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

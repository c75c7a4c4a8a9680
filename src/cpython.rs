//! The C-shaped part of `Python/thread.c`: the constant and the three entry points
//! that keep their CPython meaning even though Rust's runtime makes them trivial.

/// The longest timeout, in microseconds, that a lock acquisition may be asked to
/// wait: CPython's `PY_TIMEOUT_MAX` on POSIX.
///
/// CPython converts timeouts to nanoseconds in an `i64`, so the limit is the largest
/// number of microseconds whose nanosecond count still fits:
/// `i64::MAX / 1000 = 9_223_372_036_854_775` (about 292 years).
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// assert_eq!(pythread::TIMEOUT_MAX, 9_223_372_036_854_775);
/// // The C invariant: converting to nanoseconds never overflows...
/// assert!(pythread::TIMEOUT_MAX.checked_mul(1000).is_some());
/// // ...and the limit is tight: one more microsecond would.
/// assert!((pythread::TIMEOUT_MAX + 1).checked_mul(1000).is_none());
/// # });
/// ```
pub const TIMEOUT_MAX: i64 = i64::MAX / 1000;

/// Initializes the thread layer: a no-op, kept so that code ported from CPython's
/// `PyThread_init_thread` keeps its shape.
///
/// Rust's runtime is ready before `main`, so there is nothing to set up; calling
/// this any number of times, from any thread, is harmless.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// pythread::init();
/// pythread::init(); // idempotent
/// # });
/// ```
pub fn init() {}

/// Returns the stack size used for new threads, like `PyThread_get_stacksize`:
/// always `0`, CPython's value for "the platform default".
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// assert_eq!(pythread::get_stacksize(), 0);
/// # });
/// ```
pub fn get_stacksize() -> usize {
    0
}

/// Sets the stack size for new threads, like `PyThread_set_stacksize`: always
/// returns `-2`, CPython's "setting the stack size is not supported", whatever
/// `size` is, and changes nothing.
///
/// Threads get the standard library's default stack (see [`std::thread`]), and
/// `get_stacksize` keeps returning `0`.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// assert_eq!(pythread::set_stacksize(1 << 20), -2);
/// assert_eq!(pythread::set_stacksize(0), -2);
/// assert_eq!(pythread::get_stacksize(), 0);
/// # });
/// ```
pub fn set_stacksize(size: usize) -> i32 {
    let _ = size;
    -2
}

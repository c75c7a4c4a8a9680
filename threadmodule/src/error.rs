//! The errors of `_threadmodule.c`, host-neutral: what went wrong and CPython's exact message,
//! as data. A host maps each [`ErrorKind`] to its own exception type
//! ([`Runtime::new_exception`](crate::Runtime::new_exception)).

use std::fmt;

/// The Python exception type an [`Error`] is raised as.
///
/// # Examples
///
/// ```
/// use threadmodule::{Error, ErrorKind};
///
/// assert_eq!(Error::ThreadNotStarted.kind(), ErrorKind::RuntimeError);
/// assert_eq!(Error::TimeoutNaN.kind(), ErrorKind::ValueError);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// `RuntimeError` (also `_thread.error`, CPython's `ThreadError`).
    RuntimeError,
    /// `ValueError`.
    ValueError,
    /// `OverflowError`.
    OverflowError,
    /// `TypeError`.
    TypeError,
    /// `PythonFinalizationError` (3.13); a `RuntimeError` on interpreters that lack it.
    PythonFinalizationError,
}

/// An error of the `_thread` module, with CPython 3.13's message ([`Error::message`]).
///
/// # Examples
///
/// ```
/// use threadmodule::Error;
///
/// assert_eq!(Error::CannotJoinCurrentThread.to_string(), "Cannot join current thread");
/// assert_eq!(Error::StackSizeInvalid(100).to_string(), "size not valid: 100 bytes");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// `join` or `_set_done` of a handle that was never started.
    ThreadNotStarted,
    /// `start_joinable_thread(handle=h)` with a handle already started.
    ThreadAlreadyStarted,
    /// The OS refused the thread.
    CantStartNewThread,
    /// A start while the interpreter is finalizing (3.12+).
    StartAtShutdown,
    /// A thread joining its own handle.
    CannotJoinCurrentThread,
    /// `join(float('nan'))`.
    TimeoutNaN,
    /// A `join` timeout past what a 64-bit nanosecond clock holds.
    TimestampOutOfRange,
    /// `lock.acquire(blocking, timeout)`'s arguments, by the crate's rules and messages.
    AcquireArgs(pythread::TimeoutError),
    /// `lock.release()` of an unlocked lock.
    ReleaseUnlocked,
    /// `RLock.release()` (or `_release_save`) by a thread that does not own it.
    ReleaseUnacquired,
    /// An `RLock` acquired more times than its count holds.
    LockCountOverflow,
    /// `RLock._acquire_restore` could not take the lock back (a state of count 0).
    CouldntAcquireLock,
    /// `_local(*args)` of a class without `__init__`.
    InitArgsNotSupported,
    /// `stack_size(n)` with `n < 0`.
    StackSizeNegative,
    /// `stack_size(n)` with `0 < n < 32 KiB`.
    StackSizeInvalid(isize),
}

impl Error {
    /// The exception type to raise.
    ///
    /// # Examples
    ///
    /// ```
    /// use threadmodule::{Error, ErrorKind};
    /// assert_eq!(Error::StartAtShutdown.kind(), ErrorKind::PythonFinalizationError);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::ThreadNotStarted
            | Error::ThreadAlreadyStarted
            | Error::CantStartNewThread
            | Error::CannotJoinCurrentThread
            | Error::ReleaseUnlocked
            | Error::ReleaseUnacquired
            | Error::CouldntAcquireLock => ErrorKind::RuntimeError,
            Error::StartAtShutdown => ErrorKind::PythonFinalizationError,
            Error::TimeoutNaN | Error::StackSizeNegative | Error::StackSizeInvalid(_) => {
                ErrorKind::ValueError
            }
            Error::TimestampOutOfRange | Error::LockCountOverflow => ErrorKind::OverflowError,
            Error::InitArgsNotSupported => ErrorKind::TypeError,
            Error::AcquireArgs(e) => match e.kind() {
                pythread::TimeoutErrorKind::Value => ErrorKind::ValueError,
                pythread::TimeoutErrorKind::Overflow => ErrorKind::OverflowError,
            },
        }
    }

    /// CPython 3.13's message.
    ///
    /// # Examples
    ///
    /// ```
    /// use threadmodule::Error;
    /// assert_eq!(Error::ReleaseUnacquired.message(), "cannot release un-acquired lock");
    /// ```
    pub fn message(&self) -> String {
        match self {
            Error::ThreadNotStarted => "thread not started".into(),
            Error::ThreadAlreadyStarted => "thread already started".into(),
            Error::CantStartNewThread => "can't start new thread".into(),
            Error::StartAtShutdown => "can't create new thread at interpreter shutdown".into(),
            Error::CannotJoinCurrentThread => "Cannot join current thread".into(),
            Error::TimeoutNaN => "Invalid value NaN (not a number)".into(),
            Error::TimestampOutOfRange => "timestamp out of range for platform time_t".into(),
            Error::AcquireArgs(e) => e.to_string(),
            Error::ReleaseUnlocked => "release unlocked lock".into(),
            Error::ReleaseUnacquired => "cannot release un-acquired lock".into(),
            Error::LockCountOverflow => "Internal lock count overflowed".into(),
            Error::CouldntAcquireLock => "couldn't acquire lock".into(),
            Error::InitArgsNotSupported => "Initialization arguments are not supported".into(),
            Error::StackSizeNegative => "size must be 0 or a positive value".into(),
            Error::StackSizeInvalid(n) => format!("size not valid: {n} bytes"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Error {}

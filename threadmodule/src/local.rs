//! `_thread._local`'s rules that do not depend on the host's objects (`localobject`). The
//! per-thread dicts themselves live in the host's object (on `pythread::Tss`), dropped in
//! [`Runtime::thread_exiting`](crate::Runtime::thread_exiting).

use crate::Error;

/// `local_new`'s check: `_local(*args, **kwargs)` with arguments is refused unless the class
/// defines `__init__` (its `tp_init` is not `object`'s), which each thread's first access then
/// calls with them.
///
/// # Examples
///
/// ```
/// use threadmodule::{local_check_init_args, Error};
///
/// assert_eq!(local_check_init_args(true, false), Err(Error::InitArgsNotSupported));
/// assert_eq!(local_check_init_args(true, true), Ok(()));
/// assert_eq!(local_check_init_args(false, false), Ok(()));
/// ```
pub fn local_check_init_args(has_arguments: bool, class_has_init: bool) -> Result<(), Error> {
    if has_arguments && !class_has_init {
        return Err(Error::InitArgsNotSupported);
    }
    Ok(())
}

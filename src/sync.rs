//! The synchronization facade: the one place the core gets its primitives from.
//!
//! Every atomic, lock, condition variable, thread spawn, thread-local and write-once
//! cell that the core relies on for correctness is imported from here. Under
//! `--cfg loom` this module hands out [loom]'s model-checked versions, so the loom
//! suite in `loom_tests/` explores every interleaving of the real core code; in a
//! normal build it re-exports `std` and costs nothing.
//!
//! [loom]: https://docs.rs/loom

#[cfg(not(loom))]
pub(crate) use std::{
    sync::{
        atomic::{AtomicU64, AtomicU8, Ordering},
        Arc, Condvar, Mutex, MutexGuard, OnceLock,
    },
    thread,
};

#[cfg(loom)]
pub(crate) use loom::{
    sync::{
        atomic::{AtomicU64, AtomicU8, Ordering},
        Arc, Condvar, Mutex, MutexGuard,
    },
    thread,
};

#[cfg(loom)]
pub(crate) use self::loom_once_lock::OnceLock;

/// Declares a process-wide atomic.
///
/// loom's atomics cannot be built in a `const` context, and loom must see a fresh
/// value in every execution it explores, so under loom the static is a
/// `loom::lazy_static!` (reset per execution); otherwise it is a plain `static`.
macro_rules! global_atomic {
    (static $name:ident: $ty:ident = $init:expr;) => {
        #[cfg(not(loom))]
        static $name: $crate::sync::$ty = $crate::sync::$ty::new($init);
        #[cfg(loom)]
        loom::lazy_static! {
            static ref $name: $crate::sync::$ty = $crate::sync::$ty::new($init);
        }
    };
}
pub(crate) use global_atomic;

/// Declares a thread-local with a `const` initializer.
///
/// `std` makes a const-initialized thread-local a plain TLS access; loom's
/// `thread_local!` (one value per model thread) has no `const` form.
macro_rules! thread_local_const {
    ($vis:vis static $name:ident: $ty:ty = $init:expr;) => {
        #[cfg(not(loom))]
        std::thread_local! {
            $vis static $name: $ty = const { $init };
        }
        #[cfg(loom)]
        loom::thread_local! {
            $vis static $name: $ty = $init;
        }
    };
}
pub(crate) use thread_local_const;

/// Locks `mutex`, ignoring poison.
///
/// Poison carries no information here: no lock of the crate guards state that a
/// panic could leave half-updated. The crate's own code under its locks does not
/// panic, with one exception that runs user code: `T::clone` in
/// `Panic::downcast_cloned` runs under the payload lock (it may panic or block), but
/// it only reads the payload through `&T`, so the payload is intact after a
/// panicking `clone` and the `Panic` stays usable. Refusing to go on after poison
/// would turn one failure into a hang or a cascade.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A model of the part of `std::sync::OnceLock` the crate uses, built from loom
/// primitives so that loom sees (and checks) how the panic payload is published.
///
/// It exists only in the loom build; the shipped crate uses `std`'s `OnceLock` and
/// contains no `unsafe` code at all (`forbid(unsafe_code)` outside loom).
#[cfg(loom)]
#[allow(unsafe_code)]
mod loom_once_lock {
    use loom::cell::UnsafeCell;
    use loom::sync::atomic::{AtomicU8, Ordering};
    use std::panic::{RefUnwindSafe, UnwindSafe};

    const EMPTY: u8 = 0;
    const WRITING: u8 = 1;
    const READY: u8 = 2;

    pub(crate) struct OnceLock<T> {
        state: AtomicU8,
        value: UnsafeCell<Option<T>>,
    }

    // SAFETY: the same bounds as std's OnceLock: sharing the cell shares `&T` between
    // threads (needs `T: Sync`) and lets any of them store the `T` (needs `T: Send`).
    unsafe impl<T: Send + Sync> Sync for OnceLock<T> {}

    // As std's: a panic while the cell is observed leaves it either empty or set.
    impl<T: RefUnwindSafe + UnwindSafe> RefUnwindSafe for OnceLock<T> {}
    impl<T: UnwindSafe> UnwindSafe for OnceLock<T> {}

    impl<T> OnceLock<T> {
        pub(crate) fn new() -> Self {
            OnceLock {
                state: AtomicU8::new(EMPTY),
                value: UnsafeCell::new(None),
            }
        }

        /// Unlike `std`, a racing second `set` fails at once instead of waiting for the
        /// first; the crate calls `set` exactly once per cell, so the difference is moot.
        pub(crate) fn set(&self, value: T) -> Result<(), T> {
            if self
                .state
                .compare_exchange(EMPTY, WRITING, Ordering::Acquire, Ordering::Acquire)
                .is_err()
            {
                return Err(value);
            }
            // SAFETY: the successful EMPTY -> WRITING exchange makes this thread the only
            // writer, and readers touch `value` only after observing READY, which is
            // stored below, after this write. loom checks both claims.
            self.value.with_mut(|slot| unsafe { *slot = Some(value) });
            self.state.store(READY, Ordering::Release);
            Ok(())
        }

        pub(crate) fn get(&self) -> Option<&T> {
            if self.state.load(Ordering::Acquire) != READY {
                return None;
            }
            // SAFETY: READY was stored with Release after the one and only write, and this
            // thread loaded it with Acquire, so the write happens-before this read; the
            // value is never written again (it is dropped only through `&mut self`).
            self.value.with(|slot| unsafe { (*slot).as_ref() })
        }

        /// The value, if set; taking `self` by value means no reader is left.
        pub(crate) fn into_inner(self) -> Option<T> {
            // SAFETY: `self` is owned, so no other thread holds a reference to the cell;
            // loom still checks that the last write happens-before this read.
            self.value.with_mut(|slot| unsafe { (*slot).take() })
        }
    }
}

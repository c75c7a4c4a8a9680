//! Thread identities: minted once per started thread, never reused.

use std::cell::Cell;
use std::fmt;
use std::num::NonZeroU64;

use crate::sync::{AtomicU64, Ordering, global_atomic, thread_local_const};

/// The identity of a thread started by this crate: unique for the life of the
/// process.
///
/// Idents are minted from one global counter when a thread is started: they are
/// never `0`, never reused, and a thread that starts several threads sees their
/// idents increase in start order. They are unrelated to the OS thread id and to
/// [`std::thread::ThreadId`]. An `Ident` is the crate's analogue of the
/// `unsigned long` that `PyThread_start_new_thread` returns, so it is `Copy`, cheap
/// to compare, hash and print.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// let a = pythread::start(|| {});
/// let b = pythread::start(|| {});
/// assert_ne!(a.ident(), b.ident());
/// assert!(a.ident() < b.ident()); // started in that order on this thread
/// println!("started thread {} and thread {}", a.ident(), b.ident());
/// # a.join().unwrap();
/// # b.join().unwrap();
/// # });
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ident(NonZeroU64);

impl Ident {
    /// Returns the ident as a number: the count this crate's process-wide start
    /// counter gave the thread (the first start gets 1; a failed start uses one up
    /// too), never `0`, never reused. It is not an OS thread id, nor the number
    /// CPython's `threading.get_ident` returns (`pthread_self()` there).
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let handle = pythread::start(|| {});
    /// assert_ne!(handle.ident().as_u64(), 0);
    /// # handle.join().unwrap();
    /// # });
    /// ```
    pub fn as_u64(self) -> u64 {
        self.0.get()
    }

    /// The ident whose number is `n` (as [`as_u64`](Ident::as_u64) returns it), or
    /// `None` for 0, which no thread has. It names a thread only if the crate minted
    /// that number, as the `unsigned long` of a CPython ident does: a runtime that
    /// stored an ident as an integer (an `RLock`'s saved owner, say) gets it back.
    /// Any other number is an ident no started thread has.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use pythread::Ident;
    ///
    /// let me = pythread::get_ident();
    /// assert_eq!(Ident::from_u64(me.as_u64()), Some(me));
    /// assert_eq!(Ident::try_from(me.as_u64()), Ok(me));
    /// assert_eq!(Ident::from_u64(0), None);
    /// assert!(Ident::try_from(0).is_err());
    /// # });
    /// ```
    pub fn from_u64(n: u64) -> Option<Ident> {
        NonZeroU64::new(n).map(Ident)
    }

    /// Mints the next ident from the process-wide counter.
    pub(crate) fn mint() -> Ident {
        global_atomic! {
            static NEXT: AtomicU64 = 1;
        }
        mint_from(&NEXT)
    }
}

/// Takes the next value of `counter`, which must start at 1.
///
/// A compare-and-swap loop rather than `fetch_add`: on exhaustion the counter must
/// stay at its maximum so that every later call panics too, instead of wrapping
/// around and handing out `0` and then old idents again. Uniqueness needs only the
/// single modification order of one atomic, hence `Relaxed`.
fn mint_from(counter: &AtomicU64) -> Ident {
    let value = counter
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_add(1))
        .unwrap_or_else(|_| {
            panic!("pythread: thread idents exhausted (u64::MAX - 1 threads were started)")
        });
    Ident(NonZeroU64::new(value).expect("pythread: the ident counter starts at 1"))
}

/// [`Ident::from_u64`] as a conversion: 0 is the error (the same error as
/// `NonZeroU64::try_from(0)`).
impl TryFrom<u64> for Ident {
    type Error = std::num::TryFromIntError;

    fn try_from(n: u64) -> Result<Ident, Self::Error> {
        NonZeroU64::try_from(n).map(Ident)
    }
}

impl fmt::Debug for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ident({})", self.0)
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Everything the crate keeps per thread for a hot call, in one thread-local: the
/// calls that need it ([`get_ident`], [`current_ident`], an [`RLock`](crate::RLock)'s
/// owner check) each make one thread-local access. (In a shared library, such as a
/// Python extension module, every access of a thread-local is a call into the
/// dynamic linker, `__tls_get_addr`.)
struct Local {
    /// The thread's ident for [`get_ident`]: the started function's ident on a
    /// thread this crate started, otherwise minted on the first call; `None` until
    /// then. Never changes once set.
    ident: Cell<Option<Ident>>,
    /// Whether the started function (of ident `ident`) is running on this thread:
    /// what makes [`current_ident`] `Some`.
    running: Cell<bool>,
}

thread_local_const! {
    static LOCAL: Local = Local {
        ident: Cell::new(None),
        running: Cell::new(false),
    };
}

/// Returns the [`Ident`] of the started function running on the calling thread, or
/// `None` on any thread this crate did not start (such as `main`).
///
/// It is `Some` for the whole run of the function passed to [`start`](crate::start),
/// including the drops of what it captured, and `None` again once it has finished.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// assert_eq!(pythread::current_ident(), None); // not a pythread thread
///
/// let handle = pythread::start(|| {
///     assert!(pythread::current_ident().is_some());
/// });
/// handle.join().unwrap();
/// # });
/// ```
#[inline]
pub fn current_ident() -> Option<Ident> {
    LOCAL.with(|local| {
        if local.running.get() {
            local.ident.get()
        } else {
            None
        }
    })
}

/// Returns the [`Ident`] of the calling thread, whatever started it: CPython's
/// `PyThread_get_thread_ident` (`threading.get_ident()`).
///
/// Inside a function started by this crate it is that thread's [`Handle`]'s ident
/// (the same as [`current_ident`]). On any other thread (`main`, a
/// `std::thread`, a thread a C library made) an ident is minted from the same
/// process-wide counter the first time the thread asks, and kept for the rest of
/// its life. So the answer is never `0`, stable for the thread's life, and never
/// shared with any other thread, live or dead (stricter than CPython, whose
/// idents are reused once a thread has exited).
///
/// [`RLock`](crate::RLock) records its owner with it.
///
/// [`Handle`]: crate::Handle
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// let main = pythread::get_ident();
/// assert_eq!(pythread::get_ident(), main); // stable
/// assert_eq!(pythread::current_ident(), None); // main was not started by pythread
///
/// let handle = pythread::start(move || {
///     assert_eq!(Some(pythread::get_ident()), pythread::current_ident());
///     assert_ne!(pythread::get_ident(), main);
/// });
/// handle.join().unwrap();
///
/// let other = std::thread::spawn(pythread::get_ident).join().unwrap();
/// assert_ne!(other, main);
/// # });
/// ```
// `#[inline]`: a caller in another crate (a Python module's `get_ident`, an `RLock`
// call) gets one thread-local load and a branch, not a call into this crate.
#[inline]
pub fn get_ident() -> Ident {
    LOCAL.with(|local| match local.ident.get() {
        Some(ident) => ident,
        None => mint_for(&local.ident),
    })
}

/// The first [`get_ident`] of a thread this crate did not start: mints its ident
/// and keeps it. Out of line, so that the hot path stays a load and a branch.
#[cold]
#[inline(never)]
fn mint_for(slot: &Cell<Option<Ident>>) -> Ident {
    let ident = Ident::mint();
    slot.set(Some(ident));
    ident
}

/// Marks the calling thread as running the started function `ident` until the
/// returned guard drops (which happens even if the function panics).
///
/// The thread keeps `ident` for [`get_ident`] after the function returns too. It
/// has none before: a thread this crate starts runs nothing before its function.
pub(crate) fn enter(ident: Ident) -> CurrentGuard {
    LOCAL.with(|local| {
        local.ident.set(Some(ident));
        local.running.set(true);
    });
    CurrentGuard(())
}

/// Clears [`current_ident`] on drop.
pub(crate) struct CurrentGuard(());

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        LOCAL.with(|local| local.running.set(false));
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn minting_counts_up_from_one() {
        let counter = AtomicU64::new(1);
        assert_eq!(mint_from(&counter).as_u64(), 1);
        assert_eq!(mint_from(&counter).as_u64(), 2);
        assert_eq!(counter.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn exhaustion_panics_and_never_wraps() {
        let counter = AtomicU64::new(u64::MAX - 1);
        assert_eq!(mint_from(&counter).as_u64(), u64::MAX - 1);
        for _ in 0..3 {
            let err = std::panic::catch_unwind(|| mint_from(&counter)).unwrap_err();
            let message = err
                .downcast_ref::<&str>()
                .copied()
                .or(err.downcast_ref::<String>().map(String::as_str))
                .expect("a string message");
            assert!(message.contains("idents exhausted"), "{message}");
            assert_eq!(counter.load(Ordering::Relaxed), u64::MAX, "must not wrap");
        }
    }

    #[test]
    fn formats() {
        let ident = Ident(NonZeroU64::new(42).unwrap());
        assert_eq!(format!("{ident}"), "42");
        assert_eq!(format!("{ident:?}"), "Ident(42)");
        assert_eq!(format!("{ident:>4}"), "  42");
    }
}

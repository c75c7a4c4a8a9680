//! The value a panicking thread leaves behind.

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};

use crate::ident::Ident;
use crate::sync::{Arc, Mutex, lock};

/// A panic caught in a started thread, delivered by [`Handle::join`](crate::Handle::join)
/// as `Err(Panic)`.
///
/// A `Panic` is a shared, reference-counted view of the one value the thread panicked
/// with: every `join` of the thread, on any clone of its handle and from any thread,
/// returns a clone of the same `Panic`, and [`Panic::ptr_eq`] tells so. It is
/// `Send + Sync` and cheap to clone, so it can be logged, stored and compared
/// freely; it implements [`std::error::Error`], so `?` works on a join result in a
/// function returning `Box<dyn Error>`.
///
/// What can be read from it:
/// - [`message`](Panic::message): the text, when the payload is a `&'static str` or a
///   `String` (what `panic!` produces), found by downcasting only: the payload's own
///   `Debug` or `Display` are never called;
/// - [`is`](Panic::is) and [`downcast_cloned`](Panic::downcast_cloned): typed access to a
///   custom payload (as passed to [`std::panic::panic_any`]);
/// - [`take_payload`](Panic::take_payload) and [`resume_unwind`](Panic::resume_unwind):
///   the original `Box<dyn Any + Send>` back, to re-raise the very same panic.
///
/// The payload is dropped when the last `Panic` and the thread's handles are gone
/// (on the started thread itself when it was detached). A payload whose `Drop`
/// panics is dropped with that panic caught, so it never unwinds into the code that
/// happened to drop the last `Panic`; the panic hook still reports it. In the
/// pathological case of a chain of such payloads, each panicking with the next, the
/// fifth is leaked rather than dropped, so the chain cannot hang the thread.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// let handle = pythread::start(|| panic!("boom"));
/// let first = handle.join().unwrap_err();
/// let second = handle.clone().join().unwrap_err();
/// assert_eq!(first.message(), Some("boom"));
/// assert!(pythread::Panic::ptr_eq(&first, &second));
/// # });
/// ```
#[derive(Clone)]
pub struct Panic(Arc<Inner>);

struct Inner {
    ident: Ident,
    message: Option<Cow<'static, str>>,
    type_id: TypeId,
    /// The original payload until someone takes it. Behind a lock because a
    /// `Box<dyn Any + Send>` is not `Sync`. User code runs under this lock in one
    /// place: `T::clone` in [`Panic::downcast_cloned`], which only reads the payload
    /// through `&T`; the lock ignores poison, so a panicking `clone` leaves the
    /// payload in place and the `Panic` usable.
    payload: Mutex<Option<Box<dyn Any + Send>>>,
}

impl Panic {
    /// Wraps the payload that `catch_unwind` returned for the thread `ident`.
    pub(crate) fn new(ident: Ident, payload: Box<dyn Any + Send>) -> Panic {
        // Deref the box: `payload.type_id()` would be the TypeId of the Box itself.
        let type_id = (*payload).type_id();
        let message = if let Some(text) = payload.downcast_ref::<&'static str>() {
            Some(Cow::Borrowed(*text))
        } else {
            payload
                .downcast_ref::<String>()
                .map(|text| Cow::Owned(text.clone()))
        };
        Panic(Arc::new(Inner {
            ident,
            message,
            type_id,
            payload: Mutex::new(Some(payload)),
        }))
    }

    /// Returns the panic message: the payload itself when it is a `&'static str` or a
    /// `String`, which is what `panic!` produces; `None` for any other payload.
    ///
    /// The text stays available after [`take_payload`](Panic::take_payload).
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let literal = pythread::start(|| panic!("static text")).join().unwrap_err();
    /// assert_eq!(literal.message(), Some("static text"));
    ///
    /// let formatted = pythread::start(|| panic!("{} + {}", 1, 2)).join().unwrap_err();
    /// assert_eq!(formatted.message(), Some("1 + 2"));
    ///
    /// let custom = pythread::start(|| std::panic::panic_any(7_u8)).join().unwrap_err();
    /// assert_eq!(custom.message(), None);
    /// # });
    /// ```
    pub fn message(&self) -> Option<&str> {
        self.0.message.as_deref()
    }

    /// Returns the [`Ident`] of the thread that panicked.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let handle = pythread::start(|| panic!("boom"));
    /// let panic = handle.join().unwrap_err();
    /// assert_eq!(panic.ident(), handle.ident());
    /// # });
    /// ```
    pub fn ident(&self) -> Ident {
        self.0.ident
    }

    /// Returns `true` when `this` and `other` are the same caught panic, as opposed
    /// to two panics that happen to carry equal payloads.
    ///
    /// All joins of one thread return clones of one `Panic`, so this holds between
    /// any two of them.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use pythread::Panic;
    ///
    /// let a = pythread::start(|| panic!("same text"));
    /// let b = pythread::start(|| panic!("same text"));
    /// let (a1, a2) = (a.join().unwrap_err(), a.join().unwrap_err());
    /// let b1 = b.join().unwrap_err();
    /// assert!(Panic::ptr_eq(&a1, &a2));
    /// assert!(!Panic::ptr_eq(&a1, &b1)); // equal messages, different panics
    /// # });
    /// ```
    pub fn ptr_eq(this: &Panic, other: &Panic) -> bool {
        Arc::ptr_eq(&this.0, &other.0)
    }

    /// Returns `true` if the thread panicked with a payload of type `T`.
    ///
    /// `panic!("literal")` panics with a `&'static str`, `panic!("{x}")` with a
    /// `String`, and [`std::panic::panic_any`] with whatever it is given. The answer
    /// describes the original payload, also after it was taken.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let p = pythread::start(|| std::panic::panic_any(404_u16)).join().unwrap_err();
    /// assert!(p.is::<u16>());
    /// assert!(!p.is::<String>());
    /// # });
    /// ```
    pub fn is<T: Any>(&self) -> bool {
        self.0.type_id == TypeId::of::<T>()
    }

    /// Returns a clone of the payload if it is of type `T` and has not been taken.
    ///
    /// The payload is shared by every clone of this `Panic` and is only `Send`, not
    /// `Sync`, so it cannot be lent out by reference across threads; a clone is
    /// handed out instead.
    ///
    /// `T::clone` runs while the payload is locked, so it must not reach this same
    /// `Panic` (it would deadlock), and while it runs, other calls that read the
    /// payload ([`downcast_cloned`](Panic::downcast_cloned),
    /// [`take_payload`](Panic::take_payload)) on any clone wait for it.
    /// [`message`](Panic::message), [`is`](Panic::is) and joins never take that lock.
    /// If `T::clone` panics, the panic propagates to the caller and the `Panic` is
    /// unaffected: the payload is still there for the next call.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// #[derive(Clone, Debug, PartialEq)]
    /// struct Exit { code: i32 }
    ///
    /// let handle = pythread::start(|| std::panic::panic_any(Exit { code: 3 }));
    /// let panic = handle.join().unwrap_err();
    /// assert_eq!(panic.downcast_cloned::<Exit>(), Some(Exit { code: 3 }));
    /// assert_eq!(panic.downcast_cloned::<String>(), None); // wrong type
    /// # });
    /// ```
    pub fn downcast_cloned<T: Any + Clone>(&self) -> Option<T> {
        lock(&self.0.payload)
            .as_ref()
            .and_then(|payload| payload.downcast_ref::<T>())
            .cloned()
    }

    /// Takes the original payload out, for the first caller across all clones of
    /// this `Panic`; every later call returns `None`.
    ///
    /// This is the value `catch_unwind` caught, so it can be handed to
    /// [`std::panic::resume_unwind`] or downcast by value. [`message`](Panic::message)
    /// and [`is`](Panic::is) keep answering afterwards.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let handle = pythread::start(|| std::panic::panic_any(vec![1, 2, 3]));
    /// let panic = handle.join().unwrap_err();
    /// let payload = panic.take_payload().expect("first take");
    /// assert_eq!(*payload.downcast::<Vec<i32>>().unwrap(), vec![1, 2, 3]);
    /// assert!(handle.join().unwrap_err().take_payload().is_none()); // taken once
    /// # });
    /// ```
    pub fn take_payload(&self) -> Option<Box<dyn Any + Send>> {
        lock(&self.0.payload).take()
    }

    /// Resumes unwinding on the calling thread with the original payload, without
    /// invoking the panic hook, as [`std::panic::resume_unwind`] does.
    ///
    /// This propagates a thread's panic to its joiner exactly as if it had happened
    /// there. If a clone already took the payload with
    /// [`take_payload`](Panic::take_payload), the unwinding payload is this `Panic`
    /// itself, so nothing is lost.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let handle = pythread::start(|| std::panic::panic_any(42_i32));
    /// let outer = std::panic::catch_unwind(|| {
    ///     if let Err(panic) = handle.join() {
    ///         panic.resume_unwind();
    ///     }
    /// });
    /// assert_eq!(*outer.unwrap_err().downcast::<i32>().unwrap(), 42);
    /// # });
    /// ```
    pub fn resume_unwind(self) -> ! {
        match self.take_payload() {
            Some(payload) => panic::resume_unwind(payload),
            None => panic::resume_unwind(Box::new(self)),
        }
    }
}

impl Drop for Inner {
    /// A payload whose own `Drop` panics must not unwind out of whatever dropped the
    /// last `Panic` (a joiner, or the started thread itself on detach): drop it here
    /// with the panic caught. The panic hook still reports it. If that panic's own
    /// payload panics on drop too, and so on, the fifth payload of such a chain is
    /// leaked instead of dropped, so that a pathological chain cannot hang the thread.
    fn drop(&mut self) {
        let slot = self
            .payload
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut pending = slot.take();
        // Dropping can panic with a new payload that panics on drop in turn; a few
        // rounds cover any real program, and an endless chain is forgotten (leaked)
        // rather than allowed to hang the thread.
        for _ in 0..4 {
            let Some(payload) = pending.take() else {
                return;
            };
            if let Err(next) = panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
                pending = Some(next);
            }
        }
        std::mem::forget(pending);
    }
}

impl fmt::Debug for Panic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Panic")
            .field("thread", &self.0.ident)
            .field("message", &self.message())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Panic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.message() {
            Some(message) => write!(f, "thread {} panicked: {message}", self.0.ident),
            None => write!(
                f,
                "thread {} panicked with a non-string payload",
                self.0.ident
            ),
        }
    }
}

impl std::error::Error for Panic {}

//! Thread-specific storage created at run time: the port of `PyThread_tss_*` (PEP 539).
//!
//! Where CPython keeps a `void *` per thread under a `pthread_key_t`, a [`Tss<T>`]
//! keeps an owned `T` per thread. The values live in the key itself, in one map from
//! a per-thread number to the value, behind the key's lock; each thread remembers
//! (in a `thread_local`) which keys it has set, so that when it exits its values are
//! removed from those keys and dropped, on that thread. Deleting or dropping the key
//! drops every thread's value at once, on the calling thread. Nothing is leaked and
//! no `unsafe` is needed.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
// The key's allocation is shared with the threads that set it through `Weak`, which
// loom does not model; the state that threads race on is behind the facade's Mutex.
use std::sync::{Arc, Weak};

use crate::fork;
use crate::sync::{global_atomic, lock, thread_local_const, Mutex, Ordering};

/// A thread-specific storage key: each thread sees only the value it set itself.
/// The port of CPython's `Py_tss_t` and the `PyThread_tss_*` functions.
///
/// | CPython | `Tss<T>` |
/// |---|---|
/// | `Py_tss_t key = Py_tss_NEEDS_INIT;` / `PyThread_tss_alloc()` | [`Tss::new`]: not created yet |
/// | `PyThread_tss_create(&key)`: `0`, even if already created | [`create`](Tss::create) (idempotent) |
/// | `PyThread_tss_is_created(&key)` | [`is_created`](Tss::is_created) |
/// | `PyThread_tss_set(&key, v)`: `0` or `-1` | [`set`](Tss::set): `Ok(previous)` or `Err(v)` back |
/// | `PyThread_tss_get(&key)`: the value or `NULL` | [`get`](Tss::get) (a clone) or `None`; [`take`](Tss::take) moves it out |
/// | `PyThread_tss_delete(&key)`: no-op unless created | [`delete`](Tss::delete) |
/// | `PyThread_tss_free(key)` | dropping the `Tss` |
///
/// What Rust adds: values are owned, so they are dropped, never leaked.
///
/// - When a thread exits, its value for every live key is dropped on that thread, as
///   its thread-local destructors run (a `pthread_key_create` destructor, which
///   CPython never installs).
/// - [`delete`](Tss::delete) (CPython leaves the values to their owners) and dropping
///   the `Tss` drop every thread's value at once, on the calling thread (hence
///   `T: Send`). A deleted key reads as empty; [`create`](Tss::create) makes it
///   usable again, empty on every thread.
///
/// A `Tss<T>` is `Send + Sync` and is usually shared as a `static` (through
/// [`std::sync::LazyLock`]) or in an `Arc`. Every call takes the key's lock briefly
/// (inside the crate's fork gate, so that no key's lock is held by a thread that
/// vanished in a [`fork`](crate::before_fork));
/// `T`'s code (`Clone` in [`get`](Tss::get), `Drop` anywhere) never runs while it
/// is held, except `Clone` in `get`, which must not use the same key.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// use std::sync::Arc;
/// use pythread::Tss;
///
/// let key = Arc::new(Tss::<String>::new());
/// assert!(!key.is_created());
/// key.create();
/// key.set("main".to_string()).unwrap();
///
/// let k = Arc::clone(&key);
/// let worker = pythread::start(move || {
///     assert_eq!(k.get(), None); // the main thread's value is not seen here
///     k.set("worker".to_string()).unwrap();
///     assert_eq!(k.get().as_deref(), Some("worker"));
/// });
/// worker.join().unwrap();
/// assert_eq!(key.get().as_deref(), Some("main"));
///
/// key.delete(); // drops every thread's value
/// assert!(!key.is_created());
/// assert_eq!(key.get(), None);
/// # });
/// ```
pub struct Tss<T: Send + 'static> {
    shared: Arc<Shared<T>>,
}

struct Shared<T> {
    /// Process-unique: how a thread recognizes a key it has already registered with.
    id: u64,
    state: Mutex<State<T>>,
}

struct State<T> {
    created: bool,
    /// Thread number (see [`ThreadState::id`]) to that thread's value.
    values: HashMap<u64, T>,
}

global_atomic! {
    static NEXT_KEY: AtomicU64 = 1;
}

global_atomic! {
    static NEXT_THREAD: AtomicU64 = 1;
}

/// What a thread's exit does to a key it has set.
trait Erased: Send + Sync {
    /// Drops the value of thread `thread`, if any, on the calling thread.
    fn thread_exited(&self, thread: u64);
}

impl<T: Send + 'static> Erased for Shared<T> {
    fn thread_exited(&self, thread: u64) {
        let value = {
            let _gate = fork::gate();
            lock(&self.state).values.remove(&thread)
        };
        drop(value); // after the lock is released
    }
}

/// The per-thread half: this thread's number and the keys it has set.
struct ThreadState {
    /// Minted on first use; 0 = not yet. Never reused, so a value can never be seen
    /// by a later thread that happens to get the same OS thread.
    id: Cell<u64>,
    keys: RefCell<Vec<(u64, Weak<dyn Erased>)>>,
}

impl ThreadState {
    const fn new() -> ThreadState {
        ThreadState {
            id: Cell::new(0),
            keys: RefCell::new(Vec::new()),
        }
    }

    fn id(&self) -> u64 {
        if self.id.get() == 0 {
            // Uniqueness needs only the modification order of one atomic.
            self.id.set(NEXT_THREAD.fetch_add(1, Ordering::Relaxed));
        }
        self.id.get()
    }

    /// Remembers `key` so that this thread's exit drops its value there.
    fn register(&self, key_id: u64, key: Weak<dyn Erased>) {
        let mut keys = self.keys.borrow_mut();
        if keys.iter().any(|(id, _)| *id == key_id) {
            return;
        }
        // Forget keys that are gone, so a thread that sees many keys come and go
        // keeps a short list.
        keys.retain(|(_, weak)| weak.strong_count() > 0);
        keys.push((key_id, key));
    }
}

impl Drop for ThreadState {
    fn drop(&mut self) {
        let id = self.id.get();
        for (_, key) in std::mem::take(self.keys.get_mut()) {
            if let Some(key) = key.upgrade() {
                // A value's Drop that uses a Tss here finds this thread's state gone:
                // its `set` fails and its `get` reads `None`, nothing panics.
                key.thread_exited(id);
            }
        }
    }
}

thread_local_const! {
    static THREAD: ThreadState = ThreadState::new();
}

impl<T: Send + 'static> Tss<T> {
    /// A key that is not created yet: CPython's `Py_tss_NEEDS_INIT` (or
    /// `PyThread_tss_alloc`). [`set`](Tss::set) fails and [`get`](Tss::get) reads
    /// `None` until [`create`](Tss::create).
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let key = pythread::Tss::<u32>::new();
    /// assert!(!key.is_created());
    /// assert_eq!(key.set(1), Err(1)); // not created: the value comes back
    /// # });
    /// ```
    pub fn new() -> Tss<T> {
        Tss {
            shared: Arc::new(Shared {
                id: NEXT_KEY.fetch_add(1, Ordering::Relaxed),
                state: Mutex::new(State {
                    created: false,
                    values: HashMap::new(),
                }),
            }),
        }
    }

    /// Creates the key: `PyThread_tss_create`. Calling it on a created key does
    /// nothing (CPython returns 0 there too); on a deleted key it creates it anew,
    /// with no value on any thread. It cannot fail: there is no limit on keys.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let key = pythread::Tss::new();
    /// key.create();
    /// key.set(7).unwrap();
    /// key.create(); // already created: keeps the value
    /// assert_eq!(key.get(), Some(7));
    /// # });
    /// ```
    pub fn create(&self) {
        let _gate = fork::gate();
        lock(&self.shared.state).created = true;
    }

    /// Whether the key is created (and not deleted since): `PyThread_tss_is_created`.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let key = pythread::Tss::<()>::new();
    /// assert!(!key.is_created());
    /// key.create();
    /// assert!(key.is_created());
    /// key.delete();
    /// assert!(!key.is_created());
    /// # });
    /// ```
    pub fn is_created(&self) -> bool {
        let _gate = fork::gate();
        lock(&self.shared.state).created
    }

    /// Sets the calling thread's value: `PyThread_tss_set`. Returns the value it
    /// replaces (`Ok(None)` if there was none); no other thread's value changes.
    ///
    /// # Errors
    ///
    /// Gives `value` back as `Err(value)` (CPython's `-1`) if the key is not created,
    /// or if the calling thread is already running its thread-local destructors
    /// (a value stored then could never be dropped at its exit).
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let key = pythread::Tss::new();
    /// key.create();
    /// assert_eq!(key.set(1), Ok(None));
    /// assert_eq!(key.set(2), Ok(Some(1)));
    /// assert_eq!(key.get(), Some(2));
    /// # });
    /// ```
    pub fn set(&self, value: T) -> Result<Option<T>, T> {
        let weak = Arc::downgrade(&self.shared) as Weak<dyn Erased>;
        let thread = THREAD.try_with(|state| {
            state.register(self.shared.id, weak);
            state.id()
        });
        let Ok(thread) = thread else {
            return Err(value);
        };
        let _gate = fork::gate();
        let mut state = lock(&self.shared.state);
        if !state.created {
            return Err(value);
        }
        Ok(state.values.insert(thread, value))
    }

    /// Returns a clone of the calling thread's value: `PyThread_tss_get`. `None` if
    /// this thread has set none, or the key is not created (a deleted key reads as
    /// empty).
    ///
    /// `T::clone` runs while the key's lock is held; it must not use this key.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let key = pythread::Tss::new();
    /// key.create();
    /// assert_eq!(key.get(), None);
    /// key.set(vec![1, 2]).unwrap();
    /// assert_eq!(key.get(), Some(vec![1, 2]));
    /// # });
    /// ```
    pub fn get(&self) -> Option<T>
    where
        T: Clone,
    {
        let thread = THREAD.try_with(ThreadState::id).ok()?;
        let _gate = fork::gate();
        lock(&self.shared.state).values.get(&thread).cloned()
    }

    /// Removes the calling thread's value and returns it: `PyThread_tss_get`
    /// followed by `PyThread_tss_set(key, NULL)`, for values that are not `Clone`.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let key = pythread::Tss::new();
    /// key.create();
    /// key.set(Box::new(5)).unwrap();
    /// assert_eq!(key.take(), Some(Box::new(5)));
    /// assert_eq!(key.take(), None);
    /// # });
    /// ```
    pub fn take(&self) -> Option<T> {
        let thread = THREAD.try_with(ThreadState::id).ok()?;
        let _gate = fork::gate();
        let value = lock(&self.shared.state).values.remove(&thread);
        value
    }

    /// Deletes the key: `PyThread_tss_delete`. Does nothing unless the key is
    /// created. Every thread's value is dropped, here, on the calling thread, after
    /// the key's lock is released (so a value's `Drop` may use the key); afterwards
    /// the key reads as empty on every thread, and [`set`](Tss::set) fails until
    /// [`create`](Tss::create).
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use std::sync::Arc;
    ///
    /// let key = Arc::new(pythread::Tss::new());
    /// key.create();
    /// let k = Arc::clone(&key);
    /// let (set, deleted) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
    /// let worker = pythread::start(move || {
    ///     k.set(String::from("worker's")).unwrap();
    ///     set.0.send(()).unwrap();
    ///     deleted.1.recv().unwrap();
    ///     assert_eq!(k.get(), None); // dropped by the delete
    /// });
    /// set.1.recv().unwrap();
    /// key.delete(); // drops the worker's value here
    /// deleted.0.send(()).unwrap();
    /// worker.join().unwrap();
    /// # });
    /// ```
    pub fn delete(&self) {
        let values = {
            let _gate = fork::gate();
            let mut state = lock(&self.shared.state);
            if !state.created {
                return;
            }
            state.created = false;
            std::mem::take(&mut state.values)
        };
        drop(values);
    }
}

impl<T: Send + 'static> Default for Tss<T> {
    /// [`Tss::new`]: a key not created yet.
    fn default() -> Tss<T> {
        Tss::new()
    }
}

impl<T: Send + 'static> fmt::Debug for Tss<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let _gate = fork::gate();
        let state = lock(&self.shared.state);
        f.debug_struct("Tss")
            .field("created", &state.created)
            .field("threads_with_values", &state.values.len())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    struct SetOnDrop(Arc<AtomicBool>);

    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// `ThreadState::register` forgets keys that are gone: a thread that sees many
    /// keys come and go keeps a short list (the live key and the last one it set),
    /// and still drops its value of the live key when it exits.
    #[test]
    fn a_thread_keeps_only_live_keys() {
        let live = Arc::new(Tss::new());
        live.create();
        let dropped = Arc::new(AtomicBool::new(false));
        let thread = {
            let (live, dropped) = (Arc::clone(&live), Arc::clone(&dropped));
            std::thread::spawn(move || {
                live.set(SetOnDrop(dropped)).ok().unwrap();
                for i in 0..100 {
                    let key = Tss::new();
                    key.create();
                    key.set(i).unwrap();
                }
                THREAD.with(|state| state.keys.borrow().len())
            })
        };
        assert_eq!(thread.join().unwrap(), 2, "dead keys were kept");
        assert!(
            dropped.load(std::sync::atomic::Ordering::SeqCst),
            "the live key was forgotten: its value was not dropped at exit"
        );
    }
}

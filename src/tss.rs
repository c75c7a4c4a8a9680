//! Thread-specific storage created at run time: the port of `PyThread_tss_*` (PEP 539).
//!
//! Where CPython keeps a `void *` per thread under a `pthread_key_t`, a [`Tss<T>`]
//! keeps an owned `T` per thread. The values live in the key itself, in one map from
//! a per-thread number to the value, behind the key's lock; each thread remembers
//! (in a `thread_local` map keyed by the key's id) which keys it has set, so that
//! when it exits its values are removed from those keys and dropped, on that
//! thread. Deleting or dropping the key drops every thread's value at once, on the
//! calling thread. Nothing is leaked and no `unsafe` is needed.
//!
//! Both maps hash the crate's sequential `u64` numbers with one multiplication
//! ([`Numbers`]), not SipHash; a thread's map forgets dead keys when it has doubled
//! since the last time, so a registration costs O(1) amortized and a thread that
//! never exits keeps O(live keys) entries.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
// The key's allocation is shared with the threads that set it through `Weak`, which
// loom does not model; the state that threads race on is behind the facade's lock.
// `created` mirrors the state's flag for a renewal after a fork (see `Shared::renew`).
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Weak};

use crate::sync::{ForkMutex, MutexGuard, Ordering, global_atomic, thread_local_const};

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
/// [`std::sync::LazyLock`]) or in an `Arc`. Every call takes the key's lock briefly;
/// `T`'s code (`Clone` in [`get`](Tss::get), `Drop` anywhere) never runs while it
/// is held, except `Clone` in `get` and the closures of [`with`](Tss::with) and
/// [`for_each`](Tss::for_each), which must not use the same key.
///
/// In the child of a [`fork`](crate::after_fork_child), the forking thread keeps
/// its values; the other threads' values stay in the key, out of reach, until
/// [`take_lost_values`](Tss::take_lost_values) hands them to the runtime (or the
/// key is deleted or dropped). The key's lock is never left held by a thread that
/// vanished: if one was inside a call on the key at the instant of the fork, the
/// key starts empty in the child (still created or not, as it was) and its values
/// as of the fork are leaked, never touched (they may be half updated).
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
    /// `Map::created`, written under the map's lock; read only to renew a map that
    /// a thread lost in a fork held (its flag is out of reach then).
    created: AtomicBool,
    map: ForkMutex<Map<T>>,
}

/// The key's side: which threads have a slot here, for [`Tss::for_each`],
/// [`Tss::delete`] and the key's drop. A thread's own calls (`get`, `set`, `take`,
/// `with`, its exit) go straight to its slot, found in its thread-local map, and
/// take only the slot's lock; only a thread's first `set` (and a `set` after a
/// `delete`) takes this one. Lock order: the map, then a slot.
struct Map<T> {
    created: bool,
    /// Thread number (see [`ThreadState::id`]) to that thread's slot.
    slots: HashMap<u64, Arc<Slot<T>>, Numbers>,
    /// The size at which the next insertion first forgets the slots of exited
    /// threads (twice the live ones after the last time: O(1) amortized).
    prune_at: usize,
    /// The values of threads that did not survive a fork, for
    /// [`Tss::take_lost_values`].
    lost: Vec<T>,
    /// How many slots the scans for exited threads have looked at (for the tests).
    #[cfg(test)]
    scanned: usize,
}

impl<T> Default for Map<T> {
    fn default() -> Map<T> {
        Map {
            created: false,
            slots: HashMap::with_hasher(Numbers),
            prune_at: PRUNE_FLOOR,
            lost: Vec::new(),
            #[cfg(test)]
            scanned: 0,
        }
    }
}

impl<T> Map<T> {
    fn insert(&mut self, thread: u64, slot: Arc<Slot<T>>) {
        if self.slots.len() >= self.prune_at {
            // A slot that only this map holds belongs to a thread that has exited
            // (its thread-local map held the other reference): empty, forgotten.
            #[cfg(test)]
            {
                self.scanned += self.slots.len();
            }
            self.slots.retain(|_, slot| Arc::strong_count(slot) > 1);
            self.prune_at = PRUNE_FLOOR.max(2 * self.slots.len());
        }
        self.slots.insert(thread, slot);
    }
}

/// One thread's value of one key, shared by the thread (its thread-local map) and
/// the key ([`Map::slots`]). A [`ForkMutex`] too: a lost thread that was visiting
/// it (`for_each`, `delete`) at the fork cannot leave it held.
struct Slot<T> {
    state: ForkMutex<SlotState<T>>,
}

struct SlotState<T> {
    value: Option<T>,
    /// In the key's map (so the key is created): a `set` needs no more. A `delete`
    /// detaches every slot, under the map's lock and the slot's.
    attached: bool,
}

impl<T> Default for SlotState<T> {
    fn default() -> SlotState<T> {
        SlotState {
            value: None,
            attached: false,
        }
    }
}

impl<T> Slot<T> {
    fn new() -> Slot<T> {
        Slot {
            state: ForkMutex::new(SlotState::default()),
        }
    }

    /// The slot's lock; in a new fork generation its state moves over (or starts
    /// empty and detached, if a lost thread held it).
    fn lock(&self) -> MutexGuard<'_, SlotState<T>> {
        self.state
            .lock(|previous| previous.map(std::mem::take).unwrap_or_default())
    }

    /// Detaches the slot and takes its value (for `delete`, the key's drop, a fork).
    fn detach(&self) -> Option<T> {
        let mut state = self.lock();
        state.attached = false;
        state.value.take()
    }
}

/// The hasher of the maps keyed by the crate's sequential numbers (key ids,
/// thread numbers): one multiplication by 2^64 / phi. The low bits of the product
/// (the bucket) differ for consecutive numbers, and the high bits (the control
/// byte of `std`'s table) depend on every bit of the number. Not for untrusted
/// keys: these numbers are minted by the crate.
#[derive(Clone, Copy, Default)]
struct Numbers;

/// The state of a [`Numbers`] hash.
struct NumberHasher(u64);

const PHI: u64 = 0x9E37_79B9_7F4A_7C15;

impl BuildHasher for Numbers {
    type Hasher = NumberHasher;

    fn build_hasher(&self) -> NumberHasher {
        NumberHasher(0)
    }
}

impl Hasher for NumberHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Not used by `u64` keys (they call `write_u64`); correct for any other.
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(PHI);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(PHI);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The Tss thread number of the thread that called the last `after_fork_child`:
/// its values stay its own in the child; every other thread's are lost there.
/// Under loom one cell per model (see `sync::fork_mutex`).
#[cfg(not(loom))]
static SURVIVOR: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
#[cfg(loom)]
std::thread_local! {
    static SURVIVOR: Cell<u64> = const { Cell::new(0) };
}

/// In a forked child, on the forking thread: records it as the survivor, and puts
/// its slots back in the maps of their keys (renewing each), where a map that a
/// lost thread held would have lost them.
pub(crate) fn after_fork_child() {
    let _ = THREAD.try_with(|state| {
        let survivor = state.id.get();
        #[cfg(not(loom))]
        SURVIVOR.store(survivor, std::sync::atomic::Ordering::Relaxed);
        #[cfg(loom)]
        SURVIVOR.with(|cell| cell.set(survivor));
        let entries: Vec<(Weak<dyn Erased>, Arc<dyn ErasedSlot>)> = state
            .keys
            .borrow()
            .values()
            .map(|entry| (Weak::clone(&entry.key), Arc::clone(&entry.slot)))
            .collect();
        for (key, slot) in entries {
            if let Some(key) = key.upgrade() {
                key.adopt(survivor, slot);
            }
        }
    });
}

fn survivor() -> u64 {
    #[cfg(not(loom))]
    return SURVIVOR.load(std::sync::atomic::Ordering::Relaxed);
    #[cfg(loom)]
    return SURVIVOR.with(Cell::get);
}

impl<T: Send + 'static> Shared<T> {
    /// The map's lock (renewed, in a forked child, at its first use there).
    fn lock(&self) -> MutexGuard<'_, Map<T>> {
        self.map.lock(|previous| self.renew(previous))
    }

    /// The map of a new fork generation: the survivor keeps its slot; every other
    /// thread's value moves to `lost` (not dropped: the runtime chooses where).
    /// Empty if a lost thread held the lock (the survivor's slot comes back through
    /// `adopt`; the other values are leaked).
    fn renew(&self, previous: Option<&mut Map<T>>) -> Map<T> {
        let mut map = Map {
            created: self.created.load(std::sync::atomic::Ordering::Relaxed),
            ..Map::default()
        };
        let Some(previous) = previous else {
            return map;
        };
        map.created = previous.created;
        map.lost = std::mem::take(&mut previous.lost);
        let survivor = survivor();
        for (thread, slot) in previous.slots.drain() {
            if thread == survivor {
                map.slots.insert(thread, slot);
            } else {
                map.lost.extend(slot.detach());
            }
        }
        map
    }
}

global_atomic! {
    static NEXT_KEY: AtomicU64 = 1;
}

global_atomic! {
    static NEXT_THREAD: AtomicU64 = 1;
}

/// The key, type-erased, as a thread's map keeps it.
trait Erased: Send + Sync {
    /// In a forked child: puts the survivor's `slot` back in this key's map.
    fn adopt(&self, thread: u64, slot: Arc<dyn ErasedSlot>);
}

impl<T: Send + 'static> Erased for Shared<T> {
    fn adopt(&self, thread: u64, slot: Arc<dyn ErasedSlot>) {
        let Ok(slot) = slot.into_any().downcast::<Slot<T>>() else {
            return;
        };
        let mut map = self.lock();
        let attached = slot.lock().attached;
        if attached && !map.slots.contains_key(&thread) {
            map.insert(thread, slot);
        }
    }
}

/// A slot, type-erased, as a thread's map keeps it.
trait ErasedSlot: Send + Sync {
    /// At the thread's exit: drops its value, on the calling thread, after the
    /// slot's lock is released.
    fn exit(&self);
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

impl<T: Send + 'static> ErasedSlot for Slot<T> {
    fn exit(&self) {
        let value = self.lock().value.take();
        drop(value);
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

/// A key this thread has set a value in, and its slot there.
struct Entry {
    key: Weak<dyn Erased>,
    slot: Arc<dyn ErasedSlot>,
}

/// The per-thread half: this thread's number and its slot in each key it has set.
struct ThreadState {
    /// Minted on first use; 0 = not yet. Never reused, so a value can never be seen
    /// by a later thread that happens to get the same OS thread.
    id: Cell<u64>,
    /// Key id to the key and this thread's slot there.
    keys: RefCell<HashMap<u64, Entry, Numbers>>,
    /// The size at which the next registration first forgets dead keys: twice the
    /// live ones after the last time (at least [`PRUNE_FLOOR`]), so that the scan
    /// costs O(1) amortized per registration.
    prune_at: Cell<usize>,
    /// How many entries the scans for dead keys have looked at (for the tests).
    #[cfg(test)]
    scanned: Cell<usize>,
}

/// The smallest size at which a key map (a thread's, a key's) is scanned for
/// dead entries.
const PRUNE_FLOOR: usize = 16;

impl ThreadState {
    const fn new() -> ThreadState {
        ThreadState {
            id: Cell::new(0),
            keys: RefCell::new(HashMap::with_hasher(Numbers)),
            prune_at: Cell::new(PRUNE_FLOOR),
            #[cfg(test)]
            scanned: Cell::new(0),
        }
    }

    fn id(&self) -> u64 {
        if self.id.get() == 0 {
            // Uniqueness needs only the modification order of one atomic.
            self.id.set(NEXT_THREAD.fetch_add(1, Ordering::Relaxed));
        }
        self.id.get()
    }

    /// This thread's slot in the key `key_id`, if it has one.
    fn slot(&self, key_id: u64) -> Option<Arc<dyn ErasedSlot>> {
        let keys = self.keys.borrow();
        keys.get(&key_id).map(|entry| Arc::clone(&entry.slot))
    }

    /// This thread's slot in `key` (made and remembered if new).
    fn slot_or_insert<T: Send + 'static>(&self, key: &Arc<Shared<T>>) -> Arc<dyn ErasedSlot> {
        if let Some(slot) = self.slot(key.id) {
            return slot;
        }
        let mut keys = self.keys.borrow_mut();
        if keys.len() >= self.prune_at.get() {
            // Forget keys that are gone, so a thread that sees many keys come and
            // go keeps a map the size of the live ones (within twice).
            #[cfg(test)]
            self.scanned.set(self.scanned.get() + keys.len());
            keys.retain(|_, entry| entry.key.strong_count() > 0);
            self.prune_at.set(PRUNE_FLOOR.max(2 * keys.len()));
        }
        let slot: Arc<dyn ErasedSlot> = Arc::new(Slot::<T>::new());
        keys.insert(
            key.id,
            Entry {
                key: Arc::downgrade(key) as Weak<dyn Erased>,
                slot: Arc::clone(&slot),
            },
        );
        slot
    }
}

impl Drop for ThreadState {
    fn drop(&mut self) {
        for (_, entry) in std::mem::take(self.keys.get_mut()) {
            // A value's Drop that uses a Tss here finds this thread's state gone:
            // its `set` fails and its `get` reads `None`, nothing panics.
            entry.slot.exit();
        }
    }
}

thread_local_const! {
    static THREAD: ThreadState = ThreadState::new();
}

/// The calling thread's typed slot in `key`, if it has one (none once its
/// thread-locals are being destroyed).
fn own_slot<T: Send + 'static>(key: &Shared<T>) -> Option<Arc<Slot<T>>> {
    let slot = THREAD.try_with(|state| state.slot(key.id)).ok()??;
    slot.into_any().downcast::<Slot<T>>().ok()
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
                created: AtomicBool::new(false),
                map: ForkMutex::new(Map::default()),
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
        let mut map = self.shared.lock();
        map.created = true;
        self.shared
            .created
            .store(true, std::sync::atomic::Ordering::Relaxed);
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
        self.shared.lock().created
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
        let slot = THREAD.try_with(|state| (state.id(), state.slot_or_insert(&self.shared)));
        let Ok((thread, slot)) = slot else {
            return Err(value);
        };
        let Ok(slot) = slot.into_any().downcast::<Slot<T>>() else {
            return Err(value); // never: a key's id names one type
        };
        let mut state = slot.lock();
        if state.attached {
            return Ok(state.value.replace(value));
        }
        drop(state);
        // Not in the key's map yet (or detached by a `delete`): attach it, under
        // the map's lock, which says whether the key is created.
        let mut map = self.shared.lock();
        if !map.created {
            return Err(value);
        }
        map.insert(thread, Arc::clone(&slot));
        let mut state = slot.lock();
        state.attached = true;
        Ok(state.value.replace(value))
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
        let slot = own_slot(&self.shared)?;
        let state = slot.lock();
        if state.attached {
            state.value.clone()
        } else {
            None
        }
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
        let slot = own_slot(&self.shared)?;
        // Edition 2024: the guard, a temporary of the tail expression, is dropped
        // before `slot`.
        slot.lock().value.take()
    }

    /// Calls `f` with a reference to the calling thread's value (`None` if it has
    /// none, or the key is not created): [`get`](Tss::get) without the clone, for
    /// values that are not `Clone` or are costly to clone.
    ///
    /// `f` runs while the key's lock is held: it must not use this key, and should be
    /// short (other threads' calls on the key wait for it).
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let key = pythread::Tss::new();
    /// key.create();
    /// assert_eq!(key.with(|v: Option<&String>| v.map(String::len)), None);
    /// key.set(String::from("four")).unwrap();
    /// assert_eq!(key.with(|v| v.map(String::len)), Some(4));
    /// # });
    /// ```
    pub fn with<R>(&self, f: impl FnOnce(Option<&T>) -> R) -> R {
        let Some(slot) = own_slot(&self.shared) else {
            return f(None);
        };
        let state = slot.lock();
        f(state.value.as_ref().filter(|_| state.attached))
    }

    /// Calls `f` with every thread's value, in no particular order: what a garbage
    /// collector needs to see everything a key keeps alive (CPython's `_local` has its
    /// `tp_traverse` visit every thread's dict). Only threads that still hold a value
    /// are visited, and the values of threads lost in a fork that the key still
    /// keeps ([`take_lost_values`](Tss::take_lost_values)); a value set, taken or
    /// dropped concurrently is seen or not, never half.
    ///
    /// `f` runs while the key's lock is held: it must not use this key, and no thread
    /// can set, take or drop a value of this key until it returns.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use std::sync::Arc;
    ///
    /// let key = Arc::new(pythread::Tss::new());
    /// key.create();
    /// key.set(1).unwrap();
    /// let k = Arc::clone(&key);
    /// let (set, done) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
    /// let worker = pythread::start(move || {
    ///     k.set(2).unwrap();
    ///     set.0.send(()).unwrap();
    ///     done.1.recv().unwrap(); // keeps its value until the main thread has looked
    /// });
    /// set.1.recv().unwrap();
    /// let mut seen = Vec::new();
    /// key.for_each(|v| seen.push(*v));
    /// seen.sort();
    /// assert_eq!(seen, [1, 2]);
    /// done.0.send(()).unwrap();
    /// worker.join().unwrap();
    /// # });
    /// ```
    pub fn for_each(&self, mut f: impl FnMut(&T)) {
        let map = self.shared.lock();
        for slot in map.slots.values() {
            let state = slot.lock();
            if let Some(value) = state.value.as_ref().filter(|_| state.attached) {
                f(value);
            }
        }
        for value in &map.lost {
            f(value);
        }
    }

    /// Takes the values of the threads that did not survive a `fork()`, for the
    /// runtime to drop where it can run their destructors (with its interpreter
    /// lock held, say): CPython deletes the other threads' states in a forked child,
    /// which frees their `threading.local` dicts. Empty in a process that has not
    /// forked, and once taken.
    ///
    /// After [`after_fork_child`](crate::after_fork_child) every value of a thread
    /// other than the forking one moves, at the key's first use in the child, to
    /// this key's lost values: no thread can reach it there (the
    /// [`for_each`](Tss::for_each) of a collector still visits it), and nothing
    /// drops it implicitly before the key is deleted or dropped. A value whose key
    /// a lost thread was using at the instant of the fork is leaked instead (see
    /// the type's docs).
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use std::sync::Arc;
    ///
    /// let key = Arc::new(pythread::Tss::new());
    /// key.create();
    /// key.set(String::from("main")).unwrap();
    ///
    /// // A runtime's `after_fork_child` hook, with its interpreter lock held: the
    /// // crate's reset first, then the lost threads' values, dropped right here.
    /// let after_fork_child = {
    ///     let key = Arc::clone(&key);
    ///     move || {
    ///         pythread::after_fork_child();
    ///         for value in key.take_lost_values() {
    ///             drop(value); // the runtime's destructors run here
    ///         }
    ///     }
    /// };
    /// after_fork_child(); // not in a forked child: nothing was lost
    /// assert!(key.take_lost_values().is_empty());
    /// assert_eq!(key.get().as_deref(), Some("main"));
    /// # });
    /// ```
    pub fn take_lost_values(&self) -> Vec<T> {
        std::mem::take(&mut self.shared.lock().lost)
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
            let mut map = self.shared.lock();
            if !map.created {
                return;
            }
            map.created = false;
            self.shared
                .created
                .store(false, std::sync::atomic::Ordering::Relaxed);
            let mut values = std::mem::take(&mut map.lost);
            for (_, slot) in map.slots.drain() {
                values.extend(slot.detach());
            }
            values
        };
        drop(values);
    }
}

impl<T: Send + 'static> Drop for Tss<T> {
    /// Drops every thread's value (and the lost ones), here, after the key's lock
    /// is released: the threads' slots outlive the key.
    fn drop(&mut self) {
        let values = {
            let mut map = self.shared.lock();
            let mut values = std::mem::take(&mut map.lost);
            for (_, slot) in map.slots.drain() {
                values.extend(slot.detach());
            }
            values
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
        let map = self.shared.lock();
        let with_values = map
            .slots
            .values()
            .filter(|slot| {
                let state = slot.lock();
                state.attached && state.value.is_some()
            })
            .count();
        f.debug_struct("Tss")
            .field("created", &map.created)
            .field("threads_with_values", &with_values)
            .field("lost_values", &map.lost.len())
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
    /// keys come and go keeps a map no bigger than [`PRUNE_FLOOR`] (one live key),
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
                let mut largest = 0;
                for i in 0..1000 {
                    let key = Tss::new();
                    key.create();
                    key.set(i).unwrap();
                    largest = largest.max(THREAD.with(|state| state.keys.borrow().len()));
                }
                largest
            })
        };
        let largest = thread.join().unwrap();
        assert!(largest <= PRUNE_FLOOR, "dead keys were kept: {largest}");
        assert!(
            dropped.load(std::sync::atomic::Ordering::SeqCst),
            "the live key was forgotten: its value was not dropped at exit"
        );
    }

    /// With many live keys the scan for dead ones waits until the map has
    /// doubled: registering n keys scans O(n) entries in all, not O(n^2).
    #[test]
    fn registration_scans_amortized() {
        let keys: Vec<Tss<u32>> = (0..1000).map(|_| Tss::new()).collect();
        let scanned = std::thread::spawn(move || {
            for key in &keys {
                key.create();
                key.set(1).unwrap();
            }
            THREAD.with(|state| state.scanned.get())
        })
        .join()
        .unwrap();
        assert!(
            scanned < 3 * 1000,
            "scanned {scanned} entries for 1000 keys"
        );
    }

    /// A key's map forgets the slots of exited threads (only the key holds them)
    /// once it has doubled, keeps every live thread's, and so scans O(n) slots in
    /// all for n threads, not O(n^2).
    #[test]
    fn a_key_forgets_exited_threads_amortized() {
        let mut map = Map::<u32>::default();
        // Every other thread is alive: its thread-local map holds its slot too.
        let mut live = Vec::new();
        for thread in 0..1000 {
            let slot = Arc::new(Slot::new());
            if thread % 2 == 0 {
                live.push((thread, Arc::clone(&slot)));
            }
            map.insert(thread, slot);
        }
        for (thread, slot) in &live {
            assert!(
                map.slots
                    .get(thread)
                    .is_some_and(|kept| Arc::ptr_eq(kept, slot)),
                "live thread {thread}'s slot was forgotten"
            );
        }
        // Those inserted since the last scan (35 of the 500 here).
        let exited = map.slots.len() - live.len();
        assert!(exited < 100, "{exited} exited threads' slots kept");
        assert!(
            map.scanned < 3 * 1000,
            "scanned {} slots for 1000 threads",
            map.scanned
        );
    }

    /// The number hasher spreads consecutive numbers over the low bits (the
    /// bucket) and the top seven (the control byte).
    #[test]
    fn numbers_hash_apart() {
        let hash = |n: u64| Numbers.hash_one(n);
        let low: std::collections::HashSet<u64> = (0..64).map(|n| hash(n) % 64).collect();
        assert_eq!(low.len(), 64);
        let top: std::collections::HashSet<u64> = (0..64).map(|n| hash(n) >> 57).collect();
        assert!(top.len() > 32, "{} control bytes", top.len());
        let mut bytes = NumberHasher(0);
        bytes.write(&[1, 2]);
        let mut other = NumberHasher(0);
        other.write(&[2, 1]);
        assert_ne!(bytes.finish(), other.finish());
    }

    /// A key whose map a thread lost in a fork held keeps `created` in the child:
    /// the renewal reads the flag kept beside the map (`Shared::created`), as the
    /// held map is out of reach. The "lost holder" is this thread with its guard
    /// forgotten; the child's generation is one ahead of the process's (`lock_in`).
    #[test]
    fn a_map_held_by_a_lost_thread_renews_created() {
        let key = Tss::<u32>::new();
        key.create();
        std::mem::forget(key.shared.lock());
        let renewed = key
            .shared
            .map
            .lock_in(crate::sync::generation() + 1, |previous| {
                key.shared.renew(previous)
            });
        let (held, created) = (previous_was_held(&renewed), renewed.created);
        drop(renewed);
        // Dropping the key would lock the held generation's map: leaked, as a
        // lost thread's is, before any assertion can unwind into that drop.
        std::mem::forget(key);
        assert!(held, "the held map was read");
        assert!(created, "the key was created before the fork");
    }

    /// Whether a renewed map came from nothing (its holder lost): no slots, no
    /// lost values.
    fn previous_was_held(map: &Map<u32>) -> bool {
        map.slots.is_empty() && map.lost.is_empty()
    }
}

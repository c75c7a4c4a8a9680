//! `_thread._local` (`localobject`): its per-thread dicts, on `pythread::Tss`, and its
//! initialization-arguments rule. The host keeps the attribute lookup (it needs its object
//! model) and calls [`release_thread_dicts`] from
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

/// `_thread._local`'s per-thread dicts (`localobject`'s `localdummy` and its `thread_local`
/// bookkeeping): one value `D` (the host's dict) per thread, on a `pythread::Tss`. A thread's
/// dict goes when the thread ends: a thread started by the module drops it attached, in
/// [`release_thread_dicts`] (call it from [`Runtime::thread_exiting`](crate::Runtime::thread_exiting));
/// any other thread's with its thread-local destructors. Every dict goes with the object.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// use std::collections::HashMap;
/// use threadmodule::LocalDicts;
///
/// let local: LocalDicts<HashMap<String, i32>> = LocalDicts::new();
/// let len = local.get_or_init(HashMap::len, HashMap::new, |_| Ok::<(), ()>(()));
/// assert_eq!(len, Ok(0));
/// assert_eq!(local.with(|d| d.map(HashMap::len)), Some(0));
/// # });
/// ```
pub struct LocalDicts<D: Send + 'static> {
    key: std::sync::Arc<pythread::Tss<D>>,
    /// The [`FORKS`] count this object last dropped its lost dicts at.
    forks: AtomicU64,
}

// Plain atomics, not the facade's (as the crate's `src/fork.rs`): they change only in a forked
// child, which no loom model makes.
use std::sync::atomic::{AtomicU64, Ordering};

/// How many forked children this process descends from: bumped by [`after_fork_child`]. A
/// `LocalDicts` whose count is behind drops the dicts of the threads lost in those forks at
/// its next access.
static FORKS: AtomicU64 = AtomicU64::new(0);

/// In a forked child, on the forking thread
/// ([`ModuleState::after_fork_child`](crate::ModuleState::after_fork_child) calls it): the
/// dicts of the threads that did not survive the fork go at each `_local`'s next access in the
/// child (with the interpreter attached, as every access is), as CPython frees them with the
/// lost threads' states. A `_local` never used again in the child drops them with itself.
pub(crate) fn after_fork_child() {
    FORKS.fetch_add(1, Ordering::Relaxed);
}

impl<D: Send + 'static> std::fmt::Debug for LocalDicts<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalDicts").finish_non_exhaustive()
    }
}

impl<D: Send + 'static> Default for LocalDicts<D> {
    fn default() -> LocalDicts<D> {
        LocalDicts::new()
    }
}

/// A key this thread made a dict in, type-erased for [`USED`].
trait Release {
    fn release(&self);
}

impl<D: Send + 'static> Release for pythread::Tss<D> {
    fn release(&self) {
        drop(self.take());
    }
}

/// The smallest [`Used::prune_at`].
const PRUNE_FLOOR: usize = 64;

/// The keys a thread has made a dict in. A key goes in when the thread's dict is stored
/// there (again, after a failed `__init__` or `clear` took it out); an entry is stale once
/// its `_local` is gone, or when another names the same key: pruned when the list reaches
/// `prune_at`, twice the entries left by the last pruning, so that a thread that never ends
/// (the main thread) making and dropping `_local`s keeps a list no longer than twice its live
/// `_local`s (and 64), at O(1) amortized per insertion.
struct Used {
    keys: Vec<std::sync::Weak<dyn Release>>,
    prune_at: usize,
}

impl Used {
    /// The entries of live keys, one per key. Run with `USED` not
    /// borrowed: the last reference to a key may go here (its `_local` dropped meanwhile by
    /// another thread), and with it every thread's dict, whose host code may use a `_local`.
    fn pruned(keys: Vec<std::sync::Weak<dyn Release>>) -> Vec<std::sync::Weak<dyn Release>> {
        #[cfg(all(test, not(loom)))]
        tests::count_scanned(keys.len());
        let mut seen = std::collections::HashSet::new();
        let mut keys = keys;
        keys.retain(|weak| weak.upgrade().is_some() && seen.insert(weak.as_ptr() as *const ()));
        keys
    }
}

/// Registers `key` as one the calling thread has just stored its dict in, for
/// [`release_thread_dicts`]; prunes the list first when it has reached its size.
fn register(key: std::sync::Weak<dyn Release>) {
    let _ = USED.try_with(|used| {
        let mut guard = used.borrow_mut();
        if guard.keys.len() < guard.prune_at {
            guard.keys.push(key);
            return;
        }
        let keys = std::mem::take(&mut guard.keys);
        drop(guard);
        let mut kept = Used::pruned(keys);
        let mut guard = used.borrow_mut();
        // What the pruning's drops registered meanwhile, after the kept entries.
        kept.append(&mut guard.keys);
        guard.prune_at = (2 * kept.len()).max(PRUNE_FLOOR);
        kept.push(key);
        guard.keys = kept;
    });
}

std::thread_local! {
    /// The keys this thread has made a dict in: what [`release_thread_dicts`] empties.
    static USED: std::cell::RefCell<Used> = const {
        std::cell::RefCell::new(Used { keys: Vec::new(), prune_at: PRUNE_FLOOR })
    };
}

/// Drops the calling thread's dict of every `_local` it used, now: a thread started by the
/// module calls it last, attached ([`Runtime::thread_exiting`](crate::Runtime::thread_exiting)),
/// so that the dicts' finalizers run attached. A finalizer that uses a `_local` again makes a
/// new dict, which the next round drops.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// let local: threadmodule::LocalDicts<Vec<u8>> = threadmodule::LocalDicts::new();
/// local.get_or_init(Vec::len, Vec::new, |_| Ok::<(), ()>(())).unwrap();
/// threadmodule::release_thread_dicts();
/// assert_eq!(local.with(|d| d.is_some()), false);
/// # });
/// ```
pub fn release_thread_dicts() {
    loop {
        let used = USED
            .try_with(|u| std::mem::take(&mut u.borrow_mut().keys))
            .unwrap_or_default();
        if used.is_empty() {
            return;
        }
        for key in used.iter().filter_map(std::sync::Weak::upgrade) {
            key.release();
        }
    }
}

impl<D: Send + 'static> LocalDicts<D> {
    /// No dict in any thread yet.
    ///
    /// # Examples
    ///
    /// See [`LocalDicts`].
    pub fn new() -> LocalDicts<D> {
        let key = pythread::Tss::new();
        key.create();
        LocalDicts {
            key: std::sync::Arc::new(key),
            forks: AtomicU64::new(FORKS.load(Ordering::Relaxed)),
        }
    }

    /// Calls `f` with the calling thread's dict, if it has one. `f` runs under the key's lock:
    /// it must not use this `_local` (read a reference out and use it after).
    ///
    /// # Examples
    ///
    /// See [`LocalDicts`].
    pub fn with<T>(&self, f: impl FnOnce(Option<&D>) -> T) -> T {
        self.drop_lost_dicts();
        self.key.with(f)
    }

    /// The calling thread's dict (`_ldict`), read by `read`: the existing one, or else a new
    /// one (`make`), stored, and then `init` run with what `read` gave (the class's `__init__`
    /// with the constructor's arguments, when it has one: the host decides). If `init` fails
    /// the new dict is forgotten, so that the next access makes another and runs `init`
    /// again, and its error is returned. `init` runs with no lock held: it may use the
    /// `_local`.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use threadmodule::LocalDicts;
    ///
    /// let local: LocalDicts<Vec<u8>> = LocalDicts::new();
    /// assert_eq!(local.get_or_init(Vec::len, Vec::new, |_| Err("__init__ raised")), Err("__init__ raised"));
    /// assert!(local.with(|d| d.is_none()), "forgotten");
    /// assert_eq!(local.get_or_init(Vec::len, Vec::new, |_| Ok::<(), &str>(())), Ok(0));
    /// # });
    /// ```
    pub fn get_or_init<R, E>(
        &self,
        read: impl Fn(&D) -> R,
        make: impl FnOnce() -> D,
        init: impl FnOnce(&R) -> Result<(), E>,
    ) -> Result<R, E> {
        self.drop_lost_dicts();
        if let Some(existing) = self.key.with(|d| d.map(&read)) {
            return Ok(existing);
        }
        let dict = make();
        let fresh = read(&dict);
        self.insert(dict);
        if let Err(err) = init(&fresh) {
            drop(self.key.take());
            return Err(err);
        }
        Ok(fresh)
    }

    /// Stores `dict` as the calling thread's (the creating thread's dict, made by
    /// `local_new`), registered for [`release_thread_dicts`]. `false` on a thread already
    /// running its thread-local destructors (the dict is then dropped).
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let local = threadmodule::LocalDicts::new();
    /// assert!(local.insert(vec![1u8]));
    /// assert_eq!(local.with(|d| d.cloned()), Some(vec![1]));
    /// # });
    /// ```
    pub fn insert(&self, dict: D) -> bool {
        self.drop_lost_dicts();
        match self.key.set(dict) {
            // The thread had a dict here: the key is registered already.
            Ok(Some(old)) => {
                drop(old);
                true
            }
            Ok(None) => {
                register(std::sync::Arc::downgrade(&self.key) as std::sync::Weak<dyn Release>);
                true
            }
            Err(dict) => {
                drop(dict);
                false
            }
        }
    }

    /// Calls `f` with every thread's dict (the garbage collector's `tp_traverse`), under the
    /// key's lock.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let local = threadmodule::LocalDicts::new();
    /// local.insert(3);
    /// let mut seen = Vec::new();
    /// local.for_each(|d| seen.push(*d));
    /// assert_eq!(seen, [3]);
    /// # });
    /// ```
    pub fn for_each(&self, f: impl FnMut(&D)) {
        self.key.for_each(f);
    }

    /// In a forked child after [`after_fork_child`]: drops, here, the dicts of the threads
    /// that did not survive (once per fork; a relaxed load and a compare otherwise).
    #[inline]
    fn drop_lost_dicts(&self) {
        let forks = FORKS.load(Ordering::Relaxed);
        if self.forks.load(Ordering::Relaxed) != forks {
            self.forks.store(forks, Ordering::Relaxed);
            drop(self.key.take_lost_values());
        }
    }

    /// Drops every thread's dict (`local_clear`); the `_local` stays usable, empty.
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let local = threadmodule::LocalDicts::new();
    /// local.insert(3);
    /// local.clear();
    /// assert_eq!(local.with(|d| d.copied()), None);
    /// # });
    /// ```
    pub fn clear(&self) {
        self.key.delete();
        self.key.create();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{LocalDicts, USED};

    std::thread_local! {
        /// How many entries this thread's prunings have looked at.
        static SCANNED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// A pruning looked at `n` entries.
    pub(super) fn count_scanned(n: usize) {
        SCANNED.with(|scanned| scanned.set(scanned.get() + n));
    }

    fn used_len() -> usize {
        USED.with(|u| u.borrow().keys.len())
    }

    /// A thread that never ends (the main thread, here the test's) making and dropping
    /// 100,000 `_local`s keeps a bounded list of them, and the live ones' dicts still go.
    #[test]
    fn dropped_locals_leave_a_bounded_list() {
        let kept: Vec<LocalDicts<u32>> = (0..10).map(|_| LocalDicts::new()).collect();
        for (i, local) in kept.iter().enumerate() {
            assert!(local.insert(i as u32));
        }
        for i in 0..100_000 {
            let local = LocalDicts::new();
            assert!(local.insert(i));
        }
        assert!(
            used_len() <= 128,
            "{} entries for 10 live locals",
            used_len()
        );
        super::release_thread_dicts();
        assert!(kept.iter().all(|local| local.with(|d| d.is_none())));
        assert_eq!(used_len(), 0);
    }

    /// One `_local` whose dict is taken out and made again (an `__init__` that raises) stays
    /// one entry after pruning, and its dict still goes.
    #[test]
    fn a_dict_made_again_stays_one_entry() {
        let local = LocalDicts::<u32>::new();
        for _ in 0..100_000 {
            let made = local.get_or_init(|d| *d, || 1, |_| Err::<(), ()>(()));
            assert_eq!(made, Err(()));
        }
        assert!(used_len() <= 128, "{} entries for one local", used_len());
        assert_eq!(local.get_or_init(|d| *d, || 2, |_| Ok::<(), ()>(())), Ok(2));
        super::release_thread_dicts();
        assert!(local.with(|d| d.is_none()));
    }

    /// 20,000 live `_local`s registered one by one: the prunings look at fewer than 3 entries
    /// per registration (the list doubles between two), not at the whole list each time.
    #[test]
    fn registration_is_amortized() {
        const N: usize = 20_000;
        let live: Vec<LocalDicts<u32>> = (0..N).map(|_| LocalDicts::new()).collect();
        for (i, local) in live.iter().enumerate() {
            assert!(local.insert(i as u32));
        }
        let scanned = SCANNED.with(std::cell::Cell::get);
        assert!(
            scanned < 3 * N,
            "{scanned} entries scanned for {N} registrations"
        );
        assert_eq!(used_len(), N, "every live local registered once");
        super::release_thread_dicts();
        assert!(live.iter().all(|local| local.with(|d| d.is_none())));
    }

    /// The list is pruned when it reaches its size, not one entry later: the 65th
    /// registration after 64 of dropped `_local`s finds the list full and leaves it with one.
    #[test]
    fn a_full_list_is_pruned_at_the_next_registration() {
        for i in 0..super::PRUNE_FLOOR {
            assert!(LocalDicts::new().insert(i));
        }
        assert_eq!(used_len(), super::PRUNE_FLOOR);
        let last = LocalDicts::new();
        assert!(last.insert(0u32));
        assert_eq!(used_len(), 1, "the 64 dead entries pruned");
    }

    #[test]
    fn debug_names_the_type() {
        assert_eq!(
            format!("{:?}", LocalDicts::<u8>::new()),
            "LocalDicts { .. }"
        );
    }
}

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

std::thread_local! {
    /// The keys this thread has made a dict in: what [`release_thread_dicts`] empties.
    static USED: std::cell::RefCell<Vec<std::sync::Weak<dyn Release>>> =
        const { std::cell::RefCell::new(Vec::new()) };
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
            .try_with(|u| std::mem::take(&mut *u.borrow_mut()))
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
        }
    }

    /// Calls `f` with the calling thread's dict, if it has one. `f` runs under the key's lock:
    /// it must not use this `_local` (read a reference out and use it after).
    ///
    /// # Examples
    ///
    /// See [`LocalDicts`].
    pub fn with<T>(&self, f: impl FnOnce(Option<&D>) -> T) -> T {
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
        match self.key.set(dict) {
            Ok(old) => {
                drop(old);
                let weak = std::sync::Arc::downgrade(&self.key) as std::sync::Weak<dyn Release>;
                let _ = USED.try_with(|u| u.borrow_mut().push(weak));
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

//! The fork generation, and [`ForkMutex`]: the crate's brief internal lock that a
//! `fork()` cannot leave held.
//!
//! After `fork()` only the forking thread exists in the child; any lock another
//! thread held at that instant stays held for ever there. CPython re-initializes
//! its locks in the child (`_PyThread_at_fork_reinit`); a `std` `Mutex` cannot be
//! re-initialized through a shared reference (and the data it guards may be half
//! updated), so a [`ForkMutex`] keeps one `Mutex` per fork *generation* instead.
//! Within a generation it is a plain `Mutex`. The first use in a later generation
//! (in the child) links a fresh `Mutex` for it, whose value is renewed from the
//! previous generation's if that lock is free; if a thread that vanished in the
//! fork held it, the old value is never touched again (neither read nor dropped:
//! it may be half updated) and the renewal starts from nothing. So the forking
//! thread holds nothing across the host's code around `fork()`, and no thread
//! ever waits for a thread that is not there.
//!
//! The generation lives here rather than in `crate::fork` so that every user of
//! it (the registry, `Tss`, handles, the portable wait backend) depends on the
//! facade only, and `crate::fork` on them, never the other way round.

#[cfg(loom)]
use std::cell::Cell;
use std::sync::TryLockError;

use super::{AtomicU64, Mutex, MutexGuard, OnceLock, Ordering, lock};

/// The fork generation (how many times `after_fork_child` has run in this
/// process's ancestry) and the ident of the thread that called the last one.
/// Process-wide plain atomics outside loom: they change only in a forked child
/// before it has other threads. Under loom, one plain cell per OS thread, which
/// is one per model (loom runs a model's threads on the test's thread), so that
/// only the fork models (`loom_tests/fork.rs`), through [`advance`], ever move it.
#[cfg(not(loom))]
static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
#[cfg(not(loom))]
static SURVIVOR: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
#[cfg(loom)]
std::thread_local! {
    static MODEL: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// The current fork generation (0 in a process that never forked).
///
/// Relaxed: it changes only in `after_fork_child`, which runs before the child
/// starts any thread; every later reader happens-after it through the start.
#[inline]
pub(crate) fn generation() -> u64 {
    #[cfg(not(loom))]
    return GENERATION.load(std::sync::atomic::Ordering::Relaxed);
    #[cfg(loom)]
    return MODEL.with(|model| model.get().0);
}

/// Enters the next generation, in which the thread `survivor` (an ident number)
/// is the only one left of the earlier ones: `after_fork_child`'s step.
pub(crate) fn advance(survivor: u64) {
    #[cfg(not(loom))]
    {
        SURVIVOR.store(survivor, std::sync::atomic::Ordering::Relaxed);
        GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    #[cfg(loom)]
    MODEL.with(|model| model.set((model.get().0 + 1, survivor)));
}

/// Whether the thread numbered `ident`, started in `generation`, did not survive
/// a fork: started before the last fork and not the thread that called
/// `after_fork_child`.
#[inline]
pub(crate) fn is_lost(generation: u64, ident: u64) -> bool {
    #[cfg(not(loom))]
    let (now, survivor) = (
        GENERATION.load(std::sync::atomic::Ordering::Relaxed),
        SURVIVOR.load(std::sync::atomic::Ordering::Relaxed),
    );
    #[cfg(loom)]
    let (now, survivor) = MODEL.with(Cell::get);
    generation != now && ident != survivor
}

/// A mutex that a `fork()` cannot leave held: one `Mutex<T>` per fork generation,
/// linked lazily (see the module docs). `lock` takes a `renew` function that
/// makes this generation's value from the previous one's (`Some`, when its lock
/// was free) or from nothing (`None`, when a thread lost in the fork held it); it
/// runs once per generation, on whichever thread uses the lock first there.
///
/// `T: Default` for dropping: a generation whose lock a lost thread held keeps
/// its value forgotten (replaced by a default and leaked), never dropped.
pub(crate) struct ForkMutex<T: Default> {
    root: Node<T>,
}

struct Node<T: Default> {
    generation: u64,
    mutex: Mutex<T>,
    next: Link<T>,
}

/// The way to the next generation's node: `node` is set once, by the one thread
/// whose compare-exchange on `claim` won, and only read (never waited on) by the
/// others, so a claimant that vanishes in a fork can never make anyone wait.
struct Link<T: Default> {
    /// 0 while unclaimed; else [`tag`] of the claimant's generation, with
    /// [`SETTING`] once it is about to set `node`.
    claim: AtomicU64,
    node: OnceLock<Box<Node<T>>>,
}

/// In a claim: the claimant is inside `OnceLock::set` (until then a claim whose
/// owner vanished can be taken over: `node` is untouched).
const SETTING: u64 = 1;

/// A claim of generation `generation` (never 0).
fn tag(generation: u64) -> u64 {
    (generation + 1) << 1
}

impl<T: Default> Link<T> {
    #[cfg(not(loom))]
    const fn new() -> Link<T> {
        Link {
            claim: AtomicU64::new(0),
            node: OnceLock::new(),
        }
    }

    #[cfg(loom)]
    fn new() -> Link<T> {
        Link {
            claim: AtomicU64::new(0),
            node: OnceLock::new(),
        }
    }
}

impl<T: Default> ForkMutex<T> {
    /// A lock of the current generation.
    #[cfg(not(loom))]
    pub(crate) fn new(value: T) -> ForkMutex<T> {
        ForkMutex::with_generation(generation(), value)
    }

    /// For a `static`: a lock of generation 0 (a process that has forked links
    /// one node more at its first use).
    #[cfg(not(loom))]
    pub(crate) const fn new_static(value: T) -> ForkMutex<T> {
        ForkMutex::with_generation(0, value)
    }

    #[cfg(not(loom))]
    const fn with_generation(generation: u64, value: T) -> ForkMutex<T> {
        ForkMutex {
            root: Node {
                generation,
                mutex: Mutex::new(value),
                next: Link::new(),
            },
        }
    }

    /// A lock of the current generation.
    #[cfg(loom)]
    pub(crate) fn new(value: T) -> ForkMutex<T> {
        ForkMutex {
            root: Node {
                generation: generation(),
                mutex: Mutex::new(value),
                next: Link::new(),
            },
        }
    }

    /// Locks this generation's mutex (ignoring poison, as [`lock`] does), first
    /// linking it, with `renew`, if this is its first use in this generation.
    #[inline]
    pub(crate) fn lock(&self, renew: impl FnOnce(Option<&mut T>) -> T) -> MutexGuard<'_, T> {
        lock(&self.node(generation(), renew).mutex)
    }

    /// [`lock`](ForkMutex::lock) as generation `generation` would (for the unit
    /// tests: the process's generation stays, or other tests' handles would read
    /// as lost).
    #[cfg(test)]
    #[cfg(not(loom))]
    pub(crate) fn lock_in(
        &self,
        generation: u64,
        renew: impl FnOnce(Option<&mut T>) -> T,
    ) -> MutexGuard<'_, T> {
        lock(&self.node(generation, renew).mutex)
    }

    /// The node of `generation`: the root in a process that never forked (one
    /// compare), else found (or linked) along the chain.
    #[inline]
    fn node(&self, generation: u64, renew: impl FnOnce(Option<&mut T>) -> T) -> &Node<T> {
        if self.root.generation == generation {
            return &self.root;
        }
        self.find(generation, renew)
    }

    #[cold]
    fn find(&self, generation: u64, renew: impl FnOnce(Option<&mut T>) -> T) -> &Node<T> {
        let mut renew = Some(renew);
        let mut node = &self.root;
        loop {
            if node.generation == generation {
                return node;
            }
            if let Some(next) = node.next.node.get() {
                node = next;
                continue;
            }
            // `node` is the newest: link this generation's after it.
            let claim = node.next.claim.load(Ordering::Acquire);
            let owner = claim & !SETTING;
            if owner == tag(generation) {
                // A thread of this process is linking it right now (briefly).
                super::thread::yield_now();
                continue;
            }
            assert!(
                claim & SETTING == 0,
                "pythread: a thread vanished in fork() while it linked a lock's new \
                 generation (inside OnceLock::set): this lock cannot be renewed"
            );
            // Unclaimed, or claimed by a thread lost in a fork before it began to
            // set the link: take it.
            if node
                .next
                .claim
                .compare_exchange(claim, tag(generation), Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            let renew = renew.take().expect("one renewal per call");
            let value = match node.mutex.try_lock() {
                Ok(mut previous) => renew(Some(&mut previous)),
                Err(TryLockError::Poisoned(poisoned)) => renew(Some(&mut poisoned.into_inner())),
                // Held by a thread that is not in this process.
                Err(TryLockError::WouldBlock) => renew(None),
            };
            let fresh = Box::new(Node {
                generation,
                mutex: Mutex::new(value),
                next: Link::new(),
            });
            node.next
                .claim
                .store(tag(generation) | SETTING, Ordering::Release);
            // The claim makes this the only `set`: it cannot fail nor wait.
            let _ = node.next.node.set(fresh);
        }
    }

    /// Calls `f` with every generation's value that no lost thread's lock covers
    /// (exclusive access: nothing to lock), oldest first.
    pub(crate) fn each_mut(&mut self, mut f: impl FnMut(&mut T)) {
        let mut node = &mut self.root;
        loop {
            if !matches!(node.mutex.try_lock(), Err(TryLockError::WouldBlock)) {
                f(node
                    .mutex
                    .get_mut()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()));
            }
            match node.next.node.get_mut() {
                Some(next) => node = next,
                None => return,
            }
        }
    }
}

impl<T: Default> Node<T> {
    /// Whether a later generation has begun since this node's: not the current
    /// one, or one has been linked after it (the unit tests link generations
    /// without moving the process's).
    fn superseded(&mut self) -> bool {
        #[cfg(not(loom))]
        let linked = self.next.node.get_mut().is_some();
        // Under loom only the fork models move the generation, and a look at the
        // link would be one more scheduling point in every model.
        #[cfg(loom)]
        let linked = false;
        self.generation != generation() || linked
    }
}

impl<T: Default> Drop for Node<T> {
    fn drop(&mut self) {
        // With `&mut self` no live thread can hold the lock: if it is held, a
        // thread lost in a fork holds it, and the value may be half updated. Only
        // an earlier generation's lock can be (and only then is it looked at: under
        // loom a `try_lock` is a scheduling point every model would pay for).
        if self.superseded() && matches!(self.mutex.try_lock(), Err(TryLockError::WouldBlock)) {
            let value = self
                .mutex
                .get_mut()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            std::mem::forget(std::mem::take(value));
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A value whose clones of one `Arc` count how many copies are alive.
    struct Counted(#[allow(dead_code)] std::sync::Arc<()>);
    impl Default for Counted {
        fn default() -> Counted {
            Counted(std::sync::Arc::new(()))
        }
    }

    fn lock_next<T: Default>(
        mutex: &ForkMutex<T>,
        renew: impl FnOnce(Option<&mut T>) -> T,
    ) -> MutexGuard<'_, T> {
        mutex.lock_in(mutex.root.generation + 1, renew)
    }

    /// The first use in a new generation renews from the previous value when its
    /// lock is free, and runs `renew` once.
    #[test]
    fn a_free_lock_is_renewed_from_its_value() {
        let mutex = ForkMutex::new(vec![1]);
        lock(&mutex.root.mutex).push(2);
        let mut renewals = 0;
        let guard = lock_next(&mutex, |old| {
            renewals += 1;
            std::mem::take(old.expect("the old lock was free"))
        });
        assert_eq!(*guard, [1, 2]);
        drop(guard);
        lock_next(&mutex, |_| unreachable!("renewed twice")).push(3);
        assert_eq!(renewals, 1);
        assert!(lock(&mutex.root.mutex).is_empty(), "moved out");
    }

    /// A lock held at the fork (a guard forgotten, as a vanished thread's is)
    /// reads as free in the next generation, renewed from nothing; the held
    /// value is never dropped.
    #[test]
    fn a_lock_held_by_a_lost_thread_is_renewed_from_nothing() {
        let witness = std::sync::Arc::new(());
        let mutex = ForkMutex::new(Counted(std::sync::Arc::clone(&witness)));
        std::mem::forget(lock(&mutex.root.mutex));
        let guard = lock_next(&mutex, |old| {
            assert!(old.is_none(), "the held value was handed out");
            Counted::default()
        });
        drop(guard);
        assert!(mutex.root.mutex.try_lock().is_err(), "the old lock moved");
        drop(mutex);
        assert_eq!(
            std::sync::Arc::strong_count(&witness),
            2,
            "the held value was dropped (it may be half updated)"
        );
    }

    /// A lock of another generation held by a lost thread, dropped where nothing
    /// was linked after it (a key dropped in a child that never used it): its
    /// value is not dropped either. (The unit tests cannot move the process's
    /// generation, so the root is of a later one; `superseded` asks only "not
    /// the current one".)
    #[test]
    fn a_held_lock_of_another_generation_keeps_its_value_unlinked() {
        let witness = std::sync::Arc::new(());
        let mutex =
            ForkMutex::with_generation(generation() + 1, Counted(std::sync::Arc::clone(&witness)));
        std::mem::forget(lock(&mutex.root.mutex));
        drop(mutex);
        assert_eq!(
            std::sync::Arc::strong_count(&witness),
            2,
            "the held value was dropped (it may be half updated)"
        );
    }

    /// A free lock of an earlier generation keeps what `renew` left in it, and
    /// drops it with the lock (only a held one is leaked).
    #[test]
    fn a_free_superseded_lock_drops_its_value() {
        let witness = std::sync::Arc::new(());
        let mutex = ForkMutex::new(Counted(std::sync::Arc::clone(&witness)));
        drop(lock_next(&mutex, |old| {
            assert!(old.is_some(), "the old lock was free");
            Counted::default()
        }));
        drop(mutex);
        assert_eq!(
            std::sync::Arc::strong_count(&witness),
            1,
            "the free lock's value was leaked"
        );
    }

    /// A claim on the next generation's link left by a thread lost in a fork
    /// before it began to set the link (its generation's tag, no `SETTING`) is
    /// taken over: the first use in the child links the node and renews.
    #[test]
    fn a_claim_left_by_a_lost_thread_is_taken_over() {
        let root = generation() + 1;
        let mutex = ForkMutex::with_generation(root, 7);
        mutex.root.next.claim.store(tag(root), Ordering::Relaxed);
        let mut renewals = 0;
        let guard = mutex.lock_in(root + 1, |old| {
            renewals += 1;
            *old.expect("the old lock was free") + 1
        });
        assert_eq!(*guard, 8);
        drop(guard);
        assert_eq!(renewals, 1);
        assert_eq!(
            mutex.root.next.claim.load(Ordering::Relaxed),
            tag(root + 1) | SETTING
        );
    }

    /// A thread that finds the next generation's link claimed by a thread of its
    /// own generation (linking it right now) waits for that link: it neither
    /// renews nor links a second time.
    #[test]
    fn a_link_in_progress_is_waited_for() {
        let root = generation() + 1;
        let mutex = std::sync::Arc::new(ForkMutex::with_generation(root, 7));
        mutex
            .root
            .next
            .claim
            .store(tag(root + 1), Ordering::Relaxed);
        let (done, finished) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn({
            let mutex = std::sync::Arc::clone(&mutex);
            move || {
                let guard = mutex.lock_in(root + 1, |_| panic!("renewed during another link"));
                done.send(*guard).unwrap();
            }
        });
        // Not a synchronization: the waiter may not even have started yet, in
        // which case this checks less, never wrongly.
        assert_eq!(
            finished.recv_timeout(std::time::Duration::from_millis(50)),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout),
            "the waiter did not wait for the link in progress"
        );
        // The other linker finishes, as `find` does: the claim, then the node.
        mutex
            .root
            .next
            .claim
            .store(tag(root + 1) | SETTING, Ordering::Release);
        let _ = mutex.root.next.node.set(Box::new(Node {
            generation: root + 1,
            mutex: Mutex::new(42),
            next: Link::new(),
        }));
        let value = finished
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("watchdog: the waiter never found the link");
        assert_eq!(value, 42);
        waiter.join().unwrap();
    }

    /// `each_mut` visits every generation's value, oldest first, except one whose
    /// lock a lost thread held.
    #[test]
    fn each_mut_visits_every_value_but_a_held_one() {
        let mut mutex = ForkMutex::new(1);
        let root = mutex.root.generation;
        std::mem::forget(mutex.lock_in(root + 1, |old| *old.expect("free") + 1));
        drop(mutex.lock_in(root + 2, |old| {
            assert!(old.is_none(), "the held value was handed out");
            3
        }));
        let mut seen = Vec::new();
        mutex.each_mut(|value| seen.push(*value));
        assert_eq!(seen, [1, 3]);
    }
}

//! The portable backend of the wait primitive (CPython's "mutex+cond" lock build):
//! every non-Linux target, and Linux with `--cfg pythread_generic`.
//!
//! The shape of `parking_lot_core`'s bucket queues, in safe code: a fixed table of
//! buckets, chosen by hashing the word's address, each holding the queue of the
//! threads asleep on any word that hashes to it, in arrival order, each entry
//! tagged with its word's address. Every thread sleeps on its own [`Waiter`] (a
//! flag, a mutex and a condition variable, made once per thread), so
//! [`wake_one`] wakes exactly the oldest sleeper on that word and no other: the
//! sleepers on other words of the same bucket, and the other sleepers on the same
//! word, stay asleep.
//!
//! It never reports [`Wake::Interrupted`]: `std`'s `Condvar` retries `EINTR`
//! internally, so a signal handler cannot end a wait here.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use super::{AtomicU32, ForkMutex, Instant, Ordering, Wake, now};

/// One thread's place to sleep. `notified` is set (under the bucket lock) by the
/// waker that takes the entry out of the queue; `mutex` and `condvar` make the
/// sleep and the wake-up race-free: the waker takes `mutex` before notifying, so
/// a notification cannot fall between the sleeper's look at the flag and its sleep.
struct Waiter {
    notified: std::sync::atomic::AtomicBool,
    mutex: Mutex<()>,
    condvar: Condvar,
    /// The kernel id of the thread, for the tests' "is it asleep" ([`sleepers`]).
    #[cfg(all(test, target_os = "linux"))]
    tid: i32,
}

impl Waiter {
    fn new() -> Arc<Waiter> {
        Arc::new(Waiter {
            notified: std::sync::atomic::AtomicBool::new(false),
            mutex: Mutex::new(()),
            condvar: Condvar::new(),
            #[cfg(all(test, target_os = "linux"))]
            tid: rustix::thread::gettid().as_raw_nonzero().get(),
        })
    }

    /// Wakes the thread sleeping on this waiter; `notified` is already set.
    fn notify(&self) {
        // Taking the mutex orders this after the sleeper's look at `notified`.
        drop(lock(&self.mutex));
        self.condvar.notify_one();
    }
}

/// The threads asleep on the words of one bucket: (word address, waiter), oldest
/// first. Aligned to a cache line so that neighbouring buckets do not share one.
/// A [`ForkMutex`]: in a forked child, a bucket that a vanished thread held is
/// renewed empty, and the queued sleepers (threads that do not exist there) are
/// forgotten, not dropped (a vanished waker may have held one's mutex): left in
/// the queue, one of them could take a wake meant for a thread of the child.
#[repr(align(64))]
struct Bucket {
    queue: ForkMutex<Queue>,
}

impl Bucket {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock(renew_queue)
    }
}

/// A bucket's queue in a new fork generation: empty; the previous generation's
/// sleepers are forgotten.
fn renew_queue(previous: Option<&mut Queue>) -> Queue {
    if let Some(previous) = previous {
        for entry in previous.drain(..) {
            std::mem::forget(entry);
        }
    }
    Queue::new()
}

/// A bucket's sleepers: (word address, waiter), oldest first.
type Queue = Vec<(usize, Arc<Waiter>)>;

const BUCKETS: usize = 64;

#[allow(clippy::declare_interior_mutable_const)] // only used to fill the table
const EMPTY: Bucket = Bucket {
    queue: ForkMutex::new_static(Vec::new()),
};

static TABLE: [Bucket; BUCKETS] = [EMPTY; BUCKETS];

std::thread_local! {
    /// This thread's waiter, made on its first wait and reused: a thread waits on
    /// one word at a time, and is out of every queue whenever [`wait`] returns.
    static WAITER: std::cell::RefCell<Arc<Waiter>> = std::cell::RefCell::new(Waiter::new());
}

fn address(word: &AtomicU32) -> usize {
    word as *const AtomicU32 as usize
}

fn bucket(address: usize) -> &'static Bucket {
    // Fibonacci hashing: the top bits of the product depend on every bit of the
    // address (its two low bits, always zero for a 4-byte word, change nothing).
    let hash = address.wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as usize);
    &TABLE[hash >> (usize::BITS - BUCKETS.trailing_zeros())]
}

/// Locks `mutex`, ignoring poison: nothing here panics while holding a lock.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn wait(word: &AtomicU32, expected: u32, deadline: Option<Instant>) -> Wake {
    // A thread whose thread-locals are being destroyed (a lock taken in a TLS
    // destructor) gets a waiter of its own for this one wait.
    let waiter = WAITER
        .try_with(|waiter| Arc::clone(&waiter.borrow()))
        .unwrap_or_else(|_| Waiter::new());
    let address = address(word);
    let bucket = bucket(address);
    {
        let mut queue = bucket.lock();
        // Checked under the bucket lock, which every waker takes after changing
        // the word: a wake cannot slip in between this check and the enqueue.
        if word.load(Ordering::SeqCst) != expected {
            return Wake::Woken;
        }
        if deadline.is_some_and(|deadline| now() >= deadline) {
            return Wake::TimedOut;
        }
        waiter.notified.store(false, Ordering::Relaxed);
        queue.push((address, Arc::clone(&waiter)));
    }
    sleep(&waiter, deadline);
    if waiter.notified.load(Ordering::Acquire) {
        return Wake::Woken;
    }
    // The deadline passed. A waker may have taken the entry out since: then it
    // set `notified` under the bucket lock, and this wait counts as woken (its
    // wake-up is not lost: the caller re-checks the word).
    let mut queue = bucket.lock();
    match queue.iter().position(|(_, w)| Arc::ptr_eq(w, &waiter)) {
        Some(index) => {
            queue.remove(index);
            Wake::TimedOut
        }
        None => Wake::Woken,
    }
}

/// Sleeps until `notified` is set or the deadline passes (on our clock: never
/// early); spurious condition variable wake-ups go back to sleep.
fn sleep(waiter: &Waiter, deadline: Option<Instant>) {
    let mut guard = lock(&waiter.mutex);
    while !waiter.notified.load(Ordering::Acquire) {
        guard = match deadline {
            None => waiter
                .condvar
                .wait(guard)
                .unwrap_or_else(PoisonError::into_inner),
            Some(deadline) => {
                let Some(left) = deadline
                    .checked_duration_since(now())
                    .filter(|left| !left.is_zero())
                else {
                    return;
                };
                waiter
                    .condvar
                    .wait_timeout(guard, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
        };
    }
}

/// Takes the oldest sleeper on `word` out of its bucket's queue, marked notified.
fn take_one(address: usize) -> Option<Arc<Waiter>> {
    let mut queue = bucket(address).lock();
    let index = queue.iter().position(|(a, _)| *a == address)?;
    let (_, waiter) = queue.remove(index);
    waiter.notified.store(true, Ordering::Release);
    Some(waiter)
}

/// In a forked child, on the surviving thread: a fresh waiter, since a waker that
/// vanished may have held its mutex (the buckets renew themselves, see [`Bucket`]).
pub(crate) fn after_fork_child() {
    let _ = WAITER.try_with(|waiter| *waiter.borrow_mut() = Waiter::new());
}

pub(crate) fn wake_one(word: &AtomicU32) {
    // Notified after the bucket lock is released, so that the woken thread does
    // not wake into a held lock.
    if let Some(waiter) = take_one(address(word)) {
        waiter.notify();
    }
}

pub(crate) fn wake_all(word: &AtomicU32) {
    let address = address(word);
    let mut woken = Vec::new();
    {
        let mut queue = bucket(address).lock();
        queue.retain(|(a, waiter)| {
            if *a != address {
                return true;
            }
            waiter.notified.store(true, Ordering::Release);
            woken.push(Arc::clone(waiter));
            false
        });
    }
    for waiter in woken {
        waiter.notify();
    }
}

/// The number of sleepers queued on `word` (for the tests in `super::tests`).
#[cfg(test)]
pub(super) fn queued(word: &AtomicU32) -> usize {
    let address = address(word);
    bucket(address)
        .lock()
        .iter()
        .filter(|(a, _)| *a == address)
        .count()
}

/// How many threads are queued on `word` and asleep: the kernel reports them
/// in state `S` in the `futex` system call (std's condition variable, on Linux).
/// The generic counterpart of the lock tests' "asleep in `futex` on the word".
#[cfg(all(test, target_os = "linux"))]
pub(super) fn sleepers(word: &AtomicU32) -> usize {
    let address = address(word);
    let tids: Vec<i32> = bucket(address)
        .lock()
        .iter()
        .filter(|(a, _)| *a == address)
        .map(|(_, waiter)| waiter.tid)
        .collect();
    let futex = libc::SYS_futex.to_string();
    tids.into_iter()
        .filter(|tid| {
            let task = format!("/proc/self/task/{tid}");
            let syscall = std::fs::read_to_string(format!("{task}/syscall")).unwrap_or_default();
            let stat = std::fs::read_to_string(format!("{task}/stat")).unwrap_or_default();
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next());
            syscall.split_whitespace().next() == Some(futex.as_str()) && state == Some("S")
        })
        .count()
}

/// Two distinct words of `words` that hash to the same bucket.
#[cfg(test)]
pub(super) fn same_bucket_pair(words: &[AtomicU32]) -> (usize, usize) {
    for i in 0..words.len() {
        for j in i + 1..words.len() {
            if std::ptr::eq(bucket(address(&words[i])), bucket(address(&words[j]))) {
                return (i, j);
            }
        }
    }
    panic!("no two of {} words share a bucket", words.len());
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_timed_out_waiter_leaves_the_queue() {
        let word = AtomicU32::new(0);
        let deadline = now() + std::time::Duration::from_millis(5);
        assert_eq!(wait(&word, 0, Some(deadline)), Wake::TimedOut);
        assert!(now() >= deadline);
        assert_eq!(queued(&word), 0);
        // A wake with nobody queued is a no-op.
        wake_one(&word);
        wake_all(&word);
        assert_eq!(queued(&word), 0);
    }

    /// In the child of a fork, queued sleepers are threads that do not exist:
    /// the next generation's queue is empty, and the vanished sleepers are
    /// forgotten (never dropped), whether the bucket was free or held.
    #[test]
    fn a_fork_forgets_the_queued_sleepers() {
        for held in [false, true] {
            let ghost = Waiter::new();
            let bucket = Bucket {
                queue: ForkMutex::new(vec![(8, Arc::clone(&ghost))]),
            };
            if held {
                std::mem::forget(bucket.lock());
            }
            let next = super::super::generation() + 1;
            assert!(bucket.queue.lock_in(next, renew_queue).is_empty());
            drop(bucket);
            assert_eq!(Arc::strong_count(&ghost), 2, "held {held}: dropped or kept");
        }
    }
}

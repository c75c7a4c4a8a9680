//! The portable backend of the wait primitive: a fixed table of mutex + condition
//! variable buckets, hashed by the word's address (CPython's "mutex+cond" lock
//! build, and the shape of `parking_lot_core`'s generic parker).
//!
//! It never reports [`Wake::Interrupted`]: `std`'s `Condvar` retries `EINTR`
//! internally, so a signal handler cannot end a wait here. Words that hash to the
//! same bucket share its condition variable, so both wakes notify every waiter of
//! the bucket and the others see a spurious [`Wake::Woken`] and re-check.

use std::sync::{Condvar, Mutex, PoisonError};

use super::{now, AtomicU32, Instant, Ordering, Wake};

struct Bucket {
    mutex: Mutex<()>,
    condvar: Condvar,
}

const BUCKETS: usize = 64;

#[allow(clippy::declare_interior_mutable_const)] // only used to fill the table
const EMPTY: Bucket = Bucket {
    mutex: Mutex::new(()),
    condvar: Condvar::new(),
};

static TABLE: [Bucket; BUCKETS] = [EMPTY; BUCKETS];

fn bucket(word: &AtomicU32) -> &'static Bucket {
    let address = word as *const AtomicU32 as usize;
    // Fibonacci hashing: the top bits of the product depend on every bit of the
    // address (its two low bits, always zero for a 4-byte word, change nothing).
    let hash = address.wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as usize);
    &TABLE[hash >> (usize::BITS - BUCKETS.trailing_zeros())]
}

pub(crate) fn wait(word: &AtomicU32, expected: u32, deadline: Option<Instant>) -> Wake {
    let bucket = bucket(word);
    let guard = bucket.mutex.lock().unwrap_or_else(PoisonError::into_inner);
    // Checked under the bucket lock, which every waker takes after changing the
    // word: a wake cannot slip in between this check and the sleep.
    if word.load(Ordering::SeqCst) != expected {
        return Wake::Woken;
    }
    match deadline {
        None => {
            drop(
                bucket
                    .condvar
                    .wait(guard)
                    .unwrap_or_else(PoisonError::into_inner),
            );
            Wake::Woken
        }
        Some(deadline) => {
            let Some(left) = deadline
                .checked_duration_since(now())
                .filter(|l| !l.is_zero())
            else {
                return Wake::TimedOut;
            };
            drop(
                bucket
                    .condvar
                    .wait_timeout(guard, left)
                    .unwrap_or_else(PoisonError::into_inner),
            );
            // Woken, spuriously, or timed out: the caller re-checks and, if it
            // still has to wait, calls again, and only the look at our own clock
            // above reports `TimedOut` (as in the futex backend).
            Wake::Woken
        }
    }
}

fn notify(word: &AtomicU32) {
    let bucket = bucket(word);
    // Taking the lock orders this wake after any waiter's check of the word.
    drop(bucket.mutex.lock().unwrap_or_else(PoisonError::into_inner));
    bucket.condvar.notify_all();
}

/// Every bucket's mutex, in table order, for `crate::before_fork`: no waiter or
/// waker holds one while the process forks. A bucket mutex is a leaf (nothing
/// else is locked while it is held), so taking them all cannot deadlock.
pub(crate) fn lock_all() -> Vec<std::sync::MutexGuard<'static, ()>> {
    TABLE
        .iter()
        .map(|bucket| bucket.mutex.lock().unwrap_or_else(PoisonError::into_inner))
        .collect()
}

pub(crate) fn wake_one(word: &AtomicU32) {
    notify(word);
}

pub(crate) fn wake_all(word: &AtomicU32) {
    notify(word);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `lock_all` (for `before_fork`) holds every bucket until its guards drop.
    #[test]
    fn lock_all_holds_every_bucket() {
        let held = lock_all();
        assert_eq!(held.len(), BUCKETS);
        assert!(TABLE.iter().all(|bucket| bucket.mutex.try_lock().is_err()));
        drop(held);
        // The other unit tests of this backend may hold a bucket for a moment.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        for bucket in &TABLE {
            while bucket.mutex.try_lock().is_err() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "a bucket stayed locked"
                );
                std::thread::yield_now();
            }
        }
    }
}

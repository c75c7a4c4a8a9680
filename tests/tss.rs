//! `Tss<T>`: one key, many threads, each sees only its own value; a deleted key reads
//! as empty; every value is dropped exactly once, when its thread exits or the key is
//! deleted or dropped, whichever comes first (checked with `Drop` probes).
#![cfg(not(loom))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::{self, ThreadId};
use std::time::Instant;

use pythread::Tss;

mod support;
use support::{WATCHDOG, join_std};

/// A value that records where and how often it was dropped.
struct Probe {
    tag: usize,
    drops: Arc<Mutex<Vec<(usize, ThreadId)>>>,
}

impl Drop for Probe {
    fn drop(&mut self) {
        // Never panic here: a failed assert elsewhere poisons the lock, and a panic
        // in a Drop during that unwinding would abort the whole test binary.
        self.drops
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push((self.tag, thread::current().id()));
    }
}

fn probes() -> Arc<Mutex<Vec<(usize, ThreadId)>>> {
    Arc::new(Mutex::new(Vec::new()))
}

/// Waits (bounded) until `drops` holds `n` entries; fails with a message otherwise.
fn wait_for_drops(drops: &Mutex<Vec<(usize, ThreadId)>>, n: usize) -> Vec<(usize, ThreadId)> {
    let deadline = Instant::now() + WATCHDOG;
    loop {
        let now = drops.lock().unwrap().clone();
        if now.len() >= n {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {n} values dropped within {WATCHDOG:?}",
            now.len()
        );
        thread::yield_now();
    }
}

/// A one-shot barrier whose wait is bounded: if a participant never arrives (it
/// panicked), the others fail with a message instead of hanging.
struct Rendezvous {
    parties: usize,
    arrived: AtomicUsize,
}

impl Rendezvous {
    fn new(parties: usize) -> Rendezvous {
        Rendezvous {
            parties,
            arrived: AtomicUsize::new(0),
        }
    }

    fn wait(&self) {
        self.arrived.fetch_add(1, Ordering::SeqCst);
        let deadline = Instant::now() + WATCHDOG;
        while self.arrived.load(Ordering::SeqCst) < self.parties {
            assert!(
                Instant::now() < deadline,
                "only {} of {} parties arrived within {WATCHDOG:?}",
                self.arrived.load(Ordering::SeqCst),
                self.parties
            );
            thread::yield_now();
        }
    }
}

#[test]
fn the_type_is_send_sync_debug_and_static() {
    fn bounds<T: Send + Sync + std::fmt::Debug + 'static>() {}
    bounds::<Tss<u8>>();
    bounds::<Tss<std::cell::Cell<u8>>>(); // Send but not Sync: still a shareable key
    let key = Tss::<u8>::default();
    assert_eq!(
        format!("{key:?}"),
        "Tss { created: false, threads_with_values: 0, lost_values: 0 }"
    );
}

#[test]
fn not_created_key_refuses_and_reads_empty() {
    let key = Tss::<u32>::new();
    assert!(!key.is_created());
    assert_eq!(key.set(5), Err(5));
    assert_eq!(key.get(), None);
    assert_eq!(key.take(), None);
    key.delete(); // no-op
    assert!(!key.is_created());
    key.create();
    key.create(); // idempotent
    assert!(key.is_created());
    assert_eq!(key.set(5), Ok(None));
    assert_eq!(key.set(6), Ok(Some(5)));
    assert_eq!(key.get(), Some(6));
    assert_eq!(key.take(), Some(6));
    assert_eq!(key.get(), None);
}

#[test]
fn each_thread_sees_only_its_own_value() {
    const THREADS: usize = 8;
    let key = Arc::new(Tss::<usize>::new());
    key.create();
    key.set(usize::MAX).unwrap();
    let all_set = Arc::new(Rendezvous::new(THREADS + 1));
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let (key, all_set) = (Arc::clone(&key), Arc::clone(&all_set));
            pythread::start(move || {
                assert_eq!(key.get(), None, "thread {i} sees a value it never set");
                if i % 2 == 0 {
                    assert_eq!(key.set(i), Ok(None));
                }
                all_set.wait(); // every value is set now, on every thread
                let expected = (i % 2 == 0).then_some(i);
                for _ in 0..100 {
                    assert_eq!(key.get(), expected, "thread {i}");
                    thread::yield_now();
                }
            })
        })
        .collect();
    all_set.wait();
    for handle in handles {
        handle
            .join_timeout(WATCHDOG)
            .expect("finished within the watchdog")
            .unwrap();
    }
    assert_eq!(key.get(), Some(usize::MAX));
}

#[test]
fn a_value_is_dropped_on_its_thread_when_the_thread_exits() {
    let key = Arc::new(Tss::new());
    key.create();
    let drops = probes();
    let (k, d) = (Arc::clone(&key), Arc::clone(&drops));
    // std's join waits for the OS thread's exit, thread-local destructors included.
    let worker = thread::spawn(move || {
        k.set(Probe { tag: 1, drops: d }).ok().unwrap();
        thread::current().id()
    });
    let worker_id = join_std(worker, "the worker");
    assert_eq!(*drops.lock().unwrap(), vec![(1, worker_id)]);
    assert_eq!(
        format!("{key:?}"),
        "Tss { created: true, threads_with_values: 0, lost_values: 0 }"
    );
    key.delete(); // nothing left to drop
    assert_eq!(drops.lock().unwrap().len(), 1, "dropped exactly once");
}

#[test]
fn a_pythread_thread_drops_its_value_at_exit() {
    let key = Arc::new(Tss::new());
    key.create();
    let drops = probes();
    let (k, d) = (Arc::clone(&key), Arc::clone(&drops));
    let handle = pythread::start(move || {
        k.set(Probe { tag: 7, drops: d }).ok().unwrap();
    });
    handle
        .join_timeout(WATCHDOG)
        .expect("finished within the watchdog")
        .unwrap();
    // `join` waits for the fn, not for the thread-local destructors: wait for them.
    let dropped = wait_for_drops(&drops, 1);
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].0, 7);
    assert_ne!(
        dropped[0].1,
        thread::current().id(),
        "dropped on its own thread"
    );
}

#[test]
fn delete_drops_every_threads_value_here_and_the_key_reads_empty() {
    const THREADS: usize = 4;
    let key = Arc::new(Tss::new());
    key.create();
    let drops = probes();
    let (set_tx, set_rx) = mpsc::channel();
    let deleted = Arc::new(Rendezvous::new(THREADS + 1));
    let checked = Arc::new(Rendezvous::new(THREADS + 1));
    let workers: Vec<_> = (0..THREADS)
        .map(|i| {
            let (key, drops, set_tx) = (Arc::clone(&key), Arc::clone(&drops), set_tx.clone());
            let (deleted, checked) = (Arc::clone(&deleted), Arc::clone(&checked));
            thread::spawn(move || {
                key.set(Probe { tag: i, drops }).ok().unwrap();
                set_tx.send(()).unwrap();
                deleted.wait();
                // A deleted key reads as empty and refuses values...
                assert!(key.take().is_none());
                assert!(
                    key.set(Probe {
                        tag: 100 + i,
                        drops: probes()
                    })
                    .is_err()
                );
                checked.wait();
            })
        })
        .collect();
    for _ in 0..THREADS {
        set_rx
            .recv_timeout(WATCHDOG)
            .expect("every worker set its value");
    }
    key.delete();
    // ...and every value was dropped by delete, here, while the threads still live.
    let dropped = drops.lock().unwrap().clone();
    assert_eq!(dropped.len(), THREADS);
    assert!(dropped.iter().all(|(_, on)| *on == thread::current().id()));
    let mut tags: Vec<usize> = dropped.iter().map(|(tag, _)| *tag).collect();
    tags.sort_unstable();
    assert_eq!(tags, (0..THREADS).collect::<Vec<_>>());
    assert!(!key.is_created());
    deleted.wait();
    checked.wait();
    for worker in workers {
        join_std(worker, "a worker");
    }
    // Exiting after the delete drops nothing more: each value was dropped once.
    assert_eq!(drops.lock().unwrap().len(), THREADS);
    // Created again: empty everywhere, usable.
    key.create();
    assert!(key.take().is_none());
    key.set(Probe {
        tag: 9,
        drops: Arc::clone(&drops),
    })
    .ok()
    .unwrap();
    drop(key); // the last reference: dropping the key drops the value
    assert_eq!(drops.lock().unwrap().len(), THREADS + 1);
}

#[test]
fn the_first_of_exit_and_delete_drops_exactly_once() {
    // Threads exit while another thread deletes the key: each value is dropped
    // exactly once, by whichever comes first.
    for round in 0..50 {
        let key = Arc::new(Tss::new());
        key.create();
        let drops = probes();
        let go = Arc::new(Rendezvous::new(3));
        let workers: Vec<_> = (0..2)
            .map(|i| {
                let (key, drops, go) = (Arc::clone(&key), Arc::clone(&drops), Arc::clone(&go));
                thread::spawn(move || {
                    key.set(Probe { tag: i, drops }).ok().unwrap();
                    go.wait();
                })
            })
            .collect();
        go.wait();
        key.delete();
        for worker in workers {
            join_std(worker, "a worker");
        }
        let dropped = drops.lock().unwrap().clone();
        let mut tags: Vec<usize> = dropped.iter().map(|(tag, _)| *tag).collect();
        tags.sort_unstable();
        assert_eq!(tags, vec![0, 1], "round {round}: {dropped:?}");
    }
}

#[test]
fn a_value_whose_drop_uses_the_key_neither_deadlocks_nor_panics() {
    struct Reentrant(Arc<Tss<Reentrant>>, Arc<AtomicUsize>);
    impl Drop for Reentrant {
        fn drop(&mut self) {
            // During delete: the key is deleted, the lock released. During thread
            // exit: this thread's state is gone. Either way, a refusal, no hang.
            let _ = self.0.take();
            self.1.fetch_add(1, Ordering::SeqCst);
        }
    }
    let dropped = Arc::new(AtomicUsize::new(0));
    let key = Arc::new(Tss::new());
    key.create();
    key.set(Reentrant(Arc::clone(&key), Arc::clone(&dropped)))
        .ok()
        .unwrap();
    key.delete();
    assert_eq!(dropped.load(Ordering::SeqCst), 1);

    key.create();
    let (k, d) = (Arc::clone(&key), Arc::clone(&dropped));
    let worker = thread::spawn(move || {
        k.set(Reentrant(Arc::clone(&k), d)).ok().unwrap();
    });
    join_std(worker, "the worker");
    assert_eq!(dropped.load(Ordering::SeqCst), 2);
}

#[test]
fn keys_dropped_before_their_threads_exit_are_fine() {
    let drops = probes();
    let d = Arc::clone(&drops);
    let worker = thread::spawn(move || {
        for tag in 0..100 {
            let key = Tss::new();
            key.create();
            key.set(Probe {
                tag,
                drops: Arc::clone(&d),
            })
            .ok()
            .unwrap();
            // dropped here: its value is dropped with it
        }
        let kept = Tss::new();
        kept.create();
        kept.set(Probe {
            tag: 100,
            drops: Arc::clone(&d),
        })
        .ok()
        .unwrap();
        kept // a key that outlives the thread: the thread's exit drops the value
    });
    let kept = join_std(worker, "the worker");
    assert_eq!(drops.lock().unwrap().len(), 101);
    assert_eq!(
        format!("{kept:?}"),
        "Tss { created: true, threads_with_values: 0, lost_values: 0 }"
    );
}

/// `for_each` (the `_local` GC's traversal) sees the value of every thread that holds one,
/// and no longer the value of a thread that has exited or taken it; `with` borrows only the
/// caller's own.
#[test]
fn for_each_visits_every_threads_value_and_with_only_the_callers() {
    let key = Arc::new(Tss::new());
    key.create();
    key.set(0usize).unwrap();
    let (ready_tx, ready_rx) = mpsc::channel();
    let mut release = Vec::new();
    let mut workers = Vec::new();
    for i in 1..=3usize {
        let k = Arc::clone(&key);
        let ready = ready_tx.clone();
        let (go_tx, go_rx) = mpsc::channel::<bool>();
        release.push(go_tx);
        workers.push(thread::spawn(move || {
            k.set(i * 10).unwrap();
            assert_eq!(k.with(|v| v.copied()), Some(i * 10));
            ready.send(()).unwrap();
            // true: take the value before exiting; false: leave it to the exit
            if go_rx.recv_timeout(WATCHDOG).expect("released") {
                assert_eq!(k.take(), Some(i * 10));
            }
        }));
    }
    for _ in 0..3 {
        ready_rx
            .recv_timeout(WATCHDOG)
            .expect("every worker set its value");
    }
    let seen = |key: &Tss<usize>| {
        let mut v = Vec::new();
        key.for_each(|x| v.push(*x));
        v.sort_unstable();
        v
    };
    assert_eq!(seen(&key), [0, 10, 20, 30]);
    assert_eq!(key.with(|v| v.copied()), Some(0));
    release[0].send(true).unwrap();
    release[1].send(false).unwrap();
    let mut workers = workers.into_iter();
    join_std(workers.next().unwrap(), "worker 1");
    join_std(workers.next().unwrap(), "worker 2");
    assert_eq!(seen(&key), [0, 30]);
    release[2].send(false).unwrap();
    join_std(workers.next().unwrap(), "worker 3");
    assert_eq!(seen(&key), [0]);
    key.delete();
    assert_eq!(seen(&key), Vec::<usize>::new());
    assert_eq!(key.with(|v| v.copied()), None);
}

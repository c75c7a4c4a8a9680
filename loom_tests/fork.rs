//! `fork()` and the crate's internal locks: nothing a thread that vanished held
//! may hang the child (issue 24).
//!
//! No loom model can fork; `pythread::__loom::fork_child()` is what the child's
//! `after_fork_child` does to the crate (the next fork generation, the calling
//! model thread its survivor). A thread "vanishes" by stalling where a real one
//! would be frozen by the fork: inside a `Tss` call, holding the key's lock, until
//! the model has finished with the child (then it is let go, only so that the
//! model ends; in a real child it never runs again).
//!
//! What the models prove:
//!
//! - [`a_key_held_by_a_lost_thread_is_usable_in_the_child`]: a thread lost inside
//!   `Tss::for_each` (holding the key's map lock and its own slot's) leaves the
//!   key usable in the child: every method works without waiting, the forking
//!   thread keeps its value (its slot goes back into the renewed map), and the
//!   lost thread's value, whose slot it held, is out of reach (leaked: it may be
//!   half updated).
//! - [`a_lost_reader_that_re_entered_holds_two_keys`]: a reader lost inside
//!   `Tss::get` whose `clone` re-entered the crate (`with` on a second key), so
//!   that it held a slot of each key: both keys are usable in the child, with the
//!   forking thread's values.
//! - [`child_threads_race_to_renew_a_key`]: the forking thread keeps its value,
//!   a lost thread's value goes to `take_lost_values` exactly once, while two
//!   threads of the child race to be the first to use the key in its new
//!   generation (one renews it, the other waits for that or finds it done).
//!
//! The first two fail (a loom deadlock: the child waits for a lock no thread will
//! ever release) if the locks are not renewed per generation, the third then
//! finds no lost value.
#![cfg(loom)]

mod common;

use common::check;
use loom::sync::{Arc, Condvar, Mutex};
use pythread::Tss;

/// Where a model thread stalls, as if frozen by the fork, until let go.
#[derive(Default)]
struct Stall {
    /// (it has stalled, it may go on)
    state: Mutex<(bool, bool)>,
    changed: Condvar,
}

impl Stall {
    fn stall(&self) {
        let mut state = self.state.lock().unwrap();
        state.0 = true;
        self.changed.notify_all();
        while !state.1 {
            state = self.changed.wait(state).unwrap();
        }
    }

    fn wait_stalled(&self) {
        let mut state = self.state.lock().unwrap();
        while !state.0 {
            state = self.changed.wait(state).unwrap();
        }
    }

    fn let_go(&self) {
        self.state.lock().unwrap().1 = true;
        self.changed.notify_all();
    }
}

/// A value whose `clone` (run by `Tss::get` under its slot's lock) stalls,
/// inside `nested.with` (a second key's slot lock) when there is a nested key;
struct Stalling {
    stall: Arc<Stall>,
    nested: Option<Arc<Tss<u32>>>,
}

/// A `Stalling` value, or the forking thread's own (which never stalls).
#[derive(Clone)]
enum Value {
    Stalls(Stalling),
    Plain(u32),
}

impl Value {
    fn visit(&self) {
        if let Value::Stalls(stalling) = self {
            stalling.stall.stall();
        }
    }
}

impl Clone for Stalling {
    fn clone(&self) -> Stalling {
        match &self.nested {
            Some(nested) => nested.with(|_| self.stall.stall()),
            None => self.stall.stall(),
        }
        Stalling {
            stall: Arc::clone(&self.stall),
            nested: self.nested.clone(),
        }
    }
}

/// Every `Tss` method on `key` in the child, where the forking thread's value is
/// `mine`; none of them may wait.
fn use_in_child<T: Send + Clone + PartialEq + std::fmt::Debug + 'static>(
    key: &Tss<T>,
    mine: T,
    other: T,
) {
    assert!(key.is_created(), "the key was created before the fork");
    key.create();
    assert_eq!(key.get(), Some(mine.clone()), "the forking thread's value");
    assert!(key.with(|v| v == Some(&mine)));
    let mut seen = Vec::new();
    key.for_each(|v| seen.push(v.clone()));
    assert_eq!(seen, [mine.clone()], "only the forking thread's value");
    assert!(
        key.take_lost_values().is_empty(),
        "the held value was handed out"
    );
    assert_eq!(key.set(other.clone()), Ok(Some(mine)));
    assert_eq!(key.take(), Some(other));
    let _ = format!("{key:?}");
    key.delete();
    assert!(!key.is_created());
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        matches!((self, other), (Value::Plain(a), Value::Plain(b)) if a == b)
    }
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Plain(n) => write!(f, "Plain({n})"),
            Value::Stalls(_) => f.write_str("Stalls"),
        }
    }
}

#[test]
fn a_key_held_by_a_lost_thread_is_usable_in_the_child() {
    check(
        "a_key_held_by_a_lost_thread_is_usable_in_the_child",
        None,
        || {
            let stall = Arc::new(Stall::default());
            let key = Arc::new(Tss::new());
            key.create();
            key.set(Value::Plain(0)).unwrap();
            let lost = loom::thread::spawn({
                let (key, stall) = (Arc::clone(&key), Arc::clone(&stall));
                move || {
                    key.set(Value::Stalls(Stalling {
                        stall,
                        nested: None,
                    }))
                    .ok()
                    .unwrap();
                    key.for_each(Value::visit);
                }
            });
            stall.wait_stalled();
            pythread::__loom::fork_child();
            use_in_child(&key, Value::Plain(0), Value::Plain(1));
            stall.let_go();
            lost.join().unwrap();
        },
    );
}

#[test]
fn a_lost_reader_that_re_entered_holds_two_keys() {
    check("a_lost_reader_that_re_entered_holds_two_keys", None, || {
        let stall = Arc::new(Stall::default());
        let nested = Arc::new(Tss::new());
        nested.create();
        nested.set(10).unwrap();
        let key = Arc::new(Tss::new());
        key.create();
        key.set(Value::Plain(0)).unwrap();
        let lost = loom::thread::spawn({
            let (key, nested, stall) = (Arc::clone(&key), Arc::clone(&nested), Arc::clone(&stall));
            move || {
                nested.set(1).unwrap();
                key.set(Value::Stalls(Stalling {
                    stall,
                    nested: Some(nested),
                }))
                .ok()
                .unwrap();
                drop(key.get());
            }
        });
        stall.wait_stalled();
        pythread::__loom::fork_child();
        use_in_child(&nested, 10, 11);
        use_in_child(&key, Value::Plain(0), Value::Plain(1));
        stall.let_go();
        lost.join().unwrap();
    });
}

#[test]
fn child_threads_race_to_renew_a_key() {
    check("child_threads_race_to_renew_a_key", Some(3), || {
        let key = Arc::new(Tss::new());
        key.create();
        key.set(0).unwrap();
        let set = Arc::new(Stall::default());
        let lost = loom::thread::spawn({
            let (key, set) = (Arc::clone(&key), Arc::clone(&set));
            move || {
                key.set(1).unwrap();
                // Frozen outside any call: its value is intact, and lost.
                set.stall();
            }
        });
        set.wait_stalled();
        pythread::__loom::fork_child();
        let child: Vec<_> = (2..4)
            .map(|n| {
                let key = Arc::clone(&key);
                loom::thread::spawn(move || {
                    assert_eq!(key.get(), None, "a child thread saw another's value");
                    key.set(n).unwrap();
                    assert_eq!(key.get(), Some(n));
                })
            })
            .collect();
        let lost_values = key.take_lost_values();
        for thread in child {
            thread.join().unwrap();
        }
        assert_eq!(key.get(), Some(0), "the forking thread's value");
        let mut all = lost_values;
        all.extend(key.take_lost_values());
        assert_eq!(all, [1], "the lost thread's value, exactly once");
        set.let_go();
        lost.join().unwrap();
    });
}

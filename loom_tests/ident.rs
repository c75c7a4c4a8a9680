//! Ident minting under concurrent starts.
//!
//! `main` starts two threads in sequence while another loom thread starts a third,
//! so the mints race on the global counter (a loom atomic, reset per execution).
//! Five model threads in all, loom's maximum: bounded, see the README. What it
//! proves: the three idents are distinct and non-zero, idents minted one after
//! the other on one thread increase, each started function sees its own ident as
//! `current_ident()`, and threads the crate did not start see `None`.
#![cfg(loom)]

mod common;

use common::check;
use loom::sync::{Arc, Mutex};
use loom::thread;
use pythread::{Handle, Ident};

/// Starts a function that records the ident it runs as.
fn start_recording(seen: &Arc<Mutex<Vec<Ident>>>) -> Handle {
    let seen = Arc::clone(seen);
    pythread::start(move || {
        let me = pythread::current_ident().expect("a started fn has an ident");
        seen.lock().unwrap().push(me);
    })
}

#[test]
fn concurrent_starts_mint_unique_idents() {
    // Bound 1 since the joins wait on the shared wait primitive (its loom model
    // serializes every wait and wake on one model lock): bound 2 became 2 947 060
    // executions, 8 min. Bound 1 still preempts a mint between its load and its
    // compare-exchange (on either minting thread).
    check("concurrent_starts_mint_unique_idents", Some(1), || {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let starter = thread::spawn({
            let seen = Arc::clone(&seen);
            move || {
                assert_eq!(pythread::current_ident(), None);
                start_recording(&seen)
            }
        });
        let first = start_recording(&seen);
        let second = start_recording(&seen);
        let third = starter.join().unwrap();
        assert_eq!(pythread::current_ident(), None);

        let mut minted = vec![first.ident(), second.ident(), third.ident()];
        assert!(
            first.ident() < second.ident(),
            "sequential starts must count up"
        );
        for handle in [&first, &second, &third] {
            handle.join().expect("f returned");
        }

        let mut recorded = seen.lock().unwrap().clone();
        minted.sort();
        recorded.sort();
        assert_eq!(recorded, minted, "a started fn saw an ident not its own");
        minted.dedup();
        assert_eq!(minted.len(), 3, "an ident was minted twice");
        assert!(minted.iter().all(|ident| ident.as_u64() != 0));
    });
}

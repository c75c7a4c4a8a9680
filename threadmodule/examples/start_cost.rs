//! What the layer's start costs beside the crate's: N starts and joins of a thread that
//! returns at once, three ways in one run: `pythread::start` + `join` (the peer), the layer's
//! `ThreadHandle::start` + `join` on the Rust-only host (the start handshake: the new thread
//! publishes its host ident before the start returns, then waits for its handle), and the
//! layer's `start_new_thread` (detached). Prints wall-clock time per start and the ratios.
//!
//! `cargo run --release -p threadmodule --example start_cost [N]`

use std::time::Instant;

use threadmodule::minihost::{MiniFunction, MiniInterpreter};
use threadmodule::{ModuleState, StartOptions, ThreadHandle};

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .map_or(2000, |a| a.parse().expect("N: a number"));
    let interp = MiniInterpreter::new();
    let host = interp.attach();
    let module = ModuleState::new(0);
    let f = MiniFunction::new("f", |_| Ok(()));
    // Rounds alternate, so that neither side gets the process's warm-up alone.
    let (mut peer, mut layer) = (Vec::new(), Vec::new());
    for _ in 0..4 {
        let started = Instant::now();
        for _ in 0..n {
            let handle = pythread::start(|| ());
            handle.join().unwrap();
            handle.join_thread().unwrap();
        }
        peer.push(started.elapsed() / n);
        let started = Instant::now();
        for _ in 0..n {
            let handle = ThreadHandle::new(&module);
            handle
                .start(&host, &StartOptions::new(), interp.runner(f.clone()))
                .unwrap();
            handle.join(&host, None).unwrap();
        }
        layer.push(started.elapsed() / n);
    }
    // The first round of each is warm-up.
    let median = |v: &mut Vec<std::time::Duration>| {
        let mut rest = v.split_off(1);
        rest.sort();
        rest[rest.len() / 2]
    };
    let (peer, layer) = (median(&mut peer), median(&mut layer));
    println!("pythread start+join+join_thread: {peer:?} per thread");
    println!(
        "layer start+join (MiniHost):     {layer:?} per thread ({:.2}x)",
        layer.as_secs_f64() / peer.as_secs_f64()
    );
}

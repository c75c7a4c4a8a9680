//! `make demo`: start three threads (one returns, one panics with a message, one
//! panics with a custom payload), join each from several threads at once, and
//! print what every joiner saw.
#![cfg_attr(loom, allow(dead_code, unused_imports))]

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use pythread::{Builder, Handle, Panic};

/// A custom panic payload, as `std::panic::panic_any` raises it.
#[derive(Clone, Debug)]
struct ExitCode(i32);

const JOINERS: usize = 3;

#[cfg(loom)]
fn main() {
    eprintln!("the demo runs on the std build: `cargo run --example demo`");
}

#[cfg(not(loom))]
fn main() {
    // One short line per caught panic instead of the default hook's report, so the
    // table stays readable; the crate never changes the hook itself.
    std::panic::set_hook(Box::new(|info| {
        let name = thread::current().name().unwrap_or("<unnamed>").to_owned();
        let at = info
            .location()
            .map_or_else(String::new, |l| format!(" at line {}", l.line()));
        println!("  (panic hook) thread '{name}' panicked{at}");
    }));

    let mut releases = Vec::new();
    let mut held = || {
        let (release, gate) = mpsc::channel::<()>();
        releases.push(release);
        move || gate.recv().unwrap()
    };

    let workers: Vec<(&str, Handle)> = vec![
        ("returns", {
            let wait = held();
            Builder::new().name("returns").start(wait)
        }),
        ("panics-message", {
            let wait = held();
            Builder::new().name("panics-message").start(move || {
                wait();
                let path = "/tmp/out";
                panic!("disk full writing {path}");
            })
        }),
        ("panics-custom", {
            let wait = held();
            Builder::new().name("panics-custom").start(move || {
                wait();
                std::panic::panic_any(ExitCode(3));
            })
        }),
    ];

    // Every worker is held on the gate: start its joiners, which all block.
    let joiners: Vec<Vec<thread::JoinHandle<Result<(), Panic>>>> = workers
        .iter()
        .map(|(_, handle)| {
            (0..JOINERS)
                .map(|_| {
                    let handle = handle.clone();
                    thread::spawn(move || handle.join())
                })
                .collect()
        })
        .collect();
    thread::sleep(Duration::from_millis(50));
    let still_running = workers.iter().filter(|(_, h)| !h.is_finished()).count();
    println!("pythread demo: {still_running} threads held, {JOINERS} joiners blocked on each\n");
    println!("releasing them; the default panic hook would report each panic here:");
    for release in releases {
        release.send(()).unwrap();
    }
    let results: Vec<Vec<Result<(), Panic>>> = joiners
        .into_iter()
        .map(|js| js.into_iter().map(|j| j.join().unwrap()).collect())
        .collect();
    println!();

    println!("ident  name            joiners  outcome                              one Panic");
    println!("{:-<6} {:-<15} {:-<8} {:-<36} {:-<9}", "", "", "", "", "");
    for ((name, handle), seen) in workers.iter().zip(results) {
        let own = handle.join();
        let agree = seen.iter().all(|o| match (o, &own) {
            (Ok(()), Ok(())) => true,
            (Err(a), Err(b)) => Panic::ptr_eq(a, b),
            _ => false,
        });
        let (outcome, same) = match &own {
            Ok(()) => ("Ok(())".to_owned(), "-"),
            Err(panic) => {
                let what = match (panic.message(), panic.downcast_cloned::<ExitCode>()) {
                    (Some(text), _) => format!("Err: {text:?}"),
                    (None, Some(ExitCode(code))) => format!("Err: ExitCode({code}) (custom)"),
                    (None, None) => "Err: (unknown payload)".to_owned(),
                };
                (what, if agree { "yes" } else { "NO" })
            }
        };
        println!(
            "{:<6} {:<15} {:<8} {:<36} {}",
            handle.ident(),
            name,
            format!("{}/{}", seen.len(), JOINERS),
            outcome,
            same
        );
        assert!(agree, "joiners of {name} disagree");
    }

    println!(
        "\nTIMEOUT_MAX = {} us (= {} ns, fits in i64; about {} years)",
        pythread::TIMEOUT_MAX,
        pythread::TIMEOUT_MAX * 1000,
        pythread::TIMEOUT_MAX / 1_000_000 / 86_400 / 365
    );
    println!(
        "get_stacksize() = {}, set_stacksize(1 MiB) = {}",
        pythread::get_stacksize(),
        pythread::set_stacksize(1 << 20)
    );
}

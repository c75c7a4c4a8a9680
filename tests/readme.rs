//! The README's example, run as a test: the lines between the markers below must
//! appear verbatim (less their indentation) in README.md, so the example a
//! newcomer copies is one that compiles, runs and passes. The example's joins
//! have no timeout, so the whole example runs under the shared watchdog.
#![cfg(not(loom))]

mod support;

const BEGIN: &str = "// README example: begin";
const END: &str = "// README example: end";

#[test]
#[rustfmt::skip] // the body is the README's text, as written there
fn readme_example_runs() {
    support::bounded("the README example", || {
        // README example: begin
        use std::time::Duration;

        let worker = pythread::start(|| {
            // ... work that may panic ...
        });

        // Clones share the thread; any of them can join, from any thread, any number of times.
        let watcher = worker.clone();
        let observer = pythread::start(move || match watcher.join() {
            Ok(()) => println!("worker returned"),
            Err(panic) => println!("worker panicked: {panic}"),
        });

        assert!(worker.join_timeout(Duration::from_secs(5)).is_some());
        assert!(worker.is_finished());
        observer.join().unwrap();

        let failing = pythread::start(|| panic!("disk full"));
        let panic = failing.join().unwrap_err();
        assert_eq!(panic.message(), Some("disk full"));
        assert!(pythread::Panic::ptr_eq(&panic, &failing.join().unwrap_err()));
        // README example: end
    });
}

#[test]
fn readme_shows_this_example() {
    let source = include_str!("readme.rs");
    let start = source.rfind(BEGIN).expect("begin marker") + BEGIN.len();
    let end = source.rfind(END).expect("end marker");
    let body: String = source[start..end]
        .lines()
        .skip(1) // the rest of the marker's line
        .map(|line| line.strip_prefix("        ").unwrap_or(line).trim_end())
        .collect::<Vec<_>>()
        .join("\n")
        .trim_end()
        .to_owned();
    let readme = include_str!("../README.md");
    assert!(
        readme.contains(&format!("```rust\n{body}\n```")),
        "README.md's example differs from tests/readme.rs:\n{body}"
    );
}

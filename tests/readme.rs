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
        use std::sync::Arc;
        use std::time::Duration;

        // Typed, as std::thread::spawn: join gives back what the function returned.
        let h = pythread::start(|| 6 * 7);
        assert_eq!(h.join().unwrap(), 42);

        // Clones share the thread: each joins it, from any thread, any number of times.
        let joiners: Vec<_> = (0..3)
            .map(|_| {
                let h = h.clone();
                pythread::start(move || h.join().unwrap())
            })
            .collect();
        for joiner in &joiners {
            assert_eq!(joiner.join().unwrap(), 42);
        }
        assert_eq!(h.join_timeout(Duration::from_secs(5)).unwrap().unwrap(), 42);
        assert!(h.is_finished());

        // A panic is a value, the same one for every join.
        let failing = pythread::start(|| panic!("disk full"));
        let panic = failing.join().unwrap_err();
        assert_eq!(panic.message(), Some("disk full"));
        assert!(pythread::Panic::ptr_eq(&panic, &failing.join().unwrap_err()));

        // CPython's lock: timed acquire; any thread may release it; an extra release is an Err.
        let lock = Arc::new(pythread::Lock::new());
        lock.acquire();
        assert!(!lock.acquire_timeout(Duration::from_millis(10)));
        let other = Arc::clone(&lock);
        pythread::start(move || other.release().unwrap()).join().unwrap();
        assert_eq!(lock.release().unwrap_err().to_string(), "release unlocked lock");
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

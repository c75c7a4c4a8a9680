//! Interrupted lock acquires for real (Linux), with a SIGUSR1 handler installed
//! WITH `SA_RESTART` (as signal-hook installs its handlers): the kernel restarts a
//! futex wait that has no timeout after such a handler, so the crate's wait must
//! never give the kernel "no timeout".
//! The cases are in `support/lock_signal_cases.rs`, shared with
//! `lock_signals.rs`, which installs the other kind.
#![cfg(all(target_os = "linux", not(loom)))]

/// The handler kind of this binary (read by `support/signals.rs`).
const SA_RESTART: bool = true;

#[path = "support/signals.rs"]
mod signals;

#[path = "support/lock.rs"]
mod lock_support;

#[path = "support/lock_signal_cases.rs"]
mod cases;

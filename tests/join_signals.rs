//! Interrupted joins for real (Linux), with a SIGUSR1 handler installed
//! WITHOUT `SA_RESTART` (as CPython installs its handlers).
//! The cases are in `support/join_signal_cases.rs`, shared with
//! `join_signals_restart.rs`, which installs the other kind.
#![cfg(all(target_os = "linux", not(loom)))]

/// The handler kind of this binary (read by `support/signals.rs`).
const SA_RESTART: bool = false;

#[path = "support/signals.rs"]
mod signals;

#[path = "support/join_signal_cases.rs"]
mod cases;

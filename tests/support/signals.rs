//! A SIGUSR1 handler installed WITHOUT `SA_RESTART` (as CPython installs its
//! handlers), shared by the real-signal tests (`tests/lock_signals.rs`,
//! `tests/join_signals.rs`). Linux only, test-only `unsafe` (the crate has none).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, Once};

/// How many times the handler has run in this test binary.
pub static HANDLED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_usr1(_: libc::c_int) {
    HANDLED.fetch_add(1, Ordering::SeqCst);
}

/// Installs the handler once, and serializes the tests of one binary (they count
/// handler runs on one global counter).
pub fn setup() -> MutexGuard<'static, ()> {
    static INSTALL: Once = Once::new();
    static SERIAL: Mutex<()> = Mutex::new(());
    INSTALL.call_once(|| {
        // SAFETY: a zeroed sigaction is valid; the handler only touches an atomic.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_usr1 as extern "C" fn(libc::c_int) as usize;
            action.sa_flags = 0; // no SA_RESTART, as CPython
            libc::sigemptyset(&mut action.sa_mask);
            assert_eq!(
                libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()),
                0
            );
        }
    });
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

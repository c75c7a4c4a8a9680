//! The SIGUSR1 handler of the real-signal tests, installed WITH or WITHOUT
//! `SA_RESTART` as the including test binary says (`crate::SA_RESTART`: a handler
//! is process-wide, so each handler kind has its own binary). CPython installs its
//! handlers without `SA_RESTART`; signal-hook, the usual Rust crate, with it.
//! Linux only, test-only `unsafe` (the crate has none).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, Once};

/// How many times the handler has run in this test binary.
pub static HANDLED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_usr1(_: libc::c_int) {
    HANDLED.fetch_add(1, Ordering::SeqCst);
}

/// Whether this build's wait reports interruptions: the futex backend does,
/// the generic one (`--cfg pythread_generic`, CPython's "mutex+cond") never does.
pub const INTERRUPTIBLE: bool = cfg!(not(pythread_generic));

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
            action.sa_flags = if crate::SA_RESTART {
                libc::SA_RESTART
            } else {
                0
            };
            libc::sigemptyset(&mut action.sa_mask);
            assert_eq!(
                libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()),
                0
            );
        }
    });
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

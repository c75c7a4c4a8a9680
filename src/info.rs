//! What CPython reports about its thread layer: `PyThread_GetInfo` (`sys.thread_info`)
//! and `PyThread_get_thread_native_id` (`threading.get_native_id`).

use std::sync::OnceLock;

/// The description of the thread layer that CPython exposes as `sys.thread_info`:
/// the port of `PyThread_GetInfo`.
///
/// | field | Linux | other Unix | Windows |
/// |---|---|---|---|
/// | `name` | `"pthread"` | `"pthread"` | `"nt"` |
/// | `lock` | `Some("semaphore")` (`Some("mutex+cond")` with `--cfg pythread_generic`) | `Some("mutex+cond")` | `None` |
/// | `version` | `Some("NPTL 2.36")` (glibc's), or `None` | `None` | `None` |
///
/// `lock` says how this crate's locks wait, in CPython's words: `"semaphore"` where
/// the wait is the Linux futex, which a signal handler interrupts as it interrupts
/// CPython's `sem_clockwait` (so acquires and joins can run pending calls);
/// `"mutex+cond"` where it is a mutex and condition variable, which are never
/// interrupted. Windows reports `None`, as CPython's `nt` build does.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// let info = pythread::thread_info();
/// println!("sys.thread_info(name={:?}, lock={:?}, version={:?})", info.name, info.lock, info.version);
/// assert!(["pthread", "nt"].contains(&info.name));
/// # });
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadInfo {
    /// The thread implementation: `"pthread"` on Unix, `"nt"` on Windows.
    pub name: &'static str,
    /// How a lock waits: `"semaphore"` (interruptible by signals), `"mutex+cond"`, or
    /// `None` (Windows).
    pub lock: Option<&'static str>,
    /// The thread library's version, as glibc's
    /// `confstr(_CS_GNU_LIBPTHREAD_VERSION)` gives it (`"NPTL 2.36"`); `None` where
    /// there is no glibc or it cannot be read.
    pub version: Option<String>,
}

/// Returns the description of the thread layer: the port of `PyThread_GetInfo`
/// (`sys.thread_info`). See [`ThreadInfo`] for the values.
///
/// On Linux the version is glibc's own `"NPTL x.y"` string, the one that
/// `confstr(_CS_GNU_LIBPTHREAD_VERSION)` returns. Calling `confstr` would take
/// `unsafe` FFI, which this crate does not contain; instead the string is read, once
/// per process, out of the C library mapped into the process (the file that
/// `/proc/self/maps` names `libc.so.6`), where glibc keeps it as a constant. Where
/// that fails (musl, a static binary, no `/proc`) the version is `None`, as CPython
/// gives when `confstr` fails.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// let info = pythread::thread_info();
/// if cfg!(target_os = "linux") {
///     assert_eq!(info.name, "pthread");
///     assert!([Some("semaphore"), Some("mutex+cond")].contains(&info.lock));
///     if let Some(version) = &info.version {
///         assert!(version.starts_with("NPTL "));
///     }
/// }
/// # });
/// ```
pub fn thread_info() -> ThreadInfo {
    ThreadInfo {
        name: if cfg!(windows) { "nt" } else { "pthread" },
        // The crate's wait (crate::sync) is the futex on Linux, which reports EINTR,
        // and a mutex + condition variable elsewhere (and on Linux under
        // `--cfg pythread_generic`).
        lock: if cfg!(windows) {
            None
        } else if cfg!(all(target_os = "linux", not(pythread_generic))) {
            Some("semaphore")
        } else {
            Some("mutex+cond")
        },
        version: nptl_version(),
    }
}

/// glibc's `"NPTL x.y"`, read once.
fn nptl_version() -> Option<String> {
    static VERSION: OnceLock<Option<String>> = OnceLock::new();
    VERSION
        .get_or_init(|| {
            if cfg!(target_os = "linux") {
                read_nptl_version()
            } else {
                None
            }
        })
        .clone()
}

/// Finds the mapped `libc.so.6` in `/proc/self/maps` and the `"NPTL x.y"` constant in it.
fn read_nptl_version() -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let path = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| {
            path.rsplit('/')
                .next()
                .is_some_and(|file| file.starts_with("libc.so") || file.starts_with("libc-2."))
        })?;
    find_nptl_version(&std::fs::read(path).ok()?)
}

/// The first NUL-terminated `"NPTL <digits>.<digits>[.<digits>]"` in `bytes`.
fn find_nptl_version(bytes: &[u8]) -> Option<String> {
    const PREFIX: &[u8] = b"NPTL ";
    let mut rest = bytes;
    while let Some(at) = rest.windows(PREFIX.len()).position(|w| w == PREFIX) {
        let after = &rest[at + PREFIX.len()..];
        let len = after
            .iter()
            .position(|&b| !(b.is_ascii_digit() || b == b'.'))
            .unwrap_or(after.len());
        let number = &after[..len];
        let well_formed = after.get(len) == Some(&0)
            && number.first().is_some_and(u8::is_ascii_digit)
            && number.last().is_some_and(u8::is_ascii_digit)
            && number.contains(&b'.');
        if well_formed {
            // ASCII digits and dots only.
            return Some(format!("NPTL {}", String::from_utf8_lossy(number)));
        }
        rest = &rest[at + 1..];
    }
    None
}

/// Returns the operating system's id of the calling thread: the port of
/// `PyThread_get_thread_native_id` (`threading.get_native_id`).
///
/// On Linux this is the kernel's thread id (`gettid`, through [rustix]): the number
/// `/proc/self/task` lists, `ps -L` shows and debuggers print; the main thread's is
/// the process id. Like CPython's, it is unique among live threads only: the kernel
/// reuses the ids of threads that have exited. It is unrelated to [`Ident`](crate::Ident).
///
/// Elsewhere (no kept crate gives the OS thread id there without `unsafe` FFI) it is
/// a number minted once per thread by this crate, unique for the life of the
/// process but not the OS's id.
///
/// [rustix]: https://docs.rs/rustix
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// let mine = pythread::get_native_id();
/// let (tx, rx) = std::sync::mpsc::channel();
/// let handle = pythread::start(move || tx.send(pythread::get_native_id()).unwrap());
/// let theirs = rx.recv().unwrap(); // received while the thread is still alive
/// assert_ne!(mine, theirs);
/// handle.join().unwrap();
/// # });
/// ```
pub fn get_native_id() -> u64 {
    #[cfg(target_os = "linux")]
    {
        // A tid is a positive pid_t.
        rustix::thread::gettid()
            .as_raw_nonzero()
            .get()
            .unsigned_abs()
            .into()
    }
    #[cfg(not(target_os = "linux"))]
    {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(1);
        std::thread_local! {
            static ID: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
        }
        ID.with(|id| *id)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::find_nptl_version;

    #[test]
    fn finds_only_a_terminated_version() {
        assert_eq!(
            find_nptl_version(b"xxNPTL \0NPTL 2.x\0NPTL 2.\0NPTL 2.36\0rest"),
            Some("NPTL 2.36".to_string())
        );
        assert_eq!(find_nptl_version(b"NPTL 2.36 and more\0"), None);
        assert_eq!(find_nptl_version(b"NPTL 12\0"), None);
        assert_eq!(
            find_nptl_version(b"NPTL 2.3.6\0"),
            Some("NPTL 2.3.6".into())
        );
        assert_eq!(find_nptl_version(b"NPTL 2.36"), None); // no NUL
    }
}

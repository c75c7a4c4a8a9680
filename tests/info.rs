//! `thread_info` and `get_native_id` against what the OS itself says.
#![cfg(not(loom))]

use std::collections::HashSet;
use std::sync::mpsc;

mod support;
use support::WATCHDOG;

/// The kernel's id of the calling thread, from `/proc/thread-self` (`<pid>/task/<tid>`).
#[cfg(target_os = "linux")]
fn tid_from_proc() -> u64 {
    let link = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
    let link = link.to_str().unwrap();
    let (pid, tid) = link.split_once("/task/").expect("<pid>/task/<tid>");
    assert_eq!(pid.parse::<u32>().unwrap(), std::process::id());
    tid.parse().unwrap()
}

#[cfg(target_os = "linux")]
fn live_tasks() -> HashSet<u64> {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .map(|entry| {
            entry
                .unwrap()
                .file_name()
                .to_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

#[test]
#[cfg(target_os = "linux")]
fn native_id_is_the_kernel_tid() {
    assert_eq!(pythread::get_native_id(), tid_from_proc());
    assert!(live_tasks().contains(&pythread::get_native_id()));
    let handle = pythread::start(|| {
        let id = pythread::get_native_id();
        assert_eq!(id, tid_from_proc());
        assert!(live_tasks().contains(&id), "{id} not in /proc/self/task");
        assert_eq!(id, pythread::get_native_id(), "stable within a thread");
    });
    handle
        .join_timeout(WATCHDOG)
        .expect("finished within the watchdog")
        .unwrap();
}

#[test]
fn native_ids_of_live_threads_are_distinct() {
    const THREADS: usize = 8;
    // Every thread reports its id, then waits (bounded by the watchdog) to be
    // released once all have reported and the test has looked at /proc: all of them
    // are alive at once.
    let (tx, rx) = mpsc::channel();
    let (releases, handles): (Vec<_>, Vec<_>) = (0..THREADS)
        .map(|_| {
            let tx = tx.clone();
            let (release, released) = mpsc::channel::<()>();
            let handle = pythread::start(move || {
                tx.send(pythread::get_native_id()).unwrap();
                support::recv(&released, "the release by the test");
            });
            (release, handle)
        })
        .unzip();
    let ids: Vec<u64> = (0..THREADS)
        .map(|_| {
            rx.recv_timeout(WATCHDOG)
                .expect("every thread reports its id")
        })
        .collect();
    let distinct: HashSet<u64> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), THREADS, "ids of live threads: {ids:?}");
    assert!(!distinct.contains(&pythread::get_native_id()));
    #[cfg(target_os = "linux")]
    {
        let tasks = live_tasks();
        assert!(distinct.is_subset(&tasks), "{ids:?} not all in {tasks:?}");
    }
    for release in releases {
        release.send(()).unwrap();
    }
    for handle in handles {
        handle
            .join_timeout(WATCHDOG)
            .expect("finished within the watchdog")
            .unwrap();
    }
}

#[test]
fn thread_info_matches_the_platform() {
    let info = pythread::thread_info();
    assert_eq!(info, pythread::thread_info(), "stable");
    // test_sys.test_thread_info's own checks
    assert!(["nt", "pthread", "pthread-stubs", "solaris"].contains(&info.name));
    assert!([None, Some("semaphore"), Some("mutex+cond")].contains(&info.lock));
    #[cfg(target_os = "linux")]
    {
        assert_eq!(info.name, "pthread");
        // The futex backend, or the generic one under `--cfg pythread_generic`.
        let lock = if cfg!(pythread_generic) {
            "mutex+cond"
        } else {
            "semaphore"
        };
        assert_eq!(info.lock, Some(lock));
        // What glibc itself answers for confstr(_CS_GNU_LIBPTHREAD_VERSION), if
        // getconf is installed (it is part of glibc's libc-bin).
        if let Ok(out) = std::process::Command::new("getconf")
            .arg("GNU_LIBPTHREAD_VERSION")
            .output()
        {
            if out.status.success() {
                let glibc = String::from_utf8(out.stdout).unwrap().trim().to_string();
                assert_eq!(info.version.as_deref(), Some(glibc.as_str()));
            }
        }
        if let Some(version) = &info.version {
            let number = version.strip_prefix("NPTL ").expect("NPTL x.y");
            let mut parts = number.split('.');
            assert!(parts.next().unwrap().parse::<u32>().is_ok());
            assert!(parts.next().unwrap().parse::<u32>().is_ok());
        }
    }
}

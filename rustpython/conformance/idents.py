"""Thread idents on RustPython: every ident Python code sees is the interpreter's own.

Usage: pythread-rustpython idents.py    (run by `make rustpython` in both modes, under `timeout`)

RustPython keys its frame registry (`sys._current_frames()`) and its main thread's ident by the
id its own `_thread.get_ident()` computes. The first line printed is the headline check:
`sys._current_frames()` finds every thread, the main thread and a worker, by its ident
("current_frames: 2 of 2"). Then each place an ident shows up: `start_new_thread`'s result,
`_ThreadHandle.ident`, `_get_main_thread_ident()`, `_make_thread_handle`, `Thread.ident`,
`main_thread().ident`, the RLock's repr and `_release_save()` owner, `_acquire_restore` naming
another thread or no thread (CPython's rule: the owner is the number, ownership compares with
`get_ident()`), a thread that reuses the ident of one that ended owning an RLock, the
excepthook's name for a thread without one, and a child forked from a worker. Each check prints
`ok` or `FAIL`; the exit status is the number of failures (0: all passed). Every wait is bounded.
"""

import io
import os
import re
import sys
import threading
import warnings

import _thread

WAIT = 30  # seconds any one wait may take before the check fails
failures = []


def check(name, ok, detail=""):
    """Prints the outcome (with `detail`, what was seen, on a failure)."""
    print("%-4s %s%s" % ("ok" if ok else "FAIL", name, (": " + detail) if detail and not ok
                         else ""), flush=True)
    if not ok:
        failures.append(name)


def in_thread(fn, *, via="threading"):
    """Runs fn() in a new thread started `via` threading, start_new_thread or
    start_joinable_thread; returns (what fn returned, the thread's own get_ident(), what the
    starter saw as the thread's ident)."""
    out = {}
    done = threading.Event()

    def body():
        try:
            out["ident"] = threading.get_ident()
            out["value"] = fn()
        except BaseException as e:  # reported by the check that reads "value"
            out["value"] = e
        finally:
            done.set()

    if via == "threading":
        t = threading.Thread(target=body)
        t.start()
        seen = t.ident
    elif via == "start_new_thread":
        seen = _thread.start_new_thread(body, ())
    else:
        # Read at once (the thread may not have run yet) and again once it has ended.
        handle = _thread.start_joinable_thread(body)
        seen = handle.ident
    if not done.wait(WAIT):
        sys.exit("a thread did not finish within %s s" % WAIT)
    if via == "threading":
        t.join(WAIT)
    elif via == "start_joinable_thread":
        handle.join(WAIT)
        seen = (seen, handle.ident)
    return out.get("value"), out.get("ident"), seen


def current_frames():
    """The headline: the main thread and a waiting worker, each found by its ident."""
    started, release = threading.Event(), threading.Event()

    def worker_waits_here():
        started.set()
        release.wait(WAIT)

    t = threading.Thread(target=worker_waits_here)
    t.start()
    try:
        if not started.wait(WAIT):
            sys.exit("the worker did not start within %s s" % WAIT)
        frames = sys._current_frames()
        found = 0
        main = frames.get(threading.get_ident())
        found += main is not None and main.f_code is current_frames.__code__
        frame = frames.get(t.ident)
        while frame is not None and frame.f_code is not worker_waits_here.__code__:
            frame = frame.f_back
        found += frame is not None
    finally:
        release.set()
        t.join(WAIT)
    print("current_frames: %d of 2" % found, flush=True)
    check("sys._current_frames() finds the main thread and a worker by ident", found == 2,
          "keys %s, main %s, worker %s" % (sorted(frames), threading.get_ident(), t.ident))


def starts():
    for via in ("threading", "start_new_thread", "start_joinable_thread"):
        _, own, seen = in_thread(lambda: None, via=via)
        if via == "start_joinable_thread":
            seen, later = seen
            check("%s: _ThreadHandle.ident once the thread has ended" % via, own == later,
                  "%s != %s" % (later, own))
        check("%s: the starter sees the thread's own get_ident()" % via, own == seen,
              "%s != %s" % (seen, own))
    value, own, _ = in_thread(lambda: (threading.current_thread().ident,
                                       threading.get_ident() in sys._current_frames()))
    check("Thread.ident is the thread's get_ident() and in sys._current_frames()",
          value == (own, True), repr(value))


def main_thread():
    me = threading.get_ident()
    check("_get_main_thread_ident() is the main thread's get_ident()",
          _thread._get_main_thread_ident() == me)
    check("main_thread().ident is get_ident()", threading.main_thread().ident == me)
    check("_make_thread_handle(ident).ident is ident", _thread._make_thread_handle(me).ident == me)
    check("the main thread's handle reads as the main thread",
          threading.main_thread()._os_thread_handle.ident == me)


def rlock_owner():
    me = threading.get_ident()
    lock = _thread.RLock()
    lock.acquire()
    lock.acquire()
    owner = re.search(r"owner=(\d+) count=(\d+)", repr(lock))
    check("RLock repr: owner is get_ident()", owner and owner.groups() == (str(me), "2"),
          repr(lock))
    seen = in_thread(lambda: re.search(r"owner=(\d+)", repr(lock)).group(1))[0]
    check("RLock repr from another thread: the owner's get_ident()", seen == str(me), repr(seen))
    state = lock._release_save()
    check("_release_save() returns (count, get_ident())", state == (2, me), repr(state))
    lock._acquire_restore(state)
    check("_acquire_restore(own state): owned again", lock._recursion_count() == 2)
    lock.release()
    lock.release()


def rlock_restore_other():
    """CPython's rule: `_acquire_restore((count, ident))` makes the thread with `ident` the
    owner, whoever calls it."""
    started, restored, done = threading.Event(), threading.Event(), threading.Event()
    lock = _thread.RLock()
    seen = {}

    def other():
        seen["ident"] = threading.get_ident()
        started.set()
        restored.wait(WAIT)
        seen["owned"] = lock._is_owned()
        seen["count"] = lock._recursion_count()
        try:
            lock.release()
            seen["released"] = not lock.locked()
        except RuntimeError as e:
            seen["released"] = e
        done.set()

    t = threading.Thread(target=other)
    t.start()
    started.wait(WAIT)
    lock._acquire_restore((1, seen["ident"]))
    check("_acquire_restore naming another thread: the caller does not own it",
          not lock._is_owned() and lock._recursion_count() == 0)
    try:
        lock.release()
        check("_acquire_restore naming another thread: the caller cannot release it", False)
    except RuntimeError:
        check("_acquire_restore naming another thread: the caller cannot release it", True)
    check("_acquire_restore naming another thread: repr shows that thread",
          "owner=%d count=1" % seen["ident"] in repr(lock), repr(lock))
    restored.set()
    done.wait(WAIT)
    t.join(WAIT)
    check("_acquire_restore naming another thread: that thread owns it and releases it",
          seen.get("owned") is True and seen.get("count") == 1 and seen.get("released") is True,
          repr(seen))

    nobody = 12345  # no thread's ident: pthread_t values are addresses
    lock = _thread.RLock()  # a fresh one: the other thread may have failed to release
    lock._acquire_restore((3, nobody))
    check("_acquire_restore naming no thread: held, owned by the number, not by the caller",
          lock.locked() and not lock._is_owned() and "owner=%d count=3" % nobody in repr(lock),
          repr(lock))
    lock._at_fork_reinit()


def rlock_reused_ident():
    """A thread that ended owning an RLock: a later thread with the same ident owns it (the
    owner is the number). pthread_t values are reused once a thread is joined; threads are
    started until one gets the ended thread's ident."""
    lock = _thread.RLock()
    _, first, _ = in_thread(lambda: lock.acquire(), via="start_joinable_thread")
    others = []
    for _ in range(50):
        value, ident, _ = in_thread(lambda: (lock._is_owned(), lock._recursion_count()),
                                    via="start_joinable_thread")
        if ident != first:
            others.append(value)
            continue
        check("a thread that reuses an ended owner's ident owns its RLock (after %d other "
              "threads)" % len(others), value == (True, 1), repr(value))
        break
    else:
        print("skip a reused ident: no thread got the ended thread's ident in 50 starts")
    check("threads with other idents do not own the ended thread's RLock",
          all(value == (False, 0) for value in others), repr(others))


def excepthook_name():
    def hook_without_a_thread():
        err = io.StringIO()
        stderr, sys.stderr = sys.stderr, err
        try:
            try:
                raise ValueError("boom")
            except ValueError:
                args = threading.ExceptHookArgs(sys.exc_info() + (None,))
                threading.excepthook(args)
        finally:
            sys.stderr = stderr
        return err.getvalue().splitlines()[0]

    line, ident, _ = in_thread(hook_without_a_thread)
    check("threading.excepthook names a thread without a Thread by its get_ident()",
          line == "Exception in thread %s:" % ident, "%r (get_ident() %s)" % (line, ident))


def fork_from_a_worker():
    if not hasattr(os, "fork"):
        return

    def fork_here():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:
            me = threading.get_ident()
            ok = (threading.main_thread() is threading.current_thread()
                  and threading.current_thread().ident == me
                  and threading.current_thread()._os_thread_handle.ident == me
                  and _thread._get_main_thread_ident() == me
                  and me in sys._current_frames())
            os._exit(0 if ok else 1)
        return os.waitpid(pid, 0)[1]

    status = in_thread(fork_here)[0]
    check("a child forked from a worker: that thread is the main thread, by its ident",
          status == 0, "child exit status %r" % (status,))


current_frames()
starts()
main_thread()
rlock_owner()
rlock_restore_other()
rlock_reused_ident()
excepthook_name()
fork_from_a_worker()
print("%d failed" % len(failures))
sys.exit(len(failures))

"""Process lifecycle checks for `_pythread` (issue 18): interpreter exit and fork.

Usage: python3 lifecycle.py [--path DIR] [--runs N] [--jobs N] [--timeout S] [-v] [CHECK ...]

Every check runs child interpreters (this one, with `-I -S`, so that no `site` hook imports
`threading` first) in which `sys.modules['_thread']` is a stand-in (`_pythread`'s names, with
CPython's own `_thread` for anything it lacks), imported before `threading`, so `threading` is
built on the module and the module's `os.register_at_fork` hooks come before threading's.
A check passes when each of its runs exits 0 with nothing on stderr within --timeout seconds.

- `guard-*` (one run each): a module thread calls `pthread_exit` through ctypes inside each
  call the module makes into Python (the thread's function, the unraisable hook, a reference
  drop that runs `__del__`, `_excepthook`'s callback into Python, `start_joinable_thread`'s
  truth test of `daemon`, `stack_size`'s `__index__` of its argument). CPython 3.11-3.13 end a
  thread with `pthread_exit` at finalization; the forced unwind must stop in the module's guard
  (the thread parks) instead of crashing the process. This bites on every interpreter, also
  where finalization itself rarely shows it.
- `exit-*` (--runs each): the script returns from main while 8 daemon threads run: a busy
  loop, a `time.sleep` loop, blocked in `lock.acquire()`, in a loop of `acquire(timeout=)`
  (each re-attaching after its wait), blocked in `_ThreadHandle.join()`, in a loop of `join(t)`,
  inside `_excepthook` calling back into Python, inside the unraisable hook; and a non-daemon
  thread that finishes while `_shutdown()` waits for it.
- `fork-*` (--runs each): fork while non-daemon and daemon threads run, with a lock and an
  RLock held (and waited for) by threads that do not survive; from the main thread, from a
  `threading.Thread`, from a `start_new_thread` thread. The child checks `_count()`,
  `threading.active_count()`, `_shutdown()` returning promptly, `_at_fork_reinit` of the held
  locks, starts and joins new threads that take every lock kind, and exits; the parent bounds
  it. Also: the module's child hook runs before `threading._after_fork`.
- `fork-import-lock`: a thread that starts a thread while `os.fork()` waits for the import lock
  (after the module's `before` hook took the crate's locks) does not deadlock the fork.
- `local-foreign-*`: a C thread (compiled with `cc`) calls into Python twice through ctypes;
  each call must see a fresh `_local` dict, and the first call's dict must die, on that
  thread, before the second call starts (CPython: a fresh thread state per call).
- `local-fork-*`: in a forked child, the `_local` dict of a thread that did not survive is
  finalized; the forking thread's is kept. Both `local-*` also run on CPython's own `_thread`
  (`-cpython`), which shows that what they expect is CPython's behaviour.
- `local-leak-*`: a million `_local`s made and dropped on the main thread grow the process by
  at most 5 MiB.
- `fork-field-a/b/c` (issue 24's field scripts, each fork bounded, the child killed and the
  check failed if it hangs): (a) 200 forks while two threads import a missing module in a loop
  and two read and write a `threading.local`; (b) 100 forks with the one `_local` that
  `import asyncio` makes alive, a thread importing and one making cyclic garbage; (c) 50 forks
  while a `warnings.showwarning` keeps a re-entrancy flag in a `threading.local` (3.12 and later
  show a DeprecationWarning through it at each fork), `gc.set_threshold(1, 1, 1)`, a fresh
  local per fork.
- `shutdown-interrupt`: Ctrl-C while `_shutdown()` waits behaves as 3.13's (on 3.13 the same
  check also runs on CPython's own `_thread`).

Prints one line per check; exits 1 if any failed.
"""

import os
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# How long a child may take before it is counted as hung (generous: CI machines are slow).
CHILD_BOUND = 10.0


# --- the child side (runs with -I -S; imports nothing that imports threading first) ----------

def stand_in(path):
    """Imports `_pythread` as `_thread` and `threading` on it; returns (module, threading)."""
    assert "threading" not in sys.modules, "threading was imported before the stand-in"
    sys.path.insert(0, path)
    import _pythread
    import _thread as real
    shim = types.ModuleType("_thread", real.__doc__)
    shim.__dict__.update({k: v for k, v in vars(real).items() if not k.startswith("__")})
    shim.__dict__.update({k: v for k, v in vars(_pythread).items() if not k.startswith("__")})
    sys.modules["_thread"] = shim
    import threading
    assert threading._allocate_lock is _pythread.allocate_lock, "threading is not on the module"
    return _pythread, threading


def fail(msg):
    sys.stderr.write(f"CHECK FAILED: {msg}\n")
    sys.stderr.flush()
    os._exit(3)


def wait_until(cond, what, bound=CHILD_BOUND / 2):
    import time
    deadline = time.monotonic() + bound
    while not cond():
        if time.monotonic() > deadline:
            fail(f"timed out waiting for {what}")
        time.sleep(0.001)


def thread_state(native_id):
    """The kernel's state letter of one of this process's threads ('S' = asleep)."""
    try:
        with open(f"/proc/self/task/{native_id}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "?"


def pthread_exit():
    """Ends the calling thread as CPython 3.11-3.13 do at finalization: `pthread_exit`, a
    forced unwind of its stack (ctypes releases the GIL around the call, as take_gil holds none
    when it exits the thread)."""
    import ctypes
    libc = ctypes.CDLL(None)
    libc.pthread_exit.argtypes = [ctypes.c_void_p]
    libc.pthread_exit(None)
    fail("pthread_exit returned")


def child_guard(where, path):
    """A module thread calls pthread_exit inside one guarded call into Python; the thread must
    park there (asleep, never finishing) and the process must go on and exit normally."""
    mod, threading = stand_in(path)
    import time
    info = {}

    def on_thread():
        info["native_id"] = mod.get_native_id()
        info["entered"] = True

    if where == "function":
        def body():
            on_thread()
            pthread_exit()
        handle = mod.start_joinable_thread(body)
    elif where == "unraisable":
        def hook(args):
            on_thread()
            pthread_exit()
        sys.unraisablehook = hook

        def body():
            raise ValueError("reported through sys.unraisablehook")
        handle = mod.start_joinable_thread(body)
    elif where == "del":
        class Dies:
            def __del__(self):
                on_thread()
                pthread_exit()

        def body(obj):
            pass
        # The thread holds the last reference to its argument: dropping it runs __del__.
        mod.start_new_thread(body, (Dies(),))
        handle = None
    elif where == "excepthook":
        class Named(threading.Thread):
            @property
            def name(self):
                if threading.current_thread() is self:
                    on_thread()
                    pthread_exit()
                return "Named"

        def raises():
            raise ValueError("reported through threading.excepthook")
        assert threading.excepthook is mod._excepthook
        t = Named(target=raises, daemon=True)
        t.start()
        handle = t._handle if hasattr(t, "_handle") else None
    elif where == "bool":
        class Truth:
            def __bool__(self):
                on_thread()
                pthread_exit()

        # A module thread calls start_joinable_thread, which tests `daemon` (guarded).
        starter = mod.start_joinable_thread(
            lambda: mod.start_joinable_thread(lambda: None, daemon=Truth()))
        handle = starter
    elif where == "index":
        class Size:
            def __index__(self):
                on_thread()
                pthread_exit()

        # A module thread passes stack_size() an argument whose `__index__` exits (guarded).
        handle = mod.start_joinable_thread(lambda: mod.stack_size(Size()))
    else:
        fail(f"unknown guard site {where}")

    wait_until(lambda: info.get("entered"), "the thread to reach pthread_exit")
    # Parked: asleep in the kernel, never done.
    wait_until(lambda: thread_state(info["native_id"]) == "S", "the thread to park")
    time.sleep(0.05)
    if thread_state(info["native_id"]) != "S":
        fail(f"the thread is not parked: state {thread_state(info['native_id'])}")
    if isinstance(handle, mod._ThreadHandle) and handle.is_done():
        fail("the handle of a parked thread reads as done")
    # The interpreter is still fine: start, run and join another thread.
    out = []
    h = mod.start_joinable_thread(lambda: out.append(1))
    h.join(CHILD_BOUND / 2)
    if out != [1]:
        fail("a new thread did not run after another parked")


EXIT_THREADS = 8


def child_exit(mode, path):
    """Starts daemon threads doing `mode`, waits until they do it, and returns from main while
    they still run (the interpreter finalizes under them)."""
    mod, threading = stand_in(path)
    import time
    ready = threading.Barrier(EXIT_THREADS + 1)
    ids = []
    blocker = threading.Lock()
    blocker.acquire()

    def spin(kind):
        if kind == "busy":
            x = 0
            while True:
                x += 1
        else:
            while True:
                time.sleep(0.0005)

    targets = []
    if mode in ("busy", "sleep"):
        def work():
            ids.append(mod.get_native_id())
            ready.wait()
            spin(mode)
        targets = [work] * EXIT_THREADS
    elif mode == "acquire":
        def work():
            ids.append(mod.get_native_id())
            ready.wait()
            blocker.acquire()
            fail("acquired a lock that is never released")
        targets = [work] * EXIT_THREADS
    elif mode == "acquire-timed":
        # Short timed waits: each re-attaches after its detached wait (PyO3's guarded
        # PyEval_RestoreThread), which is where finalization ends these threads.
        def work():
            ids.append(mod.get_native_id())
            ready.wait()
            while True:
                blocker.acquire(timeout=0.0005)
        targets = [work] * EXIT_THREADS
    elif mode == "join-timed":
        joined = mod.start_joinable_thread(blocker.acquire)

        def work():
            ids.append(mod.get_native_id())
            ready.wait()
            while True:
                joined.join(0.0005)
        targets = [work] * EXIT_THREADS
    elif mode == "join":
        joined = mod.start_joinable_thread(blocker.acquire)

        def work():
            ids.append(mod.get_native_id())
            ready.wait()
            joined.join()
            fail("joined a thread that never ends")
        targets = [work] * EXIT_THREADS
    elif mode == "excepthook":
        # _excepthook (the module's) reads `thread.name`: a property that never returns.
        assert threading.excepthook is mod._excepthook

        class Named(threading.Thread):
            @property
            def name(self):
                if threading.current_thread() is self:
                    spin(self.kind)
                return "Named"

        def raises():
            ready.wait()
            raise ValueError("reported through threading.excepthook")
        threads = []
        for i in range(EXIT_THREADS):
            t = Named(target=raises, daemon=True)
            t.kind = "busy" if i % 2 else "sleep"
            threads.append(t)
    elif mode == "unraisable":
        def hook(args):
            spin("busy" if mod.get_ident() % 2 else "sleep")
        sys.unraisablehook = hook

        def raises():
            ready.wait()
            raise ValueError("reported through sys.unraisablehook")
        for _ in range(EXIT_THREADS):
            mod.start_new_thread(raises, ())
    elif mode == "nondaemon":
        # One non-daemon thread still working when main returns: `_shutdown()` waits for it
        # (it finishes while the main thread is inside `_shutdown`), with daemon threads busy.
        done = []

        def finishes():
            ready.wait()
            end = time.monotonic() + 0.05
            while time.monotonic() < end:
                time.sleep(0.0005)
            done.append(1)

        def work():
            ready.wait()
            spin("busy")
        t = threading.Thread(target=finishes, daemon=False)
        t.start()
        targets = [work] * (EXIT_THREADS - 1)
        import atexit
        # atexit runs after threading._shutdown: by then the non-daemon thread has finished.
        atexit.register(lambda: done == [1] or fail("_shutdown did not wait"))
    else:
        fail(f"unknown exit mode {mode}")

    if mode == "excepthook":
        for t in threads:
            t.start()
    for target in targets:
        threading.Thread(target=target, daemon=True).start()
    ready.wait(CHILD_BOUND / 2)
    if mode in ("acquire", "join"):
        wait_until(lambda: len(ids) == EXIT_THREADS
                   and all(thread_state(i) == "S" for i in ids), "the threads to block")
    time.sleep(0.02)
    # Return from main: threading._shutdown, then finalization with the daemon threads running.


def child_fork(origin, path):
    """Forks while non-daemon and daemon threads run and a Lock and an RLock are held (and
    waited for) by threads that do not survive; `origin` = the forking thread: `main`, a
    `threading.Thread` (`thread`) or a `start_new_thread` thread (`raw`)."""
    mod, threading = stand_in(path)
    import time
    import warnings
    warnings.filterwarnings("ignore", ".*multi-threaded.*fork", DeprecationWarning)
    stop = threading.Event()
    held, rheld = threading.Lock(), threading.RLock()
    holding = threading.Barrier(4)  # the holder, two waiters, main
    waiter_ids = []

    starved = threading.Event()
    waiters_done = []

    def asleep_or_done(native_id):
        return lambda: thread_state(native_id) == "S" or native_id in waiters_done

    def holder():
        with held, rheld:
            holding.wait()
            wait_until(lambda: len(waiter_ids) == 2, "the waiters to start")
            # Pass the Lock's waiter over twice, more than 1 ms apart: woken and beaten to
            # the lock each time, it then asks for a handoff (the crate's STARVING bit), and
            # the lock's word names a waiter that will not exist in the child.
            for _ in range(2):
                wait_until(asleep_or_done(waiter_ids[0]), "the Lock's waiter to sleep")
                time.sleep(0.003)
                held.release()
                held.acquire()
            for native_id in waiter_ids:
                wait_until(asleep_or_done(native_id), "the waiters to sleep")
            starved.set()
            stop.wait()

    def waiter(lock, first):
        if not first:
            wait_until(lambda: len(waiter_ids) == 1, "the first waiter")
        waiter_ids.append(mod.get_native_id())
        holding.wait()
        with lock:
            pass
        waiters_done.append(mod.get_native_id())

    def busy():
        while not stop.is_set():
            time.sleep(0.0005)

    threads = [threading.Thread(target=holder, daemon=False)]
    threads += [threading.Thread(target=busy, daemon=d) for d in (False, True, False, True)]
    for t in threads:
        t.start()
    # A non-daemon thread of the module itself (on 3.11 and 3.12 threading starts every thread
    # as a daemon of the module): `_shutdown()` in the parent waits for it, in the child never.
    raw_worker = mod.start_joinable_thread(busy, daemon=False)
    # Threads blocked on the held locks: their waiting marks the locks' words.
    for lock, first in ((held, True), (rheld, False)):
        threading.Thread(target=waiter, args=(lock, first), daemon=True).start()
    holding.wait(CHILD_BOUND / 2)
    starved.wait(CHILD_BOUND / 2) or fail("the holder did not get its waiters asleep")

    def in_child(forker_is_module_thread):
        """The forked child's checks (only the forking thread exists). Returns the status."""
        # First: waiting for the parent's non-daemon threads, which do not exist here, would
        # hang (the parent bounds the child).
        t0 = time.monotonic()
        mod._shutdown()
        if time.monotonic() - t0 > 2.0:
            fail(f"_shutdown() in the child took {time.monotonic() - t0:.1f} s")
        expect_count = 1 if forker_is_module_thread else 0
        if mod._count() != expect_count:
            fail(f"_count() in the child is {mod._count()}, expected {expect_count}")
        if threading.active_count() != 1:
            fail(f"threading.active_count() in the child is {threading.active_count()}")
        if threading.main_thread() is not threading.current_thread():
            fail("the forking thread is not threading's main thread in the child")
        if mod._get_main_thread_ident() != mod.get_ident():
            fail("_get_main_thread_ident() does not name the forking thread")
        for t in threads:
            if t.is_alive():
                fail(f"{t} is alive in the child")
        if not raw_worker.is_done():
            fail("the handle of a thread that did not survive the fork is not done")
        raw_worker.join()
        # The held locks stay held, as in CPython; _at_fork_reinit makes them fresh.
        for lock in (held, rheld):
            lock._at_fork_reinit()
            if not lock.acquire(timeout=CHILD_BOUND / 4):
                fail(f"{lock!r} cannot be taken after _at_fork_reinit")
            lock.release()
        # New threads that take every lock kind, started and joined in the child.
        lock, rlock = threading.Lock(), threading.RLock()
        cond, sem, event = threading.Condition(), threading.Semaphore(2), threading.Event()
        barrier = threading.Barrier(4)
        hits = []

        def work():
            barrier.wait(CHILD_BOUND / 4)
            with lock, rlock, rlock, sem, cond:
                hits.append(1)
                cond.notify_all()
            event.wait(CHILD_BOUND / 4)
            with held, rheld:
                pass

        new = [threading.Thread(target=work) for _ in range(3)]
        for t in new:
            t.start()
        raw = mod.start_joinable_thread(lambda: hits.append(2), daemon=False)
        barrier.wait(CHILD_BOUND / 4)
        if mod._count() < expect_count + 1:
            fail(f"_count() while new threads run is {mod._count()}")
        with cond:
            cond.wait_for(lambda: hits.count(1) == 3, CHILD_BOUND / 4)
        event.set()
        for t in new:
            t.join(CHILD_BOUND / 4)
            if t.is_alive():
                fail("a thread started in the child did not finish")
        raw.join(CHILD_BOUND / 4)
        if sorted(hits) != [1, 1, 1, 2]:
            fail(f"threads in the child ran {hits}")
        wait_until(lambda: mod._count() == expect_count, "_count() to drop back in the child")
        t0 = time.monotonic()
        mod._shutdown()
        if time.monotonic() - t0 > 2.0:
            fail("_shutdown() after the child's threads took too long")

    def fork_and_check(forker_is_module_thread):
        pid = os.fork()
        if pid == 0:
            try:
                in_child(forker_is_module_thread)
            except BaseException as e:
                import traceback
                traceback.print_exc()
                fail(f"child: {e!r}")
            if origin == "main":
                return "child"  # return from main: finalization runs _shutdown
            sys.stdout.flush()
            os._exit(0)
        deadline = time.monotonic() + CHILD_BOUND
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                fail(f"the forked child (from {origin}) did not exit within {CHILD_BOUND} s")
            time.sleep(0.002)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            fail(f"the forked child (from {origin}) exited with {code}")
        return "parent"

    result = []
    if origin == "main":
        result.append(fork_and_check(False))
    elif origin == "thread":
        t = threading.Thread(target=lambda: result.append(fork_and_check(True)))
        t.start()
        t.join(CHILD_BOUND * 1.5)
    elif origin == "raw":
        h = mod.start_joinable_thread(lambda: result.append(fork_and_check(True)))
        h.join(CHILD_BOUND * 1.5)
    else:
        fail(f"unknown fork origin {origin}")
    if result == ["child"]:
        return  # the forked child, returning from main
    if result != ["parent"]:
        fail(f"fork from {origin}: no result")
    stop.set()


def child_hook_order(path):
    """The module's after-fork child hook runs before threading's: in the child, threading's
    first call into the module already sees the forking thread as the main thread."""
    mod, threading = stand_in(path)
    seen = []
    real_get_ident = sys.modules["_thread"].get_ident

    def get_ident():
        seen.append((os.getpid(), mod._get_main_thread_ident()))
        return real_get_ident()
    # threading calls its module-level `get_ident` (bound from `_thread` at import).
    threading.get_ident = get_ident
    out = []

    def forker():
        me = mod.get_ident()
        pid = os.fork()
        if pid == 0:
            first = [m for p, m in seen if p == os.getpid()]
            code = 0 if first and first[0] == me else 4
            if code:
                sys.stderr.write(f"threading's hook ran before the module's: {first[:1]} "
                                 f"!= {me}\n")
            os._exit(code)
        out.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    import warnings
    warnings.filterwarnings("ignore", ".*multi-threaded.*fork", DeprecationWarning)
    h = mod.start_joinable_thread(forker)
    h.join(CHILD_BOUND)
    if out != [0]:
        fail(f"hook order check: child exited {out}")


def child_shutdown_interrupt(which, path):
    """Ctrl-C (a SIGALRM handler raising KeyboardInterrupt at 0.3 s) while `_shutdown()` waits
    for a non-daemon thread that never ends: as 3.13's `thread_shutdown`, the exception goes to
    `sys.unraisablehook` (object None) and `_shutdown()` returns None at once, the thread left
    running; a later `_shutdown()` waits for it again. `which`: `module`, or `cpython` (3.13's
    own `_thread`, which the same check describes)."""
    import signal
    import time
    if which == "module":
        mod, _ = stand_in(path)
    else:
        import _thread as mod
    blocker = mod.allocate_lock()
    blocker.acquire()
    worker = mod.start_joinable_thread(blocker.acquire, daemon=False)
    finished = mod.allocate_lock()
    finished.acquire()

    def watchdog():
        # Bounds an uninterruptible _shutdown (the check then fails on its duration).
        if not finished.acquire(timeout=5):
            blocker.release()
    mod.start_new_thread(watchdog, ())
    seen = []
    sys.unraisablehook = seen.append

    def on_alarm(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    t0 = time.monotonic()
    result = mod._shutdown()
    took = time.monotonic() - t0
    sys.unraisablehook = sys.__unraisablehook__
    if result is not None:
        fail(f"_shutdown() returned {result!r}")
    if not 0.25 <= took < 2.0:
        fail(f"interrupted _shutdown() returned after {took:.2f} s, not at 0.3 s")
    if [type(a.exc_value) for a in seen] != [KeyboardInterrupt] or seen[0].object is not None:
        fail(f"unraisable reports: {[(a.exc_type, a.object) for a in seen]}")
    if worker.is_done():
        fail("the non-daemon thread is done, yet nothing released it")
    finished.release()
    blocker.release()
    t0 = time.monotonic()
    mod._shutdown()
    if not worker.is_done() or time.monotonic() - t0 > 2.0:
        fail("the second _shutdown() did not wait for the thread")


def child_fork_import_lock(path):
    """`os.fork()` runs the `before` hooks (the module's, last, takes the crate's fork locks),
    then waits for the import lock with the GIL released. A thread that starts a thread in that
    window must not wait for the crate's locks holding the GIL: the import lock's holder needs
    the GIL to release it, and the fork would never happen."""
    mod, threading = stand_in(path)
    import _imp
    import faulthandler
    import time
    import warnings
    warnings.filterwarnings("ignore", ".*multi-threaded.*fork", DeprecationWarning)
    faulthandler.dump_traceback_later(CHILD_BOUND, exit=True)  # a deadlock fails, with stacks
    locked, go = threading.Event(), threading.Event()
    ran = []
    main_id, starter_id = mod.get_native_id(), []

    def importer():
        _imp.acquire_lock()
        locked.set()
        # Once the main thread, forking, sleeps on the import lock: let the starter start a
        # thread; once the starter sleeps too (on the crate's fork locks), release the import
        # lock, which needs the GIL.
        wait_until(lambda: thread_state(main_id) == "S", "the fork to wait for the import lock")
        go.set()
        wait_until(lambda: ran or (starter_id and thread_state(starter_id[0]) == "S"),
                   "the starter to block")
        _imp.release_lock()

    def starter():
        starter_id.append(mod.get_native_id())
        go.wait()
        mod.start_new_thread(ran.append, (1,))

    threading.Thread(target=importer).start()
    threading.Thread(target=starter).start()
    locked.wait()
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0:
        fail("the child failed")
    wait_until(lambda: ran == [1], "the thread started during the fork to run")
    faulthandler.cancel_dump_traceback_later()


# --- `_local` and fork in the field (issue 24) -------------------------------------------------

def stand_in_or_cpython(which, path):
    """`stand_in(path)`, or CPython's own `_thread` under `threading` (`which` == "cpython"):
    the same check run on CPython shows that what it expects is CPython's behaviour."""
    if which == "cpython":
        import _thread
        import threading
        return _thread, threading
    return stand_in(path)


def wait_child(pid, what, bound=CHILD_BOUND):
    """Waits for a forked child to exit 0 (on a pidfd, with the GIL released, so the wait
    ends as soon as the child does); one that hangs is killed and the check fails."""
    import select
    import signal
    fd = os.pidfd_open(pid)
    try:
        if not select.select([fd], [], [], bound)[0]:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            fail(f"{what}: the child hung for {bound} s (killed)")
    finally:
        os.close(fd)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if code != 0:
        fail(f"{what}: the child exited {code}")


def watchdog(what, bound):
    """Fails the check, with every thread's stack, if it is still running after `bound` s."""
    import faulthandler
    faulthandler.dump_traceback_later(bound, exit=True)
    return lambda: faulthandler.cancel_dump_traceback_later()


FOREIGN_C = r"""
#include <pthread.h>
typedef void (*callback)(int);
static void *run(void *cb) { ((callback)cb)(1); ((callback)cb)(2); return 0; }
int run_foreign(callback cb) {
    pthread_t t;
    if (pthread_create(&t, 0, run, (void *)cb)) return -1;
    return pthread_join(t, 0);
}
"""


def child_local_foreign(which, path):
    """A C thread (not started by any `_thread`) calls into Python twice through ctypes: each
    call gets a fresh thread state (`PyGILState_Ensure`), so it sees a fresh `_local` dict, and
    the dict of the first call dies when that call's thread state does, on that thread, before
    the second call starts. Needs `cc` (the linker every Rust build uses)."""
    mod, threading = stand_in_or_cpython(which, path)
    import ctypes
    import subprocess
    import tempfile
    done = watchdog("local-foreign", CHILD_BOUND)
    with tempfile.TemporaryDirectory() as tmp:
        src, lib = os.path.join(tmp, "foreign.c"), os.path.join(tmp, "foreign.so")
        with open(src, "w") as f:
            f.write(FOREIGN_C)
        subprocess.run(["cc", "-shared", "-fPIC", "-pthread", "-o", lib, src], check=True)
        foreign = ctypes.CDLL(lib)
    loc = mod._local()
    events = []

    class Value:
        def __init__(self, call):
            self.call = call

        def __del__(self):
            events.append(("del", self.call, threading.get_native_id()))

    def callback(call):
        events.append(("call", call, hasattr(loc, "x"), threading.get_native_id()))
        loc.x = Value(call)

    cb = ctypes.CFUNCTYPE(None, ctypes.c_int)(callback)
    foreign.run_foreign.argtypes = [type(cb)]
    if foreign.run_foreign(cb) != 0:
        fail("pthread_create failed")
    tid = events[0][3]
    want = [("call", 1, False, tid), ("del", 1, tid), ("call", 2, False, tid), ("del", 2, tid)]
    if events != want:
        fail(f"foreign thread: events {events}, want {want}")
    done()


def child_local_fork(which, path):
    """In a forked child, CPython deletes the thread states of the threads that did not
    survive, which drops their `_local` dicts there; the forking thread's own stay."""
    mod, threading = stand_in_or_cpython(which, path)
    import warnings
    warnings.filterwarnings("ignore", ".*multi-threaded.*fork", DeprecationWarning)
    done = watchdog("local-fork", CHILD_BOUND)
    loc = mod._local()
    gone = []

    class Value:
        def __init__(self, who):
            self.who = who

        def __del__(self):
            gone.append(self.who)

    loc.x = Value("main")
    ready, stop = threading.Event(), threading.Event()

    def other():
        loc.x = Value("other")
        ready.set()
        stop.wait(CHILD_BOUND)
    t = threading.Thread(target=other)
    t.start()
    ready.wait(CHILD_BOUND)
    pid = os.fork()
    if pid == 0:
        if gone != ["other"] or loc.x.who != "main":
            fail(f"child: finalized {gone}, main thread's value {loc.x.who}")
        os._exit(0)
    wait_child(pid, "local-fork")
    if gone:
        fail(f"parent: finalized {gone}")
    stop.set()
    t.join(CHILD_BOUND)
    done()


def child_local_leak(which, path):
    """A million `_local`s made, used and dropped on the main thread leave the process's
    resident memory within 5 MiB of where it was (CPython: +0)."""
    mod, threading = stand_in_or_cpython(which, path)
    import gc
    done = watchdog("local-leak", 6 * CHILD_BOUND)

    def rss_mib():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def churn(n):
        for _ in range(n):
            loc = mod._local()
            loc.x = 1
        gc.collect()
    churn(100_000)  # the allocator's pools and the interpreter's caches settle first
    before = rss_mib()
    churn(1_000_000)
    grown = rss_mib() - before
    if grown > 5:
        fail(f"a million _locals made and dropped grew the process by {grown:.1f} MiB")
    done()


def fork_loop(forks, what, per_fork=None):
    """`forks` forks from the calling thread, each child exiting at once, each bounded."""
    for i in range(forks):
        if per_fork:
            per_fork()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        wait_child(pid, f"{what}: fork {i + 1} of {forks}")


def child_fork_field(script, path):
    """Issue 24's field scripts: forks while other threads import, use `_local`s and make
    garbage; each fork bounded, and the whole script by a watchdog."""
    script, _, which = script.partition("-")
    mod, threading = stand_in_or_cpython(which or "module", path)
    import gc
    import warnings
    done = watchdog(f"fork-field-{script}", 4 * CHILD_BOUND)
    # The forking thread gets the GIL back from the busy threads within 0.1 ms, not 5 ms:
    # 200 forks then take seconds, not minutes (the hazards stay: every thread still runs).
    sys.setswitchinterval(1e-4)
    stop = threading.Event()
    threads = []

    def spawn(target):
        t = threading.Thread(target=target, daemon=True)
        t.start()
        threads.append(t)

    def import_missing():
        while not stop.is_set():
            try:
                import pythread_no_such_module  # noqa: F401
            except ImportError:
                pass

    if script == "a":
        # 200 forks while two threads import a missing module and two use a threading.local.
        warnings.filterwarnings("ignore", ".*multi-threaded.*fork", DeprecationWarning)
        shared = threading.local()

        def use_local():
            n = 0
            while not stop.is_set():
                shared.x = n
                n = shared.x + 1
        for target in (import_missing, import_missing, use_local, use_local):
            spawn(target)
        fork_loop(200, "fork-field-a")
    elif script == "b":
        # No thread touching a local: the one `_local` alive is the one `import asyncio`
        # makes; one thread importing, one making cyclic garbage (the collector visits that
        # `_local` at each collection).
        warnings.filterwarnings("ignore", ".*multi-threaded.*fork", DeprecationWarning)
        import asyncio  # noqa: F401

        def garbage():
            while not stop.is_set():
                a = []
                a.append(a)
        for target in (import_missing, garbage):
            spawn(target)
        fork_loop(100, "fork-field-b")
    elif script == "c":
        # A `warnings.showwarning` keeping a re-entrancy flag in a threading.local: on 3.12
        # and later every fork with threads alive shows a DeprecationWarning through it. The
        # collector runs at every allocation, and each fork gets a fresh local.
        warnings.simplefilter("always", DeprecationWarning)
        state = {"local": threading.local()}
        shown = []
        original = warnings.showwarning

        def showwarning(message, category, filename, lineno, file=None, line=None):
            flags = state["local"]
            if getattr(flags, "busy", False):
                return original(message, category, filename, lineno, file, line)
            flags.busy = True
            try:
                shown.append(category)
            finally:
                flags.busy = False
        warnings.showwarning = showwarning
        spawn(import_missing)
        gc.set_threshold(1, 1, 1)

        def fresh_local():
            state["local"] = threading.local()
        fork_loop(50, "fork-field-c", fresh_local)
        gc.set_threshold(700, 10, 10)
        if sys.version_info >= (3, 12) and len(shown) != 50:
            fail(f"showwarning ran {len(shown)} times for 50 forks")
    stop.set()
    for t in threads:
        t.join(CHILD_BOUND)
    done()


def child_main(argv):
    try:
        child_check(argv)
    except BaseException:
        # Not a normal exit: the checks' non-daemon threads would keep the process alive.
        import traceback
        traceback.print_exc()
        fail("uncaught exception")


def child_check(argv):
    kind, arg, path = argv
    if kind == "guard":
        child_guard(arg, path)
    elif kind == "exit":
        child_exit(arg, path)
    elif kind == "fork":
        child_fork(arg, path)
    elif kind == "order":
        child_hook_order(path)
    elif kind == "import-lock":
        child_fork_import_lock(path)
    elif kind == "interrupt":
        child_shutdown_interrupt(arg, path)
    elif kind == "local-foreign":
        child_local_foreign(arg, path)
    elif kind == "local-fork":
        child_local_fork(arg, path)
    elif kind == "local-leak":
        child_local_leak(arg, path)
    elif kind == "fork-field":
        child_fork_field(arg, path)
    else:
        fail(f"unknown check {kind}")


# --- the parent side ---------------------------------------------------------------------------

GUARD_SITES = ["function", "unraisable", "del", "excepthook", "bool", "index"]
EXIT_MODES = ["busy", "sleep", "acquire", "acquire-timed", "join", "join-timed", "excepthook",
              "unraisable", "nondaemon"]
FORK_ORIGINS = ["main", "thread", "raw"]


def checks(runs):
    """(name, argv for the child, number of runs)."""
    out = [(f"guard-{w}", ["guard", w], 1) for w in GUARD_SITES]
    out += [(f"exit-{m}", ["exit", m], runs) for m in EXIT_MODES]
    out += [("shutdown-interrupt", ["interrupt", "module"], 3)]
    if sys.version_info[:2] == (3, 13):
        out += [("shutdown-interrupt-cpython", ["interrupt", "cpython"], 3)]
    out += [("fork-hook-order", ["order", "-"], 1)]
    out += [("fork-import-lock", ["import-lock", "-"], 10)]
    out += [(f"fork-{o}", ["fork", o], runs) for o in FORK_ORIGINS]
    for which in ("module", "cpython"):
        out += [(f"local-foreign-{which}", ["local-foreign", which], 3)]
        out += [(f"local-fork-{which}", ["local-fork", which], 5)]
        out += [(f"local-leak-{which}", ["local-leak", which], 1)]
    out += [(f"fork-field-{s}", ["fork-field", s], 4) for s in "abc"]
    return out


def parent_main():
    import argparse
    import concurrent.futures
    import subprocess
    import time
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--path", default=os.path.join(ROOT, "target", "python"),
                   help="directory holding the built module")
    p.add_argument("--runs", type=int, default=30, help="runs per exit/fork check")
    p.add_argument("--jobs", type=int, default=4, help="children run at once")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds one child may take")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("only", nargs="*", help="only the checks whose name starts with one of these")
    args = p.parse_args()
    path = os.path.abspath(args.path)
    todo = [c for c in checks(args.runs)
            if not args.only or any(c[0].startswith(o) for o in args.only)]
    version = "%d.%d.%d" % sys.version_info[:3]
    print(f"lifecycle: Python {version}, module from {path}, {args.jobs} at once")
    sys.stdout.flush()

    def run_one(argv):
        cmd = [sys.executable, "-I", "-S", os.path.abspath(__file__), "--child", *argv, path]
        try:
            r = subprocess.run(cmd, capture_output=True, timeout=args.timeout)
        except subprocess.TimeoutExpired as e:
            return ("timeout", (e.stderr or b"").decode(errors="replace"))
        # `_excepthook` writes "Exception in thread " before it looks the name up, as
        # CPython's does: a `name` that never returns leaves just that header (issue 19).
        header_only = "excepthook" in argv and not r.stderr.replace(b"Exception in thread ", b"")
        if r.returncode == 0 and (not r.stderr or header_only):
            return ("ok", "")
        what = f"exit {r.returncode}" if r.returncode >= 0 else f"signal {-r.returncode}"
        return (what, r.stderr.decode(errors="replace"))

    failed = 0
    t_all = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for name, argv, n in todo:
            t0 = time.monotonic()
            results = list(pool.map(run_one, [argv] * n))
            bad = [r for r in results if r[0] != "ok"]
            kinds = {}
            for what, _ in bad:
                kinds[what] = kinds.get(what, 0) + 1
            summary = ", ".join(f"{k}: {v}" for k, v in sorted(kinds.items()))
            status = "ok" if not bad else "FAILED"
            print(f"{name}: {n - len(bad)} of {n} runs exit 0 with empty stderr"
                  f"{' (' + summary + ')' if bad else ''} ({time.monotonic() - t0:.1f}s) {status}")
            if bad:
                failed += 1
                err = bad[0][1].strip().splitlines()
                shown = err if args.verbose else err[-6:]
                for line in shown:
                    print(f"    {line}")
            sys.stdout.flush()
    print(f"lifecycle: {len(todo) - failed} of {len(todo)} checks passed "
          f"({time.monotonic() - t_all:.1f}s)")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
    else:
        sys.exit(parent_main())

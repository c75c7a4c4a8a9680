"""CPython's own thread tests, run against `_pythread` (the pythread crate's `_thread`).

Usage: <venv>/bin/python run.py [--module _thread] [--skips FILE] [-v] [PATTERN ...]

Runs inside an environment where `_pythread` is installed and activated
(`python -m pythread_standin enable`, which `make conformance` does in a venv per interpreter
under target/conformance/): there `_thread` is `_pythread._pythread` from interpreter start-up,
so `threading`, `test.lock_tests`, `test.support.threading_helper` and every child process
started with `sys.executable` are built on it. The installed test files are imported as they
are, never patched. Before any test the runner checks: that `_thread` is the module, in this
process and in a child (`sys.executable -I`); that it borrows nothing from CPython's own
`_thread` (every name of CPython's `dir(_thread)` is the module's own object; both lists are
printed). `--module _thread` runs the same suites on CPython's own module, as a baseline (in an
environment without the activation).

Each group (a test module, or one of this directory's own suites) runs in its own child
process (`run.py --child GROUP`), so that a test which kills its process (a signal sent to a
bad thread id, an interpreter that cannot exit) fails that group, by name, and the rest still
run. Prints one line per test class, then unittest's totals and one `N passed, N failed` line;
exits non-zero on any failure or error. Tests listed in the skip table of CONFORMANCE.md (by
test id and interpreter version) or in WIDE_SKIPS below are skipped with their reason; tests
that need a subinterpreter are not run (PyO3 modules cannot be imported there), and listed. A
watchdog (faulthandler) ends a group with the stacks of every thread if one test takes longer
than --test-timeout seconds; another ends the whole run after --total-timeout seconds.
"""

import argparse
import contextlib
import faulthandler
import importlib
import importlib.util
import inspect
import os
import json
import re
import signal
import subprocess
import sys
import tempfile
import time
import types
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VERSION = "%d.%d" % sys.version_info[:2]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--module", default="_pythread._pythread",
                   help="module to test (default _pythread._pythread, the extension module)")
    p.add_argument("--skips", default=os.path.join(ROOT, "CONFORMANCE.md"),
                   help="markdown file with the skip table")
    p.add_argument("--test-timeout", type=float, default=120.0,
                   help="watchdog: seconds one test may take before the run is ended")
    p.add_argument("--total-timeout", type=float, default=840.0,
                   help="watchdog: seconds the whole run may take")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--groups", metavar="GROUP,...",
                   help="run only these groups (a group of THREAD_GROUPS, or any Lib/test "
                        "module, run as the wider modules are)")
    p.add_argument("--child", metavar="GROUP", help=argparse.SUPPRESS)
    p.add_argument("--result", metavar="FILE", help=argparse.SUPPRESS)
    p.add_argument("patterns", nargs="*", help="only run tests whose id contains one of these")
    return p.parse_args()


# --- skips -------------------------------------------------------------------------------------

SKIP_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*([^|]+?)\s*\|\s*(.+?)\s*\|\s*$")


def read_skips(path, table="skips"):
    """Rows `| `suite.Class.test` | 3.11, 3.13 | reason |` of a table between
    `<!-- TABLE:begin -->` and `<!-- TABLE:end -->`."""
    skips = {}
    if not os.path.exists(path):
        return skips
    with open(path, encoding="utf-8") as f:
        in_table = False
        for line in f:
            if line.startswith(f"<!-- {table}:begin -->"):
                in_table = True
            elif line.startswith(f"<!-- {table}:end -->"):
                in_table = False
            elif in_table:
                m = SKIP_ROW.match(line)
                if m and m.group(1) != "test":
                    versions = {v.strip() for v in m.group(2).split(",")}
                    if "all" in versions or VERSION in versions:
                        skips[m.group(1)] = m.group(3)
    return skips


# --- the module under test --------------------------------------------------------------------

def cpython_thread():
    """CPython's own `_thread`: the builtin module importlib's bootstrap holds, whatever
    `sys.modules['_thread']` is."""
    import importlib._bootstrap
    return importlib._bootstrap._thread


def check_stand_in(name):
    """The module under test, after checking that it is `_thread` here and in a child, and that
    it borrows nothing from CPython's `_thread`. Prints the names compared."""
    import _thread
    real = cpython_thread()
    if name == "_thread":
        if _thread is not real:
            sys.exit("conformance: --module _thread needs an environment without the stand-in")
        return _thread
    module = importlib.import_module(name)
    if _thread is not module:
        sys.exit(f"conformance: FAILED: _thread is {_thread!r}, not {module!r}: run inside an "
                 "environment where `python -m pythread_standin enable` was run "
                 "(make conformance does)")
    import subprocess
    child = subprocess.run(
        [sys.executable, "-I", "-c",
         "import _thread, threading; print(_thread.__file__, threading.get_ident.__module__)"],
        capture_output=True, text=True, timeout=60)
    if child.returncode != 0 or child.stdout.split() != [module.__file__, "_thread"]:
        sys.exit(f"conformance: FAILED: a child ({sys.executable} -I) does not import the module "
                 f"as _thread: {child.stdout!r} {child.stderr!r}")
    print(f"conformance: a child ({sys.executable} -I) imports _thread = {module.__file__}")
    theirs = sorted(n for n in dir(real) if not n.startswith("__"))
    ours = sorted(n for n in dir(module) if not n.startswith("__"))
    # `error` is RuntimeError in both: a builtin is shared, not borrowed.
    borrowed = [n for n in theirs if getattr(module, n, None) is getattr(real, n)
                and getattr(getattr(real, n), "__module__", None) != "builtins"]
    missing = [n for n in theirs if not hasattr(module, n)]
    print(f"conformance: dir(CPython's _thread), {len(theirs)} names: {', '.join(theirs)}")
    print(f"conformance: dir({name}), {len(ours)} names: {', '.join(ours)}")
    print(f"conformance: only in {name}: {', '.join(sorted(set(ours) - set(theirs))) or '-'}; "
          f"missing: {', '.join(missing) or '-'}; borrowed from CPython: "
          f"{', '.join(borrowed) or '-'}")
    if missing or borrowed:
        sys.exit("conformance: FAILED: the module lacks or borrows CPython's names")
    return module


# Tests that need a subinterpreter: PyO3 modules cannot be imported there, so the
# subinterpreter runs CPython's own `_thread` (the activation does nothing there). Not run.
SUBINTERP_MARKERS = ("run_in_subinterp", "interpreters.create", "requires_subinterpreters",
                     "_interpreters", "support.interpreters", "_testinternalcapi.interpreter")


def needs_subinterpreter(cls, name):
    """True if the test, or a `self._helper` it calls, uses a subinterpreter."""
    try:
        src = inspect.getsource(getattr(cls, name))
    except (OSError, TypeError):
        return False
    if any(m in src for m in SUBINTERP_MARKERS):
        return True
    for helper in set(re.findall(r"self\.(_\w+)\(", src)):
        fn = getattr(cls, helper, None)
        try:
            if fn is not None and any(m in inspect.getsource(fn) for m in SUBINTERP_MARKERS):
                return True
        except (OSError, TypeError):
            pass
    return False


# --- the groups ----------------------------------------------------------------------------------

# CPython's thread suites, in run order (each a group, run in its own process).
THREAD_GROUPS = ("lock_tests", "test_thread", "test_threadsignals", "interrupts", "corrections",
                 "differential", "test_threading", "test_threading_local", "test_fork1")

# The wider Lib/test modules that use threads (issue 23 section 4), whole, in run order: the
# interpreter's views of threads (test_sys: `sys._current_frames`; test_signal: signals to and
# between threads; test_time: a thread's CPU clock), then the cheap modules (each under about
# 10 s here, test_decimal 16 s) whose subject is threads or that serve or share objects across
# threads. Measured on 3.11 and left out (the longer of two runs, on the module and on CPython's
# own `_thread`, loaded 2-core machine): test_subprocess (179 s), test_socket (75 s; its VSOCK
# test binds a fixed port), test_io (55 s), test_largefile (57 s), test_imaplib (53 s),
# test_capi.test_misc (50 s), test_ssl (41 s; reaches the internet), test_weakref (37 s),
# test_logging (30 s), test_xmlrpc (29 s), test_faulthandler (25 s), test_ftplib (21 s),
# test_poll (11 s), test_poplib (10 s), test_httplib (10 s); test_asyncore, test_asynchat,
# test_telnetlib, test_nntplib (removed in 3.12 and 3.13).
WIDE_GROUPS = ("test_sys", "test_signal", "test_socketserver", "test_time",
               "test_queue", "test_threadedtempfile", "test_sched", "test_context",
               "test_contextlib", "test_functools", "test_decimal", "test_code", "test_frame",
               "test_bz2", "test_hashlib", "test_syslog", "test_importlib.test_locks",
               "test_importlib.test_threaded_import", "test_sqlite3.test_dbapi",
               "test_smtplib", "test_httpservers", "test_urllib2_localnet", "test_docxmlrpc",
               "test_robotparser", "test_wsgiref")

# The test resources enabled for the wider modules (regrtest's `-u`): what `-u all` enables,
# except what reaches outside this machine or needs a desktop or disk space (urlfetch, gui,
# audio, curses, largefile). `network` is loopback only in these modules (their servers bind
# to 127.0.0.1). CPython's thread suites run as before, every resource enabled
# (`test.support.use_resources` None).
WIDE_RESOURCES = ("network", "subprocess", "walltime", "cpu", "decimal")

# Tests of the wider modules that cannot apply to a stand-in `_thread` run this way, by
# interpreter ("all" or versions), with the reason. A test that fails only because of a bug
# of the module is never listed here: it fails.
WIDE_SKIPS = {
}


def groups(module_name, only=None):
    """The groups to run under this interpreter, in order (`only`: those named)."""
    out = []
    for group in only or THREAD_GROUPS + WIDE_GROUPS:
        if group == "corrections" and module_name == "_thread":
            continue  # compares the module with CPython's `_thread`: nothing to compare here
        if group == "differential" and (module_name == "_thread" or VERSION != "3.13"):
            continue  # the module is 3.13's `_thread`; 3.11's and 3.12's messages differ
        out.append(group)
    return out


def test_classes(mod, prefix):
    """(label, class) of every TestCase class the test module defines that has tests."""
    return [(prefix + "." + name, cls) for name, cls in vars(mod).items()
            if isinstance(cls, type) and issubclass(cls, unittest.TestCase)
            and cls.__module__ == mod.__name__
            and unittest.TestLoader().getTestCaseNames(cls)]


def group_suites(group, module):
    """(label, TestCase class or TestSuite) pairs of one group, in run order. Imports the test
    module as installed (`_thread` is already the module)."""
    if group == "lock_tests":
        lock_tests = importlib.import_module("test.lock_tests")

        # lock_tests.LockTests / RLockTests with `locktype` = the module's types (a builtin
        # type or function needs no staticmethod).
        class LockTests(lock_tests.LockTests):
            locktype = module.allocate_lock

        class RLockTests(lock_tests.RLockTests):
            locktype = module.RLock

        LockTests.__qualname__ = LockTests.__name__ = "LockTests"
        RLockTests.__qualname__ = RLockTests.__name__ = "RLockTests"
        return [("lock_tests.LockTests", LockTests), ("lock_tests.RLockTests", RLockTests)]
    if group in ("interrupts", "corrections", "differential"):
        sys.path.insert(0, HERE)
        cls = importlib.import_module(group).make_case(module)
        return [(f"{group}.{cls.__name__}", cls)]
    mod = importlib.import_module("test." + group)
    if group not in THREAD_GROUPS:
        # As regrtest loads a module (its `load_tests` included), by class in load order.
        by_class = {}
        for test in iter_tests(unittest.TestLoader().loadTestsFromModule(mod)):
            by_class.setdefault(type(test), []).append(test)
        return [(f"{group}.{cls.__name__}", unittest.TestSuite(tests))
                for cls, tests in by_class.items()]
    out = test_classes(mod, group)
    if group == "test_threading_local":
        # Its load_tests adds the `_threading_local` docstring's doctests, once on the pure
        # Python `local` and once with `_thread._local` in its place.
        doctests = mod.load_tests(unittest.TestLoader(), unittest.TestSuite(), None)
        out.append(("test_threading_local.DocTests", doctests))
    return out


class ClassResult(unittest.TextTestResult):
    """Counts per class, and re-arms the watchdog at each test."""

    def __init__(self, *args, watchdog=None, progress=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.watchdog = watchdog
        self.progress = progress
        self.passed = 0

    def startTest(self, test):
        if self.progress:
            # The parent names this test if the process dies in it.
            self.progress(test.id())
        if self.watchdog:
            # On expiry faulthandler prints "Timeout", every thread's stack, and exits 1.
            faulthandler.dump_traceback_later(self.watchdog, exit=True)
        super().startTest(test)

    def stopTest(self, test):
        faulthandler.cancel_dump_traceback_later()
        super().stopTest(test)

    def addSuccess(self, test):
        self.passed += 1
        super().addSuccess(test)


def iter_tests(suite):
    for test in suite:
        if isinstance(test, unittest.TestSuite):
            yield from iter_tests(test)
        else:
            yield test


def apply_skips(cls, label, skips, used):
    for name in unittest.TestLoader().getTestCaseNames(cls):
        reason = skips.get(label + "." + name)
        if reason is not None:
            used.add(label + "." + name)
            setattr(cls, name, unittest.skip(reason)(getattr(cls, name)))


def start_total_watchdog(seconds):
    """Ends the run (exit 2, every thread's stack printed) if it takes longer than `seconds`."""
    import threading

    def fire():
        print(f"conformance: FAILED: the run took longer than {seconds:.0f} s (watchdog); "
              "stacks follow", flush=True)
        faulthandler.dump_traceback(all_threads=True)
        if CURRENT_CHILD is not None:
            CURRENT_CHILD.kill()
        os._exit(2)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()


def write_json(path, data):
    """Replaces `path` at once (the parent may read it at any moment)."""
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(path + ".tmp", path)


def read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def all_skips(path):
    """CONFORMANCE.md's skip table, WIDE_SKIPS, and the pending table (skipped, counted apart),
    for this interpreter; and the pending entries alone."""
    skips = read_skips(path)
    for test_id, (versions, reason) in WIDE_SKIPS.items():
        if "all" in versions or VERSION in versions:
            skips[test_id] = reason
    # Tests whose crate API has not landed yet: skipped, and counted apart.
    pending = read_skips(path, "pending")
    skips.update({k: "NOT YET WIRED: " + v for k, v in pending.items()})
    return skips, pending


def run_child(args, module):
    """One group, in this process; its counts go to the --result file."""
    import test.support
    test.support.verbose = 1 if args.verbose else 0  # as regrtest sets it (no chatter)
    if args.child not in THREAD_GROUPS:
        test.support.use_resources = list(WIDE_RESOURCES)

    # Importing test modules starts no thread, but bound it all the same.
    faulthandler.dump_traceback_later(args.test_timeout, exit=True)
    pairs = group_suites(args.child, module)
    faulthandler.cancel_dump_traceback_later()

    skips, _ = all_skips(args.skips)
    used = set()
    stream = unittest.runner._WritelnDecorator(sys.stderr)
    # What the parent reads: the counts of the classes done so far, the test running now, and
    # `done` once every class ran (counts survive a process that dies in a later class).
    state = {"run": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0, "problems": [],
             "not_run": [], "used": [], "running": None, "done": False}

    def progress(running):
        state["running"] = running
        state["used"] = sorted(used)
        write_json(args.result, state)

    problems = []
    for label, cls in pairs:
        if isinstance(cls, unittest.TestSuite):
            suite = unittest.TestSuite()
            for test in iter_tests(cls):
                name = getattr(test, "_testMethodName", None)
                if args.patterns and not any(p in f"{label}.{test.id()}" for p in args.patterns):
                    continue
                if name and isinstance(test, unittest.TestCase):
                    if needs_subinterpreter(type(test), name):
                        state["not_run"].append(f"{label}.{name}")
                        continue
                    reason = skips.get(f"{label}.{name}")
                    if reason is not None:
                        used.add(f"{label}.{name}")
                        setattr(test, name, unittest.skip(reason)(getattr(test, name)))
                suite.addTest(test)
        else:
            apply_skips(cls, label, skips, used)
            suite = unittest.TestSuite()
            for name in unittest.TestLoader().getTestCaseNames(cls):
                if args.patterns and not any(p in f"{label}.{name}" for p in args.patterns):
                    continue
                if needs_subinterpreter(cls, name):
                    state["not_run"].append(f"{label}.{name}")
                    continue
                suite.addTest(cls(name))
        if suite.countTestCases() == 0:
            continue
        result = ClassResult(stream, True, 2 if args.verbose else 0,
                             watchdog=args.test_timeout, progress=progress)
        t0 = time.perf_counter()
        suite(result)
        dt = time.perf_counter() - t0
        failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
        skipped = len(result.skipped)
        status = "ok" if failed == 0 else "FAILED"
        print(f"{label}: {result.passed} passed, {failed} failed, {skipped} skipped "
              f"({dt:.1f}s) {status}")
        sys.stdout.flush()
        state["run"] += result.testsRun
        state["passed"] += result.passed
        state["failed"] += len(result.failures) + len(result.unexpectedSuccesses)
        state["errors"] += len(result.errors)
        state["skipped"] += skipped
        for test, tb in result.failures + result.errors:
            problems.append((test.id(), tb))
        for test in result.unexpectedSuccesses:
            problems.append((test.id(), "unexpected success"))
        state["problems"] = [p[0] for p in problems]
        progress(None)

    for test_id, tb in problems:
        print("=" * 70)
        print(f"FAIL: {test_id}")
        print("-" * 70)
        print(tb)
    sys.stdout.flush()
    state["done"] = True
    progress(None)
    # A normal exit: the interpreter finalizes with whatever daemon threads the tests left
    # running (the module's guard parks them; see lifecycle.py's exit checks).
    sys.exit(0)


# Seconds a group's process may take to exit once its tests are done (the interpreter's
# finalization joins every non-daemon thread a test left running).
EXIT_GRACE = 60.0

# The running group's process, ended by the total watchdog.
CURRENT_CHILD = None


def wait_child(proc, result_path):
    """The process's exit status, or None if it did not exit within EXIT_GRACE seconds of
    finishing its tests (it is then killed)."""
    finished_at = None
    while True:
        try:
            return proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            pass
        if finished_at is None and read_json(result_path).get("done"):
            finished_at = time.monotonic()
        if finished_at is not None and time.monotonic() - finished_at > EXIT_GRACE:
            proc.kill()
            proc.wait()
            return None


def run_group(args, group, result_path):
    """Runs one group in a child process: (its result, None) or ({}, why it failed)."""
    global CURRENT_CHILD
    cmd = [sys.executable, os.path.abspath(__file__), "--child", group, "--result", result_path,
           "--module", args.module, "--skips", args.skips,
           "--test-timeout", str(args.test_timeout)]
    cmd += ["-v"] if args.verbose else []
    cmd += args.patterns
    sys.stdout.flush()
    sys.stderr.flush()
    CURRENT_CHILD = proc = subprocess.Popen(cmd)
    status = wait_child(proc, result_path)
    CURRENT_CHILD = None
    result = read_json(result_path)
    if result.get("done") and status == 0:
        return result, None
    if status is None:
        return result, (f"its process did not exit within {EXIT_GRACE:.0f} s after its tests "
                        "finished (hung at interpreter exit); killed")
    where = f" while running {result['running']}" if result.get("running") else ""
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        return result, f"its process was killed by {name}{where}"
    return result, (f"its process ended with exit status {status}{where} (a per-test watchdog "
                    "or a crash; see above)")


def main():
    args = parse_args()
    if args.child:
        import _thread
        module = _thread if args.module == "_thread" else importlib.import_module(args.module)
        if _thread is not module:
            sys.exit(f"conformance: FAILED: _thread is {_thread!r} in the child, not {module!r}")
        run_child(args, module)
        return

    start_total_watchdog(args.total_timeout)
    module = check_stand_in(args.module)
    print(f"conformance: Python {sys.version.split()[0]} ({sys.executable}), module "
          f"{args.module} ({getattr(module, '__file__', 'builtin')})")
    sys.stdout.flush()

    skips, pending = all_skips(args.skips)
    used = set()
    totals = {"run": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    problems = []
    crashed = []
    not_run = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pythread-conformance-") as tmp:
        for group in groups(args.module, args.groups and args.groups.split(",")):
            result, crash = run_group(args, group, os.path.join(tmp, group + ".json"))
            # The classes that finished count, also in a process that died afterwards.
            for key in totals:
                totals[key] += result.get(key, 0)
            problems += result.get("problems", [])
            not_run += result.get("not_run", [])
            used.update(result.get("used", []))
            if crash:
                print(f"{group}: FAILED: {crash}")
                crashed.append(group)
                problems.append(f"{group} ({crash})")
                totals["errors"] += 1
                sys.stdout.flush()
    elapsed = time.perf_counter() - start

    if problems:
        shown = problems if len(problems) <= 40 else problems[:40] + [
            f"and {len(problems) - 40} more (above)"]
        print(f"conformance: failed ({len(problems)}): " + "; ".join(shown))
    if not_run:
        print(f"conformance: not run ({len(not_run)}, each needs a subinterpreter, where PyO3 "
              f"modules cannot be imported): {', '.join(not_run)}")
    if pending:
        print(f"conformance: {len(pending)} test(s) not yet wired (CONFORMANCE.md, "
              f"'Not yet wired'): {', '.join(sorted(pending))}")
    # A skip no test used is stale, unless its group's process died before it could say.
    stale = sorted(k for k in skips if not args.patterns and not args.groups and k not in used
                   and k.split(".")[0] not in crashed)
    for name in stale:
        print(f"conformance: skip entry {name} matches no test (stale entry)")

    # CPython's own totals (unittest's summary) and the plain line.
    print("-" * 70)
    print(f"Ran {totals['run']} tests in {elapsed:.3f}s")
    print()
    if totals["failed"] or totals["errors"]:
        parts = [f"failures={totals['failed']}"] if totals["failed"] else []
        parts += [f"errors={totals['errors']}"] if totals["errors"] else []
        parts += [f"skipped={totals['skipped']}"] if totals["skipped"] else []
        print(f"FAILED ({', '.join(parts)})")
    else:
        print(f"OK (skipped={totals['skipped']})" if totals["skipped"] else "OK")
    bad = totals["failed"] + totals["errors"]
    if totals["run"] == 0 and not args.patterns:
        print("conformance: FAILED: no test ran")
        bad = 1
    print(f"conformance: {totals['passed']} passed, {bad} failed, {totals['skipped']} skipped")
    sys.stdout.flush()
    sys.exit(1 if bad or stale else 0)


if __name__ == "__main__":
    main()

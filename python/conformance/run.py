"""CPython's own thread tests, run against `_pythread` (the pythread crate's `_thread`).

Usage: python3 run.py [--module NAME] [--path DIR] [--skips FILE] [-v] [PATTERN ...]

Loads the installed interpreter's `Lib/test` files without touching them: each test module is
executed afresh under a private name while `sys.modules['_thread']` is a stand-in (the module
under test, with CPython's own `_thread` names for anything it lacks); `test.lock_tests` and
`test.support.threading_helper` are loaded afresh the same way, so their threads
(`start_new_thread`), their thread counts (`_count`) and `TIMEOUT_MAX` are the module's too.
The installed stdlib and the real `_thread` are restored right after each import.

Prints one line per test class, then unittest's totals and one `N passed, N failed` line; exits
non-zero on any failure or error. Tests listed in the skip table of CONFORMANCE.md (by test id
and interpreter version) are skipped with their reason. A watchdog (faulthandler) ends the run
with the stacks of every thread if one test takes longer than --test-timeout seconds.
`--module _thread` runs the same suites against CPython's own module, as a baseline.
"""

import argparse
import contextlib
import faulthandler
import importlib
import importlib.util
import inspect
import os
import re
import sys
import time
import types
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VERSION = "%d.%d" % sys.version_info[:2]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--module", default="_pythread", help="module to test (default _pythread)")
    p.add_argument("--path", default=os.path.join(ROOT, "target", "python"),
                   help="directory holding the built module")
    p.add_argument("--skips", default=os.path.join(ROOT, "CONFORMANCE.md"),
                   help="markdown file with the skip table")
    p.add_argument("--test-timeout", type=float, default=120.0,
                   help="watchdog: seconds one test may take before the run is ended")
    p.add_argument("--total-timeout", type=float, default=600.0,
                   help="watchdog: seconds the whole run may take")
    p.add_argument("-v", "--verbose", action="store_true")
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


# --- the stand-in `_thread` --------------------------------------------------------------------

def make_stand_in(module):
    """A `_thread` whose names are the module's, with CPython's own for anything it lacks."""
    import _thread as real
    shim = types.ModuleType("_thread", real.__doc__)
    shim.__dict__.update({k: v for k, v in vars(real).items() if not k.startswith("__")})
    own = sorted(k for k in vars(module) if not k.startswith("__"))
    shim.__dict__.update({k: getattr(module, k) for k in own})
    borrowed = sorted(k for k in vars(real) if not k.startswith("__") and k not in own)
    return shim, own, borrowed


@contextlib.contextmanager
def modules_replaced(replacements):
    """sys.modules entries (and the parent packages' attributes) replaced for the duration."""
    saved = {}
    for name, mod in replacements.items():
        parent, _, child = name.rpartition(".")
        saved[name] = (sys.modules.get(name),
                       getattr(sys.modules[parent], child, None) if parent else None)
        sys.modules[name] = mod
        if parent:
            setattr(sys.modules[parent], child, mod)
    try:
        yield
    finally:
        for name, (mod, attr) in saved.items():
            parent, _, child = name.rpartition(".")
            if mod is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = mod
            if parent:
                if attr is None:
                    delattr(sys.modules[parent], child)
                else:
                    setattr(sys.modules[parent], child, attr)


def load_fresh(name, replacements, keep_name=False):
    """Executes the installed module `name` afresh with `replacements` in sys.modules while it
    imports. It is registered as `pythread_conformance.<name>` (unittest finds setUpModule
    through sys.modules); `keep_name` keeps its `__name__` instead (threading's reprs show it),
    unregistered. The installed module, if imported, stays where it is."""
    spec = importlib.util.find_spec(name)
    alias = "pythread_conformance." + name
    fresh_spec = importlib.util.spec_from_file_location(name if keep_name else alias,
                                                        spec.origin)
    mod = importlib.util.module_from_spec(fresh_spec)
    with modules_replaced({**replacements, name: mod}):
        if not keep_name:
            sys.modules[alias] = mod
        fresh_spec.loader.exec_module(mod)
    return mod


def build_world(shim):
    """The test modules, each imported with the stand-in `_thread` and with `lock_tests` and
    `threading_helper` that were themselves imported with it."""
    import test.support  # noqa: F401  (the real package, parent of threading_helper)
    import test.lock_tests  # noqa: F401
    world = {"_thread": shim}
    world["test.support.threading_helper"] = load_fresh("test.support.threading_helper", world)
    world["test.lock_tests"] = load_fresh("test.lock_tests", world)
    mods = {"lock_tests": world["test.lock_tests"]}
    for name in ("test_thread", "test_threadsignals"):
        mods[name] = load_fresh("test." + name, world)

    # test_threading runs on a `threading` that was itself imported with the stand-in: its
    # Thread, Lock, RLock, Condition, Event, Semaphore, Barrier, Timer are built on the module.
    tw = {"_thread": shim}
    tw["threading"] = load_fresh("threading", tw, keep_name=True)
    tw["test.support.threading_helper"] = load_fresh("test.support.threading_helper", tw)
    tw["test.lock_tests"] = load_fresh("test.lock_tests", tw)
    mods["test_threading"] = load_fresh("test.test_threading", tw)
    mods["threading"] = tw["threading"]
    return mods


# Tests that start a child process or a subinterpreter test CPython's own `_thread` there, not
# the module: they are not run (CONFORMANCE.md, "Not run").
CHILD_MARKERS = ("assert_python_ok", "assert_python_failure", "spawn_python",
                 "subprocess.", "script_helper", "run_python_until_end",
                 "run_in_subinterp", "interpreters.create", "requires_subinterpreters")


def runs_child_interpreter(cls, name):
    """True if the test, or a `self._helper` it calls, starts a child or sub-interpreter."""
    try:
        src = inspect.getsource(getattr(cls, name))
    except (OSError, TypeError):
        return False
    if any(m in src for m in CHILD_MARKERS):
        return True
    for helper in set(re.findall(r"self\.(_\w+)\(", src)):
        fn = getattr(cls, helper, None)
        try:
            if fn is not None and any(m in inspect.getsource(fn) for m in CHILD_MARKERS):
                return True
        except (OSError, TypeError):
            pass
    return False


# --- the suites ----------------------------------------------------------------------------------

def suites(module, mods):
    """(label, TestCase class) pairs, in run order."""
    lock_tests = mods["lock_tests"]
    out = []

    # lock_tests.LockTests / RLockTests with `locktype` = the module's types (a builtin type or
    # function needs no staticmethod).
    class LockTests(lock_tests.LockTests):
        locktype = module.allocate_lock

    class RLockTests(lock_tests.RLockTests):
        locktype = module.RLock

    LockTests.__qualname__ = LockTests.__name__ = "LockTests"
    RLockTests.__qualname__ = RLockTests.__name__ = "RLockTests"
    out.append(("lock_tests.LockTests", LockTests))
    out.append(("lock_tests.RLockTests", RLockTests))

    tt = mods["test_thread"]
    for cls in ("LockTests", "ThreadRunningTests", "BarrierTest", "TestForkInThread"):
        if hasattr(tt, cls):
            out.append(("test_thread." + cls, getattr(tt, cls)))
    ts = mods["test_threadsignals"]
    out.append(("test_threadsignals.ThreadSignals", ts.ThreadSignals))
    sys.path.insert(0, HERE)
    import interrupts
    out.append(("interrupts.Interrupts", interrupts.make_case(module)))
    if VERSION == "3.13" and module.__name__ != "_thread":
        import differential
        out.append(("differential.AgainstCPython", differential.make_case(module)))
    tg = mods["test_threading"]
    for name, cls in vars(tg).items():
        if (isinstance(cls, type) and issubclass(cls, unittest.TestCase)
                and cls.__module__ == tg.__name__
                and unittest.TestLoader().getTestCaseNames(cls)):
            out.append(("test_threading." + name, cls))
    return out


class ClassResult(unittest.TextTestResult):
    """Counts per class, and re-arms the watchdog at each test."""

    def __init__(self, *args, watchdog=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.watchdog = watchdog
        self.passed = 0

    def startTest(self, test):
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
        os._exit(2)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()


def main():
    args = parse_args()
    start_total_watchdog(args.total_timeout)
    sys.path.insert(0, args.path)
    module = importlib.import_module(args.module)
    shim, own, borrowed = make_stand_in(module)
    print(f"conformance: Python {sys.version.split()[0]}, module {args.module} "
          f"({getattr(module, '__file__', 'builtin')})")
    print(f"conformance: {len(own)} names from {args.module}; from CPython's _thread: "
          f"{', '.join(borrowed) or '-'}")
    sys.stdout.flush()

    import test.support
    test.support.verbose = 1 if args.verbose else 0  # as regrtest sets it (no chatter)

    # Importing test modules starts no thread, but bound it all the same.
    faulthandler.dump_traceback_later(args.test_timeout, exit=True)
    mods = build_world(shim)
    faulthandler.cancel_dump_traceback_later()

    skips = read_skips(args.skips)
    # Tests whose crate API has not landed yet: skipped, and counted apart.
    pending = read_skips(args.skips, "pending")
    skips.update({k: "NOT YET WIRED: " + v for k, v in pending.items()})
    used = set()
    stream = unittest.runner._WritelnDecorator(sys.stderr)
    totals = {"run": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    problems = []
    not_run = []
    start = time.perf_counter()
    for label, cls in suites(module, mods):
        apply_skips(cls, label, skips, used)
        suite = unittest.TestSuite()
        for name in unittest.TestLoader().getTestCaseNames(cls):
            if args.patterns and not any(p in f"{label}.{name}" for p in args.patterns):
                continue
            if runs_child_interpreter(cls, name):
                not_run.append(f"{label}.{name}")
                continue
            suite.addTest(cls(name))
        if suite.countTestCases() == 0:
            continue
        result = ClassResult(stream, True, 2 if args.verbose else 0,
                             watchdog=args.test_timeout)
        t0 = time.perf_counter()
        suite(result)
        dt = time.perf_counter() - t0
        failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
        skipped = len(result.skipped)
        status = "ok" if failed == 0 else "FAILED"
        print(f"{label}: {result.passed} passed, {failed} failed, {skipped} skipped "
              f"({dt:.1f}s) {status}")
        sys.stdout.flush()
        totals["run"] += result.testsRun
        totals["passed"] += result.passed
        totals["failed"] += len(result.failures) + len(result.unexpectedSuccesses)
        totals["errors"] += len(result.errors)
        totals["skipped"] += skipped
        for test, tb in result.failures + result.errors:
            problems.append((test.id(), tb))
        for test in result.unexpectedSuccesses:
            problems.append((test.id(), "unexpected success"))
    elapsed = time.perf_counter() - start

    for test_id, tb in problems:
        print("=" * 70)
        print(f"FAIL: {test_id}")
        print("-" * 70)
        print(tb)
    if not_run:
        print(f"conformance: not run ({len(not_run)}, each starts a child process or a "
              f"subinterpreter, which imports CPython's own _thread): "
              f"{', '.join(not_run) if args.verbose else '-v lists them'}")
    if pending:
        print(f"conformance: {len(pending)} test(s) not yet wired (CONFORMANCE.md, "
              f"'Not yet wired'): {', '.join(sorted(pending))}")
    stale = sorted(set(k for k in skips if not args.patterns) - used)
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
    # A normal exit: the interpreter finalizes with whatever daemon threads the tests left
    # running (the module's guard parks them; see lifecycle.py's exit checks).
    sys.exit(1 if bad or stale else 0)


if __name__ == "__main__":
    main()

"""`make bench-python`: the module against CPython's own `_thread`, at the Python level.

Usage: <python> python/bench.py [--repeat 7] [--rows NAME ...] [--no-instructions] [--no-wall]

Needs `_pythread` importable (the conformance venvs have it) and, for the main table, valgrind.

Main table: instructions per operation (callgrind; deterministic). Each row and side runs in
its own interpreter under `valgrind --tool=callgrind`: the module's with the stand-in installed before
`threading` is imported (`pythread_standin.install()`, as the activation does), CPython's with
its own `_thread`. Each row's statement runs in a small function, as `exec` of a loop of N
operations and of the same loop with 0; callgrind dumps its counters after every `exec`
(`--dump-after=builtin_exec`), so that a row costs (count(N) - count(0)) / N, every thread of
the process included (the thread rows start and join their threads inside the `exec`).

Second table: wall-clock time, `timeit`, best of --repeat runs, both sides in this one process
(two `threading` modules: CPython's own, and one executed afresh on the module), interleaved
(module, CPython, module, ...) so that drift of the machine hits both alike.

The ratio is module / CPython (below 1.00 = the module is cheaper).
"""

# Only modules that do not import `threading`: the inner runs install the stand-in first.
import argparse
import importlib.util
import os
import sys
import textwrap


def load_threading_on(thread_module):
    """A fresh `threading` whose `_thread` is `thread_module` (the real one is put back)."""
    spec = importlib.util.find_spec("threading")
    fresh = importlib.util.module_from_spec(
        importlib.util.spec_from_file_location("threading", spec.origin))
    saved = {name: sys.modules.get(name) for name in ("_thread", "threading")}
    sys.modules["_thread"] = thread_module
    sys.modules["threading"] = fresh
    try:
        spec.loader.exec_module(fresh)
    finally:
        # Put back what was there; a name that was not imported is removed, not set to None
        # (which would make the next find_spec("threading") fail).
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return fresh


def contended(threading, n_threads=4, n=50_000):
    lock = threading.Lock()
    counter = [0]

    def work():
        for _ in range(n):
            with lock:
                counter[0] += 1
    threads = [threading.Thread(target=work) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counter[0] == n_threads * n


def _local_with_x(m):
    loc = m._local()
    loc.x = 1
    return loc


def _local_subclass_with_x(m):
    class Sub(m._local):
        pass
    loc = Sub()
    loc.x = 1
    return loc


# name -> (setup(thread_module, threading) -> namespace, statement, wall-clock number,
#          instructions N (None: not counted))
ROWS = {
    "lock.acquire(); lock.release()": (
        lambda m, th: {"lock": m.allocate_lock()}, "lock.acquire(); lock.release()",
        200_000, 20_000),
    "with lock:": (
        lambda m, th: {"lock": m.allocate_lock()}, "with lock: pass", 200_000, 20_000),
    "acquire(timeout=0.5) free lock": (
        lambda m, th: {"lock": m.allocate_lock()},
        "lock.acquire(timeout=0.5); lock.release()", 200_000, 20_000),
    "acquire(False) free lock": (
        lambda m, th: {"lock": m.allocate_lock()},
        "lock.acquire(False); lock.release()", 200_000, 20_000),
    "lock.locked()": (
        lambda m, th: {"lock": m.allocate_lock()}, "lock.locked()", 500_000, 20_000),
    "RLock acquire+release": (
        lambda m, th: {"lock": m.RLock()}, "lock.acquire(); lock.release()", 200_000, 20_000),
    "with RLock:": (
        lambda m, th: {"lock": m.RLock()}, "with lock: pass", 200_000, 20_000),
    "Condition notify": (
        lambda m, th: {"c": th.Condition()}, "with c: c.notify()", 100_000, 10_000),
    "Event set/clear/is_set": (
        lambda m, th: {"e": th.Event()}, "e.set(); e.clear(); e.is_set()", 100_000, 10_000),
    "get_ident()": (
        lambda m, th: {"m": m}, "m.get_ident()", 500_000, 20_000),
    "threading.Thread start+join": (
        lambda m, th: {"th": th}, "t = th.Thread(target=int); t.start(); t.join()",
        2_000, 300),
    "_local attribute read": (
        lambda m, th: {"l": _local_with_x(m)}, "l.x", 500_000, 20_000),
    "_local attribute write": (
        lambda m, th: {"l": _local_with_x(m)}, "l.x = 2", 500_000, 20_000),
    "_local subclass attribute read": (
        lambda m, th: {"l": _local_subclass_with_x(m)}, "l.x", 500_000, 20_000),
    "_local subclass attribute write": (
        lambda m, th: {"l": _local_subclass_with_x(m)}, "l.x = 2", 500_000, 20_000),
    "4 threads x 50,000 contended with lock:": (
        lambda m, th: {"contended": contended, "th": th}, "contended(th)", 1, None),
}


def selected(rows):
    return [name for name in ROWS if not rows or any(r in name for r in rows)]


def loop_source(names, stmt, n):
    """A function that runs `stmt` n times, the row's names its arguments (fast locals, as
    timeit's), called once."""
    return textwrap.dedent(f"""
        def _bench({', '.join(names)}):
            for _ in range({n}):
                {stmt}
        _bench(**_ns)
    """)


def inner(side, names):
    """Runs inside callgrind: the rows' loops as `exec` calls, each followed by a dump.
    Per row: exec(0 operations) twice (the first dump also holds the setup), then exec(N)."""
    if side == "module":
        import pythread_standin
        if not pythread_standin.install():
            sys.exit("bench: the stand-in could not be installed")
    import _thread
    import threading
    if (side == "module") != (_thread.__name__ == "_pythread._pythread"):
        sys.exit(f"bench: {side}: _thread is {_thread.__name__}")
    for name in names:
        setup, stmt, _, n = ROWS[name]
        ns = setup(_thread, threading)
        codes = [compile(loop_source(ns, stmt, k), "<bench>", "exec") for k in (0, 0, n)]
        for code in codes:
            exec(code, {"_ns": ns})


def instructions(python, names):
    """{side: {row: instructions per operation}}, from one callgrind run per row and side (each
    row in a fresh interpreter, so that no row's leftovers, the allocator's state included,
    change another's count)."""
    out = {"module": {}, "CPython": {}}
    for name in names:
        for side in ("module", "CPython"):
            out[side][name] = count_row(python, side, name)
    return out


def count_row(python, side, name):
    import glob
    import shutil
    import subprocess
    import tempfile
    tmp = tempfile.mkdtemp(prefix="bench-python-")
    try:
        env = dict(os.environ, PYTHONHASHSEED="0")
        # CPython's side without site (-S): no activation `.pth` can run there.
        flags = ["-I"] if side == "module" else ["-I", "-S"]
        cmd = ["valgrind", "--tool=callgrind", "--dump-after=builtin_exec",
               f"--callgrind-out-file={tmp}/cg.out", python, *flags,
               os.path.abspath(__file__), "--inner", side.lower(), "--rows", name]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            sys.exit(f"bench: callgrind run failed ({side}, {name}):\n{proc.stderr[-3000:]}")
        dumps = sorted(glob.glob(f"{tmp}/cg.out.*"),
                       key=lambda p: int(p.rsplit(".", 1)[1].split("-")[0]))
        # The row's three execs are the last three dumps (imports may exec code before them).
        totals = [read_total(p) for p in dumps][-3:]
        if len(totals) != 3:
            sys.exit(f"bench: expected 3 dumps, got {len(totals)}")
        _, zero, full = totals
        return (full - zero) / ROWS[name][3]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_total(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def wall_clock(names, repeat):
    import timeit
    import importlib._bootstrap
    cpython = importlib._bootstrap._thread
    try:
        from _pythread import _pythread as module
    except ImportError:
        import _pythread as module
    sides = {
        "module": (module, __import__("threading") if sys.modules.get("_thread") is module
                   else load_threading_on(module)),
        "CPython": (cpython, load_threading_on(cpython)),
    }
    print(f"\nwall-clock: Python {sys.version.split()[0]}, timeit best of {repeat}, "
          "interleaved; ratio = module / CPython")
    print(f"{'row':42} {'module':>12} {'CPython':>12} {'ratio':>7}")
    for name in names:
        setup, stmt, number, _ = ROWS[name]
        best = {"module": float("inf"), "CPython": float("inf")}
        timers = {side: timeit.Timer(stmt, globals=setup(*sides[side])) for side in sides}
        for _ in range(repeat):
            for side in ("module", "CPython"):
                best[side] = min(best[side], timers[side].timeit(number) / number)
        unit, scale = ("us", 1e6) if best["CPython"] < 1e-3 else ("ms", 1e3)
        print(f"{name:42} {best['module'] * scale:9.3f} {unit} {best['CPython'] * scale:9.3f} "
              f"{unit} {best['module'] / best['CPython']:6.2f}x", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--rows", nargs="*", help="substrings of the row names to run")
    p.add_argument("--no-instructions", action="store_true", help="skip the callgrind table")
    p.add_argument("--no-wall", action="store_true", help="skip the wall-clock table")
    p.add_argument("--inner", choices=("module", "cpython"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.inner:
        inner(args.inner, [n for n in args.rows if n in ROWS])
        return
    names = selected(args.rows)
    import shutil
    if not args.no_instructions:
        counted = [n for n in names if ROWS[n][3] is not None]
        if shutil.which("valgrind") is None:
            sys.exit("bench: valgrind is needed for the instructions table (--no-instructions "
                     "skips it)")
        print(f"instructions: Python {sys.version.split()[0]}, callgrind, (count(N) - count(0))"
              " / N per operation; ratio = module / CPython", flush=True)
        counts = instructions(sys.executable, counted)
        print(f"{'row':42} {'module':>10} {'CPython':>10} {'ratio':>7}")
        for name in counted:
            a, b = counts["module"][name], counts["CPython"][name]
            print(f"{name:42} {a:10.0f} {b:10.0f} {a / b:6.2f}x", flush=True)
    if not args.no_wall:
        wall_clock(names, args.repeat)


if __name__ == "__main__":
    main()

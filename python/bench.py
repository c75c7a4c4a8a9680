"""`make bench-python`: the module against CPython's own `_thread`, at the Python level.

Usage: <python> python/bench.py [--repeat 7] [--rows NAME ...]

Needs `_pythread` importable (the conformance venvs have it). Two `threading` modules are made in
this one process: CPython's own, and one executed afresh while `sys.modules['_thread']` is the
module (so its Lock, RLock, Condition, Event, Thread are the module's). Each row is timed with
`timeit`, best of --repeat runs, the module's and CPython's runs interleaved (module, CPython,
module, ...) so that drift of the machine hits both alike; the ratio is module / CPython (below
1.00 = the module is faster).
"""

import argparse
import importlib.util
import sys
import timeit


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


# name -> (setup(thread_module, threading) -> namespace, statement, number)
ROWS = {
    "lock.acquire(); lock.release()": (
        lambda m, th: {"lock": m.allocate_lock()}, "lock.acquire(); lock.release()", 200_000),
    "with lock:": (
        lambda m, th: {"lock": m.allocate_lock()}, "with lock: pass", 200_000),
    "acquire(timeout=0.5) free lock": (
        lambda m, th: {"lock": m.allocate_lock()},
        "lock.acquire(timeout=0.5); lock.release()", 200_000),
    "RLock acquire+release": (
        lambda m, th: {"lock": m.RLock()}, "lock.acquire(); lock.release()", 200_000),
    "with RLock:": (
        lambda m, th: {"lock": m.RLock()}, "with lock: pass", 200_000),
    "Condition notify": (
        lambda m, th: {"c": th.Condition()}, "with c: c.notify()", 100_000),
    "Event set/clear/is_set": (
        lambda m, th: {"e": th.Event()}, "e.set(); e.clear(); e.is_set()", 100_000),
    "threading.Thread start+join": (
        lambda m, th: {"th": th}, "t = th.Thread(target=int); t.start(); t.join()", 2_000),
    "4 threads x 50,000 contended with lock:": (
        lambda m, th: {"contended": contended, "th": th}, "contended(th)", 1),
    "get_ident()": (
        lambda m, th: {"m": m}, "m.get_ident()", 500_000),
    "_local attribute read": (
        lambda m, th: {"l": _local_with_x(m)}, "l.x", 500_000),
}


def _local_with_x(m):
    loc = m._local()
    loc.x = 1
    return loc


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--rows", nargs="*", help="substrings of the row names to run")
    args = p.parse_args()

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
    print(f"bench-python: Python {sys.version.split()[0]}, best of {args.repeat}, "
          "interleaved; ratio = module / CPython")
    print(f"{'row':42} {'module':>12} {'CPython':>12} {'ratio':>7}")
    for name, (setup, stmt, number) in ROWS.items():
        if args.rows and not any(r in name for r in args.rows):
            continue
        best = {"module": float("inf"), "CPython": float("inf")}
        timers = {side: timeit.Timer(stmt, globals=setup(*sides[side])) for side in sides}
        for _ in range(args.repeat):
            for side in ("module", "CPython"):
                best[side] = min(best[side], timers[side].timeit(number) / number)
        unit, scale = ("us", 1e6) if best["CPython"] < 1e-3 else ("ms", 1e3)
        print(f"{name:42} {best['module'] * scale:9.3f} {unit} {best['CPython'] * scale:9.3f} "
              f"{unit} {best['module'] / best['CPython']:6.2f}x", flush=True)


if __name__ == "__main__":
    main()

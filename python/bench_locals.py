"""`_local` at scale, the module against CPython's own `_thread` (BENCHMARKS.md, "Fork and `_local`").

Usage: <python> python/bench_locals.py [--path DIR] [--n 80000] [--repeat 5]

Three measurements per side, each in a fresh child interpreter, the sides interleaved, best of
--repeat (wall-clock seconds):
- make: `[_local() for _ in range(n)]`, all kept alive (each `_local` makes its creating
  thread's dict at once, as CPython's `local_new` does), with the cyclic collector on;
- make, collector off: the same with `gc.disable()`;
- touch from another thread: a new thread sets an attribute on each of the n live locals (each
  access makes that thread's dict of that local).
The module is imported from --path (`make python-module` puts `_pythread.abi3.so` in target/python)
or, without it, from the environment (a venv with the wheel installed). Ratios are module / CPython;
the target of the fork-and-`_local` work is within 2x on every row.
"""

import argparse
import os
import subprocess
import sys

CHILD = r"""
import gc, sys, threading, time
side, n, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if side == "module":
    if path:
        sys.path.insert(0, path)
    import _pythread
    local = _pythread._local
else:
    import _thread
    local = _thread._local

def make(collector):
    if not collector:
        gc.disable()
    t = time.perf_counter()
    locals_ = [local() for _ in range(n)]
    took = time.perf_counter() - t
    gc.enable()
    return took, locals_

def touch(locals_):
    took = []
    def run():
        t = time.perf_counter()
        for l in locals_:
            l.x = 1
        took.append(time.perf_counter() - t)
    th = threading.Thread(target=run)
    th.start()
    th.join(600)
    assert took, "the touching thread did not finish within 600 s"
    return took[0]

what = sys.argv[4]
if what == "make":
    print(make(True)[0])
elif what == "make-gc-off":
    print(make(False)[0])
else:
    _, locals_ = make(True)
    print(touch(locals_))
"""

ROWS = (("make", "making n locals alive"),
        ("make-gc-off", "making them, collector off"),
        ("touch", "touching each from another thread"))


def measure(side, what, n, path):
    out = subprocess.run([sys.executable, "-c", CHILD, side, str(n), path or "", what],
                         capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        sys.exit(f"bench_locals: {side} {what} failed:\n{out.stderr}")
    return float(out.stdout.strip())


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--path", help="directory holding _pythread.abi3.so")
    p.add_argument("--n", type=int, default=80_000)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    path = os.path.abspath(args.path) if args.path else None
    v = "%d.%d.%d" % sys.version_info[:3]
    print(f"_local at scale, n = {args.n:,}, Python {v}, best of {args.repeat} (seconds)")
    print(f"| {'row':<36} | {'CPython':>8} | {'module':>8} | module / CPython |")
    print(f"|{'-' * 38}|{'-' * 10}|{'-' * 10}|------------------|")
    for what, label in ROWS:
        best = {"cpython": float("inf"), "module": float("inf")}
        for _ in range(args.repeat):
            for side in best:
                best[side] = min(best[side], measure(side, what, args.n, path))
        ratio = best["module"] / best["cpython"]
        print(f"| {label:<36} | {best['cpython']:>8.3f} | {best['module']:>8.3f} | {ratio:>15.2f}x |",
              flush=True)


if __name__ == "__main__":
    main()

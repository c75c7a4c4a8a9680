"""Python-level speed of RustPython's own `_thread` and the crate's, side by side.

Usage: python3 compare.py --binary PATH [--runs R] [--n N]

Runs bench.py R times per `_thread`, alternating the two so that load on the machine falls on
both alike, and prints a markdown table: per row the median of the runs' best-of-3 figures in
ns per operation, the range over the runs, and the ratio crate / own (below 1.00: the crate's is
faster).
"""

import argparse
import json
import os
import statistics
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--binary", required=True)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--n", type=int, default=200_000)
    a = p.parse_args()
    samples = {"own": [], "crate": []}
    for _ in range(a.runs):
        for mode in ("own", "crate"):
            env = dict(os.environ, PYTHREAD_RUSTPYTHON_OWN="1" if mode == "own" else "0")
            out = subprocess.run(["timeout", "600", a.binary, os.path.join(HERE, "bench.py"),
                                  str(a.n)], env=env, check=True, stdout=subprocess.PIPE)
            samples[mode].append(json.loads(out.stdout.decode().strip().splitlines()[-1]))
    print("| row | RustPython's own `_thread` (ns/op) | the crate's (ns/op) | crate / own |")
    print("|---|---|---|---|")
    for row in samples["own"][0]:
        own = [s[row] for s in samples["own"]]
        crate = [s[row] for s in samples["crate"]]
        mo, mc = statistics.median(own), statistics.median(crate)
        print("| %s | %.0f (%.0f-%.0f) | %.0f (%.0f-%.0f) | %.2fx |" % (
            row, mo, min(own), max(own), mc, min(crate), max(crate), mc / mo))


if __name__ == "__main__":
    main()

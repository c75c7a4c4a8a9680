#!/usr/bin/env python3
"""Prints the medians of the last `cargo bench --bench compare` run as a Markdown
table, each with its ratio to the baseline of its group (std, or the bare Condvar
broadcast), as quoted in BENCHMARKS.md. Reads criterion's own estimates in
target/criterion/GROUP/BENCH/new/estimates.json; needs nothing but Python 3."""

import json
import pathlib
import sys

# Group, its baseline, then its rows in the order to print them.
GROUPS = [
    ("start_join", "std", ["std", "pythread", "std_detached", "shared_thread"]),
    (
        "finished_join",
        "std_is_finished",
        [
            "std_is_finished",
            "pythread_join_is_ok",
            "pythread_join",
            "pythread_is_finished",
            "shared_thread",
        ],
    ),
    ("wake_16_joiners", "condvar_broadcast", ["condvar_broadcast", "pythread"]),
    ("start_from_2_threads", "std", ["std", "pythread", "std_detached"]),
]


def median(root, group, bench):
    path = root / group / bench / "new" / "estimates.json"
    if not path.exists():
        return None
    estimate = json.loads(path.read_text())["median"]
    interval = estimate["confidence_interval"]
    return estimate["point_estimate"], interval["lower_bound"], interval["upper_bound"]


def show(ns):
    for unit, scale in (("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
    print("| group | bench | median | 95% CI of median | ratio to baseline |")
    print("|---|---|---:|---|---:|")
    for group, baseline, rows in GROUPS:
        base = median(root, group, baseline)
        for bench in rows:
            found = median(root, group, bench)
            if found is None:
                continue
            point, low, high = found
            ratio = f"{point / base[0]:.2f}×" if base else "n/a"
            print(f"| {group} | {bench} | {show(point)} | {show(low)} – {show(high)} | {ratio} |")


if __name__ == "__main__":
    main()

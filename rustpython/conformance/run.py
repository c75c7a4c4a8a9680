"""Thread tests on RustPython, with its own `_thread` and with the crate's.

Usage: python3 run.py --binary PATH --lib LIB [--timeout S] [--out DIR] [--by module] [MODULE ...]

LIB is the directory holding the `test` package: the installed CPython's Lib (CPython's tests,
the default modules), or RustPython 0.5.0's own tests (`../shared/rustpython-0.5.0-tests`, with
its own skip markers; `make rustpython` passes its six thread modules and `--by module`).

For each mode (`own`: PYTHREAD_RUSTPYTHON_OWN=1, RustPython's `_thread`; `crate`: the pythread
crate's), lists the test classes of each module, then runs each class in its own process
(`one.py`) under `timeout` and a per-test watchdog, the installed CPython's Lib on the
interpreter's path after RustPython's own Lib (PYTHREAD_RUSTPYTHON_PATH, which the binary
appends to `sys.path` even under `-I`, so the interpreters the tests start find `test` too). A test that gives no result within the per-test time (or
the class's), or that the process died in, counts as failed ("hang"/"crash") and the class is
run again without it, so the tests after it still run; a test that never ran is "not run". Prints one table: per class (or with `--by
module`, per module: tests run / failed / skipped, as unittest counts them) in each mode, then
every test whose outcome differs between the modes, then the failures' reasons. Results go to OUT/{own,crate}.json. Exits non-zero when a test that
passed with RustPython's own `_thread` does not pass with the crate's.
"""

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
MODULES = ["test.test_thread", "test.test_threadsignals", "test.test_threading"]
MODES = {"own": {"PYTHREAD_RUSTPYTHON_OWN": "1"}, "crate": {"PYTHREAD_RUSTPYTHON_OWN": "0"}}
MAX_ATTEMPTS = 8


def run_one(binary, env, timeout, test_timeout, args):
    """Runs one.py with `args` under `timeout` (the whole process) and a watchdog (no event
    for `test_timeout` seconds: the process group is killed); returns (events, exit status or
    "hang", stderr tail)."""
    cmd = ["timeout", "-k", "5", str(timeout), binary, os.path.join(HERE, "one.py")] + args
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    lines = queue.Queue()
    errs = []

    def pump(stream, sink, end):
        for line in stream:
            sink(line.decode("utf-8", "replace"))
        end()

    threading.Thread(target=pump, args=(proc.stdout, lines.put, lambda: lines.put(None)),
                     daemon=True).start()
    err_reader = threading.Thread(target=pump, args=(proc.stderr, errs.append, lambda: None),
                                  daemon=True)
    err_reader.start()
    events = []
    hung = False
    while True:
        try:
            line = lines.get(timeout=test_timeout)
        except queue.Empty:
            hung = True
            os.killpg(proc.pid, signal.SIGKILL)
            break
        if line is None:
            break
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except ValueError:
                pass
    status = proc.wait()
    err_reader.join(5)
    if status in (124, 137):
        hung = True
    tail = " | ".join("".join(errs).strip().splitlines()[-3:])
    return events, "hang" if hung else status, tail


def run_class(binary, env, timeout, test_timeout, module, cls, ids):
    outcomes = {}  # id -> (outcome, reason)
    skip = []
    for _ in range(MAX_ATTEMPTS):
        events, status, tail = run_one(binary, env, timeout, test_timeout, [module, cls] + skip)
        started = None
        done = False
        for ev in events:
            if "start" in ev:
                started = ev["start"]
            elif "id" in ev:
                outcomes.setdefault(ev["id"], (ev["outcome"], ev["reason"]))
                started = None
            elif ev.get("done"):
                done = True
        if done:
            break
        if started is None:
            # Died outside any test (import, a class fixture): the rest is "not run".
            reason = "hang" if status == "hang" else "exit %s" % status
            outcomes.setdefault("%s.%s" % (module, cls), ("error", "%s outside a test: %s"
                                                              % (reason, tail)))
            break
        why = ("hang: no result within %ss" % test_timeout if status == "hang"
               else "crash: exit status %s: %s" % (status, tail))
        outcomes[started] = ("failed", why)
        skip.append(started)
    counts = {"passed": 0, "failed": 0, "skipped": 0, "not run": 0}
    for test_id in ids:
        outcome = outcomes.get(test_id, ("not run", ""))[0]
        counts[outcome] += 1
    return counts, outcomes


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--binary", required=True)
    p.add_argument("--lib", required=True, help="the installed CPython's Lib directory")
    p.add_argument("--timeout", type=int, default=600, help="seconds per class and attempt")
    p.add_argument("--test-timeout", type=int, default=90,
                   help="seconds one test may run (no event) before the process is killed")
    p.add_argument("--out", default="target/rustpython-conformance")
    p.add_argument("--modes", default="own,crate")
    p.add_argument("--by", choices=["class", "module"], default="class",
                   help="one row per test class (passed / failed / skipped / not run) or per "
                        "module (run / failed / skipped)")
    p.add_argument("modules", nargs="*", default=MODULES)
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    results = {}
    for mode in a.modes.split(","):
        env = dict(os.environ, PYTHREAD_RUSTPYTHON_PATH=a.lib, **MODES[mode])
        env.pop("PYTHONHOME", None)
        env.pop("PYTHONPATH", None)
        results[mode] = {}
        for module in a.modules:
            events, status, tail = run_one(a.binary, env, a.timeout, a.timeout,
                                           ["--list", module])
            listed = [ev for ev in events if "cls" in ev]
            if not listed:
                results[mode]["%s (import)" % module] = {
                    "counts": {"passed": 0, "failed": 1, "skipped": 0, "not run": 0},
                    "outcomes": {module: ("failed", "exit %s: %s" % (status, tail))}, "ids": []}
                continue
            for ev in listed:
                name = "%s.%s" % (module.rpartition(".")[2], ev["cls"])
                if a.by == "module":
                    # Row names that group by module: "test_queue/PyQueueTest".
                    name = "%s/%s" % (module.rpartition(".")[2], ev["cls"])
                counts, outcomes = run_class(a.binary, env, a.timeout, a.test_timeout, module,
                                             ev["cls"], ev["ids"])
                results[mode][name] = {"counts": counts, "outcomes": outcomes, "ids": ev["ids"]}
                print("%-6s %-45s %s" % (mode, name, counts), file=sys.stderr, flush=True)
        with open(os.path.join(a.out, mode + ".json"), "w") as f:
            json.dump(results[mode], f, indent=1, sort_keys=True)
    print(table(results) if a.by == "class" else module_table(results))
    if len(results) == 2 and regressions(results["own"], results["crate"]):
        sys.exit("rustpython conformance: a test fails on the crate's _thread but not on "
                 "RustPython's own (listed above)")


def regressions(own, crate):
    out = []
    for row, r in crate.items():
        for test_id in r["ids"]:
            before = own.get(row, {}).get("outcomes", {}).get(test_id, ("not run", ""))[0]
            after = r["outcomes"].get(test_id, ("not run", ""))[0]
            if before == "passed" and after != "passed":
                out.append(test_id)
    return out


def fmt(counts):
    return "%d / %d / %d / %d" % (counts["passed"], counts["failed"], counts["skipped"],
                                  counts["not run"])


def module_table(results):
    """One row per module: run (passed, failed or skipped, as unittest's "Ran N tests" counts
    them; an expected failure is passed) / failed / skipped in each mode, "+N not run" when a
    crash or hang kept tests from running; then the tests that differ and the failures."""
    modes = list(results)
    by_module = {}
    for m in modes:
        for row, r in results[m].items():
            module = row.split("/")[0].split(" ")[0].rpartition(".")[2]
            c = by_module.setdefault(module, {}).setdefault(
                m, {"passed": 0, "failed": 0, "skipped": 0, "not run": 0})
            for k, v in r["counts"].items():
                c[k] += v
    out = ["| module | " + " | ".join("%s: run / failed / skipped" % m for m in modes) + " |",
           "|---|" + "---|" * len(modes)]
    for module in sorted(by_module):
        cells = []
        for m in modes:
            c = by_module[module].get(m)
            if c is None:
                cells.append("absent")
                continue
            cell = "%d / %d / %d" % (c["passed"] + c["failed"] + c["skipped"], c["failed"],
                                     c["skipped"])
            if c["not run"]:
                cell += " (+%d not run)" % c["not run"]
            cells.append(cell)
        out.append("| %s | %s |" % (module, " | ".join(cells)))
    detail = table(results).split("\n")
    return "\n".join(out + detail[detail.index("") if "" in detail else len(detail):])


def table(results):
    modes = list(results)
    rows = sorted(set().union(*(results[m] for m in modes)))
    out = ["| class | " + " | ".join("%s: passed / failed / skipped / not run" % m
                                       for m in modes) + " |",
           "|---|" + "---|" * len(modes)]
    totals = {m: {"passed": 0, "failed": 0, "skipped": 0, "not run": 0} for m in modes}
    for row in rows:
        cells = []
        for m in modes:
            r = results[m].get(row)
            if r is None:
                cells.append("absent")
                continue
            cells.append(fmt(r["counts"]))
            for k, v in r["counts"].items():
                totals[m][k] += v
        out.append("| %s | %s |" % (row, " | ".join(cells)))
    out.append("| **total** | %s |" % " | ".join("**%s**" % fmt(totals[m]) for m in modes))
    if len(modes) == 2:
        a, b = modes
        out += ["", "Tests whose outcome differs (%s -> %s):" % (a, b), ""]
        listed = len(out)
        for row in rows:
            ra, rb = results[a].get(row), results[b].get(row)
            if not ra or not rb:
                continue
            for test_id in rb["ids"]:
                oa = ra["outcomes"].get(test_id, ("not run", ""))
                ob = rb["outcomes"].get(test_id, ("not run", ""))
                if oa[0] != ob[0]:
                    out.append("- `%s`: %s -> %s (%s)" % (test_id, oa[0], ob[0],
                                                          ob[1] or oa[1]))
        if len(out) == listed:
            out.append("- none")
    for m in modes:
        out += ["", "Failures and errors, %s:" % m, ""]
        listed = len(out)
        for row in rows:
            r = results[m].get(row)
            for test_id, (outcome, reason) in sorted((r or {}).get("outcomes", {}).items()):
                if outcome in ("failed", "error"):
                    out.append("- `%s`: %s" % (test_id, reason))
        if len(out) == listed:
            out.append("- none")
    return "\n".join(out)


if __name__ == "__main__":
    main()

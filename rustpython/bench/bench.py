"""Runs inside pythread-rustpython: Python-level timings of `_thread`, one JSON line.

Each row is the best of 3 timed rounds, in nanoseconds per operation (per acquire+release, per
start+join). Which `_thread` is timed is the binary's choice (PYTHREAD_RUSTPYTHON_OWN);
compare.py runs both and prints the ratios.
"""

import json
import sys
import threading
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000


def best(fn, n, rounds=3):
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        fn(n)
        times.append(time.perf_counter_ns() - t0)
    return min(times) / n


def acquire_release(n):
    lock = threading.Lock()
    acquire, release = lock.acquire, lock.release
    for _ in range(n):
        acquire()
        release()


def with_lock(n):
    lock = threading.Lock()
    for _ in range(n):
        with lock:
            pass


def rlock(n):
    lock = threading.RLock()
    for _ in range(n):
        with lock:
            with lock:
                pass


def start_join(n):
    def f():
        pass
    for _ in range(n):
        t = threading.Thread(target=f)
        t.start()
        t.join()


def contended(n, threads=4):
    lock = threading.Lock()
    box = [0]
    per = n // threads

    def work():
        for _ in range(per):
            with lock:
                box[0] += 1
    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert box[0] == per * threads, box


rows = {
    "lock acquire+release": best(acquire_release, N),
    "with lock:": best(with_lock, N),
    "RLock, with twice (nested)": best(rlock, N),
    "Thread start+join": best(start_join, max(N // 200, 100)),
    "4 threads contending, with lock: (per acquisition)": best(contended, N),
}
print(json.dumps(rows))

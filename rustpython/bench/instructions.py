"""Runs one row of bench.py's loops N times, untimed, for an instruction count under callgrind.

Usage: pythread-rustpython instructions.py ROW N    (ROW: acquire_release, with_lock, rlock)

compare.py's timings move by tens of percent on a loaded machine; the user-space instructions
per operation do not: `make rustpython-instructions` runs this under callgrind with N = 0 and
N = 20000, in both modes, and prints (count(N) - count(0)) / N.
"""

import sys
import threading

ROW, N = sys.argv[1], int(sys.argv[2])


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


{"acquire_release": acquire_release, "with_lock": with_lock, "rlock": rlock}[ROW](N)

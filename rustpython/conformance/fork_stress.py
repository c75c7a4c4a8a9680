"""fork() while other threads use the crate (run by `make rustpython`, under `timeout`).

Four threads loop on what takes the crate's brief locks (a `threading.local` attribute, a
thread start and join, a non-daemon start); the main thread forks 200 times meanwhile. Each
child uses the same things once, joins a thread it starts, and exits 0 within 10 s. A fork
that left one of the crate's locks held by a thread that is gone would hang the child; one
that took them while another thread attached to the VM waited on them would hang the parent.
"""

import os
import sys
import threading
import time
import warnings

warnings.simplefilter("ignore", DeprecationWarning)  # "multi-threaded, use of fork()"

FORKS = 200
local = threading.local()
stop = threading.Event()


def churn():
    while not stop.is_set():
        local.x = getattr(local, "x", 0) + 1
        t = threading.Thread(target=lambda: None, daemon=False)
        t.start()
        t.join()


workers = [threading.Thread(target=churn) for _ in range(4)]
for w in workers:
    w.start()
try:
    for i in range(FORKS):
        pid = os.fork()
        if pid == 0:
            local.x = 1
            t = threading.Thread(target=lambda: setattr(local, "y", 2))
            t.start()
            t.join()
            os._exit(0 if local.x == 1 else 3)
        deadline = time.monotonic() + 10
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                sys.exit("fork %d: the child hung" % i)
            time.sleep(0.01)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit("fork %d: the child exited with %s" % (i, status))
finally:
    stop.set()
    for w in workers:
        w.join()
print("%d forks while 4 threads churned: every child exited 0" % FORKS)

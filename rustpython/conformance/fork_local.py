"""A `threading.local` value of a thread lost in a fork is dropped in the child (run by `make
rustpython`, under `timeout`).

A worker stores an object in a `threading.local` and waits; the main thread forks. In the child
the worker is gone, as CPython deletes its thread state there: its value must be freed (a weak
reference to it dies) once the child uses the local, while the forking thread keeps its own.
The child exits 0 if so, 1 if not; `signal.alarm` bounds it, the parent's waits have timeouts.
"""

import gc
import os
import signal
import sys
import threading
import warnings
import weakref

warnings.simplefilter("ignore", DeprecationWarning)  # "multi-threaded, use of fork()"

WATCHDOG = 30


class Value:
    pass


local = threading.local()
stored, leave = threading.Event(), threading.Event()
refs = []


def worker():
    value = Value()
    refs.append(weakref.ref(value))
    local.x = value
    del value
    stored.set()
    leave.wait(WATCHDOG)


t = threading.Thread(target=worker)
t.start()
if not stored.wait(WATCHDOG):
    sys.exit("fork_local: the worker did not store its value")
local.x = "main's"
pid = os.fork()
if pid == 0:
    signal.alarm(20)
    mine = local.x
    gc.collect()
    lost_alive = refs[0]() is not None
    print(f"fork_local child: the forking thread's value {mine!r}; "
          f"the lost worker's value alive after the first access: {lost_alive}", flush=True)
    os._exit(0 if mine == "main's" and not lost_alive else 1)
_, status = os.waitpid(pid, 0)
leave.set()
t.join(WATCHDOG)
code = os.waitstatus_to_exitcode(status)
if code != 0:
    sys.exit(f"fork_local: the child failed (exit {code})")
print("fork_local: ok")

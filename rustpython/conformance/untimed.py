"""An untimed `lock.acquire()` ended by a signal handler that raises (run by `make rustpython`).

CPython's test_threadsignals interrupts only timed acquires (`timeout=5`), which a signal ends
with EINTR even under SA_RESTART; a wait without a timeout is interrupted only if the handler
was installed without SA_RESTART and the wait reports EINTR. Exits 0 when the acquire raised
the handler's KeyboardInterrupt within 3 s of the 1 s alarm; the caller bounds the run with
`timeout` (RustPython's own `_thread` never returns here).
"""

import signal
import sys
import time

import _thread


def handler(signum, frame):
    raise KeyboardInterrupt


signal.signal(signal.SIGALRM, handler)
lock = _thread.allocate_lock()
lock.acquire()
signal.alarm(1)
t0 = time.monotonic()
try:
    lock.acquire()
except KeyboardInterrupt:
    elapsed = time.monotonic() - t0
    print("untimed acquire interrupted after %.2f s" % elapsed)
    sys.exit(0 if elapsed < 3.0 else 1)
sys.exit("acquired: the lock was never released")

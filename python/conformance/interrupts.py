"""Ctrl-C during a wait, as measured on CPython 3.11-3.13 (a SIGALRM handler raising
KeyboardInterrupt at 0.3 s interrupts `lock.acquire()`, `acquire(timeout=...)`,
`RLock.acquire()` and `_ThreadHandle.join()` at 0.3 s; with a handler that does not raise, a
timed acquire still times out at its deadline). CPython's test files check the acquires only;
these are the module's own checks of the rest, run by run.py next to them."""

import signal
import time
import unittest


def make_case(module):
    class Interrupts(unittest.TestCase):
        """Each blocking call of the module, interrupted by a signal handler on the main
        thread: raises what the handler raises, well before its own timeout."""

        def setUp(self):
            self.old = signal.signal(signal.SIGALRM, self.raise_interrupt)
            self.addCleanup(signal.signal, signal.SIGALRM, self.old)
            self.addCleanup(signal.setitimer, signal.ITIMER_REAL, 0)

        @staticmethod
        def raise_interrupt(signum, frame):
            raise KeyboardInterrupt

        def assert_interrupted(self, call):
            signal.setitimer(signal.ITIMER_REAL, 0.3)
            t0 = time.monotonic()
            with self.assertRaises(KeyboardInterrupt):
                call()
            dt = time.monotonic() - t0
            self.assertGreaterEqual(dt, 0.25)
            self.assertLess(dt, 3.0)

        def held_lock(self):
            lock = module.allocate_lock()
            lock.acquire()
            return lock

        def test_lock_acquire_forever(self):
            self.assert_interrupted(self.held_lock().acquire)

        def test_lock_acquire_timeout(self):
            lock = self.held_lock()
            self.assert_interrupted(lambda: lock.acquire(timeout=5))

        def test_rlock_acquire_forever(self):
            rlock = module.RLock()
            taken, release = self.held_lock(), self.held_lock()

            def owner():
                rlock.acquire()
                taken.release()
                release.acquire()
                rlock.release()

            module.start_new_thread(owner, ())
            taken.acquire()
            try:
                self.assert_interrupted(rlock.acquire)
            finally:
                release.release()

        @unittest.skipUnless(hasattr(module, "start_joinable_thread"), "3.13 API")
        def test_thread_handle_join(self):
            gate = self.held_lock()
            handle = module.start_joinable_thread(gate.acquire)
            try:
                self.assert_interrupted(handle.join)
                self.assert_interrupted(lambda: handle.join(5))
                self.assertFalse(handle.is_done())
            finally:
                gate.release()
            handle.join()
            self.assertTrue(handle.is_done())

        def test_handler_that_returns_keeps_the_deadline(self):
            calls = []
            signal.signal(signal.SIGALRM, lambda *a: calls.append(time.monotonic()))
            lock = self.held_lock()
            signal.setitimer(signal.ITIMER_REAL, 0.2, 0.1)
            t0 = time.monotonic()
            self.assertFalse(lock.acquire(timeout=1.0))
            dt = time.monotonic() - t0
            signal.setitimer(signal.ITIMER_REAL, 0)
            self.assertGreater(len(calls), 1)  # the handlers ran during the wait
            self.assertGreaterEqual(dt, 1.0)
            self.assertLess(dt, 3.0)

    return Interrupts

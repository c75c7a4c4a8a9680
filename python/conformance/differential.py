"""The module against CPython's own `_thread`, call by call: the same value, or the same
exception type and message. Run by run.py under Python 3.13 only (the module is 3.13's
`_thread`; 3.11's messages differ by version)."""

import pickle
import re
import threading
import unittest

# Each case is an expression evaluated with `m` = the module under comparison. Reprs are
# compared with addresses and idents masked.
CASES = [
    # lock construction, arguments, timeouts
    "m.lock(1)",
    "m.lock(a=1)",
    "m.allocate_lock(1)",
    "m.LockType is m.lock",
    "m.allocate_lock().acquire(False, 1)",
    "m.allocate_lock().acquire(timeout=-2)",
    "m.allocate_lock().acquire(timeout=-0.5)",
    "m.allocate_lock().acquire(timeout=-1e-10)",
    "m.allocate_lock().acquire(timeout=-1.0)",
    "m.allocate_lock().acquire(timeout=-0.0)",
    "m.allocate_lock().acquire(False, -1)",
    "m.allocate_lock().acquire(False, timeout=-0.0)",
    "m.allocate_lock().acquire(False, 0)",
    "m.allocate_lock().acquire(timeout=None)",
    "m.allocate_lock().acquire(timeout='x')",
    "m.allocate_lock().acquire(timeout=1e100)",
    "m.allocate_lock().acquire(timeout=-1e100)",
    "m.allocate_lock().acquire(timeout=float('inf'))",
    "m.allocate_lock().acquire(timeout=m.TIMEOUT_MAX + 1)",
    "m.allocate_lock().acquire(timeout=2**63)",
    "m.allocate_lock().acquire(timeout=9223372037)",
    "m.allocate_lock().acquire(timeout=-9223372037)",
    "m.allocate_lock().acquire(timeout=9223372036)",
    "m.allocate_lock().acquire(timeout=float('nan'))",
    "m.allocate_lock().acquire(blocking=[])",
    "m.allocate_lock().acquire(1, 2, 3)",
    "m.allocate_lock().acquire(foo=1)",
    "m.allocate_lock().acquire(1, blocking=1)",
    "m.allocate_lock().acquire(timeout=m.TIMEOUT_MAX)",
    "m.allocate_lock().acquire_lock(timeout=0)",
    "m.allocate_lock().__enter__()",
    # lock state and release
    "m.allocate_lock().release()",
    "m.allocate_lock().release_lock()",
    "m.allocate_lock().__exit__(1, 2, 3, 4)",
    "m.allocate_lock().locked(1)",
    "m.allocate_lock().locked_lock()",
    "(lambda l: (l.acquire(), l.locked(), l.acquire(0), l.release(), l.locked()))(m.allocate_lock())",
    "(lambda l: (l.acquire(), l._at_fork_reinit(), l.locked(), l.acquire(0)))(m.allocate_lock())",
    "repr(m.allocate_lock())",
    "(lambda l: (l.acquire(), repr(l)))(m.allocate_lock())",
    "pickle.dumps(m.allocate_lock())",
    "type('X', (m.lock,), {})",
    "m.lock.__module__, m.lock.__name__, m.lock.__qualname__",
    # RLock
    "m.RLock(1, a=2)",
    "m.RLock().release()",
    "m.RLock()._release_save()",
    "m.RLock()._acquire_restore(1)",
    "m.RLock()._recursion_count(), m.RLock()._is_owned()",
    "(lambda r: (r.acquire(), r.acquire(), r._recursion_count(), r._is_owned(), repr(r)))(m.RLock())",
    "(lambda r: (r.acquire(), r.acquire(), r._release_save()[0], r._is_owned(), repr(r)))(m.RLock())",
    "(lambda r: (r._acquire_restore((3, m.get_ident())), r._recursion_count(), repr(r)))(m.RLock())",
    "(lambda r: (r.acquire(), r.release(), r.release()))(m.RLock())",
    "(lambda r: (r.acquire(), r.__exit__(None, None, None), r._is_owned()))(m.RLock())",
    "(lambda r: (r.acquire(), r._at_fork_reinit(), r._is_owned(), r.acquire(0)))(m.RLock())",
    "repr(type('X', (m.RLock,), {})(1))",
    "pickle.dumps(m.RLock())",
    "m.RLock.__module__, m.RLock.__name__",
    # threads and handles
    "m.start_new_thread(1, ())",
    "m.start_new_thread(print, [])",
    "m.start_new_thread(print, (), 1)",
    "m.start_joinable_thread(1)",
    "m.start_joinable_thread(print, handle=1)",
    "m._ThreadHandle().join()",
    "m._ThreadHandle()._set_done()",
    "m._ThreadHandle().is_done(), m._ThreadHandle().ident",
    "m._ThreadHandle().join(1, 2)",
    "m._ThreadHandle().join(timeout=1)",
    "(lambda h: (h.join(), h.is_done(), h.join(), h.join(0)))(m.start_joinable_thread(int))",
    "(lambda h: (h.join(-1), h.is_done()))(m.start_joinable_thread(int, daemon=False))",
    "(lambda h: (m.start_joinable_thread(int, handle=h), h.join(), m.start_joinable_thread(int, handle=h)))(m._ThreadHandle())",
    "m._make_thread_handle(m.get_ident()).join()",
    "(lambda h: (h.join(None), h.is_done()))(m.start_joinable_thread(int))",
    "(lambda h: h.join(1e100))(m.start_joinable_thread(int))",
    "(lambda h: h.join(float('nan')))(m.start_joinable_thread(int))",
    "(lambda h: h.join('x'))(m.start_joinable_thread(int))",
    "m._ThreadHandle().join(1e100)",
    "m._ThreadHandle().join(2**63)",
    "m._ThreadHandle().join(9223372037)",
    "(lambda h: (h.join(0), h.is_done(), h._set_done(), h.is_done(), h.join()))(m._make_thread_handle(5))",
    "m._get_main_thread_ident() == m.get_ident()",
    "m.start_new_thread(int, ()) > 0",
    # module functions
    "m.stack_size(-1)",
    "m.stack_size(4096)",
    "m.stack_size(32767)",
    "m.stack_size('x')",
    "(m.stack_size(32768), m.stack_size(), m.stack_size(0), m.stack_size())",
    "start_with_stack(m, 2**40)",
    "m.TIMEOUT_MAX",
    "m.error is RuntimeError",
    "m.daemon_threads_allowed(), m._is_main_interpreter()",
    "type(m._count())",
    "m.get_native_id() == threading.get_native_id()",
    "m.allocate_lock.__module__, m.get_ident.__name__",
]

MASKS = [
    (re.compile(r"0x[0-9a-f]+"), "0x..."),
    (re.compile(r"owner=[1-9][0-9]*"), "owner=<ident>"),
    (re.compile(r"ident=[1-9][0-9]*"), "ident=<ident>"),
]


def start_with_stack(m, size):
    """A start with `stack_size(size)` in force; the size is reset whatever happens (a huge
    one would keep every later thread of the process, faulthandler's too, from starting)."""
    m.stack_size(size)
    try:
        return m.start_new_thread(int, ())
    finally:
        m.stack_size(0)


def outcome(module, expr):
    try:
        value = eval(expr, {"m": module, "pickle": pickle, "threading": threading,
                            "start_with_stack": start_with_stack})
        text = "-> " + repr(value)
    except BaseException as e:  # noqa: BLE001 (KeyboardInterrupt would be a finding too)
        text = f"{type(e).__name__}: {e}"
    for pattern, mask in MASKS:
        text = pattern.sub(mask, text)
    return text


def make_case(module):
    import importlib._bootstrap
    cpython = importlib._bootstrap._thread  # CPython's own, whatever sys.modules holds

    class AgainstCPython(unittest.TestCase):
        """Each case (one test each): the module and CPython's `_thread` give the same value
        or the same error."""

    def check(expr):
        def test(self):
            self.assertEqual(outcome(module, expr), outcome(cpython, expr), expr)
        test.__doc__ = expr
        return test

    for i, expr in enumerate(CASES):
        setattr(AgainstCPython, f"test_{i:02d}", check(expr))
    return AgainstCPython

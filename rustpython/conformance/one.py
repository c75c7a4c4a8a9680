"""Runs inside pythread-rustpython: one CPython test class, one JSON line per event.

Usage: pythread-rustpython one.py --list MODULE          (one line per class: name and test ids)
       pythread-rustpython one.py MODULE CLASS [SKIP_ID ...]

Each test prints `{"start": id}` before it runs and `{"id": id, "outcome": ..., "reason": ...}`
when it ends, flushed at once, so that the runner (run.py) knows which test a hang or a crash
stopped in. SKIP_IDs are not run (the runner passes the tests that hung in an earlier attempt).
"""

import json
import sys
import unittest


def emit(**event):
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def classes(module):
    loader = unittest.TestLoader()
    out = {}
    for name in dir(module):
        obj = getattr(module, name)
        if isinstance(obj, type) and issubclass(obj, unittest.TestCase):
            ids = [t.id() for t in loader.loadTestsFromTestCase(obj)]
            if ids and obj.__module__ == module.__name__:
                out[name] = ids
    return out


class Result(unittest.TestResult):
    def startTest(self, test):
        emit(start=test.id())
        super().startTest(test)

    def addSuccess(self, test):
        emit(id=test.id(), outcome="passed", reason="")

    def addFailure(self, test, err):
        emit(id=test.id(), outcome="failed", reason=self.reason(test, err))

    def addError(self, test, err):
        emit(id=test.id(), outcome="failed", reason=self.reason(test, err))

    def addSkip(self, test, reason):
        emit(id=test.id(), outcome="skipped", reason=str(reason))

    def addExpectedFailure(self, test, err):
        emit(id=test.id(), outcome="passed", reason="expected failure")

    def addUnexpectedSuccess(self, test):
        emit(id=test.id(), outcome="failed", reason="unexpected success")

    def addSubTest(self, test, subtest, err):
        if err is not None:
            emit(id=test.id(), outcome="failed", reason=self.reason(subtest, err))

    def reason(self, test, err):
        exc_type, exc, _ = err
        return "%s: %s" % (exc_type.__name__, str(exc).splitlines()[0] if str(exc) else "")


def main():
    if sys.argv[1] == "--list":
        module = __import__(sys.argv[2], fromlist=["*"])
        for name, ids in classes(module).items():
            emit(cls=name, ids=ids)
        return
    module_name, class_name, skip = sys.argv[1], sys.argv[2], set(sys.argv[3:])
    module = __import__(module_name, fromlist=["*"])
    suite = unittest.TestSuite()
    for test in unittest.TestLoader().loadTestsFromTestCase(getattr(module, class_name)):
        if test.id() not in skip:
            suite.addTest(test)
    # Class and module fixtures (setUpModule: threading_setup) run as unittest runs them.
    suite.run(Result())
    emit(done=True)


if __name__ == "__main__":
    main()

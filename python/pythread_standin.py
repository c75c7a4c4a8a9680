"""Makes `_pythread` this environment's `_thread`.

`_pythread._pythread` (the extension module; the `_pythread` package re-exports it) becomes
`sys.modules['_thread']`.

    python -m pythread_standin enable    # writes pythread_standin.pth into this env's site-packages
    python -m pythread_standin disable   # removes it
    python -m pythread_standin status

The `.pth` file runs `pythread_standin.install()` at interpreter start-up (site's `.pth`
processing, which `-I` keeps), before anything imports `threading`: from then on
`import _thread` gives `_pythread`, in every interpreter of this environment, children started
with `sys.executable` included. Only this environment is touched (its own site-packages).
`install()` does nothing where `_pythread` cannot be imported (a subinterpreter: PyO3 modules
refuse them) and refuses once `threading` is imported (it would keep CPython's locks).
"""

# Only what site has imported already: `sysconfig` (3.12+) imports `threading`, so it is
# imported where it is needed, never by `install()`.
import os
import sys

PTH_NAME = "pythread_standin.pth"
PTH_LINE = "import pythread_standin; pythread_standin.install()\n"


def install():
    """Puts `_pythread` in `sys.modules['_thread']`. Idempotent; returns whether `_thread` is
    now `_pythread`."""
    current = sys.modules.get("_thread")
    if current is not None and current.__name__ == "_pythread":
        return True
    if "threading" in sys.modules:
        raise RuntimeError("pythread_standin.install(): threading is already imported "
                           "with CPython's _thread")
    try:
        from _pythread import _pythread
    except ImportError:
        return False  # a subinterpreter: it keeps CPython's _thread
    sys.modules["_thread"] = _pythread
    return True


def _pth_path():
    import sysconfig
    return os.path.join(sysconfig.get_paths()["purelib"], PTH_NAME)


def main(argv):
    cmd = argv[0] if argv else "status"
    path = _pth_path()
    if cmd == "enable":
        with open(path, "w", encoding="utf-8") as f:
            f.write(PTH_LINE)
        print(f"pythread_standin: enabled ({path})")
    elif cmd == "disable":
        if os.path.exists(path):
            os.remove(path)
        print("pythread_standin: disabled")
    elif cmd == "status":
        import _thread
        print(f"pythread_standin: {'enabled' if os.path.exists(path) else 'disabled'}; "
              f"_thread is {_thread.__name__}")
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

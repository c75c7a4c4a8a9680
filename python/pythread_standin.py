"""Makes `_pythread` this environment's `_thread`.

`_pythread._pythread` (the extension module; the `_pythread` package re-exports it) becomes
`sys.modules['_thread']`.

    python -m pythread_standin enable    # writes pythread_standin.pth into this env's site-packages
    python -m pythread_standin disable   # removes it
    python -m pythread_standin status    # says whether _thread IS the stand-in; exit 1 if the
                                         # .pth is installed but did not take effect

The `.pth` file runs `pythread_standin.install()` at interpreter start-up (site's `.pth`
processing, which `-I` keeps), before anything imports `threading`: from then on
`import _thread` gives `_pythread`, in every interpreter of this environment, children started
with `sys.executable` included. Only this environment is touched (its own site-packages).
`install()` does nothing where `_pythread` cannot be imported (a subinterpreter: PyO3 modules
refuse them) and refuses once `threading` is imported (it would keep CPython's locks).

The one check a program can make: `import _thread; _thread.__name__` is `'_pythread._pythread'`
when the stand-in is active, `'_thread'` when `_thread` is CPython's own.
"""

# Only what site has imported already (`sysconfig` would import `threading` from 3.12).
import os
import sys

PTH_NAME = "pythread_standin.pth"
PTH_LINE = "import pythread_standin; pythread_standin.install()\n"
ACTIVE_NAME = "_pythread._pythread"

# Why the last `install()` left `_thread` alone (None: it did not, or it never ran): read by
# `status` from the module the `.pth` imported.
failure = None


def install():
    """Puts `_pythread` in `sys.modules['_thread']`. Idempotent; returns whether `_thread` is
    now `_pythread`."""
    global failure
    current = sys.modules.get("_thread")
    if current is not None and current.__name__ == ACTIVE_NAME:
        failure = None
        return True
    if "threading" in sys.modules:
        failure = ("threading was imported before pythread_standin.pth ran (by an earlier .pth "
                   "file or sitecustomize), so it keeps CPython's locks")
        raise RuntimeError("pythread_standin.install(): threading is already imported "
                           "with CPython's _thread")
    try:
        from _pythread import _pythread
    except ImportError as e:
        # A subinterpreter (PyO3 modules refuse them) keeps CPython's _thread.
        failure = f"_pythread cannot be imported here ({e})"
        return False
    sys.modules["_thread"] = _pythread
    failure = None
    return True


def _pth_path():
    """The `.pth` beside this module: the wheel installs it at the top of site-packages."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), PTH_NAME)


def _earlier_pth_files(path):
    """The `.pth` files of `path`'s directory that site runs before it (in name order)."""
    folder, name = os.path.split(path)
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".pth") and n < name)
    except OSError:
        return []
    return names


def status(active, path):
    """Prints whether `_thread` is the stand-in in this interpreter, and why not; 0 when the
    activation is off or took effect, 1 when the `.pth` is installed but did not."""
    if active:
        print(f"pythread_standin: active: _thread is {ACTIVE_NAME} ({path})")
        return 0
    if not os.path.exists(path):
        print("pythread_standin: disabled: _thread is CPython's own "
              "(`python -m pythread_standin enable` activates the stand-in)")
        return 0
    loaded = sys.modules.get("pythread_standin")
    if loaded is None:
        why = ("pythread_standin.pth did not run (site disabled with -S, or this "
               "site-packages is not a site directory of this interpreter)")
    elif loaded.failure:
        why = loaded.failure
        earlier = _earlier_pth_files(path)
        if "threading" in why and earlier:
            why += f"; .pth files run before it: {', '.join(earlier)}"
    else:
        why = "pythread_standin.install() ran but _thread was replaced afterwards"
    print(f"pythread_standin: NOT ACTIVE: {path} is installed, but _thread is CPython's own: "
          f"{why}.")
    print("pythread_standin: check from any program: import _thread; _thread.__name__ is "
          f"{ACTIVE_NAME!r} when the stand-in is active")
    return 1


def main(argv):
    cmd = argv[0] if argv else "status"
    current = sys.modules.get("_thread")
    active = current is not None and current.__name__ == ACTIVE_NAME
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
        return status(active, path)
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

# The Python halves of `_pythread`'s thread reports (thread.rs runs this source once, at
# import). They run arbitrary Python code (sys.unraisablehook, a thread's `name` property, a
# file's `write`), so the module calls them through guard.rs's guarded call: a thread that
# CPython 3.11-3.13 end with pthread_exit inside them parks there instead of crashing.
import sys


def _unraisable_args_type():
    """The structseq type `sys.unraisablehook` receives (CPython exposes it under no name)."""
    seen = []
    old = sys.unraisablehook
    sys.unraisablehook = seen.append
    try:
        class Probe:
            def __del__(self):
                raise RuntimeError
        Probe()
    finally:
        sys.unraisablehook = old
    return type(seen[0])


UnraisableHookArgs = _unraisable_args_type()


def report_thread_error(exc, func):
    """thread_run's report of the exception (not SystemExit) that ended `func`: 3.13's
    `PyErr_FormatUnraisable("Exception ignored in thread started by %R", func)` (object None),
    or 3.11/3.12's "Exception ignored in thread started by" with `func` as the object. As
    CPython, a failing hook is itself reported by the default hook."""
    if sys.version_info >= (3, 13):
        try:
            shown = repr(func)
        except BaseException:
            shown = "<object>"
        msg, obj = f"Exception ignored in thread started by {shown}", None
    else:
        msg, obj = "Exception ignored in thread started by", func
    args = UnraisableHookArgs((type(exc), exc, exc.__traceback__, msg, obj))
    hook = getattr(sys, "unraisablehook", None)
    if hook is not None:
        try:
            hook(args)
            return
        except BaseException as hook_exc:
            args = UnraisableHookArgs((type(hook_exc), hook_exc, hook_exc.__traceback__,
                                       "Exception ignored in sys.unraisablehook", hook))
    sys.__unraisablehook__(args)


def _attr(obj, name):
    try:
        return getattr(obj, name)
    except BaseException:
        return None


def excepthook(args, ident):
    """`_thread._excepthook(args)` after its type check: `ident` names a thread without a
    name (the module's `get_ident()`)."""
    exc_type, exc_value, exc_tb, thread = args
    if exc_type is SystemExit:
        return
    file = _attr(sys, "stderr")
    if file is None:
        if thread is None:
            return
        file = _attr(thread, "_stderr")
        if file is None:
            return
    name = None if thread is None else _attr(thread, "name")
    name = ident if name is None else name
    file.write(f"Exception in thread {name}:\n")
    import traceback
    traceback.print_exception(exc_type, exc_value, exc_tb, file=file)
    file.flush()

# The Python halves of `_pythread`'s thread reports (runtime.rs runs this source once, at
# import). They run arbitrary Python code (sys.unraisablehook, a thread's `name` property, a
# file's `write`), so the module calls them through guard.rs's guarded call: a thread that
# CPython 3.11-3.13 end with pthread_exit inside them parks there instead of crashing.
import sys


def _unraisable_args_type():
    """The structseq type `sys.unraisablehook` receives. CPython names it nowhere, but a static
    tuple subclass is among `tuple.__subclasses__()`: found there, without swapping
    `sys.unraisablehook` even briefly (another thread's report would go astray)."""
    for sub in tuple.__subclasses__():
        if sub.__name__ == "UnraisableHookArgs" and sub.__module__ == "builtins":
            return sub
    raise RuntimeError("UnraisableHookArgs not found")


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
            # Without this function's own frame, as CPython's C caller adds none.
            tb = hook_exc.__traceback__
            tb = tb.tb_next if tb is not None else None
            args = UnraisableHookArgs((type(hook_exc), hook_exc, tb,
                                       "Exception ignored in sys.unraisablehook", hook))
    sys.__unraisablehook__(args)


def _lookup(obj, name):
    """`_PyObject_LookupAttr`: the attribute, None if missing; any other error propagates."""
    try:
        return getattr(obj, name)
    except AttributeError:
        return None


def excepthook(args, ident):
    """`_thread._excepthook(args)` after its type check, as CPython's `thread_excepthook`:
    `SystemExit` is ignored; the output goes to `sys.stderr`, or if that is missing or None to
    `thread._stderr`; "Exception in thread " is written before the name is looked up; the
    name is `str(thread.name)` (None included) or, if `thread` is None or has no `name`,
    `ident` (the module's `get_ident()`). Errors from the attributes and the file propagate."""
    exc_type, exc_value, exc_tb, thread = args
    if exc_type is SystemExit:
        return
    file = _lookup(sys, "stderr")
    if file is None:
        if thread is None:
            return
        file = _lookup(thread, "_stderr")
        if file is None:
            return
    file.write("Exception in thread ")
    name = ident
    if thread is not None:
        try:
            name = thread.name
        except AttributeError:
            pass
    file.write(str(name))
    file.write(":\n")
    import traceback
    traceback.print_exception(exc_type, exc_value, exc_tb, file=file)
    file.flush()

"""`_pythread`: CPython 3.13's `_thread` module on the pythread crate.

The extension module itself is `_pythread._pythread` (maturin's layout); this package only
re-exports every one of its names, `_`-prefixed ones included, so that `import _pythread`
gives the whole `_thread` API. `pythread_standin` installs the extension module itself as
`_thread`.
"""

from . import _pythread as _ext

globals().update({k: v for k, v in vars(_ext).items() if not k.startswith("__")})
__doc__ = _ext.__doc__
del _ext

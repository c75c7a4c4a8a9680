//! `pythread-rustpython`: the RustPython 0.5.0 interpreter with its `_thread` module rebuilt on
//! the pythread crate, run like `python` (`pythread-rustpython script.py args...`,
//! `pythread-rustpython -c CODE`; every option of RustPython's own command line).
//!
//! The module is an adapter: the `_thread` logic is the `threadmodule` layer's (the handle's
//! states, starts, joins, timeouts, the locks' rules, `_local`'s dicts, the fork hooks) on the
//! crate's threads, locks and thread-local storage; this binary parses Python arguments, makes
//! the objects, and implements the layer's `Runtime` for RustPython's VM (`runtime.rs`: its
//! own thread idents, detaching from the VM, its signal handlers, its exceptions). With `PYTHREAD_RUSTPYTHON_OWN=1` the interpreter keeps RustPython's own
//! `_thread`, for side-by-side comparisons (`make rustpython`, BENCHMARKS.md).
//! `PYTHREAD_RUSTPYTHON_PATH` appends directories to `sys.path` (see `append_extra_path`).
// One `unsafe` call, audited where it is: `pthread_atfork` (fork.rs).
#![deny(unsafe_code)]

mod fork;
mod ident;
mod local;
mod lock;
mod module;
mod runtime;
mod thread;

use std::process::ExitCode;

use rustpython::{InterpreterBuilder, InterpreterBuilderExt};

fn main() -> ExitCode {
    let builder = InterpreterBuilder::new()
        .init_stdlib()
        .init_hook(append_extra_path);
    let own = std::env::var_os("PYTHREAD_RUSTPYTHON_OWN").is_some_and(|v| v == "1");
    let builder = if own {
        builder
    } else {
        with_crate_thread(builder)
    };
    rustpython::run(builder)
}

/// Appends the directories of `PYTHREAD_RUSTPYTHON_PATH` (`:`-separated) to `sys.path`, after
/// RustPython's own Lib and `PYTHONPATH`: how `make rustpython` gives the interpreter the
/// installed CPython's `Lib/test`. Unlike `PYTHONPATH` it is kept under `-I` and `-E`, which
/// CPython's tests pass to the interpreters they start (`script_helper`), so those see the
/// `test` package too.
fn append_extra_path(vm: &mut rustpython_vm::VirtualMachine) {
    let Some(extra) = std::env::var_os("PYTHREAD_RUSTPYTHON_PATH") else {
        return;
    };
    let state = rustpython_vm::common::rc::PyRc::get_mut(&mut vm.state)
        .expect("init hooks run before the interpreter state is shared");
    state
        .config
        .paths
        .module_search_paths
        .extend(std::env::split_paths(&extra).map(|dir| dir.to_string_lossy().into_owned()));
}

/// Registers this `_thread` in place of RustPython's: the interpreter keeps one definition per
/// name, the last one added.
fn with_crate_thread(builder: InterpreterBuilder) -> InterpreterBuilder {
    let def = module::_thread::module_def(&builder.ctx);
    builder.add_native_module(def)
}

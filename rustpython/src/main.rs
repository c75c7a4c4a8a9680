//! `pythread-rustpython`: the RustPython 0.5.0 interpreter with its `_thread` module rebuilt on
//! the pythread crate, run like `python` (`pythread-rustpython script.py args...`,
//! `pythread-rustpython -c CODE`; every option of RustPython's own command line).
//!
//! The module is glue: threads, idents, locks, joins, timeouts, the thread count, the
//! non-daemon registry and thread-local storage are the crate's; this binary only parses
//! Python arguments, detaches waits from the VM and runs the signal handlers when a wait is
//! interrupted. With `PYTHREAD_RUSTPYTHON_OWN=1` the interpreter keeps RustPython's own
//! `_thread`, for side-by-side comparisons (`make rustpython`, BENCHMARKS.md).
// One `unsafe` call, audited where it is: `pthread_atfork` (fork.rs).
#![deny(unsafe_code)]

mod fork;
mod local;
mod lock;
mod module;
mod thread;
mod wait;

use std::process::ExitCode;
use std::sync::atomic::Ordering;

use rustpython::{InterpreterBuilder, InterpreterBuilderExt};
use rustpython_vm::builtins::{PyModuleDef, PyModuleSlots};

fn main() -> ExitCode {
    // The interpreter runs its main thread here.
    thread::MAIN_IDENT.store(pythread::get_ident().as_u64(), Ordering::Release);
    let builder = InterpreterBuilder::new().init_stdlib();
    let own = std::env::var_os("PYTHREAD_RUSTPYTHON_OWN").is_some_and(|v| v == "1");
    let builder = if own {
        builder
    } else {
        with_crate_thread(builder)
    };
    rustpython::run(builder)
}

/// Registers this `_thread` in place of RustPython's (the interpreter keeps one definition per
/// name, the last one added), and RustPython's own under `module::OWN_MODULE`, for the names
/// this one borrows from it.
fn with_crate_thread(builder: InterpreterBuilder) -> InterpreterBuilder {
    let ctx = builder.ctx.clone();
    let own = rustpython_vm::stdlib::builtin_module_defs(&ctx)
        .into_iter()
        .find(|def| def.name.as_str() == "_thread")
        .expect("RustPython has a built-in _thread module");
    let renamed: &'static PyModuleDef = Box::leak(Box::new(PyModuleDef {
        name: ctx.intern_str(module::OWN_MODULE),
        doc: own.doc,
        methods: own.methods,
        slots: PyModuleSlots {
            create: own.slots.create,
            exec: own.slots.exec,
        },
    }));
    builder
        .add_native_module(renamed)
        .add_native_module(module::_thread::module_def(&ctx))
}

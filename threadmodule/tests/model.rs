//! `_ThreadHandle`'s state machine against a sequential model: proptest draws a handle (made by
//! `_ThreadHandle()` or `_make_thread_handle`) and a schedule of operations (a start that
//! succeeds or fails, `_set_done`, `join(0)`, `is_done`, `ident`, a fork that the foreign
//! thread survives or not, the started thread finishing), runs it on the layer with the
//! Rust-only host, and compares every answer with the model's.
#![cfg(not(loom))]

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use threadmodule::minihost::{MiniException, MiniFunction, MiniHost, MiniInterpreter};
use threadmodule::{Error, ModuleState, Runtime, StartOptions, ThreadHandle};

#[derive(Clone, Copy, Debug)]
enum Op {
    Start {
        fails: bool,
    },
    SetDone,
    JoinZero,
    IsDone,
    Ident,
    /// A fork; `survives`: the handle's foreign thread is the one that forked.
    Fork {
        survives: bool,
    },
    /// The started thread's function returns (then a join waits for it).
    Finish,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        any::<bool>().prop_map(|fails| Op::Start { fails }),
        Just(Op::SetDone),
        Just(Op::JoinZero),
        Just(Op::IsDone),
        Just(Op::Ident),
        any::<bool>().prop_map(|survives| Op::Fork { survives }),
        Just(Op::Finish),
    ]
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum ModelState {
    NotStarted,
    Started { finished: bool },
    Foreign { lost: bool },
    Failed,
}

#[derive(Debug)]
struct Model {
    state: ModelState,
    set_done: bool,
}

/// What an operation answered, in the model or on the layer.
#[derive(Debug, PartialEq)]
enum Answer {
    Unit(Result<(), MiniException>),
    Bool(bool),
    /// `ident` is 0 (false) or not (true).
    Ident(bool),
}

impl Model {
    fn apply(&mut self, op: Op) -> Answer {
        use ModelState::*;
        match op {
            Op::Start { fails } => Answer::Unit(match self.state {
                NotStarted if fails => {
                    self.state = Failed;
                    Err(MiniException::Error(Error::CantStartNewThread))
                }
                NotStarted => {
                    self.state = Started { finished: false };
                    Ok(())
                }
                _ => Err(MiniException::Error(Error::ThreadAlreadyStarted)),
            }),
            Op::SetDone => Answer::Unit(match self.state {
                NotStarted => Err(MiniException::Error(Error::ThreadNotStarted)),
                _ => {
                    self.set_done = true;
                    Ok(())
                }
            }),
            Op::JoinZero => Answer::Unit(match self.state {
                NotStarted => Err(MiniException::Error(Error::ThreadNotStarted)),
                _ => Ok(()),
            }),
            Op::IsDone => Answer::Bool(self.is_done()),
            Op::Ident => Answer::Ident(matches!(self.state, Started { .. } | Foreign { .. })),
            Op::Fork { survives } => {
                if let Foreign { lost } = &mut self.state {
                    *lost = !survives;
                }
                Answer::Unit(Ok(()))
            }
            Op::Finish => {
                if let Started { finished } = &mut self.state {
                    *finished = true;
                }
                Answer::Unit(Ok(()))
            }
        }
    }

    fn is_done(&self) -> bool {
        match self.state {
            ModelState::NotStarted => false,
            ModelState::Failed => true,
            _ if self.set_done => true,
            ModelState::Started { finished } => finished,
            ModelState::Foreign { lost } => lost,
        }
    }
}

const FOREIGN: u64 = 77;
const OTHER: u64 = 78;

fn run(foreign: bool, ops: &[Op]) -> Result<(), TestCaseError> {
    let interp = MiniInterpreter::new();
    let host = interp.attach();
    let module = ModuleState::new(FOREIGN);
    let handle = if foreign {
        ThreadHandle::foreign(&module, FOREIGN)
    } else {
        ThreadHandle::new(&module)
    };
    let mut model = Model {
        state: if foreign {
            ModelState::Foreign { lost: false }
        } else {
            ModelState::NotStarted
        },
        set_done: false,
    };
    let gate = Arc::new(pythread::Lock::new());
    gate.acquire();
    let mut started = false;
    for &op in ops {
        let expected = model.apply(op);
        let actual = match op {
            Op::Start { fails } => {
                let options = if fails {
                    StartOptions::new().name("bad\0name")
                } else {
                    StartOptions::new()
                };
                let g = Arc::clone(&gate);
                let f = MiniFunction::new("f", move |host: &MiniHost| {
                    host.allow_threads(|| g.acquire());
                    let _ = g.release();
                    Ok(())
                });
                let result = handle.start(&host, &options, interp.runner(f));
                started |= result.is_ok();
                Answer::Unit(result)
            }
            Op::SetDone => Answer::Unit(handle.set_done(&host)),
            Op::JoinZero => Answer::Unit(handle.join(&host, Some(Duration::ZERO))),
            Op::IsDone => Answer::Bool(handle.is_done()),
            Op::Ident => Answer::Ident(handle.ident() != 0),
            Op::Fork { survives } => {
                module.__forked(if survives { FOREIGN } else { OTHER });
                Answer::Unit(Ok(()))
            }
            Op::Finish => {
                if started {
                    let _ = gate.release();
                    // Until the function has returned (a join ignores `_set_done` only
                    // before it: wait on the crate's own handle through the layer's join).
                    handle.join(&host, Some(Duration::from_secs(30))).unwrap();
                    started = false;
                }
                Answer::Unit(Ok(()))
            }
        };
        prop_assert_eq!(&actual, &expected, "{:?} after {:?}", op, ops);
    }
    // A thread still blocked ends now; the handle must then read as done.
    let _ = gate.release();
    drop(host);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_handle_follows_the_sequential_model(
        foreign in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..12),
    ) {
        run(foreign, &ops)?;
    }
}

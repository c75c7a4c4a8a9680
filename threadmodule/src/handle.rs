//! `_thread._ThreadHandle`: the state machine of a joinable thread's handle (`ThreadHandle` in
//! `_threadmodule.c`): not started, starting, started, foreign (`_make_thread_handle`), failed,
//! and a foreign thread lost in a fork.

use std::time::Duration;

use pythread::__sync::{Arc, AtomicU32, Mutex, MutexGuard, Ordering, lock};

use crate::module::{ModuleState, StartOptions, spawn};
use crate::{Error, Runtime, interrupted, wait_interruptibly};

#[derive(Debug)]
enum State {
    /// `_ThreadHandle()`: made, not started.
    NotStarted,
    /// `start_joinable_thread` is starting it (`THREAD_HANDLE_STARTING`): reads as not started.
    Starting,
    /// A thread started by the module: the crate's handle and the thread's host ident.
    Started {
        thread: pythread::Handle,
        ident: u64,
    },
    /// `_make_thread_handle(ident)`: a thread the module did not start (threading's main
    /// thread). It is done when `_set_done` releases `exiting`, or when it did not survive a
    /// fork (`generation` behind the module's and `ident` not the forking thread's).
    Foreign {
        ident: u64,
        exiting: Arc<pythread::Lock>,
        generation: u64,
    },
    /// The start failed: done, ident 0.
    Failed,
}

/// What a `join` waits for, taken out of the state so that no wait holds its mutex.
enum Target {
    Thread(pythread::Handle),
    Foreign(u64, Arc<pythread::Lock>),
}

/// `_thread._ThreadHandle`: the joinable handle of `start_joinable_thread` and
/// `_make_thread_handle`. A host's handle object holds one.
///
/// # Examples
///
/// ```
/// # pythread::__doc_example(|| {
/// use threadmodule::minihost::{MiniFunction, MiniInterpreter};
/// use threadmodule::{ModuleState, StartOptions, ThreadHandle};
///
/// let interp = MiniInterpreter::new();
/// let host = interp.attach();
/// let module = ModuleState::new(0);
/// let handle = ThreadHandle::new(&module);
/// assert!(!handle.is_done());
/// let f = MiniFunction::new("f", |_| Ok(()));
/// handle.start(&host, &StartOptions::new(), interp.runner(f)).unwrap();
/// handle.join(&host, None).unwrap(); // waits with the interpreter lock released
/// assert!(handle.is_done());
/// assert_ne!(handle.ident(), 0);
/// # });
/// ```
#[derive(Debug)]
pub struct ThreadHandle {
    module: Arc<ModuleState>,
    state: Mutex<State>,
    /// `_set_done()` was called (0 or 1): the handle reads as done and `join` returns at once.
    set_done: AtomicU32,
}

impl ThreadHandle {
    fn with_state(module: &Arc<ModuleState>, state: State) -> ThreadHandle {
        ThreadHandle {
            module: Arc::clone(module),
            state: Mutex::new(state),
            set_done: AtomicU32::new(0),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn is_set_done(&self) -> bool {
        self.set_done.load(Ordering::Acquire) != 0
    }

    /// `_ThreadHandle()`: a handle not started yet (for `start_joinable_thread(handle=...)`).
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// let handle = threadmodule::ThreadHandle::new(&threadmodule::ModuleState::new(1));
    /// assert_eq!(handle.ident(), 0);
    /// assert!(!handle.is_done());
    /// # });
    /// ```
    pub fn new(module: &Arc<ModuleState>) -> ThreadHandle {
        ThreadHandle::with_state(module, State::NotStarted)
    }

    /// `_make_thread_handle(ident)`: the handle of a thread the module did not start
    /// (threading's main thread, `ident` its host ident); done once [`set_done`] is called, or
    /// in a forked child where it did not survive.
    ///
    /// [`set_done`]: ThreadHandle::set_done
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use threadmodule::minihost::MiniInterpreter;
    ///
    /// let interp = MiniInterpreter::new();
    /// let host = interp.attach();
    /// let module = threadmodule::ModuleState::new(1);
    /// let main = threadmodule::ThreadHandle::foreign(&module, 12345);
    /// assert_eq!(main.ident(), 12345);
    /// assert!(!main.is_done());
    /// main.set_done(&host).unwrap();
    /// main.join(&host, None).unwrap(); // returns at once
    /// assert!(main.is_done());
    /// # });
    /// ```
    pub fn foreign(module: &Arc<ModuleState>, ident: u64) -> ThreadHandle {
        let exiting = pythread::Lock::new();
        exiting.acquire();
        ThreadHandle::with_state(
            module,
            State::Foreign {
                ident,
                exiting: Arc::new(exiting),
                generation: module.generation(),
            },
        )
    }

    /// Whether the foreign thread `ident`, its handle made in `generation`, is gone in this
    /// forked child (CPython's `_PyThread_AfterFork` marks every handle but the forking
    /// thread's done; threading counts on it).
    fn lost_in_fork(&self, ident: u64, generation: u64) -> bool {
        generation != self.module.generation() && ident != self.module.get_main_thread_ident()
    }

    /// `ident`: the thread's host ident; 0 before the start, and after a start that failed.
    ///
    /// # Examples
    ///
    /// See [`ThreadHandle::foreign`].
    pub fn ident(&self) -> u64 {
        match &*self.state() {
            State::Started { ident, .. } | State::Foreign { ident, .. } => *ident,
            State::NotStarted | State::Starting | State::Failed => 0,
        }
    }

    /// `is_done()`.
    ///
    /// # Examples
    ///
    /// See [`ThreadHandle`].
    pub fn is_done(&self) -> bool {
        match &*self.state() {
            State::NotStarted | State::Starting => false,
            State::Failed => true,
            _ if self.is_set_done() => true,
            State::Started { thread, .. } => thread.is_finished(),
            State::Foreign {
                ident, generation, ..
            } => self.lost_in_fork(*ident, *generation),
        }
    }

    /// `_set_done()`: the handle reads as done, and a foreign handle's joins return.
    ///
    /// # Examples
    ///
    /// See [`ThreadHandle::foreign`].
    pub fn set_done<R: Runtime>(&self, rt: &R) -> Result<(), R::Exception> {
        let state = self.state();
        match &*state {
            State::NotStarted | State::Starting => Err(rt.new_exception(Error::ThreadNotStarted)),
            State::Started { .. } | State::Failed => {
                self.set_done.store(1, Ordering::Release);
                Ok(())
            }
            State::Foreign { exiting, .. } => {
                if self.set_done.swap(1, Ordering::AcqRel) == 0 {
                    let _ = exiting.release();
                }
                Ok(())
            }
        }
    }

    /// `join(timeout=None)` (`ThreadHandle_join`), `timeout` from [`join_timeout`]: waits with
    /// the interpreter lock released, interruptibly, until the thread is done or the timeout
    /// passes; returns `Ok` either way (the caller asks [`is_done`]). Then, for a thread the
    /// module started, the OS thread's exit is waited for once.
    ///
    /// [`join_timeout`]: crate::join_timeout
    /// [`is_done`]: ThreadHandle::is_done
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use std::time::Duration;
    /// use threadmodule::minihost::{MiniException, MiniInterpreter};
    /// use threadmodule::{Error, ThreadHandle};
    ///
    /// let interp = MiniInterpreter::new();
    /// let host = interp.attach();
    /// let module = threadmodule::ModuleState::new(1);
    /// let err = ThreadHandle::new(&module).join(&host, None).unwrap_err();
    /// assert_eq!(err, MiniException::Error(Error::ThreadNotStarted));
    /// let main = ThreadHandle::foreign(&module, 99);
    /// main.join(&host, Some(Duration::from_millis(1))).unwrap(); // times out
    /// assert!(!main.is_done());
    /// # });
    /// ```
    pub fn join<R: Runtime>(&self, rt: &R, timeout: Option<Duration>) -> Result<(), R::Exception> {
        let target = match &*self.state() {
            State::NotStarted | State::Starting => {
                return Err(rt.new_exception(Error::ThreadNotStarted));
            }
            State::Failed => return Ok(()),
            _ if self.is_set_done() => return Ok(()),
            State::Started { thread, .. } => Target::Thread(thread.clone()),
            State::Foreign {
                ident, generation, ..
            } if self.lost_in_fork(*ident, *generation) => return Ok(()),
            State::Foreign { ident, exiting, .. } => Target::Foreign(*ident, Arc::clone(exiting)),
        };
        match target {
            Target::Thread(thread) => {
                if !thread.is_finished() && thread.ident() == pythread::get_ident() {
                    return Err(rt.new_exception(Error::CannotJoinCurrentThread));
                }
                let done = wait_interruptibly(rt, timeout, |t| {
                    thread
                        .join_with_retries_ref(t, interrupted)
                        .map(|outcome| outcome.is_some())
                })?;
                if done {
                    // CPython's once-only pthread_join: the OS thread is gone when join returns.
                    rt.allow_threads(|| drop(thread.join_thread_ref()));
                }
                Ok(())
            }
            Target::Foreign(ident, exiting) => {
                if ident == R::get_ident() {
                    return Err(rt.new_exception(Error::CannotJoinCurrentThread));
                }
                // Done = `exiting` released by `_set_done`: take it and give it back at once.
                let done = exiting.try_acquire()
                    || (timeout != Some(Duration::ZERO)
                        && wait_interruptibly(rt, timeout, |t| {
                            exiting.acquire_with_retries(t, interrupted)
                        })?);
                if done {
                    let _ = exiting.release();
                }
                Ok(())
            }
        }
    }

    /// `start_joinable_thread(function, handle=self, daemon=...)` once the host has checked its
    /// arguments: claims the handle (a handle already claimed is [`Error::ThreadAlreadyStarted`]),
    /// starts the thread ([`crate::start_new_thread`]'s rules, `options` its kind), and
    /// publishes it before the thread runs `run`. A start that fails leaves the handle failed
    /// (done, ident 0).
    ///
    /// # Examples
    ///
    /// ```
    /// # pythread::__doc_example(|| {
    /// use threadmodule::minihost::{MiniException, MiniFunction, MiniInterpreter};
    /// use threadmodule::{Error, StartOptions, ThreadHandle};
    ///
    /// let interp = MiniInterpreter::new();
    /// let host = interp.attach();
    /// let module = threadmodule::ModuleState::new(1);
    /// let handle = ThreadHandle::new(&module);
    /// let bad = StartOptions::new().name("nul\0in name"); // the OS start fails
    /// let err = handle.start(&host, &bad, interp.runner(MiniFunction::new("f", |_| Ok(()))));
    /// assert_eq!(err, Err(MiniException::Error(Error::CantStartNewThread)));
    /// assert!(handle.is_done());
    /// assert_eq!(handle.ident(), 0);
    /// let again = handle.start(&host, &StartOptions::new(), interp.runner(MiniFunction::new("f", |_| Ok(()))));
    /// assert_eq!(again, Err(MiniException::Error(Error::ThreadAlreadyStarted)));
    /// # });
    /// ```
    pub fn start<R: Runtime>(
        &self,
        rt: &R,
        options: &StartOptions,
        run: impl FnOnce() + Send + 'static,
    ) -> Result<(), R::Exception> {
        if rt.is_finalizing() {
            return Err(rt.new_exception(Error::StartAtShutdown));
        }
        {
            let mut state = self.state();
            if !matches!(*state, State::NotStarted) {
                return Err(rt.new_exception(Error::ThreadAlreadyStarted));
            }
            // Claimed: the start waits with the interpreter lock released, and another thread
            // must not wait for this mutex meanwhile while holding it.
            *state = State::Starting;
        }
        let started = spawn(rt, &self.module, options, run);
        let mut state = self.state();
        match started {
            // The thread runs once `_go` goes, after the handle names it.
            Ok((thread, ident, _go)) => {
                *state = State::Started { thread, ident };
                Ok(())
            }
            Err(err) => {
                *state = State::Failed;
                drop(state);
                Err(rt.new_exception(err))
            }
        }
    }
}

//! A small pool of ONNX sessions.
//!
//! `Session::run` takes `&mut self` (ONNX Runtime's allocators are not thread safe), so concurrent
//! calls each need their own session. Sessions hold a copy of the weights, so they are created only
//! when every existing one is busy, up to a limit; past it callers wait.

use std::path::PathBuf;
use std::sync::{Condvar, Mutex, MutexGuard};

use opsweave_core::{Error, Result};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;

use crate::runtime::Runtime;

struct Slots {
    idle: Vec<Session>,
    created: usize,
}

pub(crate) struct SessionPool {
    runtime: &'static Runtime,
    model: PathBuf,
    intra_threads: Option<usize>,
    max: usize,
    slots: Mutex<Slots>,
    returned: Condvar,
}

impl SessionPool {
    /// A pool holding one ready session, so that a broken model fails at open time.
    pub(crate) fn new(
        runtime: &'static Runtime,
        model: PathBuf,
        intra_threads: Option<usize>,
        max: usize,
    ) -> Result<Self> {
        let pool = Self {
            runtime,
            model,
            intra_threads,
            max: max.max(1),
            slots: Mutex::new(Slots {
                idle: Vec::new(),
                created: 0,
            }),
            returned: Condvar::new(),
        };
        let first = pool.build()?;
        {
            let mut slots = pool.lock();
            slots.idle.push(first);
            slots.created = 1;
        }
        Ok(pool)
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        // A panic while holding the lock leaves the slot list itself consistent.
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn build(&self) -> Result<Session> {
        let builder = Session::builder(&self.runtime.environment).map_err(ort_error)?;
        let builder = builder
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| ort_error(e.into()))?;
        let builder = match self.intra_threads {
            Some(n) => builder
                .with_intra_threads(n)
                .map_err(|e| ort_error(e.into()))?,
            None => builder,
        };
        let mut builder = builder;
        builder.commit_from_file(&self.model).map_err(|e| {
            Error::invalid(format!(
                "ONNX Runtime cannot load `{}`: {e}",
                self.model.display()
            ))
            .in_file(self.model.display().to_string())
            .with_source(e)
        })
    }

    /// Borrows a session, creating one if all are busy and the limit allows, else waiting.
    pub(crate) fn take(&self) -> Result<PooledSession<'_>> {
        let mut slots = self.lock();
        loop {
            if let Some(session) = slots.idle.pop() {
                return Ok(PooledSession {
                    pool: self,
                    session: Some(session),
                });
            }
            if slots.created < self.max {
                slots.created += 1;
                drop(slots);
                return match self.build() {
                    Ok(session) => Ok(PooledSession {
                        pool: self,
                        session: Some(session),
                    }),
                    Err(e) => {
                        self.lock().created -= 1;
                        self.returned.notify_one();
                        Err(e)
                    }
                };
            }
            slots = self
                .returned
                .wait(slots)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// Runs `f` on a ready session without taking it out for a call (used to inspect inputs).
    pub(crate) fn peek<T>(&self, f: impl FnOnce(&Session) -> T) -> Result<T> {
        let session = self.take()?;
        Ok(f(session.get()))
    }
}

/// A session on loan; it goes back to the pool when dropped.
pub(crate) struct PooledSession<'p> {
    pool: &'p SessionPool,
    session: Option<Session>,
}

impl PooledSession<'_> {
    pub(crate) fn get(&self) -> &Session {
        self.session
            .as_ref()
            .expect("a loaned session is present until dropped")
    }

    pub(crate) fn get_mut(&mut self) -> &mut Session {
        self.session
            .as_mut()
            .expect("a loaned session is present until dropped")
    }
}

impl Drop for PooledSession<'_> {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            self.pool.lock().idle.push(session);
            self.pool.returned.notify_one();
        }
    }
}

/// Maps an ONNX Runtime failure during inference.
pub(crate) fn ort_error(e: ort::Error) -> Error {
    Error::internal(format!("ONNX Runtime failed: {e}")).with_source(e)
}

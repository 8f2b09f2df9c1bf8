//! The binding's tokio runtime and the task that runs a facade future off the main thread: on a
//! libuv worker, which waits for it on the runtime; the promise settles on the main thread.

use crate::errors::to_js;
use napi::bindgen_prelude::*;
use napi::{Env, Task};
use opsweave::Error;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use tokio::runtime::Runtime;

static RUNTIME: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();

fn runtime() -> opsweave::Result<&'static Runtime> {
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("opsweave")
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| Error::unavailable(format!("cannot start the opsweave runtime: {e}")))
}

type BoxedFuture<T> = Pin<Box<dyn Future<Output = opsweave::Result<T>> + Send + 'static>>;

/// Main-thread work once an operation's promise settled: releasing what the call borrowed
/// from JavaScript (a listener it added, a reference it held).
pub type Settle = Box<dyn FnOnce(&Env) -> napi::Result<()> + Send>;

/// One facade operation as a promise-returning task.
pub struct Op<T: Send + 'static> {
    future: Option<BoxedFuture<T>>,
    settle: Option<Settle>,
}

impl<T: Send + 'static> Op<T> {
    /// Wraps the future an operation runs.
    pub fn new(future: impl Future<Output = opsweave::Result<T>> + Send + 'static) -> Self {
        Self {
            future: Some(Box::pin(future)),
            settle: None,
        }
    }

    /// Runs `settle` on the main thread once the promise resolved or rejected.
    pub fn on_settle(mut self, settle: Option<Settle>) -> Self {
        self.settle = settle;
        self
    }

    /// An operation that fails with `err` (bad arguments found before anything ran).
    pub fn failed(err: Error) -> Self {
        Self::new(async move { Err(err) })
    }
}

impl<T: Send + ToNapiValue + TypeName + 'static> Task for Op<T> {
    type Output = opsweave::Result<T>;
    type JsValue = T;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let Some(future) = self.future.take() else {
            return Ok(Err(Error::internal("an operation ran twice")));
        };
        let rt = match runtime() {
            Ok(rt) => rt,
            Err(e) => return Ok(Err(e)),
        };
        // Spawned, so a panic becomes an error instead of unwinding into Node.
        let joined = rt.block_on(rt.spawn(future));
        Ok(joined.unwrap_or_else(|e| {
            Err(if e.is_panic() {
                Error::internal("opsweave panicked; this is a bug")
            } else {
                Error::internal("the operation was cancelled")
            })
        }))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<T> {
        output.map_err(|e| to_js(&env, &e))
    }

    fn finally(self, env: Env) -> napi::Result<()> {
        match self.settle {
            Some(settle) => settle(&env),
            None => Ok(()),
        }
    }
}

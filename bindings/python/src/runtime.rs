//! The binding's own tokio runtime, and the two ways Python waits on it: blocking with the GIL
//! released (Ctrl-C cancels the call), or awaiting an asyncio future. Both run the same futures.

use crate::convert::to_python;
use crate::errors::to_py;
use opsweave::Error;
use pyo3::prelude::*;
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::{AbortHandle, JoinError};

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// How often a blocking call looks for Ctrl-C.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// The runtime every call of this process runs on, started on first use.
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

/// What an operation hands back to Python.
pub trait Output: Send + 'static {
    /// Converts the result, with the GIL held.
    fn into_python(self, py: Python<'_>) -> PyResult<Py<PyAny>>;
}

impl Output for Value {
    fn into_python(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        to_python(py, &self)
    }
}

/// A finished task's result; a panic becomes an internal error, not a crashed interpreter.
fn joined<T>(joined: Result<opsweave::Result<T>, JoinError>) -> opsweave::Result<T> {
    match joined {
        Ok(result) => result,
        Err(e) if e.is_panic() => {
            let payload = e.into_panic();
            let text = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(Error::internal(format!("opsweave panicked: {text}")))
        }
        Err(_) => Err(Error::internal("the operation was cancelled")),
    }
}

/// Runs `op` on the runtime and waits for it with the GIL released; a pending signal (Ctrl-C)
/// cancels the operation and is raised (`KeyboardInterrupt`).
pub fn block<T: Output>(
    py: Python<'_>,
    op: impl Future<Output = opsweave::Result<T>> + Send + 'static,
) -> PyResult<Py<PyAny>> {
    wait(py, op, Vec::new())
}

/// A future that resolves when its sender fires.
pub type StopFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A stop request's two ends: the caller's side and the operation's future. A sender dropped
/// unfired never resolves it: the caller is gone or the operation ended, nobody asked.
fn trigger() -> (oneshot::Sender<()>, StopFuture) {
    let (fire, fired) = oneshot::channel::<()>();
    let future = Box::pin(async move {
        if fired.await.is_err() {
            std::future::pending::<()>().await;
        }
    });
    (fire, future)
}

/// Like [`block`], for an operation that winds down as `opsweave worker` does: `op` is made
/// with two futures, `stop` (resolved at the first signal: finish what it holds) and `abandon`
/// (at the second: hand it back at once). The call waits for the operation to end, then raises
/// the last signal, with the operation's error, if any, as its cause; a third signal cancels
/// the operation outright.
pub fn block_stoppable<T: Output, F>(
    py: Python<'_>,
    op: impl FnOnce(StopFuture, StopFuture) -> F,
) -> PyResult<Py<PyAny>>
where
    F: Future<Output = opsweave::Result<T>> + Send + 'static,
{
    let (stop, stopped) = trigger();
    let (abandon, abandoned) = trigger();
    // Popped from the back: the first signal fires `stop`.
    wait(py, op(stopped, abandoned), vec![abandon, stop])
}

/// Runs `op` and waits for it with the GIL released. Each signal fires the next of `triggers`
/// (popped from the back) and the wait goes on; a signal with none left cancels the operation.
/// After a signal, the last one is raised, with the operation's error, if any, as its cause.
fn wait<T: Output>(
    py: Python<'_>,
    op: impl Future<Output = opsweave::Result<T>> + Send + 'static,
    mut triggers: Vec<oneshot::Sender<()>>,
) -> PyResult<Py<PyAny>> {
    let rt = runtime().map_err(|e| to_py(py, &e))?;
    let waited = py.detach(|| {
        let mut task = rt.spawn(op);
        let mut signal = None;
        rt.block_on(async {
            loop {
                tokio::select! {
                    done = &mut task => {
                        let done = joined(done);
                        return match signal {
                            Some(signal) => Waited::Signalled(signal, done.err()),
                            None => Waited::Done(done),
                        };
                    }
                    () = tokio::time::sleep(SIGNAL_POLL) => {
                        let Err(next) = Python::attach(|py| py.check_signals()) else {
                            continue;
                        };
                        if let Some(fire) = triggers.pop() {
                            let _ = fire.send(());
                            signal = Some(next);
                        } else {
                            task.abort();
                            // Wait until the task has stopped; tasks it spawned are only told to.
                            let _ = (&mut task).await;
                            return Waited::Signalled(next, None);
                        }
                    }
                }
            }
        })
    });
    match waited {
        Waited::Done(Ok(value)) => value.into_python(py),
        Waited::Done(Err(e)) => Err(to_py(py, &e)),
        Waited::Signalled(signal, error) => {
            if let Some(e) = error {
                signal.set_cause(py, Some(to_py(py, &e)));
            }
            Err(signal)
        }
    }
}

/// How a [`wait`] ended.
enum Waited<T> {
    /// The operation ended with no signal meanwhile.
    Done(opsweave::Result<T>),
    /// A signal came: the last one, and the operation's error if it ended with one.
    Signalled(PyErr, Option<Error>),
}

/// Runs `op` on the runtime and returns an `asyncio.Future` of the running loop that completes
/// with its result; cancelling the future cancels the operation.
pub fn awaitable<'py, T: Output>(
    py: Python<'py>,
    op: impl Future<Output = opsweave::Result<T>> + Send + 'static,
) -> PyResult<Bound<'py, PyAny>> {
    let rt = runtime().map_err(|e| to_py(py, &e))?;
    let task = rt.spawn(op);
    let on_cancel = CancelOnCancelled {
        task: task.abort_handle(),
    };
    settle_from(py, rt, task, Bound::new(py, on_cancel)?.into_any())
}

/// Like [`awaitable`] for an operation that can wind itself down, with a way to ask it to:
/// answers the future and an `abandon()` callable that resolves the `abandon` future `make`
/// was given (jobs in hand are handed back); the operation then ends and settles the future.
/// Cancelling the future itself asks the same, the operation ending in the background.
pub fn awaitable_abandoning<'py, T: Output, Op>(
    py: Python<'py>,
    make: impl FnOnce(StopFuture) -> Op,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)>
where
    Op: Future<Output = opsweave::Result<T>> + Send + 'static,
{
    let rt = runtime().map_err(|e| to_py(py, &e))?;
    let (signal, abandon) = trigger();
    let task = rt.spawn(make(abandon));
    let abandon = Bound::new(
        py,
        Abandon {
            signal: std::sync::Mutex::new(Some(signal)),
        },
    )?
    .into_any();
    let future = settle_from(py, rt, task, abandon.clone())?;
    Ok((future, abandon))
}

/// An `asyncio.Future` of the running loop that `task`'s result settles; `on_cancel` is its
/// done callback.
fn settle_from<'py, T: Output>(
    py: Python<'py>,
    rt: &Runtime,
    task: tokio::task::JoinHandle<opsweave::Result<T>>,
    on_cancel: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
    let future = event_loop.call_method0("create_future")?;
    future.call_method1("add_done_callback", (on_cancel,))?;
    let event_loop = event_loop.unbind();
    let target = future.clone().unbind();
    rt.spawn(async move {
        let result = joined(task.await);
        // Converting needs the GIL, which may be busy: wait for it off the runtime's workers.
        let _ = tokio::task::spawn_blocking(move || {
            Python::attach(|py| {
                let (ok, value) = match result.map(|v| v.into_python(py)) {
                    Ok(Ok(value)) => (true, value),
                    Ok(Err(conversion)) => (false, conversion.into_value(py).into_any()),
                    Err(e) => (false, to_py(py, &e).into_value(py).into_any()),
                };
                let settle = Settle {
                    future: target,
                    ok,
                    value,
                };
                // Fails only when the loop is closed: then nobody is waiting any more.
                let _ = event_loop.call_method1(py, "call_soon_threadsafe", (settle,));
            });
        })
        .await;
    });
    Ok(future)
}

/// Sets an asyncio future's result or exception on its loop, unless it was cancelled meanwhile.
#[pyclass(frozen)]
struct Settle {
    future: Py<PyAny>,
    ok: bool,
    value: Py<PyAny>,
}

#[pymethods]
impl Settle {
    fn __call__(&self, py: Python<'_>) -> PyResult<()> {
        let future = self.future.bind(py);
        if future.call_method0("done")?.is_truthy()? {
            return Ok(());
        }
        let method = if self.ok {
            "set_result"
        } else {
            "set_exception"
        };
        future.call_method1(method, (self.value.clone_ref(py),))?;
        Ok(())
    }
}

/// Aborts the operation behind an asyncio future when the future is cancelled.
#[pyclass(frozen)]
struct CancelOnCancelled {
    task: AbortHandle,
}

#[pymethods]
impl CancelOnCancelled {
    fn __call__(&self, future: &Bound<'_, PyAny>) -> PyResult<()> {
        if future.call_method0("cancelled")?.is_truthy()? {
            self.task.abort();
        }
        Ok(())
    }
}

/// Asks an operation to abandon its work: called with no argument, or as its future's done
/// callback (then only when the future was cancelled). The first call that asks counts.
#[pyclass(frozen)]
struct Abandon {
    signal: std::sync::Mutex<Option<oneshot::Sender<()>>>,
}

#[pymethods]
impl Abandon {
    #[pyo3(signature = (future=None))]
    fn __call__(&self, future: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        if let Some(future) = future {
            if !future.call_method0("cancelled")?.is_truthy()? {
                return Ok(());
            }
        }
        let signal = self.signal.lock().ok().and_then(|mut s| s.take());
        if let Some(signal) = signal {
            let _ = signal.send(());
        }
        Ok(())
    }
}

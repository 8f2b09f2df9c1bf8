//! Arguments from JavaScript into the facade's types; a bad value is an `InvalidInput` error
//! naming the argument.

use crate::errors::type_error;
use crate::task::Settle;
use crate::types;
use napi::bindgen_prelude::{FnArgs, Function, JsObjectValue, JsValue, Object, ObjectRef, Unknown};
use napi::{Env, ValueType};
use opsweave::matching::{resolver_preset, Resolver};
use opsweave::recall::{Recency, MAX_K};
use opsweave::worker::WorkerOptions;
use opsweave::{
    jobs, Error, Horizon, JobId, JobStatus, Mapping, NewJob, RecallOptions, RecordId, Result,
    Scope, Window,
};
use std::time::Duration;

/// The most results one call returns per list.
pub const MAX_LIMIT: u32 = 1000;

/// A record id (16 hex digits).
pub fn parse_id(text: &str) -> Result<RecordId> {
    text.parse().map_err(|e: Error| e.on_field("id"))
}

/// Horizon names; all focus horizons (today, week, month) when none are given.
pub fn parse_horizons(names: Option<Vec<String>>) -> Result<Vec<Horizon>> {
    match names {
        None => Ok(Horizon::FOCUS.to_vec()),
        Some(names) => names
            .iter()
            .map(|n| n.parse().map_err(|e: Error| e.on_field("horizons")))
            .collect(),
    }
}

/// A graph window (`week` or `month`).
pub fn parse_window(text: Option<&str>) -> Result<Window> {
    text.map_or(Ok(Window::Week), |t| {
        t.parse().map_err(|e: Error| e.on_field("window"))
    })
}

/// A limit: a whole number from 0 to `max` (`default` when not given).
pub fn limit_up_to(value: Option<f64>, default: u32, max: u32) -> Result<usize> {
    match value {
        None => Ok(default as usize),
        Some(v) => Ok(whole(v, "limit", "limit", 0, u64::from(max))? as usize),
    }
}

/// A limit of at most [`MAX_LIMIT`].
pub fn limit(value: Option<f64>, default: u32) -> Result<usize> {
    limit_up_to(value, default, MAX_LIMIT)
}

/// A string argument, or a `TypeError` naming it.
pub fn text_arg(env: &Env, value: Unknown<'_>, name: &str) -> napi::Result<String> {
    match value.get_type()? {
        ValueType::String => Ok(value.coerce_to_string()?.into_utf8()?.as_str()?.to_string()),
        other => Err(type_error(
            env,
            &format!("The \"{name}\" argument must be a string; received {other}"),
        )),
    }
}

/// An optional array of strings (absent, `undefined` or `null`: none), or a `TypeError` naming
/// the argument.
pub fn texts_arg(
    env: &Env,
    value: Option<Unknown<'_>>,
    name: &str,
) -> napi::Result<Option<Vec<String>>> {
    let Some(value) = value else {
        return Ok(None);
    };
    let wrong = |what: &str| {
        type_error(
            env,
            &format!("The \"{name}\" argument must be an array of strings; received {what}"),
        )
    };
    match value.get_type()? {
        ValueType::Undefined | ValueType::Null => Ok(None),
        ValueType::Object if value.is_array()? => {
            let items: Vec<serde_json::Value> = env.from_js_value(value)?;
            items
                .into_iter()
                .map(|item| match item {
                    serde_json::Value::String(text) => Ok(text),
                    other => Err(wrong(&format!("an array holding {other}"))),
                })
                .collect::<napi::Result<_>>()
                .map(Some)
        }
        other => Err(wrong(&other.to_string())),
    }
}

/// What `recall` asks for, each option checked and named when wrong.
pub fn recall_options(options: types::RecallOptions) -> Result<RecallOptions> {
    let k = match options.k {
        None => 10,
        Some(k) => whole(k, "k", "k", 1, MAX_K as u64)? as usize,
    };
    let options = RecallOptions {
        k,
        mode: options.mode.as_deref().unwrap_or("hybrid").parse()?,
        entities: options
            .entities
            .unwrap_or_default()
            .iter()
            .map(|e| e.parse().map_err(|e: Error| e.on_field("entities")))
            .collect::<Result<_>>()?,
        source_kinds: options.sources.unwrap_or_default(),
        recency: options.recency.map(|r| Recency {
            half_life_days: r.half_life_days,
            weight: r.weight.unwrap_or(1.0),
        }),
        ..RecallOptions::default()
    };
    options.validate()?;
    Ok(options)
}

/// The mapping to ingest with: a preset by name, or a mapping given as an object (the mapping's
/// fields) or a path to a TOML / JSON mapping file. Exactly one of the two.
pub fn mapping_of(preset: Option<&str>, mapping: Option<&serde_json::Value>) -> Result<Mapping> {
    let mapping = match (preset, mapping.filter(|m| !m.is_null())) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid("give preset or mapping, not both").on_field("mapping"))
        }
        (None, None) => return Err(Error::invalid("give preset or mapping").on_field("preset")),
        (Some(name), None) => opsweave::preset(name).map_err(|e| e.on_field("preset"))?,
        (None, Some(serde_json::Value::String(path))) => mapping_file(std::path::Path::new(path))?,
        (None, Some(value @ serde_json::Value::Object(_))) => {
            Mapping::from_json(&value.to_string()).map_err(|e| e.on_field("mapping"))?
        }
        (None, Some(_)) => {
            return Err(
                Error::invalid("mapping must be an object or the path of a mapping file")
                    .on_field("mapping"),
            )
        }
    };
    match mapping.compile() {
        Ok(_) => Ok(mapping),
        Err(e) if e.location().field.is_none() => Err(e.on_field("mapping")),
        Err(e) => Err(e),
    }
}

/// The resolver to match with: a built-in resolver by name, or an object of its fields.
pub fn resolver_of(resolver: &serde_json::Value) -> Result<Resolver> {
    let parsed = match resolver {
        serde_json::Value::String(name) => resolver_preset(name),
        value @ serde_json::Value::Object(_) => Resolver::from_json(&value.to_string()),
        _ => Err(Error::invalid(
            "resolver must be a preset name or an object of its fields",
        )),
    }
    .map_err(|e| e.on_field("resolver"))?;
    parsed.validate()?;
    Ok(parsed)
}

/// Reads a mapping file: JSON when it ends in `.json`, TOML otherwise.
fn mapping_file(path: &std::path::Path) -> Result<Mapping> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::invalid(format!("cannot read mapping: {e}")).in_file(name.clone()))?;
    let mapping = if name.ends_with(".json") {
        Mapping::from_json(&text)
    } else {
        Mapping::from_toml(&text)
    };
    mapping.map_err(|e| e.in_file(name))
}

/// The largest integer a JavaScript number holds exactly (`Number.MAX_SAFE_INTEGER`).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A whole number from `min` to `max` given as the JavaScript option `name`, or `InvalidInput`
/// naming it, on `field` (the facade's name for it, as its own errors give it).
pub fn whole(value: f64, name: &str, field: &str, min: u64, max: u64) -> Result<u64> {
    if value.is_finite() && value.fract() == 0.0 && value >= min as f64 && value <= max as f64 {
        // In range and whole: the conversion is exact.
        return Ok(value as u64);
    }
    Err(Error::invalid(format!(
        "{name} is {value}; it must be a whole number from {min} to {max}"
    ))
    .on_field(field))
}

/// A job id: a JavaScript number (a `TypeError` naming the argument otherwise). Its value is
/// checked when the operation runs (`InvalidInput` for a negative or fractional number).
pub fn job_id_arg(env: &Env, value: Unknown<'_>) -> napi::Result<f64> {
    match value.get_type()? {
        ValueType::Number => value.coerce_to_number()?.get_double(),
        other => Err(type_error(
            env,
            &format!("The \"id\" argument must be a job id (a whole number); received {other}"),
        )),
    }
}

/// A job id given as a number: a whole number from 1 (queues number jobs from 1).
pub fn job_id(value: f64) -> Result<JobId> {
    let id = whole(value, "id", "id", 1, MAX_SAFE_INTEGER)?;
    // At most 2^53 - 1: fits an i64.
    Ok(JobId(id as i64))
}

/// The job to enqueue: `kind` and `payload` in `scope` with the options' key, attempts, backoff
/// and start time, each checked and named when wrong.
pub fn new_job(
    kind: String,
    payload: serde_json::Value,
    scope: Scope,
    options: types::EnqueueOptions,
) -> Result<NewJob> {
    let mut job = NewJob::new(kind, scope, payload);
    if let Some(n) = options.max_attempts {
        let n = whole(
            n,
            "maxAttempts",
            "max_attempts",
            1,
            u64::from(jobs::MAX_ATTEMPTS),
        )?;
        // At most MAX_ATTEMPTS: fits a u32.
        job = job.with_max_attempts(n as u32);
    }
    if let Some(ms) = options.backoff_ms {
        let max = u64::try_from(jobs::MAX_BACKOFF.as_millis()).unwrap_or(u64::MAX);
        job = job.with_backoff(Duration::from_millis(whole(
            ms,
            "backoffMs",
            "backoff_ms",
            0,
            max,
        )?));
    }
    if let Some(key) = options.idempotency_key {
        job = job.with_idempotency_key(key);
    }
    if let Some(text) = options.run_after {
        let at = opsweave::parse_now(Some(&text))
            .ok()
            .flatten()
            .ok_or_else(|| {
                Error::invalid(format!(
                    "runAfter `{text}` is not a date (YYYY-MM-DD) or an ISO 8601 date-time"
                ))
                .on_field("run_after")
            })?;
        job = job.run_after(at);
    }
    Ok(job)
}

/// A job status filter (`queued`, `running`, `done`, `failed`, `cancelled`).
pub fn job_status(text: Option<&str>) -> Result<Option<JobStatus>> {
    text.map(str::parse).transpose()
}

/// The longest `timeoutMs` taken as given (a year); longer ones are cut to it.
const MAX_TIMEOUT_MS: f64 = 365.0 * 24.0 * 3600.0 * 1000.0;

/// How `runJobs` runs the worker, and for how long at most.
pub fn run_jobs_options(
    options: types::RunJobsOptions,
) -> Result<(WorkerOptions, Option<Duration>)> {
    // One name per run: two runs at once must not lease jobs under the same slot names.
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut worker = WorkerOptions::new(format!("node-{}-{run}", std::process::id()));
    worker.kinds = options.kinds.unwrap_or_default();
    worker.concurrency = whole(
        options.concurrency.unwrap_or(2.0),
        "concurrency",
        "concurrency",
        1,
        1024,
    )? as usize;
    let timeout = match options.timeout_ms {
        None => None,
        Some(ms) if ms.is_finite() && ms > 0.0 => {
            Some(Duration::from_secs_f64(ms.min(MAX_TIMEOUT_MS) / 1000.0))
        }
        Some(ms) => {
            return Err(Error::invalid(format!(
                "timeoutMs is {ms}; it must be a positive number of milliseconds"
            ))
            .on_field("timeout_ms"))
        }
    };
    Ok((worker, timeout))
}

/// `EventTarget.addEventListener(type, listener)` or `removeEventListener(type, listener)`.
type ListenerCall<'env> = Function<'env, FnArgs<(&'env str, Function<'env, (), ()>)>, ()>;

/// A stop request from an optional `AbortSignal`: true once the signal has aborted (at once when
/// it already had), and the work that takes the listener off the signal once the run settled
/// (a signal reused for many runs keeps none of theirs). A `TypeError` names anything that is
/// not an `AbortSignal`.
pub fn abort_arg(
    env: &Env,
    signal: Option<Object<'_>>,
) -> napi::Result<Option<(tokio::sync::watch::Receiver<bool>, Option<Settle>)>> {
    let Some(signal) = signal else {
        return Ok(None);
    };
    let wrong = || {
        type_error(
            env,
            "The \"signal\" argument must be an AbortSignal (from an AbortController)",
        )
    };
    let aborted = signal
        .get_named_property::<Unknown<'_>>("aborted")
        .map_err(|_| wrong())?;
    if aborted.get_type()? != ValueType::Boolean {
        return Err(wrong());
    }
    let (tx, rx) = tokio::sync::watch::channel(aborted.coerce_to_bool()?);
    if *rx.borrow() {
        return Ok(Some((rx, None)));
    }
    let add: ListenerCall<'_> = signal
        .get_named_property("addEventListener")
        .map_err(|_| wrong())?;
    // Called on the main thread when the signal aborts; the run reads it on the runtime.
    let listener = env.create_function_from_closure("opsweaveStop", move |_| {
        let _ = tx.send(true);
        Ok(())
    })?;
    let listener_ref = listener.create_ref()?;
    add.apply(signal, ("abort", listener).into())?;
    let signal_ref: ObjectRef<false> = signal.create_ref()?;
    let settle: Settle = Box::new(move |env: &Env| {
        let signal = signal_ref.get_value(env)?;
        let remove: ListenerCall<'_> = signal.get_named_property("removeEventListener")?;
        remove.apply(signal, ("abort", listener_ref.borrow_back(env)?).into())?;
        signal_ref.unref(env)
    });
    Ok(Some((rx, Some(settle))))
}

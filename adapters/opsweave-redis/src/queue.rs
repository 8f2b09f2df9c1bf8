//! The job queue on Redis.
//!
//! Layout (all under the prefix): `job:ID` hashes hold each job's state; `stream:KIND` is a stream
//! per kind with one consumer group, `workers`, whose entries are the runnable jobs; `delayed` is
//! a sorted set of jobs waiting out a backoff or `run_after` (score: when); `leases` a sorted set
//! of running jobs (score: when the lease runs out); `org:ORG` indexes an org's jobs for listing,
//! `open:ORG` its queued and running ones (for counting and listing open jobs without walking
//! the history; `open-mark:ORG` is the newest job of the history it has looked at, so jobs
//! enqueued by processes that do not keep it are found);
//! `idem:SCOPE:KEY` holds the job an idempotency key made.
//!
//! Every change is one Lua script, so it is atomic and costs one round trip. A claim moves due
//! delayed jobs into their streams, fails jobs whose lease ran out on their last attempt, hands
//! out jobs whose lease ran out (XCLAIM moves each entry to the new worker's pending list), then
//! reads the oldest undelivered entries among the wanted kinds' streams (XREADGROUP, each entry
//! to the worker that will hold its job): a batch of claims is one script call. Complete (one
//! job or a batch), fail and cancel acknowledge (XACK) and delete the entry.
//!
//! Why not XAUTOCLAIM for stale entries: its one `min-idle-time` per call cannot express leases
//! whose length each worker picks at claim and renews with heartbeats; the `leases` set holds the
//! exact deadline of each job instead, on the server's clock.

use crate::error::map;
use crate::events::channel;
use crate::Redis;
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use opsweave_core::jobs::{
    check_batch, check_lease, check_progress, clip_message, lease_lost, scope_key, Job, JobId,
    JobQueue, JobStatus, NewJob, OpenJobs, Progress, MAX_BACKOFF,
};
use opsweave_core::{Error, Result, Scope};
use redis::Script;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

macro_rules! script {
    ($file:literal) => {
        Script::new(concat!(
            include_str!("lua/prelude.lua"),
            include_str!($file)
        ))
    };
}

struct Scripts {
    enqueue: Script,
    claim: Script,
    heartbeat: Script,
    complete: Script,
    complete_batch: Script,
    fail: Script,
    release: Script,
    cancel: Script,
    index_open: Script,
}

/// Job hashes read per round trip when walking an index.
const PAGE: isize = 500;

/// A [`JobQueue`] on Redis Streams; see the module documentation for the layout.
#[derive(Clone)]
pub struct RedisQueue {
    redis: Redis,
    scripts: Arc<Scripts>,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue")
            .field("redis", &self.redis)
            .finish_non_exhaustive()
    }
}

/// What a script answered: the job, or why not.
enum Outcome {
    Job(Box<Job>),
    NotFound,
    Conflict(String, Option<String>),
    Nothing,
}

impl RedisQueue {
    pub(crate) fn new(redis: Redis) -> Self {
        Self {
            redis,
            scripts: Arc::new(Scripts {
                enqueue: script!("lua/enqueue.lua"),
                claim: script!("lua/claim.lua"),
                heartbeat: script!("lua/heartbeat.lua"),
                complete: script!("lua/complete.lua"),
                complete_batch: script!("lua/complete_batch.lua"),
                fail: script!("lua/fail.lua"),
                release: script!("lua/release.lua"),
                cancel: script!("lua/cancel.lua"),
                index_open: script!("lua/index_open.lua"),
            }),
        }
    }

    /// The pub/sub channel this queue publishes job updates on.
    pub fn channel(&self) -> String {
        channel(&self.redis)
    }

    /// Every update of this queue's jobs from now on (see [`crate::JobUpdates`]).
    pub async fn subscribe(&self) -> Result<crate::JobUpdates> {
        crate::JobUpdates::subscribe(&self.redis).await
    }

    async fn run(&self, what: &str, call: redis::ScriptInvocation<'_>) -> Result<Outcome> {
        let mut conn = self.redis.conn();
        let reply: Vec<String> = call
            .invoke_async(&mut conn)
            .await
            .map_err(|e| map(what, e))?;
        parse_outcome(reply)
    }

    async fn held(
        &self,
        what: &str,
        id: JobId,
        worker: &str,
        call: redis::ScriptInvocation<'_>,
    ) -> Result<Job> {
        match self.run(what, call).await? {
            Outcome::Job(job) => Ok(*job),
            Outcome::NotFound => Err(Error::not_found(format!("no job {id}"))),
            Outcome::Conflict(status, owner) => {
                let status: JobStatus = status.parse()?;
                Err(lease_lost(id, worker, status, owner.as_deref()))
            }
            Outcome::Nothing => Err(Error::internal(format!("redis: {what}: empty answer"))),
        }
    }

    /// The next page of job ids in `index`, newest first, older than `after` when given. Paged
    /// by id, not by rank: ids leaving the index meanwhile shift no one out of view.
    async fn page(
        &self,
        conn: &mut redis::aio::ConnectionManager,
        index: &str,
        after: Option<i64>,
    ) -> Result<Vec<i64>> {
        let max = after.map_or_else(|| "+inf".to_string(), |id| format!("({id}"));
        redis::cmd("ZREVRANGEBYSCORE")
            .arg(index)
            .arg(max)
            .arg("-inf")
            .arg("LIMIT")
            .arg(0)
            .arg(PAGE)
            .query_async(conn)
            .await
            .map_err(|e| map("read job index", e))
    }

    /// The key of `org`'s index of open jobs, after it took the jobs of the org's history it has
    /// not looked at yet (see `lua/index_open.lua`): the whole history the first time, a page at a
    /// time (a look that stops midway goes on from there next time), later only jobs enqueued by
    /// processes that do not keep the index.
    async fn open_index(&self, org: &str) -> Result<String> {
        let mut conn = self.redis.conn();
        loop {
            let mut call = self.scripts.index_open.prepare_invoke();
            call.arg(&self.redis.prefix).arg(org).arg(PAGE);
            let looked: isize = call
                .invoke_async(&mut conn)
                .await
                .map_err(|e| map("index open jobs", e))?;
            if looked < PAGE {
                return Ok(self.redis.key(&format!("open:{org}")));
            }
        }
    }

    /// Walks `index` (a sorted set of job ids) newest first, a page of hashes per round trip,
    /// handing `visit` each job until it answers false.
    async fn walk(&self, index: &str, mut visit: impl FnMut(Job) -> bool) -> Result<()> {
        let mut after = None;
        let mut conn = self.redis.conn();
        loop {
            let ids = self.page(&mut conn, index, after).await?;
            let Some(&last) = ids.last() else {
                return Ok(());
            };
            after = Some(last);
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.cmd("HGETALL")
                    .arg(self.redis.key(&format!("job:{id}")));
            }
            let pages: Vec<HashMap<String, String>> = pipe
                .query_async(&mut conn)
                .await
                .map_err(|e| map("list jobs", e))?;
            for fields in pages.iter().filter(|f| !f.is_empty()) {
                if !visit(parse_job(fields)?) {
                    return Ok(());
                }
            }
        }
    }

    async fn load(&self, id: JobId) -> Result<Option<Job>> {
        let mut conn = self.redis.conn();
        let fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.redis.key(&format!("job:{id}")))
            .query_async(&mut conn)
            .await
            .map_err(|e| map("read job", e))?;
        if fields.is_empty() {
            return Ok(None);
        }
        parse_job(&fields).map(Some)
    }
}

#[async_trait]
impl JobQueue for RedisQueue {
    async fn enqueue(&self, job: NewJob) -> Result<Job> {
        job.validate()?;
        let scope = serde_json::to_string(&job.scope)
            .map_err(|e| Error::internal(format!("scope to JSON: {e}")))?;
        let payload = serde_json::to_string(&job.payload)
            .map_err(|e| Error::invalid(format!("payload to JSON: {e}")).on_field("payload"))?;
        let idem_key = job
            .idempotency_key
            .as_ref()
            .map(|k| {
                self.redis
                    .key(&format!("idem:{}:{k}", scope_key(&job.scope)))
            })
            .unwrap_or_default();
        let mut call = self.scripts.enqueue.prepare_invoke();
        call.arg(&self.redis.prefix)
            .arg(idem_key)
            .arg(&job.scope.org)
            .arg(&job.kind)
            .arg(payload)
            .arg(scope)
            .arg(job.max_attempts)
            .arg(millis(job.backoff))
            .arg(
                job.run_after
                    .map(|t| t.timestamp_millis().to_string())
                    .unwrap_or_default(),
            )
            .arg(job.idempotency_key.as_deref().unwrap_or(""));
        match self.run("enqueue", call).await? {
            Outcome::Job(job) => Ok(*job),
            _ => Err(Error::internal("redis: enqueue: no job in the answer")),
        }
    }

    async fn claim(&self, worker: &str, kinds: &[String], lease: Duration) -> Result<Option<Job>> {
        let workers = [worker.to_string()];
        Ok(self.claim_batch(&workers, kinds, lease).await?.pop())
    }

    async fn claim_batch(
        &self,
        workers: &[String],
        kinds: &[String],
        lease: Duration,
    ) -> Result<Vec<Job>> {
        check_batch(workers.len())?;
        for worker in workers {
            check_lease(worker, lease)?;
        }
        if workers.is_empty() {
            return Ok(Vec::new());
        }
        let mut call = self.scripts.claim.prepare_invoke();
        call.arg(&self.redis.prefix)
            .arg(millis(lease).max(1))
            .arg("lease expired on the last attempt (worker stopped heartbeating)")
            .arg(workers.len());
        for worker in workers {
            call.arg(worker);
        }
        for kind in kinds {
            call.arg(kind);
        }
        let mut conn = self.redis.conn();
        let replies: Vec<Vec<Option<String>>> = call
            .invoke_async(&mut conn)
            .await
            .map_err(|e| map("claim", e))?;
        // The first array names the values of each job's array after it.
        let mut replies = replies.into_iter();
        let names: Vec<String> = replies
            .next()
            .and_then(|names| names.into_iter().collect())
            .ok_or_else(|| Error::internal("redis: claim: no field names in the answer"))?;
        replies
            .map(|values| {
                if values.len() != names.len() {
                    return Err(Error::internal(format!(
                        "redis: claim: {} values for a job, not {}",
                        values.len(),
                        names.len()
                    )));
                }
                let fields: HashMap<String, String> = names
                    .iter()
                    .zip(values)
                    .filter_map(|(name, value)| Some((name.clone(), value?)))
                    .collect();
                parse_job(&fields)
            })
            .collect()
    }

    async fn heartbeat(
        &self,
        id: JobId,
        worker: &str,
        lease: Duration,
        progress: Option<Progress>,
    ) -> Result<Job> {
        check_lease(worker, lease)?;
        let (given, fraction, message) = match &progress {
            Some(p) => (true, p.fraction, check_progress(p)?),
            None => (false, 0.0, None),
        };
        let mut call = self.scripts.heartbeat.prepare_invoke();
        call.arg(&self.redis.prefix)
            .arg(id.0)
            .arg(worker)
            .arg(millis(lease).max(1))
            .arg(if given { "1" } else { "0" })
            .arg(fraction.to_string())
            .arg(if message.is_some() { "1" } else { "0" })
            .arg(message.unwrap_or_default());
        self.held("heartbeat", id, worker, call).await
    }

    async fn complete(&self, id: JobId, worker: &str) -> Result<Job> {
        let mut call = self.scripts.complete.prepare_invoke();
        call.arg(&self.redis.prefix).arg(id.0).arg(worker);
        self.held("complete", id, worker, call).await
    }

    async fn complete_batch(&self, held: &[(JobId, String)]) -> Result<Vec<Result<()>>> {
        check_batch(held.len())?;
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let mut call = self.scripts.complete_batch.prepare_invoke();
        call.arg(&self.redis.prefix);
        for (id, worker) in held {
            call.arg(id.0).arg(worker);
        }
        let mut conn = self.redis.conn();
        let replies: Vec<Vec<String>> = call
            .invoke_async(&mut conn)
            .await
            .map_err(|e| map("complete", e))?;
        if replies.len() != held.len() {
            return Err(Error::internal(format!(
                "redis: complete: {} answers for {} jobs",
                replies.len(),
                held.len()
            )));
        }
        replies
            .into_iter()
            .zip(held)
            .map(|(reply, (id, worker))| {
                let mut parts = reply.into_iter();
                Ok(match parts.next().as_deref() {
                    Some("ok") => Ok(()),
                    Some("notfound") => Err(Error::not_found(format!("no job {id}"))),
                    Some("conflict") => {
                        let status: JobStatus = parts.next().unwrap_or_default().parse()?;
                        let owner = parts.next().filter(|o| !o.is_empty());
                        Err(lease_lost(*id, worker, status, owner.as_deref()))
                    }
                    other => {
                        return Err(Error::internal(format!(
                            "redis: unexpected complete answer {other:?}"
                        )))
                    }
                })
            })
            .collect()
    }

    async fn record_failure(
        &self,
        id: JobId,
        worker: &str,
        error: &str,
        retry: bool,
    ) -> Result<Job> {
        let mut call = self.scripts.fail.prepare_invoke();
        call.arg(&self.redis.prefix)
            .arg(id.0)
            .arg(worker)
            .arg(clip_message(error))
            .arg(millis(MAX_BACKOFF))
            .arg(u8::from(retry));
        self.held("fail", id, worker, call).await
    }

    async fn release(&self, id: JobId, worker: &str) -> Result<Job> {
        let mut call = self.scripts.release.prepare_invoke();
        call.arg(&self.redis.prefix).arg(id.0).arg(worker);
        self.held("release", id, worker, call).await
    }

    async fn cancel(&self, scope: &Scope, id: JobId) -> Result<Job> {
        // The scope check reads first: a job's scope never changes, and the script then
        // changes the status atomically.
        self.get(scope, id).await?;
        let mut call = self.scripts.cancel.prepare_invoke();
        call.arg(&self.redis.prefix).arg(id.0);
        match self.run("cancel", call).await? {
            Outcome::Job(job) => Ok(*job),
            Outcome::NotFound => Err(Error::not_found(format!("no job {id} in this scope"))),
            Outcome::Conflict(status, _) => Err(Error::conflict(format!(
                "job {id} is {status}: only queued or running jobs can be cancelled"
            ))),
            Outcome::Nothing => Err(Error::internal("redis: cancel: empty answer")),
        }
    }

    async fn get(&self, scope: &Scope, id: JobId) -> Result<Job> {
        match self.load(id).await? {
            Some(job) if scope.contains(&job.scope) => Ok(job),
            _ => Err(Error::not_found(format!("no job {id} in this scope"))),
        }
    }

    async fn list(
        &self,
        scope: &Scope,
        status: Option<JobStatus>,
        limit: usize,
    ) -> Result<Vec<Job>> {
        // Newest first through the org's index (its open jobs' index for an open status),
        // filtered by the narrower scope parts and the status here.
        let index = match status {
            Some(JobStatus::Queued | JobStatus::Running) => self.open_index(&scope.org).await?,
            _ => self.redis.key(&format!("org:{}", scope.org)),
        };
        let mut found = Vec::new();
        if limit == 0 {
            return Ok(found);
        }
        self.walk(&index, |job| {
            if scope.contains(&job.scope) && status.is_none_or(|s| s == job.status) {
                found.push(job);
            }
            found.len() < limit
        })
        .await?;
        Ok(found)
    }

    async fn count_open(&self, scope: &Scope, kinds: &[String]) -> Result<OpenJobs> {
        // Three fields per open job, not the whole hash: payloads can be large.
        let index = self.open_index(&scope.org).await?;
        let mut open = OpenJobs::default();
        let mut gone = Vec::new();
        let mut conn = self.redis.conn();
        let mut after = None;
        loop {
            let ids = self.page(&mut conn, &index, after).await?;
            let Some(&last) = ids.last() else {
                if !gone.is_empty() {
                    redis::cmd("ZREM")
                        .arg(&index)
                        .arg(&gone)
                        .query_async::<()>(&mut conn)
                        .await
                        .map_err(|e| map("count open jobs", e))?;
                }
                return Ok(open);
            };
            after = Some(last);
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.cmd("HMGET")
                    .arg(self.redis.key(&format!("job:{id}")))
                    .arg("status")
                    .arg("kind")
                    .arg("scope");
            }
            let rows: Vec<(Option<String>, Option<String>, Option<String>)> = pipe
                .query_async(&mut conn)
                .await
                .map_err(|e| map("count open jobs", e))?;
            for (id, (status, kind, job_scope)) in ids.iter().zip(rows) {
                let (Some(status), Some(kind), Some(job_scope)) = (status, kind, job_scope) else {
                    gone.push(*id);
                    continue;
                };
                let Ok(status) = status.parse::<JobStatus>() else {
                    continue;
                };
                if status.is_final() {
                    // Finished by a process that does not keep the index: it leaves it now.
                    gone.push(*id);
                    continue;
                }
                if !kinds.is_empty() && !kinds.contains(&kind) {
                    continue;
                }
                // A damaged hash is not counted rather than failing every count.
                let Ok(job_scope) = serde_json::from_str::<Scope>(&job_scope) else {
                    continue;
                };
                if scope.contains(&job_scope) {
                    open.add(status, 1);
                }
            }
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn parse_outcome(reply: Vec<String>) -> Result<Outcome> {
    let mut parts = reply.into_iter();
    match parts.next().as_deref() {
        Some("ok") => {
            let rest: Vec<String> = parts.collect();
            let fields: HashMap<String, String> = rest
                .chunks(2)
                .filter_map(|pair| match pair {
                    [k, v] => Some((k.clone(), v.clone())),
                    _ => None,
                })
                .collect();
            Ok(Outcome::Job(Box::new(parse_job(&fields)?)))
        }
        Some("notfound") => Ok(Outcome::NotFound),
        Some("conflict") => {
            let status = parts.next().unwrap_or_default();
            let owner = parts.next().filter(|o| !o.is_empty());
            Ok(Outcome::Conflict(status, owner))
        }
        Some("none") => Ok(Outcome::Nothing),
        other => Err(Error::internal(format!(
            "redis: unexpected script answer {other:?}"
        ))),
    }
}

fn parse_job(fields: &HashMap<String, String>) -> Result<Job> {
    let text = |name: &str| -> Result<&str> {
        fields
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| Error::internal(format!("redis: job hash without `{name}`")))
    };
    let int = |name: &str| -> Result<i64> {
        text(name)?
            .parse::<i64>()
            .map_err(|e| Error::internal(format!("redis: job field `{name}`: {e}")))
    };
    let time = |name: &str| -> Result<DateTime<Utc>> {
        let ms = int(name)?;
        Utc.timestamp_millis_opt(ms)
            .single()
            .ok_or_else(|| Error::internal(format!("redis: job field `{name}` out of range")))
    };
    let opt_time = |name: &str| -> Result<Option<DateTime<Utc>>> {
        if fields.contains_key(name) {
            time(name).map(Some)
        } else {
            Ok(None)
        }
    };
    let json = |name: &str| -> Result<serde_json::Value> {
        serde_json::from_str(text(name)?)
            .map_err(|e| Error::internal(format!("redis: job field `{name}`: {e}")))
    };
    let count = |name: &str| -> Result<u32> {
        u32::try_from(int(name)?)
            .map_err(|e| Error::internal(format!("redis: job field `{name}`: {e}")))
    };
    let scope: Scope = serde_json::from_value(json("scope")?)
        .map_err(|e| Error::internal(format!("redis: job scope: {e}")))?;
    Ok(Job {
        id: JobId(int("id")?),
        kind: text("kind")?.to_string(),
        // A payload damaged outside opsweave reaches its handler as the text it holds (which
        // fails that job) instead of failing every claim, and with it every worker.
        payload: {
            let raw = text("payload")?;
            serde_json::from_str(raw).unwrap_or_else(|_| serde_json::Value::String(raw.into()))
        },
        scope,
        status: text("status")?.parse()?,
        attempts: count("attempts")?,
        max_attempts: count("max_attempts")?,
        backoff: Duration::from_millis(u64::try_from(int("backoff_ms")?).unwrap_or(0)),
        progress: text("progress")?
            .parse()
            .map_err(|e| Error::internal(format!("redis: job progress: {e}")))?,
        message: fields.get("message").cloned(),
        idempotency_key: fields.get("idem").cloned(),
        lease_owner: fields.get("owner").cloned(),
        lease_expires_at: opt_time("lease_ms")?,
        run_after: time("run_after_ms")?,
        error: fields.get("error").cloned(),
        created_at: time("created_ms")?,
        updated_at: time("updated_ms")?,
        finished_at: opt_time("finished_ms")?,
    })
}

//! Ingest: read a source, map each item, store batches. Reading runs on a blocking thread that
//! maps each batch on as many threads as there are cores, while the previous batch is written.
//! On a server database several batches are written at once (`ingest.concurrency`), each in its
//! own transaction, so the server spreads them over its cores. A first ingest into an empty
//! store may be one bulk load instead (`ingest.bulk_load`, [`BulkLoad`]): every batch in one
//! transaction, indexes built at the end.
//!
//! [`BulkLoad`]: opsweave_core::BulkLoad

use crate::{Config, Weave};
use chrono::{DateTime, Utc};
use opsweave_core::mapping::{CompiledMapping, Format, Rejection};
use opsweave_core::source::{SourceItem, SourceReader};
use opsweave_core::{
    BatchOutcome, Error, EventKind, IngestItem, Mapping, NewEvent, PriorityConfig, RawItem,
    RecordId, RecordStore, Result, Scope,
};
use serde::{Deserialize, Serialize};
use std::collections::{HashSet, VecDeque};
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::task::JoinHandle;

/// What an ingest did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IngestReport {
    /// The file (or stream name) ingested.
    pub file: String,
    /// The mapping used.
    pub mapping: String,
    /// New records.
    pub inserted: u64,
    /// Changed records.
    pub updated: u64,
    /// Records whose content was unchanged.
    pub unchanged: u64,
    /// Rejected items (the first `ingest.report_rejections`; all are stored).
    pub rejected: Vec<Rejection>,
    /// How many items were rejected in all.
    pub rejected_total: u64,
    /// CSV columns the mapping reads that the file's header lacks: their fields stay empty in
    /// every record (a misspelt column name, or an export without it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_columns: Vec<String>,
    /// Wall time.
    pub seconds: f64,
}

/// Live progress of an ingest, readable from another task (for progress bars).
#[derive(Debug, Default)]
pub struct IngestProgress {
    /// Bytes of the source read so far.
    pub bytes: AtomicU64,
    /// Items stored or rejected so far.
    pub items: AtomicU64,
    /// Every item is written and a bulk load builds its indexes and commits (seconds at a
    /// million rows, with nothing else to count).
    pub finishing: AtomicBool,
}

/// Counts bytes as they are read.
struct Counted<R> {
    inner: R,
    progress: Arc<IngestProgress>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

type Batch = (Vec<IngestItem>, Vec<Rejection>);

impl Weave {
    /// This handle with `ingest.bulk_load` off: for ingests that run beside other writes of the
    /// same process (jobs renewing their leases), which a bulk load would hold up for the whole
    /// file.
    pub(crate) fn without_bulk_load(mut self) -> Self {
        if self.config.ingest.bulk_load {
            Arc::make_mut(&mut self.config).ingest.bulk_load = false;
        }
        self
    }

    /// Ingests the file at `path` with `mapping` into `scope`.
    pub async fn ingest_path(
        &self,
        path: &Path,
        mapping: &Mapping,
        scope: &Scope,
        progress: Option<Arc<IngestProgress>>,
    ) -> Result<IngestReport> {
        let name = path.display().to_string();
        let file = open_input(path)?;
        let format = format_of(&name, mapping)?;
        self.ingest_reader(
            std::io::BufReader::with_capacity(1 << 20, file),
            &name,
            format,
            mapping,
            scope,
            progress,
        )
        .await
    }

    /// Ingests `reader` (named `name` in reports) as `format` with `mapping` into `scope`.
    pub async fn ingest_reader<R: Read + Send + 'static>(
        &self,
        reader: R,
        name: &str,
        format: Format,
        mapping: &Mapping,
        scope: &Scope,
        progress: Option<Arc<IngestProgress>>,
    ) -> Result<IngestReport> {
        scope.validate()?;
        let compiled = mapping.compile()?;
        let progress = progress.unwrap_or_default();
        let counted = Counted {
            inner: reader,
            progress: progress.clone(),
        };
        let required = if format == Format::Csv {
            compiled.required_columns()
        } else {
            Vec::new()
        };
        // Opening reads the header or document: a file that is not of the format fails here, whole.
        let source =
            SourceReader::new(format, counted, name, &required, mapping.records.as_deref())?;
        let missing_columns: Vec<String> = if format == Format::Csv {
            let header = source.headers();
            (compiled.read_columns().into_iter())
                .filter(|c| !header.contains(c))
                .collect()
        } else {
            Vec::new()
        };
        let mut report = self
            .run_pipeline(source, compiled, name, scope, progress)
            .await?;
        report.missing_columns = missing_columns;
        Ok(report)
    }

    /// Ingests rows given as JSON objects (from a binding or an API body).
    pub async fn ingest_rows(
        &self,
        rows: Vec<serde_json::Value>,
        name: &str,
        mapping: &Mapping,
        scope: &Scope,
    ) -> Result<IngestReport> {
        scope.validate()?;
        let compiled = mapping.compile()?;
        let items = rows.into_iter().enumerate().map(|(i, payload)| {
            Ok(SourceItem::Raw(RawItem {
                line: i as u64 + 1,
                payload,
            }))
        });
        self.run_pipeline(items, compiled, name, scope, Arc::default())
            .await
    }

    async fn run_pipeline<I>(
        &self,
        items: I,
        compiled: CompiledMapping,
        name: &str,
        scope: &Scope,
        progress: Arc<IngestProgress>,
    ) -> Result<IngestReport>
    where
        I: Iterator<Item = Result<SourceItem>> + Send + 'static,
    {
        let started = Instant::now();
        let batch_size = self.ingest_batch_size();
        let priority = self.config().priority.clone();
        let compiled = compiled.with_day_zone(priority.zone());
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Batch>>(2);
        let scope_for_reader = scope.clone();
        let mapping_name = compiled.mapping().name.clone();
        let source_kind = compiled.mapping().source.clone();
        // Mapping threads leave one core to the writer, which is what bounds an ingest: on two
        // cores a second mapping thread took turns with it (docs/benchmarks.md, issue 2).
        let workers =
            std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1));
        let producer = tokio::task::spawn_blocking(move || {
            let now = Utc::now();
            let map = Mapper {
                compiled: &compiled,
                priority: &priority,
                scope: &scope_for_reader,
                now,
            };
            let mut read: Vec<SourceItem> = Vec::with_capacity(batch_size);
            for item in items {
                match item {
                    Ok(item) => read.push(item),
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
                if read.len() >= batch_size {
                    let full = std::mem::replace(&mut read, Vec::with_capacity(batch_size));
                    if tx.blocking_send(Ok(map.batch(full, workers))).is_err() {
                        return;
                    }
                }
            }
            if !read.is_empty() {
                let _ = tx.blocking_send(Ok(map.batch(read, workers)));
            }
        });
        let mut report = IngestReport {
            file: name.to_string(),
            mapping: mapping_name,
            ..IngestReport::default()
        };
        let mut writer = BatchWriter {
            store: self.store().clone(),
            scope: scope.clone(),
            name: name.to_string(),
            concurrency: self.ingest_concurrency(),
            in_flight: VecDeque::new(),
            outcome: BatchOutcome::default(),
            keep: self.config().ingest.report_rejections,
            progress,
        };
        // Dropped unfinished (an error, a cancelled ingest), a bulk load stores nothing.
        let mut bulk = match self.config().ingest.bulk_load {
            true => self.store().begin_bulk_load(scope).await?,
            false => None,
        };
        let mut failed = None;
        while let Some(batch) = rx.recv().await {
            let written = match (batch, bulk.as_mut()) {
                (Ok((items, rejections)), Some(load)) => {
                    let outcome = load.write(name, &items, &rejections).await;
                    let count = items.len();
                    free_elsewhere(items);
                    outcome.map(|o| writer.settle(o, count, rejections, &mut report))
                }
                (Ok((items, rejections)), None) => {
                    writer.write(items, rejections, &mut report).await
                }
                (Err(e), _) => Err(e),
            };
            if let Err(e) = written {
                failed = Some(e);
                break;
            }
        }
        // Every batch in flight ends before the ingest does, also when one failed.
        let finished = writer.finish(&mut report).await;
        if let Some(e) = failed {
            return Err(e);
        }
        finished?;
        // The reader has ended (the channel is closed); a reader that panicked ended it early,
        // and a bulk load must not commit what came before.
        producer
            .await
            .map_err(|e| Error::internal(format!("ingest reader stopped: {e}")))?;
        if let Some(load) = bulk {
            writer.progress.finishing.store(true, Ordering::Relaxed);
            load.finish().await?;
        }
        let outcome = std::mem::take(&mut writer.outcome);
        report.inserted = outcome.inserted;
        report.updated = outcome.updated;
        report.unchanged = outcome.unchanged;
        report.seconds = started.elapsed().as_secs_f64();
        self.events_log()
            .append(NewEvent {
                scope: scope.clone(),
                actor: "ingest".into(),
                subject: None,
                kind: EventKind::Ingested {
                    source: source_kind,
                    inserted: report.inserted,
                    updated: report.updated,
                    unchanged: report.unchanged,
                    rejected: report.rejected_total,
                },
                at: Utc::now(),
            })
            .await?;
        Ok(report)
    }
}

/// Frees a written batch on the runtime's blocking pool rather than on the thread that writes
/// the next one: the writer bounds an ingest, and freeing a batch's strings there took ~5 % of
/// a 1M-row load (docs/benchmarks.md, issue 2).
fn free_elsewhere<T: Send + 'static>(batch: T) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn_blocking(move || drop(batch))),
        Err(_) => drop(batch),
    }
}

/// Turns source items into what the store takes: the mapping, then the task's importance.
struct Mapper<'a> {
    compiled: &'a CompiledMapping,
    priority: &'a PriorityConfig,
    scope: &'a Scope,
    now: DateTime<Utc>,
}

/// Fewer items than this per thread are mapped on the reading thread alone.
const ITEMS_PER_MAPPING_THREAD: usize = 2_000;

impl Mapper<'_> {
    /// Maps `read` on up to `workers` threads (mapping costs more than reading the source and
    /// about as much as writing it); items and rejections stay in source order.
    fn batch(&self, read: Vec<SourceItem>, workers: usize) -> Batch {
        let threads = workers.min(read.len() / ITEMS_PER_MAPPING_THREAD).max(1);
        if threads == 1 {
            return self.part(&read);
        }
        let parts: Vec<Batch> = std::thread::scope(|s| {
            let handles: Vec<_> = read
                .chunks(read.len().div_ceil(threads))
                .map(|part| s.spawn(|| self.part(part)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
        let mut batch: Batch = (Vec::with_capacity(read.len()), Vec::new());
        for (items, rejections) in parts {
            batch.0.extend(items);
            batch.1.extend(rejections);
        }
        batch
    }

    /// Maps `read` on this thread.
    fn part(&self, read: &[SourceItem]) -> Batch {
        let mut batch: Batch = (Vec::with_capacity(read.len()), Vec::new());
        for item in read {
            match item {
                SourceItem::Raw(raw) => match self.compiled.apply(self.scope, raw, self.now) {
                    Ok(normalised) => {
                        let (importance, importance_reason) = match &normalised.task {
                            Some(seed) => self.priority.importance(&seed.signals),
                            None => (0.0, String::new()),
                        };
                        batch.0.push(IngestItem {
                            normalised,
                            importance,
                            importance_reason,
                        });
                    }
                    Err(rejection) => batch.1.push(rejection),
                },
                SourceItem::Rejected(rejection) => batch.1.push(rejection.clone()),
            }
        }
        batch
    }
}

/// A batch being written: the task, and what the report takes from it once it is stored.
struct InFlight {
    /// The records it writes and the records its links point at: a later batch that shares one
    /// waits for this one.
    keys: HashSet<i64>,
    /// Answers with what was written and the batch's rejections (for the report).
    task: JoinHandle<(Result<BatchOutcome>, Vec<Rejection>)>,
    items: usize,
}

/// Writes batches, up to `concurrency` at once, and settles them in source order.
struct BatchWriter {
    store: Arc<dyn RecordStore>,
    scope: Scope,
    name: String,
    concurrency: usize,
    in_flight: VecDeque<InFlight>,
    outcome: BatchOutcome,
    keep: usize,
    progress: Arc<IngestProgress>,
}

impl BatchWriter {
    /// Starts writing a batch once there is room and no batch in flight shares a record with it.
    async fn write(
        &mut self,
        items: Vec<IngestItem>,
        rejections: Vec<Rejection>,
        report: &mut IngestReport,
    ) -> Result<()> {
        let keys = if self.concurrency > 1 {
            batch_keys(&self.scope, &items)
        } else {
            HashSet::new()
        };
        while self.in_flight.len() >= self.concurrency
            || self
                .in_flight
                .iter()
                .any(|other| !other.keys.is_disjoint(&keys))
        {
            self.settle_oldest(report).await?;
        }
        let (store, scope, name) = (self.store.clone(), self.scope.clone(), self.name.clone());
        let count = items.len();
        let task = tokio::spawn(async move {
            let outcome = store.ingest_batch(&scope, &name, &items, &rejections).await;
            free_elsewhere(items);
            (outcome, rejections)
        });
        self.in_flight.push_back(InFlight {
            keys,
            task,
            items: count,
        });
        Ok(())
    }

    /// Waits for the oldest batch in flight and adds it to the report.
    async fn settle_oldest(&mut self, report: &mut IngestReport) -> Result<()> {
        let Some(done) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let (outcome, rejections) = done
            .task
            .await
            .map_err(|e| Error::internal(format!("ingest writer stopped: {e}")))?;
        self.settle(outcome?, done.items, rejections, report);
        Ok(())
    }

    /// Adds a written batch of `items` items to the outcome, the progress and the report.
    fn settle(
        &mut self,
        outcome: BatchOutcome,
        items: usize,
        rejections: Vec<Rejection>,
        report: &mut IngestReport,
    ) {
        self.outcome += outcome;
        self.progress
            .items
            .fetch_add((items + rejections.len()) as u64, Ordering::Relaxed);
        report.rejected_total += rejections.len() as u64;
        let room = self.keep.saturating_sub(report.rejected.len());
        report.rejected.extend(rejections.into_iter().take(room));
    }

    /// Waits for every batch in flight; the first error, once all have ended.
    async fn finish(&mut self, report: &mut IngestReport) -> Result<()> {
        let mut first = Ok(());
        while !self.in_flight.is_empty() {
            if let Err(e) = self.settle_oldest(report).await {
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }
}

impl Drop for BatchWriter {
    /// An ingest dropped midway (its caller gone) stops its batches as a sequential one would
    /// stop its only batch: a transaction cut short rolls back.
    fn drop(&mut self) {
        for batch in &self.in_flight {
            batch.task.abort();
        }
    }
}

/// The raw ids of the records `items` write and of the records their links point at.
fn batch_keys(scope: &Scope, items: &[IngestItem]) -> HashSet<i64> {
    let mut keys = HashSet::with_capacity(items.len());
    for item in items {
        let record = &item.normalised.record;
        keys.insert(record.id.raw());
        for link in &item.normalised.links {
            keys.insert(RecordId::derive(scope, &link.to_source, &link.to_external_id).raw());
        }
    }
    keys
}

impl Weave {
    /// Batches an ingest writes at once: `ingest.concurrency`, or the store's choice.
    fn ingest_concurrency(&self) -> usize {
        store_choice(self.config(), self.config().ingest.concurrency, 4, 1)
    }

    /// Items per batch: `ingest.batch_size`, or the store's choice.
    fn ingest_batch_size(&self) -> usize {
        store_choice(
            self.config(),
            self.config().ingest.batch_size,
            5_000,
            20_000,
        )
    }
}

/// `configured`, or when it is 0 the store's choice: `postgres` on PostgreSQL, else `sqlite`.
fn store_choice(config: &Config, configured: usize, postgres: usize, sqlite: usize) -> usize {
    match configured {
        0 => match crate::scale_out::scheme(config.db.trim()) {
            "postgres" | "postgresql" => postgres,
            _ => sqlite,
        },
        n => n,
    }
}

/// Opens a file the user named as input. A folder is refused here: it opens on Unix and only
/// its read fails, which reads as an I/O outage (retry) rather than the user's mistake it is.
pub fn open_input(path: &Path) -> Result<std::fs::File> {
    let name = || path.display().to_string();
    if path.is_dir() {
        return Err(Error::invalid("it is a folder: name a file").in_file(name()));
    }
    std::fs::File::open(path)
        .map_err(|e| Error::invalid(format!("cannot open: {e}")).in_file(name()))
}

/// The format of `file`: its extension, else the mapping's `format`. A mapping made for CSV
/// columns cannot read JSON items, nor the other way round: that pair is refused rather than
/// read as rows of empty fields.
pub(crate) fn format_of(file: &str, mapping: &Mapping) -> Result<Format> {
    let by_name = Format::from_extension(file);
    if let (Some(named), Some(wanted)) = (by_name, mapping.format) {
        if (named == Format::Csv) != (wanted == Format::Csv) {
            let what = |f: Format| if f == Format::Csv { "CSV" } else { "JSON" };
            return Err(Error::invalid(format!(
                "the mapping `{}` reads {} and the file is {} by its name: pick the mapping \
                 made for this file",
                mapping.name,
                what(wanted),
                what(named)
            ))
            .in_file(file.to_string()));
        }
    }
    by_name.or(mapping.format).ok_or_else(|| {
        Error::invalid(
            "cannot tell the file's format: name it .csv, .jsonl or .json, or set `format` in the mapping",
        )
        .in_file(file.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapping_for_json_refuses_a_csv_file_and_the_other_way_round() {
        let gmail = crate::preset("gmail-message").unwrap();
        let odoo = crate::preset("odoo-crm-lead").unwrap();
        let e = format_of("leads.csv", &gmail).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
        assert!(
            e.to_string().contains("reads JSON and the file is CSV"),
            "{e}"
        );
        assert!(format_of("mail.json", &odoo).is_err());
        // JSON Lines and JSON documents are both items for a JSON mapping.
        assert_eq!(format_of("mail.jsonl", &gmail).unwrap(), Format::Jsonl);
        assert_eq!(format_of("leads.csv", &odoo).unwrap(), Format::Csv);
        assert_eq!(format_of("leads.txt", &odoo).unwrap(), Format::Csv);
    }

    #[test]
    fn batch_size_and_concurrency_default_to_the_stores_choice() {
        let mut config = Config::default();
        assert_eq!(store_choice(&config, 0, 5_000, 20_000), 20_000);
        config.db = " postgres://h/db".into();
        assert_eq!(store_choice(&config, 0, 5_000, 20_000), 5_000);
        config.db = "postgresql://h/db".into();
        assert_eq!(store_choice(&config, 0, 4, 1), 4);
        assert_eq!(store_choice(&config, 7, 5_000, 20_000), 7);
        assert_eq!(
            crate::IngestConfig::default().batch_size,
            0,
            "the store chooses"
        );
    }
}

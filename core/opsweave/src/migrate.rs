//! Copying everything one store holds into another backend (`opsweave migrate`).
//!
//! The copy goes kind by kind ([`SnapshotKind::ALL`]) in pages of `batch` rows read in key order
//! (keyset pagination: memory holds one page, whatever the store's size); each page is one
//! transaction on the target. Ids are kept, so links, undo history, usage attributed to jobs and
//! API key ids stay valid. Afterwards the rows of every table are counted per org on both sides
//! and the copy fails when any count differs.
//!
//! What the target may hold before the copy (the policy that keeps a copy from clobbering data):
//! - nothing: the usual case, a fresh database;
//! - with `resume`, an earlier (possibly interrupted) copy of this same source: only orgs the
//!   source has, and no table holding more rows of an org than the source. Every row is written
//!   again by its key, so nothing is duplicated and the copy converges to the source.
//!
//! Anything else is refused before a row is written: event sequence numbers, job, usage and key
//! ids are kept as they are, and they would collide with another store's.

use crate::{mask_password, Weave};
use opsweave_core::snapshot::{copy_kind, COUNTED_TABLES};
use opsweave_core::{Error, Result, RowCount, Snapshot, SnapshotKind};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// How to copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrateOptions {
    /// Rows per page (one round trip and one target transaction each); at most 10,000.
    pub batch: usize,
    /// Continue an earlier copy into this target instead of refusing a non-empty one.
    pub resume: bool,
}

impl MigrateOptions {
    /// Checks the batch size, naming the field at fault.
    pub fn validate(&self) -> Result<()> {
        let max = opsweave_core::snapshot::MAX_PAGE;
        if !(1..=max).contains(&self.batch) {
            return Err(Error::invalid(format!(
                "batch must be between 1 and {max}, not {}",
                self.batch
            ))
            .on_field("batch"));
        }
        Ok(())
    }
}

impl Default for MigrateOptions {
    fn default() -> Self {
        Self {
            batch: 1_000,
            resume: false,
        }
    }
}

/// Where a copy stands, reported after each page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrateProgress {
    /// The kind being copied.
    pub kind: SnapshotKind,
    /// Rows of it copied so far.
    pub copied: u64,
    /// Rows of it the source held when the copy began.
    pub total: u64,
    /// True once the kind is copied.
    pub finished: bool,
}

/// One table's rows on both sides after the copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableCounts {
    /// The table (see [`COUNTED_TABLES`]).
    pub table: String,
    /// Rows in the source.
    pub source: u64,
    /// Rows in the target.
    pub target: u64,
}

/// What a copy did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MigrateReport {
    /// True when the target held an earlier copy that this one continued.
    pub resumed: bool,
    /// The orgs copied.
    pub orgs: Vec<String>,
    /// Rows written per kind (on a resumed copy, rows already there are written again).
    pub copied: BTreeMap<String, u64>,
    /// Rows per table on both sides afterwards (all equal, or the copy failed).
    pub tables: Vec<TableCounts>,
}

/// Copies everything the database at `from` holds into the one at `to` (URLs as
/// [`Weave::open`] takes them), calling `progress` as pages commit. See the module docs for
/// what the target may already hold.
pub async fn migrate(
    from: &str,
    to: &str,
    options: &MigrateOptions,
    progress: &mut (dyn FnMut(&MigrateProgress) + Send),
) -> Result<MigrateReport> {
    options.validate()?;
    let (from, to) = (from.trim(), to.trim());
    for (flag, url) in [("from", from), ("to", to)] {
        if url.is_empty() {
            return Err(Error::invalid(format!("--{flag} needs a database URL")).on_field(flag));
        }
    }
    if from == to {
        return Err(Error::invalid(format!(
            "--from and --to name the same database `{}`",
            mask_password(from)
        ))
        .on_field("to"));
    }
    if let Some(path) = sqlite_path(from) {
        let file = std::path::Path::new(path);
        let why = if path.is_empty() || path == ":memory:" || !file.exists() {
            Some("does not exist")
        } else if file.is_dir() {
            Some("is a folder")
        } else if file.metadata().is_ok_and(|m| m.len() == 0) {
            // Opening it would write a fresh schema into the file it was meant to read.
            Some("is an empty file")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(Error::invalid(format!(
                "the source database `{path}` {why} (a copy needs one to read)"
            ))
            .on_field("from"));
        }
    }
    let source = Weave::open(from)
        .await
        .map_err(|e| context(e, "source", from))?;
    let target = Weave::open(to)
        .await
        .map_err(|e| context(e, "target", to))?;
    let result = source.migrate_to(&target, options, progress).await;
    // Closed here, not dropped: the embedded side is checkpointed, so its `.db` file alone holds
    // the copy.
    target.close().await;
    source.close().await;
    result
}

/// The file of a SQLite URL (or plain path), without its query; `None` for other schemes.
pub fn sqlite_path(url: &str) -> Option<&str> {
    let path = match url.split_once("://") {
        Some(("sqlite", rest)) => rest,
        Some(_) => return None,
        None => url.strip_prefix("sqlite:").unwrap_or(url),
    };
    Some(path.split('?').next().unwrap_or(path))
}

/// `e` with which side failed, the URL's password masked.
fn context(e: Error, side: &str, url: &str) -> Error {
    Error::new(
        e.kind(),
        format!(
            "cannot open the {side} database `{}`: {}",
            mask_password(url),
            e.message()
        ),
    )
    .with_source(e)
}

impl Weave {
    /// The export / import side of the store (present when opened from a URL).
    pub fn snapshot(&self) -> Option<&Arc<dyn Snapshot>> {
        self.snapshot.as_ref()
    }

    /// Adds export / import to a handle made with [`Self::from_parts`].
    pub fn with_snapshot(mut self, snapshot: Arc<dyn Snapshot>) -> Self {
        self.snapshot = Some(snapshot);
        self
    }

    /// Copies everything this handle's store holds into `target`'s (see [`migrate`]).
    pub async fn migrate_to(
        &self,
        target: &Weave,
        options: &MigrateOptions,
        progress: &mut (dyn FnMut(&MigrateProgress) + Send),
    ) -> Result<MigrateReport> {
        let no_snapshot = || Error::unavailable("this handle's store cannot export or import");
        options.validate()?;
        let source = self.snapshot.as_ref().ok_or_else(no_snapshot)?;
        let sink = target.snapshot.as_ref().ok_or_else(no_snapshot)?;
        // One database under two spellings (`sqlite://./a.db` and a link to it, two URLs of one
        // server): the stores tell, whatever reached them.
        if let (Some(a), Some(b)) = (
            source.database_identity().await?,
            sink.database_identity().await?,
        ) {
            if a.key == b.key {
                return Err(Error::invalid(format!(
                    "the source and the target are the same database ({}): a copy needs \
                     another one to write into",
                    a.label
                ))
                .on_field("to"));
            }
        }
        let before = Counts::of(source.row_counts().await?);
        let existing = Counts::of(sink.row_counts().await?);
        let resumed = !existing.is_empty();
        if resumed {
            check_resumable(&before, &existing, options.resume)?;
        }
        let mut copied = BTreeMap::new();
        for kind in SnapshotKind::ALL {
            let total = before.table(kind.as_str());
            progress(&MigrateProgress {
                kind,
                copied: 0,
                total,
                finished: false,
            });
            let mut on_page = |n: u64| {
                progress(&MigrateProgress {
                    kind,
                    copied: n,
                    total,
                    finished: false,
                })
            };
            let n = copy_kind(&**source, &**sink, kind, options.batch, &mut on_page).await?;
            progress(&MigrateProgress {
                kind,
                copied: n,
                total,
                finished: true,
            });
            copied.insert(kind.as_str().to_string(), n);
        }
        let after = Counts::of(source.row_counts().await?);
        let copy = Counts::of(sink.row_counts().await?);
        let differences = after.differences(&copy);
        if !differences.is_empty() {
            return Err(Error::conflict(format!(
                "the copy does not match its source: {}. Was the source written to during the \
                 copy? Stop its writers and run again with --resume",
                differences.join("; ")
            )));
        }
        Ok(MigrateReport {
            resumed,
            orgs: after.orgs().into_iter().collect(),
            copied,
            tables: COUNTED_TABLES
                .iter()
                .map(|table| TableCounts {
                    table: (*table).to_string(),
                    source: after.table(table),
                    target: copy.table(table),
                })
                .collect(),
        })
    }
}

/// Refuses a target that is not an earlier copy of this source (or any non-empty one without
/// `resume`), naming what it holds.
fn check_resumable(source: &Counts, target: &Counts, resume: bool) -> Result<()> {
    if !resume {
        let held: Vec<String> = COUNTED_TABLES
            .iter()
            .map(|t| (t, target.table(t)))
            .filter(|(_, n)| *n > 0)
            .map(|(t, n)| format!("{n} {t}"))
            .collect();
        return Err(Error::conflict(format!(
            "the target is not empty ({}; orgs: {}). Copy into an empty database, or pass \
             --resume to continue an earlier copy of this same source",
            held.join(", "),
            target.orgs().into_iter().collect::<Vec<_>>().join(", ")
        )));
    }
    let foreign: Vec<String> = target.orgs().difference(&source.orgs()).cloned().collect();
    if !foreign.is_empty() {
        return Err(Error::conflict(format!(
            "the target holds orgs the source does not ({}): it is not an earlier copy of this \
             source, and ids (events, jobs, usage, keys) would collide with theirs. Copy into \
             an empty database",
            foreign.join(", ")
        )));
    }
    for ((table, org), n) in &target.0 {
        let s = source
            .0
            .get(&(table.clone(), org.clone()))
            .copied()
            .unwrap_or(0);
        if *n > s {
            return Err(Error::conflict(format!(
                "the target holds more {table} of org `{org}` ({n}) than the source ({s}): it \
                 is not an earlier copy of this source. Copy into an empty database"
            )));
        }
    }
    Ok(())
}

/// Rows per (table, org).
struct Counts(BTreeMap<(String, String), u64>);

impl Counts {
    fn of(rows: Vec<RowCount>) -> Self {
        let mut map = BTreeMap::new();
        for r in rows.into_iter().filter(|r| r.rows > 0) {
            *map.entry((r.table, r.org)).or_insert(0) += r.rows;
        }
        Self(map)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn table(&self, table: &str) -> u64 {
        self.0
            .iter()
            .filter(|((t, _), _)| t == table)
            .map(|(_, n)| n)
            .sum()
    }

    fn orgs(&self) -> BTreeSet<String> {
        self.0.keys().map(|(_, org)| org.clone()).collect()
    }

    /// Each (table, org) whose rows differ, as `table (org): source N, target M`.
    fn differences(&self, target: &Counts) -> Vec<String> {
        let keys: BTreeSet<&(String, String)> = self.0.keys().chain(target.0.keys()).collect();
        keys.into_iter()
            .filter_map(|key| {
                let s = self.0.get(key).copied().unwrap_or(0);
                let t = target.0.get(key).copied().unwrap_or(0);
                (s != t).then(|| format!("{} (org `{}`): source {s}, target {t}", key.0, key.1))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(rows: &[(&str, &str, u64)]) -> Counts {
        Counts::of(
            rows.iter()
                .map(|(table, org, rows)| RowCount {
                    table: (*table).into(),
                    org: (*org).into(),
                    rows: *rows,
                })
                .collect(),
        )
    }

    #[test]
    fn only_an_earlier_copy_of_the_source_may_be_resumed() {
        let source = counts(&[("records", "acme", 10), ("events", "acme", 3)]);
        let partial = counts(&[("records", "acme", 4)]);
        let err = check_resumable(&source, &partial, false).unwrap_err();
        assert!(err.message().contains("--resume"), "{err}");
        assert!(err.message().contains("4 records"), "{err}");
        check_resumable(&source, &partial, true).unwrap();

        let other_org = counts(&[("records", "acme", 4), ("records", "globex", 1)]);
        let err = check_resumable(&source, &other_org, true).unwrap_err();
        assert!(err.message().contains("globex"), "{err}");

        let more = counts(&[("events", "acme", 5)]);
        let err = check_resumable(&source, &more, true).unwrap_err();
        assert!(err.message().contains("more events"), "{err}");
    }

    #[test]
    fn differences_name_table_org_and_both_counts() {
        let source = counts(&[("records", "acme", 10), ("jobs", "acme", 2)]);
        let target = counts(&[
            ("records", "acme", 9),
            ("jobs", "acme", 2),
            ("links", "x", 1),
        ]);
        assert_eq!(
            source.differences(&target),
            vec![
                "links (org `x`): source 0, target 1".to_string(),
                "records (org `acme`): source 10, target 9".to_string(),
            ]
        );
        assert_eq!(source.table("records"), 10);
    }

    #[test]
    fn sqlite_paths_are_found_in_every_form() {
        assert_eq!(sqlite_path("sqlite://./a.db"), Some("./a.db"));
        assert_eq!(sqlite_path("sqlite:a.db?mode=ro"), Some("a.db"));
        assert_eq!(sqlite_path("a.db"), Some("a.db"));
        assert_eq!(sqlite_path("postgres://h/db"), None);
    }
}

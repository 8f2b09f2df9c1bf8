//! What the CLI prints: tables for people, JSON for programs.

use indicatif::{ProgressBar, ProgressStyle};
use opsweave::{
    Error, Focus, Horizon, IngestProgress, IngestReport, Mapping, Result, Scope, SearchHit, Task,
    TaskStatus, Weave,
};
use serde_json::json;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Writes the command's output to stdout. When the reader has gone (a pipe closed early, as
/// `| head` does) nobody is left to read the rest: the process ends with 0 instead of the
/// panic `println!` gives. Any other write error ends it with 1 and says why.
pub fn emit(text: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(text).and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write the output: {e}");
        std::process::exit(1);
    }
}

/// Ingests `file`, drawing a progress bar on a terminal for files over 4 MiB.
pub async fn ingest_with_progress(
    weave: &Weave,
    file: &Path,
    mapping: &Mapping,
    scope: &Scope,
) -> Result<IngestReport> {
    let size = std::fs::metadata(file)
        .map_err(|e| {
            Error::invalid(format!("cannot open: {e}")).in_file(file.display().to_string())
        })?
        .len();
    let progress = Arc::new(IngestProgress::default());
    let bar = (size > 4 << 20).then(|| {
        let bar = ProgressBar::new(size);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} {wide_bar} {msg} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });
    let ticker = bar.clone().map(|bar| {
        let progress = progress.clone();
        tokio::spawn(async move {
            loop {
                bar.set_position(progress.bytes.load(Ordering::Relaxed));
                let items = progress.items.load(Ordering::Relaxed);
                match progress.finishing.load(Ordering::Relaxed) {
                    true => bar.set_message(format!("{items} items, building indexes")),
                    false => bar.set_message(format!("{items} items")),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    });
    let report = weave
        .ingest_path(file, mapping, scope, Some(progress))
        .await;
    if let Some(t) = ticker {
        t.abort();
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    report
}

/// The header of a rejections file: an existing file is only overwritten when it starts so.
const REJECTIONS_HEADER: [&str; 4] = ["file", "line", "field", "reason"];

/// Refuses a rejections file that could not be written (its folder missing or not writable, a
/// folder itself), or that would overwrite something else: the input, the database or its
/// journal files, or any file that is not an earlier rejections file.
pub fn check_rejections_path(path: &Path, input: &Path, database: Option<&str>) -> Result<()> {
    let refuse = |why: String| {
        Err(
            Error::invalid(format!("cannot write rejections there: {why}"))
                .in_file(path.display().to_string())
                .on_field("--rejections"),
        )
    };
    if path.is_dir() {
        return refuse("it is a folder".into());
    }
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !folder.is_dir() {
        return refuse("its folder does not exist".into());
    }
    if same_file(path, input) {
        return refuse("it is the file being ingested".into());
    }
    // By name too: the database and its journals may not exist yet, and would be made after
    // this check.
    if let Some(db) = database {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            if same_file(path, Path::new(&format!("{db}{suffix}"))) {
                return refuse(format!("it is the database file `{db}{suffix}`"));
            }
        }
    }
    if path.exists() && !is_rejections_file(path) {
        return refuse(format!(
            "the file exists and is not a rejections file (its first line is not `{}`); \
             name a new file or remove it",
            REJECTIONS_HEADER.join(",")
        ));
    }

    // Opening for append changes nothing in an existing file and proves it can be written; a
    // file made only for this test is removed again.
    let existed = path.exists();
    match std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
    {
        Ok(_) if !existed => {
            let _ = std::fs::remove_file(path);
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(e) => refuse(format!("{e}")),
    }
}

/// Whether two paths name one file (through links or different spellings), existing or not:
/// two existing files by identity, otherwise by their folder's real path and their name.
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(a), Ok(b)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return a.dev() == b.dev() && a.ino() == b.ino();
        }
    }
    let named = |p: &Path| {
        let folder = match p.parent() {
            Some(f) if !f.as_os_str().is_empty() => f,
            _ => Path::new("."),
        };
        Some((folder.canonicalize().ok()?, p.file_name()?.to_owned()))
    };
    match (named(a), named(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// Whether `path` starts with the rejections header (an empty file counts: nothing to lose).
fn is_rejections_file(path: &Path) -> bool {
    let Ok(mut reader) = csv::ReaderBuilder::new().has_headers(false).from_path(path) else {
        return false;
    };
    let mut first = csv::StringRecord::new();
    match reader.read_record(&mut first) {
        Ok(false) => std::fs::metadata(path).is_ok_and(|m| m.len() == 0),
        Ok(true) => first.iter().eq(REJECTIONS_HEADER),
        Err(_) => false,
    }
}

/// Writes the report's rejections (as many as it kept) as CSV: file, line, field, reason.
pub fn write_rejections(path: &Path, report: &IngestReport) -> Result<()> {
    let name = path.display().to_string();
    let fail = |e: csv::Error| {
        Error::unavailable(format!("cannot write rejections: {e}")).in_file(name.clone())
    };
    let mut writer = csv::Writer::from_path(path).map_err(fail)?;
    writer.write_record(REJECTIONS_HEADER).map_err(fail)?;
    for r in &report.rejected {
        writer
            .write_record([
                report.file.as_str(),
                &r.line.to_string(),
                r.field.as_deref().unwrap_or(""),
                &r.reason,
            ])
            .map_err(fail)?;
    }
    writer.flush().map_err(|e| {
        Error::unavailable(format!("cannot write rejections: {e}")).in_file(name.clone())
    })
}

/// Prints an ingest summary.
pub fn print_ingest(report: &IngestReport, as_json: bool, rejections_file: &Path) {
    if as_json {
        let rejected: Vec<_> = report
            .rejected
            .iter()
            .map(|r| json!({"line": r.line, "field": r.field, "reason": r.reason}))
            .collect();
        print_json(&json!({
            "inserted": report.inserted,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "rejected": rejected,
            "rejected_total": report.rejected_total,
            "missing_columns": report.missing_columns,
            "seconds": report.seconds,
        }));
        return;
    }
    outln!(
        "{}: {} inserted, {} updated, {} unchanged, {} rejected ({:.2}s, mapping {})",
        report.file,
        report.inserted,
        report.updated,
        report.unchanged,
        report.rejected_total,
        report.seconds,
        report.mapping
    );
    for r in report.rejected.iter().take(20) {
        outln!(
            "  rejected {}:{}{}: {}",
            report.file,
            r.line,
            r.field
                .as_deref()
                .map(|f| format!(" field `{f}`"))
                .unwrap_or_default(),
            r.reason
        );
    }
    if !report.missing_columns.is_empty() {
        let list: Vec<String> = (report.missing_columns.iter())
            .map(|c| format!("`{c}`"))
            .collect();
        outln!(
            "  warning: the header has no column {}: the mapping's fields from it are empty",
            list.join(", ")
        );
    }
    let kept = report.rejected.len() as u64;
    if report.rejected_total > kept {
        // The report holds `ingest.report_rejections` of them; the store holds every one.
        outln!(
            "  the first {kept} of {} rejections: {} (all are kept in the database)",
            report.rejected_total,
            rejections_file.display()
        );
    } else if report.rejected_total > 0 {
        outln!("  all rejections: {}", rejections_file.display());
    }
}

fn shorten(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Prints focus as a table, or as `{"today": [...], ...}` JSON.
pub fn print_focus(focus: &Focus, horizons: &[Horizon], as_json: bool) {
    if as_json {
        let mut map = serde_json::Map::new();
        for h in horizons {
            let tasks: Vec<_> = focus
                .get(*h)
                .iter()
                .map(|t| {
                    json!({
                        "id": t.task.id,
                        "title": t.task.title,
                        "score": (t.priority.score * 100.0).round() / 100.0,
                        "status": t.task.status,
                        "due": t.task.due,
                        "source": t.task.source_kind,
                        "url": t.task.url,
                        "breakdown": t.priority.breakdown,
                    })
                })
                .collect();
            map.insert(h.as_str().to_string(), serde_json::Value::Array(tasks));
        }
        print_json(&serde_json::Value::Object(map));
        return;
    }
    for h in horizons {
        outln!("{}", h.as_str().to_uppercase());
        let tasks = focus.get(*h);
        if tasks.is_empty() {
            outln!("  (nothing)");
        }
        for (i, t) in tasks.iter().enumerate() {
            outln!(
                "  {}. {:>5.1}  {}  {:<10}  {:<7} {}",
                i + 1,
                t.priority.score,
                t.task.id,
                t.task
                    .due
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| "-".into()),
                t.task.source_kind,
                shorten(&t.task.title, 60)
            );
            outln!("                why: {}", t.priority.breakdown.summary());
        }
        outln!();
    }
}

/// Prints what complete / undo did.
pub fn print_status_change(task: &Task, before: TaskStatus, as_json: bool) {
    if as_json {
        print_json(
            &json!({"id": task.id, "title": task.title, "previous": before, "status": task.status}),
        );
    } else if before == task.status {
        outln!(
            "{} unchanged ({}; nothing to change or undo): {}",
            task.id,
            task.status,
            task.title
        );
    } else {
        outln!("{} {} → {}: {}", task.id, before, task.status, task.title);
    }
}

/// Prints search hits.
pub fn print_search(hits: &[SearchHit], as_json: bool) {
    if as_json {
        print_json(&hits);
        return;
    }
    if hits.is_empty() {
        outln!("no matches");
    }
    for h in hits {
        outln!(
            "{}  {:<8} {:<12} {}",
            h.id,
            h.source_kind,
            h.entity,
            shorten(&h.title, 70)
        );
        outln!("      {}", shorten(&h.snippet.replace('\n', " "), 100));
    }
}

/// Prints any value as pretty JSON.
pub fn print_json<T: serde::Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => outln!("{text}"),
        Err(e) => eprintln!("error: cannot print JSON: {e}"),
    }
}

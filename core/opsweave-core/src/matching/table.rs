//! Plain tables of strings and gold pairs, read from CSV the caller supplies.

use crate::{Error, Result};
use std::collections::{HashMap, HashSet};
use std::io::Read;

/// A set of records as strings: a header and rows whose first column is a unique id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Where the table came from (a file name), for messages.
    pub name: String,
    /// Column names; the first is the id column.
    pub columns: Vec<String>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<String>>,
    index: HashMap<String, usize>,
}

impl Table {
    /// Builds a table from a header and rows, checking ids and row lengths.
    pub fn new(
        name: impl Into<String>,
        columns: Vec<String>,
        rows: Vec<Vec<String>>,
    ) -> Result<Table> {
        let name = name.into();
        if columns.is_empty() {
            return Err(
                Error::invalid("no columns: the first column must be the record id").in_file(name),
            );
        }
        let mut index = HashMap::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            // Line numbers count the header as line 1.
            let line = i as u64 + 2;
            if row.len() != columns.len() {
                return Err(Error::invalid(format!(
                    "ragged row: expected {} columns, found {}",
                    columns.len(),
                    row.len()
                ))
                .in_file(name)
                .at_line(line));
            }
            let id = row[0].trim();
            if id.is_empty() {
                return Err(Error::invalid("empty id")
                    .in_file(name)
                    .at_line(line)
                    .on_field(columns[0].clone()));
            }
            if index.insert(id.to_string(), i).is_some() {
                return Err(Error::invalid(format!("duplicate id `{id}`"))
                    .in_file(name)
                    .at_line(line)
                    .on_field(columns[0].clone()));
            }
        }
        Ok(Table {
            name,
            columns,
            rows,
            index,
        })
    }

    /// Reads a CSV with a header whose first column is the id: its name must contain `id` or
    /// `key` (`id`, `rec_id`, `uuid`, `record_key`), so that a file without ids is refused rather
    /// than silently keyed by its first data column.
    pub fn from_csv(reader: impl Read, name: &str) -> Result<Table> {
        let mut csv = csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(false)
            .from_reader(reader);
        let mut records = csv.records();
        let header = match records.next() {
            None => {
                return Err(
                    Error::invalid("empty file: expected a header row with an id column")
                        .in_file(name),
                )
            }
            Some(Err(e)) => return Err(csv_error(e, name)),
            Some(Ok(h)) => h,
        };
        let columns: Vec<String> = header
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == 0 {
                    c.trim_start_matches('\u{feff}').trim().to_string()
                } else {
                    c.trim().to_string()
                }
            })
            .collect();
        if columns.iter().all(String::is_empty) {
            return Err(Error::invalid("empty header: expected an id column first")
                .in_file(name)
                .at_line(1));
        }
        let first = columns[0].to_ascii_lowercase();
        let id_like = first.contains("id") || first.contains("key");
        if !id_like {
            if let Some(pos) = columns.iter().position(|c| c.eq_ignore_ascii_case("id")) {
                return Err(Error::invalid(format!(
                    "missing id column: the first column must be the id, but `id` is column {}",
                    pos + 1
                ))
                .in_file(name)
                .at_line(1));
            }
            return Err(Error::invalid(format!(
                "missing id column: first column `{}` is not an id (expected `id`, `rec_id` or another name with `id` or `key`)",
                columns[0]
            ))
            .in_file(name)
            .at_line(1));
        }
        let mut rows = Vec::new();
        let mut lines = Vec::new();
        for rec in records {
            let rec = rec.map_err(|e| csv_error(e, name))?;
            let line = rec.position().map_or(0, csv::Position::line);
            if rec.len() == 1 && rec.get(0).is_some_and(|f| f.trim().is_empty()) {
                continue;
            }
            if rec.len() != columns.len() {
                return Err(Error::invalid(format!(
                    "ragged row: expected {} columns, found {}",
                    columns.len(),
                    rec.len()
                ))
                .in_file(name)
                .at_line(line));
            }
            rows.push(rec.iter().map(str::to_string).collect::<Vec<_>>());
            lines.push(line);
        }
        if rows.is_empty() {
            return Err(Error::invalid("no rows after the header")
                .in_file(name)
                .at_line(1));
        }
        // Report duplicates by physical line (quoted newlines make row index and line differ).
        let mut seen: HashMap<&str, u64> = HashMap::new();
        for (row, line) in rows.iter().zip(&lines) {
            let id = row[0].trim();
            if id.is_empty() {
                return Err(Error::invalid("empty id")
                    .in_file(name)
                    .at_line(*line)
                    .on_field(columns[0].clone()));
            }
            if let Some(first) = seen.insert(id, *line) {
                return Err(
                    Error::invalid(format!("duplicate id `{id}` (first on line {first})"))
                        .in_file(name)
                        .at_line(*line)
                        .on_field(columns[0].clone()),
                );
            }
        }
        Table::new(name, columns, rows)
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The id of row `row`.
    pub fn id(&self, row: usize) -> &str {
        self.rows[row][0].trim()
    }

    /// The row index of `id`.
    pub fn row_of(&self, id: &str) -> Option<usize> {
        self.index.get(id.trim()).copied()
    }

    /// The index of column `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// The data column names (every column but the id).
    pub fn fields(&self) -> &[String] {
        &self.columns[1..]
    }
}

fn csv_error(e: csv::Error, name: &str) -> Error {
    let line = e.position().map(csv::Position::line);
    let err = match e.kind() {
        csv::ErrorKind::Utf8 { .. } => Error::invalid("not valid UTF-8"),
        csv::ErrorKind::Io(_) => Error::unavailable(format!("cannot read: {e}")),
        _ => Error::invalid(format!("malformed CSV: {e}")),
    };
    let err = err.in_file(name);
    match line {
        Some(l) => err.at_line(l),
        None => err,
    }
}

/// Known true matches, as row-index pairs into the tables they were read against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gold {
    /// True pairs (left row, right row); for dedupe the smaller row first.
    pub pairs: HashSet<(usize, usize)>,
    /// Rows of the gold file naming an id that neither table has; skipped, not fatal.
    pub unknown: usize,
}

impl Gold {
    /// Reads gold pairs (header, then two id columns) against `left` and `right`; for dedupe
    /// pass `None` as `right` and both ids are looked up in `left`. A third column named
    /// `label`, `match` or `is_match` keeps only the rows marked true (`1`, `true`, `yes`), so
    /// labelled pair files (positives and negatives) read as their positives.
    pub fn from_csv(
        reader: impl Read,
        name: &str,
        left: &Table,
        right: Option<&Table>,
    ) -> Result<Gold> {
        let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
        let header = csv.headers().map_err(|e| csv_error(e, name))?.clone();
        if header.iter().all(|h| h.trim().is_empty()) {
            return Err(Error::invalid(
                "empty file: expected a header row with two id columns (left_id,right_id)",
            )
            .in_file(name));
        }
        if header.len() < 2 {
            return Err(Error::invalid(format!(
                "expected two id columns (left_id,right_id), found {}",
                header.len()
            ))
            .in_file(name)
            .at_line(1));
        }
        let label = header.iter().position(|h| {
            matches!(
                h.trim().to_ascii_lowercase().as_str(),
                "label" | "match" | "is_match" | "is_duplicate"
            )
        });
        let mut gold = Gold::default();
        let mut rows = 0usize;
        let other = right.unwrap_or(left);
        // A file without a header starts with a pair: its first row names ids both tables hold.
        if label.is_none() {
            if let (Some(i), Some(j)) = (left.row_of(&header[0]), other.row_of(&header[1])) {
                rows += 1;
                gold.add(i, j, right.is_none());
            }
        }
        for rec in csv.records() {
            let rec = rec.map_err(|e| csv_error(e, name))?;
            let line = rec.position().map_or(0, csv::Position::line);
            if rec.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            rows += 1;
            if let Some(col) = label {
                let v = rec.get(col).unwrap_or_default().trim().to_ascii_lowercase();
                if !matches!(v.as_str(), "1" | "true" | "yes" | "y" | "t") {
                    continue;
                }
            }
            let (Some(a), Some(b)) = (rec.get(0), rec.get(1)) else {
                return Err(Error::invalid("expected two ids")
                    .in_file(name)
                    .at_line(line));
            };
            match (left.row_of(a), other.row_of(b)) {
                (Some(i), Some(j)) => gold.add(i, j, right.is_none()),
                _ => gold.unknown += 1,
            }
        }
        if rows == 0 {
            return Err(Error::invalid("no pairs after the header")
                .in_file(name)
                .at_line(1));
        }
        if gold.pairs.is_empty() {
            // Scores against no pair at all would all read 0, as if the matcher had failed.
            let (first, second) = match right {
                Some(_) => ("left", "right"),
                None => ("the table's", "the table's"),
            };
            return Err(Error::invalid(format!(
                "no pair names ids the tables hold ({} of {rows} rows name an unknown id): the \
                 first column must hold {first} ids, the second {second} ids",
                gold.unknown
            ))
            .in_file(name));
        }
        if right.is_none() {
            gold.close(left.len());
        }
        Ok(gold)
    }

    fn add(&mut self, i: usize, j: usize, dedupe: bool) {
        if !dedupe {
            self.pairs.insert((i, j));
        } else if i != j {
            self.pairs.insert((i.min(j), i.max(j)));
        }
    }

    /// Dedupe: rows paired with a common row are one entity too (duplicates listed against one
    /// original name every pair among them), as a run's clusters name every pair inside them.
    fn close(&mut self, rows: usize) {
        let groups = super::cluster::components(rows, self.pairs.iter().copied());
        self.pairs.extend(super::cluster::pairs_within(&groups));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Table> {
        Table::from_csv(text.as_bytes(), "t.csv")
    }

    #[test]
    fn loads_and_indexes() {
        let t = load("id,name\n1,a\n2,\"b, c\"\n").unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.row_of("2"), Some(1));
        assert_eq!(t.rows[1][1], "b, c");
        assert_eq!(t.fields(), ["name".to_string()]);
        assert!(load("rec_id,x\nr1,1\n").is_ok());
    }

    #[test]
    fn bad_input_names_file_and_line() {
        let e = load("").unwrap_err();
        assert!(
            e.to_string().contains("t.csv") && e.message().contains("empty"),
            "{e}"
        );
        let e = load("name,id\na,1\n").unwrap_err();
        assert!(e.message().contains("missing id column"), "{e}");
        let e = load("id,name\n1,a\n1,b\n").unwrap_err();
        assert_eq!(e.location().line, Some(3));
        assert!(e.message().contains("duplicate id"), "{e}");
        let e = load("id,name\n1,a\n2,b,c\n").unwrap_err();
        assert_eq!(e.location().line, Some(3));
        assert!(e.message().contains("ragged"), "{e}");
        let e = load("id,name\n").unwrap_err();
        assert!(e.message().contains("no rows"), "{e}");
    }

    #[test]
    fn gold_counts_unknown_ids() {
        let l = load("id,n\n1,a\n2,b\n").unwrap();
        let r = load("id,n\nx,a\ny,b\n").unwrap();
        let g = Gold::from_csv(
            "left_id,right_id\n1,x\n2,y\n3,z\n".as_bytes(),
            "g.csv",
            &l,
            Some(&r),
        )
        .unwrap();
        assert_eq!(g.pairs.len(), 2);
        assert_eq!(g.unknown, 1);
        let labelled = "ltable_id,rtable_id,label\n1,x,1\n2,x,0\n";
        let g = Gold::from_csv(labelled.as_bytes(), "g.csv", &l, Some(&r)).unwrap();
        assert_eq!(g.pairs.len(), 1);
        let d = Gold::from_csv("a,b\n2,1\n".as_bytes(), "g.csv", &l, None).unwrap();
        assert!(d.pairs.contains(&(0, 1)));
    }

    #[test]
    fn empty_or_short_gold_files_name_file_and_line() {
        let l = load("id,n\n1,a\n2,b\n").unwrap();
        let gold = |text: &str| Gold::from_csv(text.as_bytes(), "g.csv", &l, None);
        let e = gold("").unwrap_err();
        assert!(e.message().contains("empty file"), "{e}");
        assert_eq!(e.location().file.as_deref(), Some("g.csv"));
        let e = gold("left_id,right_id\n").unwrap_err();
        assert!(e.message().contains("no pairs"), "{e}");
        assert_eq!(e.location().line, Some(1));
        let e = gold("left_id,right_id\n1,2\n1\n").unwrap_err();
        assert!(e.message().contains("two ids"), "{e}");
        assert_eq!(e.location().line, Some(3));
        let e = gold("left_id\n1\n").unwrap_err();
        assert!(e.message().contains("two id columns"), "{e}");
        // Blank lines are skipped, not counted as pairs.
        let g = gold("a,b\n\n1,2\n\n").unwrap();
        assert_eq!(g.pairs.len(), 1);
        // Pairs that all name unknown ids (columns swapped, another file) are an error, not a
        // report of zeros.
        let r = load("id,n\nx,a\ny,b\n").unwrap();
        let e = Gold::from_csv(
            "left_id,right_id\nx,1\ny,2\n".as_bytes(),
            "g.csv",
            &l,
            Some(&r),
        )
        .unwrap_err();
        assert!(e.message().contains("2 of 2 rows"), "{e}");
        assert_eq!(e.location().file.as_deref(), Some("g.csv"));
    }

    #[test]
    fn a_gold_file_without_a_header_keeps_its_first_pair() {
        let l = load("id,n\n1,a\n2,b\n").unwrap();
        let r = load("id,n\nx,a\ny,b\n").unwrap();
        let g = Gold::from_csv("1,x\n2,y\n".as_bytes(), "g.csv", &l, Some(&r)).unwrap();
        assert_eq!(g.pairs, HashSet::from([(0, 0), (1, 1)]));
    }

    #[test]
    fn dedupe_gold_names_every_pair_of_an_entity() {
        let l = load("id,n\n1,a\n2,b\n3,c\n4,d\n5,e\n").unwrap();
        // 2 and 3 are duplicates of 1, 5 of 4.
        let g = Gold::from_csv("a,b\n1,2\n1,3\n4,5\n".as_bytes(), "g.csv", &l, None).unwrap();
        assert_eq!(g.pairs, HashSet::from([(0, 1), (0, 2), (1, 2), (3, 4)]));
    }
}

//! Reading source files into raw items: CSV, JSON Lines and JSON documents.
//!
//! Readers never panic and never drop an item silently: an unreadable row becomes a
//! [`Rejection`] with its line; a file that is not of the expected format at all is an error.

use crate::mapping::{Format, Rejection};
use crate::{Error, RawItem, Result};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read};

/// The UTF-8 byte-order mark some tools write at the start of a file.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// One item read from a source: a raw item, or a row that could not be read.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceItem {
    /// A readable item.
    Raw(RawItem),
    /// An unreadable row (ragged, not UTF-8, not JSON).
    Rejected(Rejection),
}

/// Reads items one at a time from a file's bytes.
pub struct SourceReader<R: Read> {
    inner: Inner<R>,
    file: String,
}

enum Inner<R: Read> {
    Csv {
        reader: csv::Reader<LineIndex<std::io::Chain<std::io::Cursor<Vec<u8>>, R>>>,
        headers: Vec<String>,
        record: csv::ByteRecord,
    },
    Jsonl {
        reader: BufReader<R>,
        line: u64,
        buf: Vec<u8>,
    },
    Json {
        items: VecDeque<SourceItem>,
    },
}

impl<R: Read> SourceReader<R> {
    /// Opens `reader` as `format`; `file` names it in errors; `required_columns` must be in a CSV
    /// header, `records` points at the array of items in a JSON document.
    pub fn new(
        format: Format,
        reader: R,
        file: &str,
        required_columns: &[String],
        records: Option<&str>,
    ) -> Result<Self> {
        let inner = match format {
            Format::Csv => open_csv(reader, file, required_columns)?,
            Format::Jsonl => open_jsonl(reader, file)?,
            Format::Json => open_json(reader, file, records)?,
        };
        Ok(Self {
            inner,
            file: file.to_string(),
        })
    }

    /// The column names of a CSV file (empty for JSON).
    pub fn headers(&self) -> &[String] {
        match &self.inner {
            Inner::Csv { headers, .. } => headers,
            _ => &[],
        }
    }
}

fn open_csv<R: Read>(mut reader: R, file: &str, required: &[String]) -> Result<Inner<R>> {
    // The header line decides the delimiter: it is read whole (up to 64 KiB, however the
    // reader hands it out), then the file is read from its start.
    let mut head = Vec::new();
    let mut chunk = [0u8; 8 * 1024];
    while !head.contains(&b'\n') && head.len() < 64 * 1024 {
        match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(Error::unavailable(format!("cannot read: {e}")).in_file(file));
            }
        }
    }
    let delimiter = delimiter_of(&head);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .delimiter(delimiter)
        .from_reader(LineIndex::new(std::io::Cursor::new(head).chain(reader)));
    let header = reader
        .byte_headers()
        .map_err(|e| {
            Error::invalid(format!("cannot read the CSV header: {e}"))
                .in_file(file)
                .at_line(1)
        })?
        .clone();
    if header.is_empty() || header.iter().all(<[u8]>::is_empty) {
        return Err(Error::invalid("empty file: no CSV header row")
            .in_file(file)
            .at_line(1));
    }
    let mut headers = Vec::with_capacity(header.len());
    for (i, cell) in header.iter().enumerate() {
        let cell = if i == 0 {
            cell.strip_prefix(UTF8_BOM).unwrap_or(cell)
        } else {
            cell
        };
        let text = std::str::from_utf8(cell).map_err(|_| {
            Error::invalid(
                "the CSV header is not UTF-8 (save the file as UTF-8, e.g. from Latin-1 with \
                 `iconv -f latin1 -t utf-8`)",
            )
            .in_file(file)
            .at_line(1)
        })?;
        if text.chars().any(|c| c.is_control() && c != '\t') {
            return Err(Error::invalid("not a CSV file: the header row is not text")
                .in_file(file)
                .at_line(1));
        }
        let mut text = text.trim().to_string();
        // Spreadsheets save unnamed columns (often trailing empty ones) and some exports repeat
        // a name (Jira's `Labels`, one per label): they get names of their own, and only an id
        // or required column the mapping reads must be unambiguous.
        if text.is_empty() {
            text = format!("column {}", i + 1);
        }
        if headers.contains(&text) {
            if required.contains(&text) {
                return Err(Error::invalid(format!(
                    "duplicate column `{text}` in the CSV header: the mapping reads it, and \
                     cannot tell which one is meant"
                ))
                .in_file(file)
                .at_line(1)
                .on_field(text));
            }
            let base = text.clone();
            let mut n = 2;
            while headers.contains(&text) {
                text = format!("{base} ({n})");
                n += 1;
            }
        }
        headers.push(text);
    }
    let missing: Vec<&String> = required.iter().filter(|c| !headers.contains(c)).collect();
    if !missing.is_empty() {
        let list = |v: &[&String]| {
            v.iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let shown: Vec<&String> = headers.iter().take(12).collect();
        return Err(Error::invalid(format!(
            "the CSV header lacks column(s) {} that the mapping reads (header has: {})",
            list(&missing),
            list(&shown)
        ))
        .in_file(file)
        .at_line(1)
        .on_field(missing[0].clone()));
    }
    Ok(Inner::Csv {
        reader,
        headers,
        record: csv::ByteRecord::new(),
    })
}

/// The delimiter of a CSV file from its header line (`head`: the file's first bytes): a comma,
/// unless the header has none but semicolons (what Excel writes where the decimal mark is a
/// comma) or tabs.
fn delimiter_of(head: &[u8]) -> u8 {
    let line = head.split(|b| *b == b'\n').next().unwrap_or(head);
    let (mut quoted, mut counts) = (false, [0usize; 3]);
    for b in line {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    match counts {
        // A tab never stands in a name by accident; a semicolon may ("name;alias").
        [0, semicolons, tabs] if tabs > 0 && tabs >= semicolons => b'\t',
        [0, semicolons, _] if semicolons > 0 => b';',
        _ => b',',
    }
}

fn open_jsonl<R: Read>(reader: R, file: &str) -> Result<Inner<R>> {
    let mut reader = BufReader::new(reader);
    // The first non-blank line decides whether this is JSON Lines at all.
    let peek = reader
        .fill_buf()
        .map_err(|e| Error::unavailable(format!("cannot read: {e}")).in_file(file))?;
    // A byte-order mark (Windows tools write one) is not part of the first item.
    let bom = if peek.starts_with(UTF8_BOM) {
        UTF8_BOM.len()
    } else {
        0
    };
    reader.consume(bom);
    let peek = reader
        .fill_buf()
        .map_err(|e| Error::unavailable(format!("cannot read: {e}")).in_file(file))?;
    let first = peek.iter().find(|b| !b.is_ascii_whitespace());
    if let Some(b) = first {
        if *b != b'{' && *b != b'[' {
            return Err(Error::invalid(
                "not a JSON Lines file: the first item does not start with `{`",
            )
            .in_file(file)
            .at_line(1));
        }
    }
    Ok(Inner::Jsonl {
        reader,
        line: 0,
        buf: Vec::new(),
    })
}

fn open_json<R: Read>(mut reader: R, file: &str, records: Option<&str>) -> Result<Inner<R>> {
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| Error::unavailable(format!("cannot read: {e}")).in_file(file))?;
    let body = bytes.strip_prefix(UTF8_BOM).unwrap_or(&bytes);
    let text = std::str::from_utf8(body).map_err(|e| {
        let line = 1 + body[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64;
        Error::invalid("not a JSON file: invalid UTF-8")
            .in_file(file)
            .at_line(line)
    })?;
    let not_json = |e: serde_json::Error| {
        Error::invalid(format!("not a JSON file: {e}"))
            .in_file(file)
            .at_line(e.line() as u64)
    };
    let mut current: &RawValue = serde_json::from_str(text).map_err(not_json)?;
    if let Some(pointer) = records.filter(|p| !p.is_empty() && *p != "/") {
        for key in pointer.trim_start_matches('/').split('/') {
            let key = key.replace("~1", "/").replace("~0", "~");
            let object: HashMap<String, &RawValue> =
                serde_json::from_str(current.get()).map_err(|_| {
                    Error::invalid(format!("expected an object holding `{pointer}`")).in_file(file)
                })?;
            current = object.get(&key).copied().ok_or_else(|| {
                Error::invalid(format!("the document has no `{pointer}` array of items"))
                    .in_file(file)
                    .on_field(pointer.to_string())
            })?;
        }
    }
    let start = text.as_ptr() as usize;
    let mut items = VecDeque::new();
    let trimmed = current.get().trim_start();
    let elements: Vec<&RawValue> = if trimmed.starts_with('[') {
        serde_json::from_str(current.get()).map_err(not_json)?
    } else if trimmed.starts_with('{') {
        vec![current]
    } else {
        return Err(Error::invalid("expected a JSON array of items or one object").in_file(file));
    };
    let mut line = 1u64;
    let mut counted = 0usize;
    for element in elements {
        let offset = element.get().as_ptr() as usize - start;
        line += text.as_bytes()[counted..offset]
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64;
        counted = offset;
        match serde_json::from_str::<Value>(element.get()) {
            Ok(payload) => items.push_back(SourceItem::Raw(RawItem { line, payload })),
            Err(e) => items.push_back(SourceItem::Rejected(Rejection::new(
                line,
                None,
                format!("invalid JSON: {e}"),
            ))),
        }
    }
    Ok(Inner::Json { items })
}

impl<R: Read> Iterator for SourceReader<R> {
    type Item = Result<SourceItem>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            Inner::Csv {
                reader,
                headers,
                record,
            } => loop {
                match reader.read_byte_record(record) {
                    Ok(false) => return None,
                    Ok(true) => {
                        // Rows of empty cells (`,,,,`, which spreadsheets leave below the data)
                        // are blank lines.
                        if record
                            .iter()
                            .all(|cell| cell.iter().all(u8::is_ascii_whitespace))
                        {
                            continue;
                        }
                        let line = line_of(reader, record.position());
                        return Some(Ok(csv_item(headers, record, line)));
                    }
                    Err(e) => {
                        let line = line_of(reader, e.position());
                        return match e.kind() {
                            csv::ErrorKind::Io(_) => {
                                Some(Err(Error::unavailable(format!("cannot read: {e}"))
                                    .in_file(self.file.clone())))
                            }
                            _ => Some(Ok(SourceItem::Rejected(Rejection::new(
                                line,
                                None,
                                format!("unreadable CSV row: {e}"),
                            )))),
                        };
                    }
                }
            },
            Inner::Jsonl { reader, line, buf } => loop {
                buf.clear();
                match reader.read_until(b'\n', buf) {
                    Ok(0) => return None,
                    Ok(_) => {}
                    Err(e) => {
                        return Some(Err(Error::unavailable(format!("cannot read: {e}"))
                            .in_file(self.file.clone())))
                    }
                }
                *line += 1;
                if buf.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let item = match std::str::from_utf8(buf) {
                    Err(_) => SourceItem::Rejected(Rejection::new(*line, None, "invalid UTF-8")),
                    Ok(text) => match serde_json::from_str::<Value>(text) {
                        Ok(payload) => SourceItem::Raw(RawItem {
                            line: *line,
                            payload,
                        }),
                        Err(e) => SourceItem::Rejected(Rejection::new(
                            *line,
                            None,
                            line_json_error(&e, text),
                        )),
                    },
                };
                return Some(Ok(item));
            },
            Inner::Json { items } => items.pop_front().map(Ok),
        }
    }
}

/// A JSON Lines item's parse error by column: serde_json counts lines inside the item's text,
/// so an item cut short at its newline read as "line 2 column 0" of a file line that has one.
fn line_json_error(e: &serde_json::Error, text: &str) -> String {
    let full = e.to_string();
    let what = full
        .rsplit_once(" at line ")
        .map_or(full.as_str(), |(what, _)| what);
    if e.line() > 1 || e.is_eof() {
        format!(
            "invalid JSON: {what} (the item ends at column {})",
            text.trim_end_matches(['\r', '\n']).chars().count()
        )
    } else {
        format!("invalid JSON: {what} at column {}", e.column())
    }
}

/// The line a record starts on, from its byte offset: the csv crate's own line count skips
/// blank lines and counts a CRLF row end once too few (BurntSushi/rust-csv#208, #395).
fn line_of<R: Read>(reader: &mut csv::Reader<LineIndex<R>>, at: Option<&csv::Position>) -> u64 {
    at.map_or(0, |p| reader.get_mut().line_at(p.byte()))
}

/// A reader that notes where its newlines are as the bytes go by, so that the csv crate's byte
/// offset of a row can be turned into the row's line. Offsets are asked for in increasing order:
/// newlines before the last one asked for are counted and forgotten, so it holds only those of the
/// read-ahead buffer.
struct LineIndex<R> {
    inner: R,
    /// Bytes read so far.
    read: u64,
    /// Offset of the last byte read that is neither `\r` nor `\n` (-1 before the first).
    last_content: i64,
    /// Each newline read and not yet passed: its offset's `last_content`.
    ahead: VecDeque<i64>,
    /// Newlines passed.
    passed: u64,
}

impl<R> LineIndex<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            read: 0,
            last_content: -1,
            ahead: VecDeque::new(),
            passed: 0,
        }
    }

    /// The 1-based line of the row the csv crate says starts at `offset`. That offset is where
    /// the previous row ended: blank lines and the `\n` of a CRLF can lie between it and the
    /// row's first byte. So every newline with no content between `offset` and itself comes
    /// before the row.
    fn line_at(&mut self, offset: u64) -> u64 {
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        while self.ahead.front().is_some_and(|&content| content < offset) {
            self.ahead.pop_front();
            self.passed += 1;
        }
        self.passed + 1
    }
}

impl<R: Read> Read for LineIndex<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let base = i64::try_from(self.read).unwrap_or(i64::MAX);
        let bytes = &buf[..n];
        // Each stretch between newlines is scanned once, from its end back to its first content
        // byte at most: linear in the bytes read, also on a file of blank lines.
        let mut from = 0;
        for at in memchr::memchr_iter(b'\n', bytes).chain(std::iter::once(n)) {
            if let Some(i) = bytes[from..at]
                .iter()
                .rposition(|b| *b != b'\r' && *b != b'\n')
            {
                self.last_content = base + (from + i) as i64;
            }
            if at < n {
                self.ahead.push_back(self.last_content);
            }
            from = (at + 1).min(n);
        }
        self.read += n as u64;
        Ok(n)
    }
}

fn csv_item(headers: &[String], record: &csv::ByteRecord, line: u64) -> SourceItem {
    if record.len() != headers.len() {
        let mut reason = format!("expected {} columns, found {}", headers.len(), record.len());
        // A quote that is never closed makes the csv crate read every line up to the next quote
        // (often the end of the file) as one field: name the lines it swallowed, so that their
        // rows are not lost without a word.
        // The file's last newline is in the field when the quote runs to the end.
        let bytes = record.as_slice();
        let end = bytes
            .iter()
            .rposition(|b| *b != b'\r' && *b != b'\n')
            .map_or(0, |i| i + 1);
        let spanned = memchr::memchr_iter(b'\n', &bytes[..end]).count() as u64;
        if spanned > 0 && record.len() < headers.len() {
            reason.push_str(&format!(
                "; lines {line}-{} were read as this one row, probably because a quoted field \
                 opened on line {line} is left open (close the quote, or write a quote inside a \
                 field as \"\"), then ingest the file again",
                line + spanned
            ));
        }
        let mut r = Rejection::new(line, None, reason);
        r.raw = Some(String::from_utf8_lossy(record.as_slice()).into_owned());
        return SourceItem::Rejected(r);
    }
    let mut map = Map::with_capacity(headers.len());
    for (name, cell) in headers.iter().zip(record.iter()) {
        match std::str::from_utf8(cell) {
            Ok(text) => {
                map.insert(name.clone(), Value::String(text.to_string()));
            }
            Err(_) => {
                let mut r = Rejection::new(line, Some(name), "invalid UTF-8");
                r.raw = Some(String::from_utf8_lossy(record.as_slice()).into_owned());
                return SourceItem::Rejected(r);
            }
        }
    }
    SourceItem::Raw(RawItem {
        line,
        payload: Value::Object(map),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(
        format: Format,
        data: &[u8],
        required: &[&str],
        records: Option<&str>,
    ) -> Result<Vec<SourceItem>> {
        let required: Vec<String> = required.iter().map(|s| s.to_string()).collect();
        SourceReader::new(format, data, "f", &required, records)?.collect()
    }

    #[test]
    fn an_unclosed_quote_names_the_lines_it_swallowed() {
        let data = b"id,name,city\n1,Acme,Oslo\n2,\"Glob,Rome\n3,Initech,Paris\n4,Umbrella,Bern\n";
        let items = read(Format::Csv, data, &[], None).unwrap();
        assert_eq!(items.len(), 2, "{items:?}");
        assert!(matches!(&items[0], SourceItem::Raw(r) if r.line == 2));
        let SourceItem::Rejected(r) = &items[1] else {
            panic!("{items:?}")
        };
        assert_eq!(r.line, 3);
        assert!(
            r.reason
                .starts_with("expected 3 columns, found 2; lines 3-5 were read as this one row"),
            "{}",
            r.reason
        );
        // A ragged row with a well-formed multi-line field says nothing of quotes.
        let data = b"id,name\n1,\"multi\nline\",extra\n";
        let items = read(Format::Csv, data, &[], None).unwrap();
        let SourceItem::Rejected(r) = &items[0] else {
            panic!("{items:?}")
        };
        assert_eq!(r.reason, "expected 2 columns, found 3");
    }

    #[test]
    fn csv_rows_keep_lines_and_reject_bad_ones() {
        let data = b"\xEF\xBB\xBFid,name\n1,Acme\n2\n3,\"multi\nline\"\n4,\xff\xfe\n5,Globex\n";
        let items = read(Format::Csv, data, &["id"], None).unwrap();
        assert_eq!(items.len(), 5);
        let SourceItem::Raw(first) = &items[0] else {
            panic!("{:?}", items[0])
        };
        assert_eq!(first.line, 2);
        assert_eq!(first.payload["id"], "1");
        let SourceItem::Rejected(ragged) = &items[1] else {
            panic!()
        };
        assert_eq!(
            (ragged.line, ragged.reason.as_str()),
            (3, "expected 2 columns, found 1")
        );
        let SourceItem::Raw(multi) = &items[2] else {
            panic!()
        };
        assert_eq!(multi.line, 4);
        let SourceItem::Rejected(utf8) = &items[3] else {
            panic!()
        };
        assert_eq!((utf8.line, utf8.field.as_deref()), (6, Some("name")));
        let SourceItem::Raw(last) = &items[4] else {
            panic!()
        };
        assert_eq!(last.line, 7);
    }

    #[test]
    fn unnamed_and_repeated_columns_get_names_and_empty_rows_are_blank_lines() {
        let data = b"id,Labels,name,Labels,,\n1,a,Acme,b,,\n,,,,,\n2,c,Globex,d,x,\n";
        let mut reader =
            SourceReader::new(Format::Csv, &data[..], "f", &["id".into()], None).unwrap();
        assert_eq!(
            reader.headers(),
            ["id", "Labels", "name", "Labels (2)", "column 5", "column 6"]
        );
        let first = reader.next().unwrap().unwrap();
        let SourceItem::Raw(first) = first else {
            panic!("{first:?}")
        };
        assert_eq!(
            (
                first.payload["Labels"].as_str(),
                first.payload["Labels (2)"].as_str()
            ),
            (Some("a"), Some("b"))
        );
        let SourceItem::Raw(second) = reader.next().unwrap().unwrap() else {
            panic!()
        };
        assert_eq!(
            (second.line, second.payload["column 5"].as_str()),
            (4, Some("x"))
        );
        assert!(reader.next().is_none());
        // A repeated column the mapping must read is ambiguous.
        let err = read(Format::Csv, b"id,name,id\n1,a,2\n", &["id"], None).unwrap_err();
        assert!(err.message().contains("duplicate column `id`"), "{err}");
        assert_eq!(err.location().field.as_deref(), Some("id"));
    }

    #[test]
    fn semicolon_and_tab_separated_files_are_read_by_their_header() {
        for (data, delimiter) in [
            (&b"id;name;amount\n1;Acme;1,5\n2;\"Glob;ex\";2\n"[..], ';'),
            (
                &b"id\tname\tamount\n1\tAcme\t1,5\n2\tGlob;ex\t2\n"[..],
                '\t',
            ),
            (&b"id,name;alias,amount\n1,Acme;A,1\n2,Glob;ex,2\n"[..], ','),
        ] {
            let items = read(Format::Csv, data, &["id"], None).unwrap();
            let names: Vec<_> = items
                .iter()
                .map(|item| match item {
                    SourceItem::Raw(raw) => raw.payload["id"].as_str().unwrap().to_string(),
                    SourceItem::Rejected(r) => panic!("{delimiter:?}: {r:?}"),
                })
                .collect();
            assert_eq!(names, ["1", "2"], "{delimiter:?}");
        }
        assert_eq!(delimiter_of(b"\"a,b\";c\n"), b';');
        assert_eq!(delimiter_of(b"id\tname;alias\n"), b'\t');
        // A reader that hands the header out a byte at a time.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let Some((first, rest)) = self.0.split_first() else {
                    return Ok(0);
                };
                buf[0] = *first;
                self.0 = rest;
                Ok(1)
            }
        }
        let data = b"id;name\n1;Acme\n";
        let items: Vec<_> =
            SourceReader::new(Format::Csv, Trickle(data), "f", &["name".into()], None)
                .unwrap()
                .collect::<Result<_>>()
                .unwrap();
        assert!(
            matches!(&items[..], [SourceItem::Raw(raw)] if raw.payload["name"] == "Acme" && raw.line == 2),
            "{items:?}"
        );
    }

    /// (line, rejected) of every item.
    fn lines(data: &[u8]) -> Vec<(u64, bool)> {
        read(Format::Csv, data, &["id"], None)
            .unwrap()
            .iter()
            .map(|item| match item {
                SourceItem::Raw(raw) => (raw.line, false),
                SourceItem::Rejected(r) => (r.line, true),
            })
            .collect()
    }

    #[test]
    fn csv_lines_count_crlf_row_ends_and_blank_lines() {
        let lf = b"id,name\n1,Acme\n2\n3,\"multi\nline\"\n4,\xff\xfe\n5,Globex\n";
        let expected = vec![(2, false), (3, true), (4, false), (6, true), (7, false)];
        assert_eq!(lines(lf), expected);
        let crlf: Vec<u8> = lf
            .iter()
            .flat_map(|&b| {
                if b == b'\n' {
                    vec![b'\r', b'\n']
                } else {
                    vec![b]
                }
            })
            .collect();
        assert_eq!(lines(&crlf), expected, "CRLF");
        // Blank lines are skipped but still count.
        assert_eq!(
            lines(b"id,name\n1,Acme\n\n\n\n2,Globex\r\n\r\n3\n"),
            vec![(2, false), (6, false), (8, true)]
        );
        // A file far larger than the reader's buffer keeps counting.
        let mut big = b"id,name\r\n".to_vec();
        for i in 0..20_000 {
            big.extend_from_slice(format!("{i},row {i}\r\n").as_bytes());
            if i % 1000 == 0 {
                big.extend_from_slice(b"\r\n");
            }
        }
        big.extend_from_slice(b"ragged\r\n");
        let got = lines(&big);
        assert_eq!(got.len(), 20_001);
        assert_eq!(got[20_000], (2 + 20_000 + 20, true));
    }

    #[test]
    fn csv_without_required_columns_or_header_is_a_file_error() {
        let err = read(Format::Csv, b"name\nAcme\n", &["id"], None).unwrap_err();
        assert!(err.message().contains("`id`"), "{err}");
        assert_eq!(err.location().line, Some(1));
        assert!(read(Format::Csv, b"", &["id"], None).is_err());
        assert!(read(Format::Csv, b"\x89PNG\r\n\x1a\n\x00\x00", &["id"], None).is_err());
        assert!(read(Format::Csv, b"id,id\n1,2\n", &["id"], None).is_err());
        // A repeated column the mapping does not need is renamed, not an error.
        assert!(read(Format::Csv, b"id,id\n1,2\n", &[], None).is_ok());
    }

    #[test]
    fn jsonl_rejects_bad_lines_and_refuses_non_json() {
        let items = read(
            Format::Jsonl,
            b"{\"id\":1}\n\n{oops}\n{\"id\":2}\n",
            &[],
            None,
        )
        .unwrap();
        assert_eq!(items.len(), 3);
        assert!(matches!(&items[1], SourceItem::Rejected(r) if r.line == 3));
        assert!(matches!(&items[2], SourceItem::Raw(r) if r.line == 4));
        assert!(read(Format::Jsonl, b"hello world\n", &[], None).is_err());
        // The reason speaks of the file's line, never of lines inside the item.
        let items = read(
            Format::Jsonl,
            b"{\"id\":1}\n{\"id\": 2,\n{\"id\":x}\n",
            &[],
            None,
        )
        .unwrap();
        let reasons: Vec<String> = items
            .iter()
            .filter_map(|i| match i {
                SourceItem::Rejected(r) => Some(format!("{}: {}", r.line, r.reason)),
                SourceItem::Raw(_) => None,
            })
            .collect();
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(
            reasons[0].starts_with(
                "2: invalid JSON: EOF while parsing a value (the item ends at column 9)"
            ),
            "{reasons:?}"
        );
        assert!(
            reasons[1].starts_with("3: invalid JSON: expected value at column 7"),
            "{reasons:?}"
        );
        assert!(reasons.iter().all(|r| !r.contains("line")), "{reasons:?}");
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_data() {
        let jsonl = read(Format::Jsonl, b"\xEF\xBB\xBF{\"id\":1}\n", &[], None).unwrap();
        assert!(matches!(&jsonl[..], [SourceItem::Raw(r)] if r.line == 1 && r.payload["id"] == 1));
        let json = read(Format::Json, b"\xEF\xBB\xBF[{\"id\":1}]", &[], None).unwrap();
        assert!(matches!(&json[..], [SourceItem::Raw(r)] if r.payload["id"] == 1));
        // A Latin-1 header says what it is.
        let err = read(Format::Csv, b"id,n\xe4me\n1,x\n", &[], None).unwrap_err();
        assert!(err.message().contains("UTF-8"), "{err}");
    }

    #[test]
    fn json_arrays_by_pointer_with_line_numbers() {
        let doc = b"{\n  \"total\": 2,\n  \"issues\": [\n    {\"key\": \"A-1\"},\n    {\"key\": \"A-2\"}\n  ]\n}";
        let items = read(Format::Json, doc, &[], Some("/issues")).unwrap();
        let lines: Vec<u64> = items
            .iter()
            .map(|i| match i {
                SourceItem::Raw(r) => r.line,
                SourceItem::Rejected(r) => r.line,
            })
            .collect();
        assert_eq!(lines, vec![4, 5]);
        assert!(read(Format::Json, doc, &[], Some("/missing")).is_err());
        assert!(read(Format::Json, b"not json", &[], None).is_err());
        let top = read(Format::Json, b"[{\"a\":1},\n{\"a\":2}]", &[], None).unwrap();
        assert_eq!(top.len(), 2);
    }
}

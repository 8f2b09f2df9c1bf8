//! Declarative mappings from raw source items to records.
//!
//! A [`Mapping`] is data (TOML or JSON): where each record field comes from (a CSV column, a JSON
//! pointer, or a pointer with a `[key=value]` selector for arrays of objects), what type it is
//! coerced to, which fields are required, defaults, and templates for title, body and URL.

mod coerce;
mod path;
/// Built-in mappings for common exports.
pub mod presets;

pub use coerce::coerce;
pub use path::Path;

use crate::link::{LinkKind, LinkRef};
use crate::task::{Signals, TaskSeed, TaskStatus};
use crate::zone::Zone;
use crate::{
    EntityKind, Error, Fields, RawItem, Record, RecordId, Result, Scope, SourceRef, Value,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The shape of a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// One JSON document: an array of objects, or an object holding one at `records`.
    Json,
}

impl Format {
    /// Guesses the format from a file name's extension.
    pub fn from_extension(path: &str) -> Option<Format> {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".csv") {
            Some(Self::Csv)
        } else if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") {
            Some(Self::Jsonl)
        } else if lower.ends_with(".json") {
            Some(Self::Json)
        } else {
            None
        }
    }
}

/// The type a raw value is coerced to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Text as is (objects: their `text` leaves joined, as in Atlassian documents).
    String,
    /// A whole number.
    Integer,
    /// An exact decimal.
    Decimal,
    /// Money: amount with currency (`$1,200.50`, `1200.5 EUR`, or the rule's `currency`).
    Money,
    /// A date (`format`, or ISO 8601; a datetime gives its date).
    Date,
    /// An instant: RFC 3339 / ISO 8601 with offset, epoch milliseconds, or naive with `timezone`.
    Datetime,
    /// An email address (`Name <a@b.c>` gives `a@b.c`).
    Email,
    /// An http(s) URL.
    Url,
    /// A domain, from a URL, an email or a bare name.
    Domain,
    /// One of `values` (keys matched case-insensitively), or any text when `values` is empty.
    Enum,
    /// true / false / yes / no / 1 / 0.
    Bool,
    /// A JSON array, or text split on `separator`; items coerced as `item`.
    List,
}

/// Where one record field comes from and how it is coerced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    /// The raw path: a CSV column name, or a JSON pointer (`/fields/priority/name`).
    pub from: String,
    /// The type to coerce to.
    #[serde(rename = "type", default = "default_type")]
    pub ty: FieldType,
    /// A missing or empty value rejects the item.
    #[serde(default)]
    pub required: bool,
    /// Raw text used when the value is missing or empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Money: the currency when the value names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Date / datetime: a chrono format string tried before the standard ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Datetime: the zone of naive values, an offset (`+02:00`, `Z`) or an IANA name
    /// (`Europe/Berlin`, daylight saving included); UTC when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Enum: raw value → canonical value; values not listed are rejected.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, String>,
    /// List: separator for text values (default `,`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub separator: Option<String>,
    /// List: type of each item (default string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<FieldType>,
    /// List: path inside each item object (GitHub labels: `/name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_path: Option<String>,
}

fn default_type() -> FieldType {
    FieldType::String
}

impl FieldRule {
    /// A rule reading `from` as `ty`.
    pub fn new(from: impl Into<String>, ty: FieldType) -> Self {
        Self {
            from: from.into(),
            ty,
            required: false,
            default: None,
            currency: None,
            format: None,
            timezone: None,
            values: BTreeMap::new(),
            separator: None,
            item: None,
            item_path: None,
        }
    }
}

/// How a task's status is read from the source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusRule {
    /// The raw path holding the source status (or a list of labels).
    pub from: String,
    /// Source value (case-insensitive) → status; for a list the first item that maps wins.
    #[serde(default)]
    pub map: BTreeMap<String, TaskStatus>,
    /// Status when nothing maps.
    #[serde(default = "default_status")]
    pub default: TaskStatus,
}

fn default_status() -> TaskStatus {
    TaskStatus::Todo
}

/// What makes records of this mapping tasks, by field name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskRule {
    /// The status rule; without one every task is todo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusRule>,
    /// Field holding the due date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<String>,
    /// Fields holding priority labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Field holding the deal value (money or number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Field holding the win probability, read on `probability_scale`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<String>,
    /// How the probability field counts: `percent` (0–100, the default) or `fraction` (0–1).
    #[serde(default, skip_serializing_if = "is_default")]
    pub probability_scale: ProbabilityScale,
    /// Field holding the sender address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
}

/// The scale a source writes win probabilities on. It is declared, never guessed: a 1 is 1 % in
/// Odoo and 100 % in a 0–1 export.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbabilityScale {
    /// 0–100 (Odoo, Salesforce, ACE stages).
    #[default]
    Percent,
    /// 0–1.
    Fraction,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// A link the mapping reads from each item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkRule {
    /// The kind of link.
    pub kind: LinkKind,
    /// Raw path of the target's external id (a list makes one link per item).
    pub from: String,
    /// The target's source kind (default: this mapping's source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Path inside each list item holding the id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_path: Option<String>,
    /// Write the link from the target to this item instead.
    #[serde(default)]
    pub reverse: bool,
}

/// A declarative mapping from raw items to records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// The mapping's name (a preset's name, or the user's).
    pub name: String,
    /// The source kind records get (`odoo`, `jira`…).
    pub source: String,
    /// The entity kind of the records.
    pub entity: EntityKind,
    /// The file format, when not given by the file's extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    /// JSON: pointer to the array of items inside the document (`/issues`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<String>,
    /// Raw path of the item's external id.
    pub id: String,
    /// Title template: `{field}` names a mapped field, `{/raw/path}` a raw value.
    pub title: String,
    /// Body template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// URL template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Field holding the creation instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Field holding the last-change instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Record fields by name.
    #[serde(default)]
    pub fields: BTreeMap<String, FieldRule>,
    /// Makes the records tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskRule>,
    /// Links to other records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<LinkRule>,
}

/// An item the mapping could not turn into a record; kept and reported, never dropped silently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rejection {
    /// One-based line where the item starts.
    pub line: u64,
    /// The field at fault, if one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What was wrong.
    pub reason: String,
    /// The raw item as far as it could be read.
    #[serde(skip)]
    pub raw: Option<String>,
}

impl Rejection {
    /// A rejection at `line`.
    pub fn new(line: u64, field: Option<&str>, reason: impl Into<String>) -> Self {
        Self {
            line,
            field: field.map(str::to_string),
            reason: reason.into(),
            raw: None,
        }
    }
}

/// A raw item turned into a record, ready for the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalised {
    /// The record.
    pub record: Record,
    /// Its task part, when the mapping makes tasks.
    pub task: Option<TaskSeed>,
    /// Links found in the item.
    pub links: Vec<LinkRef>,
    /// The raw payload, serialised once for RAW.
    pub raw_json: String,
    /// The typed fields, serialised once for CORE.
    pub fields_json: String,
    /// Line of the item in its file.
    pub line: u64,
}

/// A mapping checked and compiled for fast application.
#[derive(Debug, Clone)]
pub struct CompiledMapping {
    mapping: Mapping,
    id: Path,
    fields: Vec<(String, Path, FieldRule)>,
    title: Template,
    body: Option<Template>,
    url: Option<Template>,
    status: Option<(Path, StatusRule)>,
    links: Vec<(Path, Option<Path>, LinkRule)>,
    /// The user's zone: a due instant falls on that day's date there.
    day_zone: Zone,
}

impl Mapping {
    /// Parses a mapping from TOML.
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| Error::bad_toml("mapping", text, &e))
    }

    /// Parses a mapping from JSON.
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text)
            .map_err(|e| Error::invalid(format!("mapping: {e}")).at_line(e.line() as u64))
    }

    /// Serialises the mapping as TOML.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self).map_err(|e| Error::internal(format!("mapping to TOML: {e}")))
    }

    /// Checks the mapping and compiles its paths and templates.
    pub fn compile(&self) -> Result<CompiledMapping> {
        crate::ensure!(
            !self.name.trim().is_empty(),
            "mapping: `name` must not be empty"
        );
        crate::ensure!(
            !self.source.trim().is_empty(),
            "mapping `{}`: `source` must not be empty",
            self.name
        );
        let at = |what: &str| format!("mapping `{}`, {what}", self.name);
        let id = Path::parse(&self.id).map_err(|e| Error::invalid(format!("{}: {e}", at("id"))))?;
        let mut fields = Vec::with_capacity(self.fields.len());
        for (name, rule) in &self.fields {
            let path = Path::parse(&rule.from)
                .map_err(|e| Error::invalid(format!("{}: {e}", at(&format!("field `{name}`")))))?;
            if let Some(item_path) = &rule.item_path {
                Path::parse(item_path).map_err(|e| {
                    Error::invalid(format!("{}: {e}", at(&format!("field `{name}` item_path"))))
                })?;
            }
            if let Some(code) = &rule.currency {
                // Amounts name their currency by a three-letter ISO 4217 code; the default
                // must be one too, or records would carry a currency nothing else spells.
                let code = code.trim();
                if code.len() != 3 || !code.chars().all(|c| c.is_ascii_alphabetic()) {
                    return Err(Error::invalid(format!(
                        "{}: currency `{code}` is not a three-letter code like USD or EUR",
                        at(&format!("field `{name}`"))
                    ))
                    .on_field(format!("fields.{name}.currency")));
                }
            }
            if let Some(tz) = &rule.timezone {
                Zone::parse(tz).ok_or_else(|| {
                    Error::invalid(format!(
                        "{}: timezone `{tz}` is neither an offset like +02:00 or Z nor an IANA \
                         time zone like Europe/Berlin",
                        at(&format!("field `{name}`"))
                    ))
                    .on_field(format!("fields.{name}.timezone"))
                })?;
            }
            fields.push((name.clone(), path, rule.clone()));
        }
        let names: Vec<&str> = self.fields.keys().map(String::as_str).collect();
        let title = Template::parse(&self.title, &names)
            .map_err(|e| Error::invalid(format!("{}: {e}", at("title"))))?;
        let body = self
            .body
            .as_deref()
            .map(|t| Template::parse(t, &names))
            .transpose()
            .map_err(|e| Error::invalid(format!("{}: {e}", at("body"))))?;
        let url = self
            .url
            .as_deref()
            .map(|t| Template::parse(t, &names))
            .transpose()
            .map_err(|e| Error::invalid(format!("{}: {e}", at("url"))))?;
        let field_named = |what: &str, name: &Option<String>| -> Result<()> {
            match name {
                Some(n) if !self.fields.contains_key(n) => Err(Error::invalid(format!(
                    "{}: `{n}` is not a mapped field (fields: {})",
                    at(what),
                    names.join(", ")
                ))),
                _ => Ok(()),
            }
        };
        // A role read from a field of another type would be empty on every record, silently:
        // the mapping is refused instead.
        let typed = |what: &str, name: &Option<String>, kinds: &[FieldType]| -> Result<()> {
            field_named(what, name)?;
            let Some((name, rule)) = name.as_ref().and_then(|n| self.fields.get_key_value(n))
            else {
                return Ok(());
            };
            let numeric_enum = rule.ty == FieldType::Enum
                && !rule.values.is_empty()
                && rule
                    .values
                    .values()
                    .all(|v| v.trim().parse::<f64>().is_ok());
            let numeric = kinds.contains(&FieldType::Decimal);
            if kinds.contains(&rule.ty) || (numeric && numeric_enum) {
                return Ok(());
            }
            let wanted: Vec<String> = kinds
                .iter()
                .map(|k| serde_json::to_value(k).map_or_else(|_| String::new(), |v| v.to_string()))
                .chain(numeric.then(|| "an enum of numbers".to_string()))
                .collect();
            Err(Error::invalid(format!(
                "{}: field `{name}` is {}, and this role needs a field of type {}",
                at(what),
                serde_json::to_value(rule.ty).map_or_else(|_| String::new(), |v| v.to_string()),
                wanted.join(" or ")
            ))
            .on_field(what.to_string()))
        };
        use FieldType::{Date, Datetime, Decimal, Email, Integer, Money};
        typed("created_at", &self.created_at, &[Datetime, Date])?;
        typed("updated_at", &self.updated_at, &[Datetime, Date])?;
        let mut status = None;
        if let Some(task) = &self.task {
            typed("task.due", &task.due, &[Date, Datetime])?;
            typed("task.value", &task.value, &[Money, Decimal, Integer])?;
            typed("task.probability", &task.probability, &[Decimal, Integer])?;
            typed("task.sender", &task.sender, &[Email, FieldType::String])?;
            for label in &task.labels {
                field_named("task.labels", &Some(label.clone()))?;
            }
            if let Some(rule) = &task.status {
                let path = Path::parse(&rule.from)
                    .map_err(|e| Error::invalid(format!("{}: {e}", at("task.status"))))?;
                status = Some((path, rule.clone()));
            }
        }
        let mut links = Vec::new();
        for rule in &self.links {
            let path = Path::parse(&rule.from)
                .map_err(|e| Error::invalid(format!("{}: {e}", at("links"))))?;
            let item = rule
                .item_path
                .as_deref()
                .map(Path::parse)
                .transpose()
                .map_err(|e| Error::invalid(format!("{}: {e}", at("links.item_path"))))?;
            links.push((path, item, rule.clone()));
        }
        Ok(CompiledMapping {
            mapping: self.clone(),
            id,
            fields,
            title,
            body,
            url,
            status,
            links,
            day_zone: Zone::UTC,
        })
    }
}

impl CompiledMapping {
    /// Reads due instants (fields typed `datetime`) as their dates in `zone`, the one focus
    /// counts days in ([`crate::priority::PriorityConfig::zone`]); UTC dates without it.
    /// Fields typed `date` keep the day as written.
    pub fn with_day_zone(mut self, zone: Zone) -> Self {
        self.day_zone = zone;
        self
    }

    /// The mapping this was compiled from.
    pub fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    /// Every top-level key (CSV column) the id and the fields read, sorted.
    pub fn read_columns(&self) -> Vec<String> {
        let mut columns = vec![self.id.top_key()];
        columns.extend(self.fields.iter().map(|(_, path, _)| path.top_key()));
        columns.sort();
        columns.dedup();
        columns
    }

    /// The CSV columns (top-level keys) of the id and the required fields.
    pub fn required_columns(&self) -> Vec<String> {
        let mut columns = vec![self.id.top_key()];
        for (_, path, rule) in &self.fields {
            if rule.required {
                columns.push(path.top_key());
            }
        }
        columns.dedup();
        columns
    }

    /// Turns one raw item into a record, or says exactly why not.
    pub fn apply(
        &self,
        scope: &Scope,
        raw: &RawItem,
        now: DateTime<Utc>,
    ) -> std::result::Result<Normalised, Rejection> {
        let line = raw.line;
        let payload = &raw.payload;
        let reject = |field: Option<&str>, reason: String| {
            let mut r = Rejection::new(line, field, reason);
            r.raw = Some(payload.to_string());
            r
        };
        if !payload.is_object() {
            return Err(reject(None, "item is not a JSON object".into()));
        }
        let external_id = match self.id.get(payload).and_then(scalar_text) {
            Some(id) if !id.trim().is_empty() => id.trim().to_string(),
            _ => {
                let mut reason = "missing external id".to_string();
                // A whole API answer read as one item ({"messages": [...]}): name the pointer
                // that would read its items.
                if self.mapping.records.is_none() {
                    let arrays: Vec<&String> = payload
                        .as_object()
                        .into_iter()
                        .flatten()
                        .filter(|(_, v)| {
                            v.as_array()
                                .is_some_and(|items| items.first().is_some_and(|i| i.is_object()))
                        })
                        .map(|(k, _)| k)
                        .collect();
                    if let [key] = arrays[..] {
                        reason.push_str(&format!(
                            "; the item holds a list of objects under `{key}`: if those are the \
                             items, set records = \"/{}\" in the mapping",
                            key.replace('~', "~0").replace('/', "~1")
                        ));
                    }
                }
                return Err(reject(Some(&self.mapping.id), reason));
            }
        };
        let mut fields = Fields::new();
        for (name, path, rule) in &self.fields {
            let raw_value = path.get(payload).filter(|v| !is_empty(v));
            let value = match (raw_value, &rule.default) {
                (Some(v), _) => coerce(v, rule),
                (None, Some(default)) => coerce(&serde_json::Value::String(default.clone()), rule),
                (None, None) if rule.required => {
                    return Err(reject(
                        Some(&rule.from),
                        format!("missing required field `{name}`"),
                    ))
                }
                (None, None) => continue,
            };
            match value {
                Ok(v) => {
                    fields.insert(name.clone(), v);
                }
                Err(reason) => return Err(reject(Some(&rule.from), reason)),
            }
        }
        let title = self.title.render(&fields, payload);
        if title.trim().is_empty() {
            return Err(reject(Some("title"), "title is empty".into()));
        }
        let body = self
            .body
            .as_ref()
            .map(|t| t.render(&fields, payload))
            .unwrap_or_default();
        let url = self
            .url
            .as_ref()
            .map(|t| t.render(&fields, payload))
            .filter(|u| !u.trim().is_empty());
        let instant = |name: &Option<String>| {
            name.as_ref().and_then(|n| match fields.get(n) {
                Some(Value::DateTime(t)) => Some(*t),
                Some(Value::Date(d)) => d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()),
                _ => None,
            })
        };
        let created_at = instant(&self.mapping.created_at);
        let updated_at = instant(&self.mapping.updated_at)
            .or(created_at)
            .unwrap_or(now);

        if let Some(rule) = &self.mapping.task {
            if let Some((name, p)) = rule
                .probability
                .as_ref()
                .and_then(|n| Some((n, fields.get(n)?.as_f64()?)))
            {
                let (top, scale) = match rule.probability_scale {
                    ProbabilityScale::Percent => (100.0, "percent"),
                    ProbabilityScale::Fraction => (1.0, "fraction"),
                };
                if !(0.0..=top).contains(&p) {
                    let from = self.mapping.fields.get(name).map(|f| f.from.as_str());
                    return Err(reject(
                        from,
                        format!(
                            "probability `{p}` is outside 0-{top} (the mapping's \
                             probability_scale is {scale})"
                        ),
                    ));
                }
            }
        }
        let task = self
            .mapping
            .task
            .as_ref()
            .map(|rule| self.task_seed(rule, &fields, payload));
        let mut links = Vec::new();
        for (path, item_path, rule) in &self.links {
            let target_source = rule
                .source
                .clone()
                .unwrap_or_else(|| self.mapping.source.clone());
            let mut push = |v: &serde_json::Value| {
                let v = match item_path {
                    Some(p) => p.get(v),
                    None => Some(v),
                };
                if let Some(id) = v.and_then(scalar_text).filter(|s| !s.trim().is_empty()) {
                    links.push(LinkRef {
                        kind: rule.kind,
                        to_source: target_source.clone(),
                        to_external_id: id.trim().to_string(),
                        evidence: if rule.reverse {
                            format!("reverse:{}", rule.from)
                        } else {
                            rule.from.clone()
                        },
                    });
                }
            };
            match path.get(payload) {
                Some(serde_json::Value::Array(items)) => items.iter().for_each(&mut push),
                Some(v) => push(v),
                None => {}
            }
        }

        // Straight into a byte buffer: `Display` (`to_string`) goes through the formatter for
        // every token: ~8 % of the PostgreSQL ingest client's CPU on CSV rows.
        let raw_json = serde_json::to_string(payload)
            .map_err(|e| reject(None, format!("the row cannot be serialised: {e}")))?;
        let fields_json = serde_json::to_string(&fields)
            .map_err(|e| reject(None, format!("fields cannot be serialised: {e}")))?;
        let task_json = task
            .as_ref()
            .map(|t| serde_json::to_string(t).unwrap_or_default())
            .unwrap_or_default();
        let entity = self.mapping.entity.as_str();
        let content_hash = Record::compute_hash(&[
            entity,
            &title,
            &body,
            url.as_deref().unwrap_or(""),
            &fields_json,
            &task_json,
            &raw_json,
        ]);
        let record = Record {
            id: RecordId::derive(scope, &self.mapping.source, &external_id),
            scope: scope.clone(),
            source: SourceRef {
                kind: self.mapping.source.clone(),
                external_id,
                url,
            },
            entity: self.mapping.entity,
            title: title.trim().to_string(),
            body,
            fields,
            created_at,
            updated_at,
            content_hash,
        };
        Ok(Normalised {
            record,
            task,
            links,
            raw_json,
            fields_json,
            line,
        })
    }

    fn task_seed(&self, rule: &TaskRule, fields: &Fields, payload: &serde_json::Value) -> TaskSeed {
        let status = self.status.as_ref().map(|(path, rule)| {
            let lookup = |v: &serde_json::Value| {
                scalar_text(v).and_then(|s| {
                    let s = s.trim().to_lowercase();
                    rule.map
                        .iter()
                        .find(|(k, _)| k.to_lowercase() == s)
                        .map(|(_, st)| *st)
                })
            };
            match path.get(payload) {
                Some(serde_json::Value::Array(items)) => items.iter().find_map(lookup),
                Some(v) => lookup(v),
                None => None,
            }
            .unwrap_or(rule.default)
        });
        let field = |name: &Option<String>| name.as_ref().and_then(|n| fields.get(n));
        let mut labels = Vec::new();
        for name in &rule.labels {
            match fields.get(name) {
                Some(Value::List(items)) => labels.extend(items.iter().map(Value::to_text)),
                Some(v) => labels.push(v.to_text()),
                None => {}
            }
        }
        let (value, currency) = match field(&rule.value) {
            Some(Value::Money(m)) => (Value::Money(m.clone()).as_f64(), Some(m.currency.clone())),
            Some(v) => (v.as_f64(), None),
            None => (None, None),
        };
        TaskSeed {
            status,
            due: field(&rule.due).and_then(|due| match due {
                Value::DateTime(at) => self.day_zone.date_at(*at),
                other => other.as_date(),
            }),
            signals: Signals {
                labels,
                value,
                currency,
                probability: field(&rule.probability).and_then(Value::as_f64).map(|p| {
                    match rule.probability_scale {
                        ProbabilityScale::Percent => p,
                        ProbabilityScale::Fraction => p * 100.0,
                    }
                }),
                sender: field(&rule.sender).map(Value::to_text),
            },
        }
    }
}

fn is_empty(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => true,
        serde_json::Value::String(s) => s.trim().is_empty(),
        serde_json::Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// The text of a scalar JSON value (strings, numbers, booleans).
pub(crate) fn scalar_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A title / body / URL template: literal text with `{field}` and `{/raw/path}` placeholders.
#[derive(Debug, Clone)]
struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    Field(String),
    Raw(Path),
}

impl Template {
    fn parse(text: &str, fields: &[&str]) -> std::result::Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find('{') {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_string()));
            }
            let after = &rest[start + 1..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("unclosed `{{` in template `{text}`"))?;
            let name = after[..end].trim();
            if name.starts_with('/') {
                parts.push(Part::Raw(Path::parse(name)?));
            } else if fields.contains(&name) {
                parts.push(Part::Field(name.to_string()));
            } else {
                return Err(format!(
                    "template `{text}` names `{name}`, which is neither a mapped field ({}) nor a raw path starting with `/`",
                    fields.join(", ")
                ));
            }
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(Self { parts })
    }

    fn render(&self, fields: &Fields, payload: &serde_json::Value) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Field(name) => {
                    if let Some(v) = fields.get(name) {
                        out.push_str(&v.to_text());
                    }
                }
                Part::Raw(path) => {
                    if let Some(v) = path.get(payload) {
                        match scalar_text(v) {
                            Some(s) => out.push_str(&s),
                            None => out.push_str(&coerce::flatten_text(v)),
                        }
                    }
                }
            }
        }
        // Placeholders that were empty leave dangling separators: "Acme — " → "Acme".
        let trimmed = out
            .trim()
            .trim_end_matches(['—', '–', ':', '|', '·'])
            .trim_end();
        trimmed
            .trim_start_matches(['—', '–', ':', '|', '·'])
            .trim_start()
            .to_string()
    }
}

#[cfg(test)]
mod tests;

//! Resolvers: which stored records a matching job reads, and which of their values become the
//! columns that are compared. The store-facing engine lives in the `opsweave` facade.

use super::Table;
use crate::{EntityKind, Error, Record, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Built-in resolvers: `(name, TOML)`.
pub const RESOLVER_PRESETS: &[(&str, &str)] = &[
    (
        "odoo-ace-opportunities",
        include_str!("resolvers/odoo-ace-opportunities.toml"),
    ),
    ("task-dedupe", include_str!("resolvers/task-dedupe.toml")),
];

/// The built-in resolver called `name`.
pub fn resolver_preset(name: &str) -> Result<Resolver> {
    let (_, text) = RESOLVER_PRESETS
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| {
            let known: Vec<&str> = RESOLVER_PRESETS.iter().map(|(n, _)| *n).collect();
            Error::invalid(format!(
                "no resolver preset `{name}`; known: {}",
                known.join(", ")
            ))
        })?;
    Resolver::from_toml(text)
}

/// The record attributes a column may read instead of a field (see [`Side::columns`]).
pub const RECORD_ATTRIBUTES: &[&str] = &["@title", "@body", "@url", "@source", "@external_id"];

/// One side of a resolver: a selection of records and the columns taken from each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Side {
    /// Source kinds to read (empty: any).
    #[serde(default)]
    pub sources: Vec<String>,
    /// Entity kinds to read (empty: any).
    #[serde(default)]
    pub entities: Vec<EntityKind>,
    /// Column name → where its value comes from: a field name, or `@title`, `@body`, `@url`,
    /// `@source`, `@external_id`.
    pub columns: BTreeMap<String, String>,
}

impl Side {
    /// Whether `record` belongs to this side.
    pub fn accepts(&self, record: &Record) -> bool {
        (self.sources.is_empty() || self.sources.contains(&record.source.kind))
            && (self.entities.is_empty() || self.entities.contains(&record.entity))
    }

    /// The value of column `from` in `record` (empty when absent).
    fn value(record: &Record, from: &str) -> String {
        match from {
            "@title" => record.title.clone(),
            "@body" => record.body.clone(),
            "@url" => record.source.url.clone().unwrap_or_default(),
            "@source" => record.source.kind.clone(),
            "@external_id" => record.source.external_id.clone(),
            field => record
                .fields
                .get(field)
                .map(crate::Value::to_text)
                .unwrap_or_default(),
        }
    }
}

/// A matching job over stored records: link `left` to `right`, or dedupe `left` when `right` is
/// absent. The comparisons come from `spec`, or are inferred from the data on the first run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolver {
    /// Name under which links, the review queue and the fitted model are kept.
    pub name: String,
    /// The records to match (the only side when deduplicating).
    pub left: Side,
    /// The records to match them against.
    #[serde(default)]
    pub right: Option<Side>,
    /// The match spec; inferred from the data when absent.
    #[serde(default)]
    pub spec: Option<super::MatchSpec>,
}

impl Resolver {
    /// Parses a resolver from TOML.
    pub fn from_toml(text: &str) -> Result<Resolver> {
        let resolver: Resolver =
            toml::from_str(text).map_err(|e| Error::bad_toml("bad resolver", text, &e))?;
        resolver.validate()?;
        Ok(resolver)
    }

    /// Parses a resolver from JSON.
    pub fn from_json(text: &str) -> Result<Resolver> {
        let resolver: Resolver =
            serde_json::from_str(text).map_err(|e| Error::invalid(format!("bad resolver: {e}")))?;
        resolver.validate()?;
        Ok(resolver)
    }

    /// Checks the parts a file can get wrong.
    pub fn validate(&self) -> Result<()> {
        if self.name.trim().is_empty() {
            return Err(Error::invalid("a resolver needs a name").on_field("name"));
        }
        // Runs keep their fitted model, match state and review queue under the name: a changed
        // copy of a built-in under its name would mix its state with the built-in's.
        let built_in = RESOLVER_PRESETS
            .iter()
            .find(|(name, _)| *name == self.name)
            .map(|(_, text)| toml::from_str::<Resolver>(text).ok());
        if built_in.is_some_and(|preset| preset.as_ref() != Some(self)) {
            return Err(Error::invalid(format!(
                "`{}` is a built-in resolver's name: give your changed copy a name of its own",
                self.name
            ))
            .on_field("name"));
        }
        for (side, label) in
            std::iter::once((&self.left, "left")).chain(self.right.as_ref().map(|r| (r, "right")))
        {
            for (column, from) in &side.columns {
                if from.starts_with('@') && !RECORD_ATTRIBUTES.contains(&from.as_str()) {
                    return Err(Error::invalid(format!(
                        "column `{column}` reads `{from}`, which is not a record attribute: \
                         use one of {} or a field name",
                        RECORD_ATTRIBUTES.join(", ")
                    ))
                    .on_field(format!("{label}.columns.{column}")));
                }
            }
        }
        if self.left.columns.is_empty() {
            return Err(Error::invalid("the left side names no columns").on_field("left.columns"));
        }
        if let Some(right) = &self.right {
            let shared = self
                .left
                .columns
                .keys()
                .filter(|c| right.columns.contains_key(*c))
                .count();
            if shared == 0 {
                return Err(Error::invalid(
                    "left and right share no column name, so nothing can be compared",
                )
                .on_field("right.columns"));
            }
        }
        Ok(())
    }

    /// Whether this resolver deduplicates one pool rather than linking two.
    pub fn is_dedupe(&self) -> bool {
        self.right.is_none()
    }

    /// Builds the table of `side` from `records` (ids are the records' ids in hex). In a link,
    /// only the columns both sides have are kept.
    pub fn table(&self, side: &Side, name: &str, records: &[&Record]) -> Result<Table> {
        let columns: Vec<&String> = side
            .columns
            .keys()
            .filter(|c| {
                self.right.as_ref().is_none_or(|r| {
                    r.columns.contains_key(*c) && self.left.columns.contains_key(*c)
                })
            })
            .collect();
        let mut header = vec!["id".to_string()];
        header.extend(columns.iter().map(|c| c.to_string()));
        let rows = records
            .iter()
            .map(|record| {
                let mut row = Vec::with_capacity(header.len());
                row.push(record.id.to_string());
                for c in &columns {
                    row.push(Side::value(record, &side.columns[*c]));
                }
                row
            })
            .collect();
        Table::new(name, header, rows)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_changed_copy_of_a_built_in_needs_a_name_of_its_own() {
        for (name, _) in RESOLVER_PRESETS {
            let preset = resolver_preset(name).expect("built-ins validate");
            let mut copy = preset.clone();
            copy.left.columns.pop_last();
            let err = copy
                .validate()
                .expect_err("a changed copy under the built-in's name");
            assert_eq!(err.location().field.as_deref(), Some("name"), "{err}");
            copy.name = format!("{name}-mine");
            copy.validate().expect("under its own name");
        }
    }
    use super::*;

    #[test]
    fn presets_parse_and_are_valid() {
        for (name, _) in RESOLVER_PRESETS {
            let r = resolver_preset(name).unwrap();
            assert_eq!(r.name, *name);
        }
        assert!(resolver_preset("odoo-ace-opportunities")
            .unwrap()
            .right
            .is_some());
        assert!(resolver_preset("task-dedupe").unwrap().is_dedupe());
        let err = resolver_preset("nope").unwrap_err().to_string();
        assert!(err.contains("odoo-ace-opportunities"), "{err}");
    }

    #[test]
    fn sides_without_a_shared_column_are_refused() {
        let err = Resolver::from_toml(
            "name = \"x\"\n[left.columns]\na = \"@title\"\n[right.columns]\nb = \"@title\"\n",
        )
        .unwrap_err();
        assert_eq!(err.location().field.as_deref(), Some("right.columns"));
        let err = Resolver::from_toml("name = \"x\"\n[left]\ncolumns = {}\n").unwrap_err();
        assert_eq!(err.location().field.as_deref(), Some("left.columns"));
    }

    #[test]
    fn a_misspelt_record_attribute_is_named() {
        let err = Resolver::from_toml(
            "name = \"x\"\n[left.columns]\nt = \"@title\"\n[right.columns]\nt = \"@titel\"\n",
        )
        .unwrap_err();
        assert_eq!(err.location().field.as_deref(), Some("right.columns.t"));
        assert!(
            err.message().contains("`@titel`") && err.message().contains("@title, @body"),
            "{err}"
        );
        for attribute in RECORD_ATTRIBUTES {
            let text = format!("name = \"x\"\n[left.columns]\nt = \"{attribute}\"\n");
            Resolver::from_toml(&text).expect("every listed attribute is accepted");
        }
    }
}

//! Arguments from Python into the facade's types; a bad value is an `InvalidInputError` naming
//! the argument, a value of the wrong type a `TypeError`.

use crate::convert::{from_python, type_name};
use crate::errors::to_py;
use opsweave::matching::{resolver_preset, Resolver};
use opsweave::recall::{Recency, MAX_K};
use opsweave::{Error, Horizon, Mapping, RecallOptions, RecordId, Result, Window};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use std::path::PathBuf;

/// The most results one call returns per list.
pub const MAX_LIMIT: usize = 1000;

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
pub fn parse_window(text: &str) -> Result<Window> {
    text.parse().map_err(|e: Error| e.on_field("window"))
}

/// What `recall` asks for: `k` hits by `mode` (`hybrid`, `bm25`, `dense`), only of these entity
/// and source kinds, favouring records younger than `half_life_days` when given.
pub fn recall_options(
    k: i64,
    mode: &str,
    entities: Option<Vec<String>>,
    sources: Option<Vec<String>>,
    half_life_days: Option<f64>,
    recency_weight: f64,
) -> Result<RecallOptions> {
    if !(1..=MAX_K as i64).contains(&k) {
        return Err(
            Error::invalid(format!("k must be between 1 and {MAX_K}, not {k}")).on_field("k"),
        );
    }
    let options = RecallOptions {
        k: k as usize,
        mode: mode.parse()?,
        entities: entities
            .unwrap_or_default()
            .iter()
            .map(|e| e.parse().map_err(|e: Error| e.on_field("entities")))
            .collect::<Result<_>>()?,
        source_kinds: sources.unwrap_or_default(),
        recency: half_life_days.map(|days| Recency {
            half_life_days: days,
            weight: recency_weight,
        }),
        ..RecallOptions::default()
    };
    options.validate()?;
    Ok(options)
}

/// The mapping to ingest with: a preset by name, or `mapping` given as a dict (the mapping's
/// fields) or a path to a TOML / JSON mapping file. Exactly one of the two.
pub fn mapping_of(
    py: Python<'_>,
    preset: Option<&str>,
    mapping: Option<&Bound<'_, PyAny>>,
) -> PyResult<Mapping> {
    let parsed = match (preset, mapping.filter(|m| !m.is_none())) {
        (Some(_), Some(_)) => {
            Err(Error::invalid("give preset= or mapping=, not both").on_field("mapping"))
        }
        (None, None) => Err(Error::invalid("give preset=NAME or mapping=").on_field("preset")),
        (Some(name), None) => opsweave::preset(name).map_err(|e| e.on_field("preset")),
        (None, Some(value)) if value.is_instance_of::<PyDict>() => {
            let json = from_python(value, "mapping")?;
            Mapping::from_json(&json.to_string()).map_err(|e| e.on_field("mapping"))
        }
        (None, Some(value))
            if value.is_instance_of::<PyString>() || value.hasattr("__fspath__")? =>
        {
            mapping_file(&value.extract::<PathBuf>()?)
        }
        (None, Some(value)) => {
            return Err(PyTypeError::new_err(format!(
                "mapping must be a dict or a path to a mapping file, not {}",
                type_name(value)
            )))
        }
    };
    parsed
        .and_then(|mapping| match mapping.compile() {
            Ok(_) => Ok(mapping),
            Err(e) if e.location().field.is_none() => Err(e.on_field("mapping")),
            Err(e) => Err(e),
        })
        .map_err(|e| to_py(py, &e))
}

/// The resolver to match with: a built-in resolver by name, or a dict of its fields.
pub fn resolver_of(py: Python<'_>, resolver: &Bound<'_, PyAny>) -> PyResult<Resolver> {
    let parsed = if let Ok(name) = resolver.cast::<PyString>() {
        resolver_preset(name.to_str()?).map_err(|e| e.on_field("resolver"))
    } else if resolver.is_instance_of::<PyDict>() {
        let json = from_python(resolver, "resolver")?;
        Resolver::from_json(&json.to_string()).map_err(|e| e.on_field("resolver"))
    } else {
        return Err(PyTypeError::new_err(format!(
            "resolver must be a preset name (str) or a dict, not {}",
            type_name(resolver)
        )));
    };
    parsed
        .and_then(|r| r.validate().map(|()| r))
        .map_err(|e| to_py(py, &e))
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

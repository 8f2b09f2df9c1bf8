//! Built-in mappings for common exports; each has a sample file under `examples/data/`.

use super::Mapping;
use crate::{Error, Result};

/// Every preset: name and TOML source.
pub const PRESETS: [(&str, &str); 5] = [
    ("odoo-crm-lead", include_str!("presets/odoo-crm-lead.toml")),
    (
        "ace-opportunity",
        include_str!("presets/ace-opportunity.toml"),
    ),
    ("gmail-message", include_str!("presets/gmail-message.toml")),
    ("jira-issue", include_str!("presets/jira-issue.toml")),
    ("github-issue", include_str!("presets/github-issue.toml")),
];

/// The names of every preset.
pub fn names() -> Vec<&'static str> {
    PRESETS.iter().map(|(n, _)| *n).collect()
}

/// The preset called `name`.
pub fn preset(name: &str) -> Result<Mapping> {
    let (_, text) = PRESETS.iter().find(|(n, _)| *n == name).ok_or_else(|| {
        Error::invalid(format!(
            "unknown preset `{name}` (presets: {})",
            names().join(", ")
        ))
    })?;
    Mapping::from_toml(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_parses_compiles_and_round_trips() {
        for name in names() {
            let mapping = preset(name).unwrap();
            assert_eq!(mapping.name, name);
            mapping.compile().unwrap();
            let again = Mapping::from_toml(&mapping.to_toml().unwrap()).unwrap();
            assert_eq!(again, mapping, "{name} round trip");
            let json = serde_json::to_string(&mapping).unwrap();
            assert_eq!(Mapping::from_json(&json).unwrap(), mapping);
        }
        assert!(preset("salesforce")
            .unwrap_err()
            .message()
            .contains("odoo-crm-lead"));
    }
}

//! Who a record, event or task belongs to.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The tenancy of every record, event and task: an org, optionally narrowed to a client and a project.
///
/// As a query filter, `None` for client or project means "any".
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
// A misspelt `projetc` would otherwise widen a config's or a request's scope to the whole org.
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// The organisation (tenant); never empty.
    pub org: String,
    /// The client the work is for, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The project within the client, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

impl Scope {
    /// A scope for a whole org.
    pub fn org(org: impl Into<String>) -> Self {
        Self {
            org: org.into(),
            client: None,
            project: None,
        }
    }

    /// Narrows the scope to a client.
    pub fn with_client(mut self, client: impl Into<String>) -> Self {
        self.client = Some(client.into());
        self
    }

    /// Narrows the scope to a project.
    pub fn with_project(mut self, project: impl Into<String>) -> Self {
        self.project = Some(project.into());
        self
    }

    /// Checks that every part is a usable name (non-empty, no control characters, ≤ 200 bytes).
    pub fn validate(&self) -> Result<()> {
        check_part("org", Some(&self.org))?;
        check_part("client", self.client.as_deref())?;
        check_part("project", self.project.as_deref())
    }

    /// True when `other` (a record's scope) falls inside this scope used as a filter.
    pub fn contains(&self, other: &Scope) -> bool {
        self.org == other.org
            && self
                .client
                .as_ref()
                .is_none_or(|c| other.client.as_ref() == Some(c))
            && self
                .project
                .as_ref()
                .is_none_or(|p| other.project.as_ref() == Some(p))
    }
}

fn check_part(name: &str, value: Option<&str>) -> Result<()> {
    let Some(value) = value else { return Ok(()) };
    if value.trim().is_empty() {
        return Err(Error::invalid(format!("scope {name} must not be empty")).on_field(name));
    }
    if value.len() > 200 || value.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "scope {name} must be at most 200 bytes without control characters"
        ))
        .on_field(name));
    }
    Ok(())
}

impl Default for Scope {
    fn default() -> Self {
        Self::org("default")
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.org)?;
        if let Some(client) = &self.client {
            write!(f, "/{client}")?;
        }
        if let Some(project) = &self.project {
            write!(f, "/{project}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_with_fewer_parts_contains_narrower_scopes() {
        let acme = Scope::org("acme");
        let client = Scope::org("acme").with_client("globex");
        let project = client.clone().with_project("q3");
        assert!(acme.contains(&project));
        assert!(client.contains(&project));
        assert!(!project.contains(&client));
        assert!(!Scope::org("other").contains(&project));
    }

    #[test]
    fn empty_org_is_rejected() {
        let err = Scope::org(" ").validate().unwrap_err();
        assert_eq!(err.location().field.as_deref(), Some("org"));
    }
}

//! Paths into raw items: CSV column names, JSON pointers, and `[key=value]` selectors.

use serde_json::Value;

/// A compiled path into a raw item.
///
/// * `Customer Company Name` — a top-level key (a CSV column), taken whole;
/// * `/fields/priority/name` — a JSON pointer (`~1` and `~0` escapes as in RFC 6901);
/// * `/payload/headers[name=Subject]/value` — in an array of objects, the first whose `name`
///   equals `Subject` (case-insensitively).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Select { key: String, value: String },
}

impl Path {
    /// Parses a path.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Err("empty path".into());
        }
        let Some(pointer) = text.strip_prefix('/') else {
            return Ok(Self {
                steps: vec![Step::Key(text.to_string())],
            });
        };
        let mut steps = Vec::new();
        for segment in pointer.split('/') {
            let (key, selector) = match segment.find('[') {
                Some(open) if segment.ends_with(']') => (
                    &segment[..open],
                    Some(&segment[open + 1..segment.len() - 1]),
                ),
                Some(_) => return Err(format!("path `{text}`: `[` without a closing `]`")),
                None => (segment, None),
            };
            if !key.is_empty() || selector.is_none() {
                steps.push(Step::Key(key.replace("~1", "/").replace("~0", "~")));
            }
            if let Some(sel) = selector {
                let (k, v) = sel.split_once('=').ok_or_else(|| {
                    format!("path `{text}`: selector `[{sel}]` must be `[key=value]`")
                })?;
                steps.push(Step::Select {
                    key: k.trim().to_string(),
                    value: v.trim().to_string(),
                });
            }
        }
        Ok(Self { steps })
    }

    /// The value at this path, if present.
    pub fn get<'a>(&self, mut value: &'a Value) -> Option<&'a Value> {
        for step in &self.steps {
            value = match (step, value) {
                (Step::Key(k), Value::Object(map)) => map.get(k)?,
                (Step::Key(k), Value::Array(items)) => items.get(k.parse::<usize>().ok()?)?,
                (Step::Select { key, value: want }, Value::Array(items)) => {
                    items.iter().find(|item| {
                        item.get(key)
                            .and_then(Value::as_str)
                            .is_some_and(|s| s.eq_ignore_ascii_case(want))
                    })?
                }
                _ => return None,
            };
        }
        Some(value)
    }

    /// The first key of the path: the CSV column it reads.
    pub fn top_key(&self) -> String {
        match self.steps.first() {
            Some(Step::Key(k)) => k.clone(),
            _ => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn columns_pointers_and_selectors() {
        let item = json!({
            "Customer Company Name": "Acme",
            "fields": {"priority": {"name": "High"}, "a/b": 1},
            "payload": {"headers": [{"name": "From", "value": "x@y.z"}, {"name": "Subject", "value": "Hi"}]},
            "labels": [{"name": "P1"}]
        });
        let get = |p: &str| Path::parse(p).unwrap().get(&item).cloned();
        assert_eq!(get("Customer Company Name"), Some(json!("Acme")));
        assert_eq!(get("/fields/priority/name"), Some(json!("High")));
        assert_eq!(get("/fields/a~1b"), Some(json!(1)));
        assert_eq!(
            get("/payload/headers[name=subject]/value"),
            Some(json!("Hi"))
        );
        assert_eq!(get("/labels/0/name"), Some(json!("P1")));
        assert_eq!(get("/payload/headers[name=Cc]/value"), None);
        assert_eq!(get("/nope"), None);
        assert!(Path::parse("/a[b").is_err());
        assert!(Path::parse("/a[b]").is_err());
        assert!(Path::parse("").is_err());
    }
}

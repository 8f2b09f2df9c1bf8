//! What identifies a model's vectors: its weights, its tokenizer and how token vectors become one.
//!
//! Stores keep the fingerprint with the vectors of a model name and refuse another one, so a model
//! swapped behind the same directory or preset name never mixes two vector spaces. The directory
//! itself is not part of it: the same files copied elsewhere make the same vectors.

use crate::config::{ModelFiles, ModelSpec, Pooling};
use opsweave_core::{Error, Result};
use std::fs::File;
use std::path::{Path, PathBuf};

/// What besides the files shapes the vectors.
pub(crate) struct Shaping<'a> {
    pub(crate) spec: &'a ModelSpec,
    pub(crate) output: &'a str,
    pub(crate) query_prefix: Option<&'a str>,
    pub(crate) document_prefix: Option<&'a str>,
}

/// `b3:` and 16 hex digits of a BLAKE3 hash over the model file, its external-data files, the
/// tokenizer and the pooling, normalisation, output and prefixes. The token limit is left out:
/// it changes how long texts are chunked, not the space their vectors live in.
pub(crate) fn fingerprint(files: &ModelFiles, shaping: &Shaping<'_>) -> Result<String> {
    let mut hasher = blake3::Hasher::new();
    let mut weights = vec![files.model.clone()];
    weights.extend(external_data(&files.model)?);
    for path in weights.iter().chain(std::iter::once(&files.tokenizer)) {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        hash_text(&mut hasher, name.as_deref().unwrap_or(""));
        let file = File::open(path).map_err(|e| read_error(path, e))?;
        hasher
            .update_reader(file)
            .map_err(|e| read_error(path, e))?;
    }
    let pooling = match shaping.spec.pooling {
        Pooling::Cls => "cls",
        Pooling::Mean => "mean",
    };
    hash_text(&mut hasher, pooling);
    hash_text(
        &mut hasher,
        if shaping.spec.normalize {
            "unit"
        } else {
            "raw"
        },
    );
    hash_text(&mut hasher, shaping.output);
    hash_text(&mut hasher, shaping.query_prefix.unwrap_or(""));
    hash_text(&mut hasher, shaping.document_prefix.unwrap_or(""));
    let hex = hasher.finalize().to_hex();
    Ok(format!("b3:{}", &hex[..16]))
}

/// Length-prefixed, so that ("ab", "c") and ("a", "bc") hash apart.
fn hash_text(hasher: &mut blake3::Hasher, text: &str) {
    hasher.update(&(text.len() as u64).to_le_bytes());
    hasher.update(text.as_bytes());
}

/// The file beside `model` that holds its weights when they exceed protobuf's 2 GiB, under the
/// names exporters give it (BGE-M3's `model.onnx_data`; `model.onnx.data`). Other files in the
/// folder (backups, other variants' weights) are left out, so adding one changes nothing.
fn external_data(model: &Path) -> Result<Vec<PathBuf>> {
    let Some(name) = model.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for suffix in ["_data", ".data"] {
        let path = model.with_file_name(format!("{name}{suffix}"));
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => found.push(path),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(read_error(&path, e)),
        }
    }
    Ok(found)
}

fn read_error(path: &Path, e: std::io::Error) -> Error {
    Error::internal(format!(
        "cannot read `{}` to fingerprint the model: {e}",
        path.display()
    ))
    .in_file(path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(pooling: Pooling) -> ModelSpec {
        ModelSpec {
            name: "m".into(),
            pooling,
            normalize: true,
            max_tokens: 128,
            chunk_overlap: 16,
            expected_dim: None,
        }
    }

    fn print(files: &ModelFiles, spec: &ModelSpec, prefix: Option<&str>) -> String {
        fingerprint(
            files,
            &Shaping {
                spec,
                output: "last_hidden_state",
                query_prefix: prefix,
                document_prefix: None,
            },
        )
        .expect("fingerprint")
    }

    #[test]
    fn files_and_shaping_make_the_fingerprint_not_the_folder() {
        let a = tempfile::tempdir().expect("dir");
        let b = tempfile::tempdir().expect("dir");
        for dir in [a.path(), b.path()] {
            std::fs::write(dir.join("model.onnx"), b"weights").expect("write");
            std::fs::write(dir.join("tokenizer.json"), b"{}").expect("write");
        }
        let files = |dir: &Path| ModelFiles {
            model: dir.join("model.onnx"),
            tokenizer: dir.join("tokenizer.json"),
        };
        let mean = spec(Pooling::Mean);
        let first = print(&files(a.path()), &mean, None);
        assert!(first.starts_with("b3:") && first.len() == 19, "{first}");
        assert_eq!(first, print(&files(b.path()), &mean, None));
        assert_ne!(first, print(&files(a.path()), &spec(Pooling::Cls), None));
        assert_ne!(first, print(&files(a.path()), &mean, Some("query: ")));
        let other_limit = ModelSpec {
            max_tokens: 512,
            ..mean.clone()
        };
        assert_eq!(first, print(&files(a.path()), &other_limit, None));

        std::fs::write(b.path().join("tokenizer.json"), b"{ }").expect("write");
        assert_ne!(first, print(&files(b.path()), &mean, None));
        std::fs::write(b.path().join("tokenizer.json"), b"{}").expect("write");
        std::fs::write(b.path().join("model.onnx_data"), b"more weights").expect("write");
        assert_ne!(first, print(&files(b.path()), &mean, None));
        std::fs::remove_file(b.path().join("model.onnx_data")).expect("remove");
        for other in ["README.md", "model.onnx.bak", "model_fp16.onnx_data"] {
            std::fs::write(b.path().join(other), b"not these weights").expect("write");
        }
        assert_eq!(first, print(&files(b.path()), &mean, None));
    }
}

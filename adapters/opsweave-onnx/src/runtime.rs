//! The one ONNX Runtime environment of the process.
//!
//! ONNX Runtime allows a single environment per process and `ort` refuses to build a second, so the
//! first embedder to open loads the library and every later one shares it.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use opsweave_core::{Error, Result};
use ort::environment::Environment;

/// Environment variable naming the ONNX Runtime shared library.
pub const ORT_DYLIB_PATH_ENV: &str = "ORT_DYLIB_PATH";

/// The loaded library and the environment every session is built in.
pub(crate) struct Runtime {
    pub(crate) environment: Environment,
    pub(crate) library: PathBuf,
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
// `OnceLock::get_or_try_init` is unstable; this keeps two first callers from both loading.
static LOADING: Mutex<()> = Mutex::new(());

/// Where the library comes from: the explicit path first, then `ORT_DYLIB_PATH`.
pub(crate) fn library_path(explicit: Option<&Path>) -> Result<PathBuf> {
    let (path, origin) = match explicit {
        Some(p) => (p.to_path_buf(), "the `ort_dylib_path` option"),
        None => match std::env::var_os(ORT_DYLIB_PATH_ENV) {
            Some(v) if !v.is_empty() => (PathBuf::from(v), "ORT_DYLIB_PATH"),
            _ => {
                return Err(Error::unavailable(
                    "ONNX Runtime library not configured: set the ORT_DYLIB_PATH environment \
                     variable or the `ort_dylib_path` option to libonnxruntime.so.1.x.y (the \
                     onnxruntime PyPI wheel has it in onnxruntime/capi/)",
                ))
            }
        },
    };
    if !path.is_file() {
        return Err(Error::unavailable(format!(
            "ONNX Runtime library `{}` (from {origin}) does not exist; set ORT_DYLIB_PATH or \
             the `ort_dylib_path` option to libonnxruntime.so.1.x.y",
            path.display()
        ))
        .in_file(path.display().to_string()));
    }
    Ok(path)
}

/// The process's runtime, loading the library on first use.
pub(crate) fn runtime(explicit: Option<&Path>) -> Result<&'static Runtime> {
    if let Some(rt) = RUNTIME.get() {
        return check_same_library(rt, explicit);
    }
    let _loading = LOADING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(rt) = RUNTIME.get() {
        return check_same_library(rt, explicit);
    }
    let library = library_path(explicit)?;
    let builder = ort::init_from(&library).map_err(|e| {
        Error::unavailable(format!(
            "cannot load ONNX Runtime from `{}`: {e}",
            library.display()
        ))
        .in_file(library.display().to_string())
        .with_source(e)
    })?;
    let environment = builder
        .with_name("opsweave")
        .with_telemetry(false)
        .build()
        .map_err(|e| {
            Error::unavailable(format!("cannot create the ONNX Runtime environment: {e}"))
                .with_source(e)
        })?;
    Ok(RUNTIME.get_or_init(|| Runtime {
        environment,
        library,
    }))
}

/// A second embedder may not ask for another library: one process holds one ONNX Runtime.
fn check_same_library(rt: &'static Runtime, explicit: Option<&Path>) -> Result<&'static Runtime> {
    if let Some(wanted) = explicit {
        let same = match (wanted.canonicalize(), rt.library.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => wanted == rt.library,
        };
        if !same {
            return Err(Error::conflict(format!(
                "ONNX Runtime is already loaded from `{}` in this process; it cannot also be \
                 loaded from `{}`",
                rt.library.display(),
                wanted.display()
            )));
        }
    }
    Ok(rt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_missing_library_names_both_sources() {
        let err = library_path(Some(Path::new("/nonexistent/libonnxruntime.so.1.31.1")))
            .expect_err("missing");
        let msg = err.to_string();
        assert!(msg.contains("ORT_DYLIB_PATH"), "{msg}");
        assert!(msg.contains("ort_dylib_path"), "{msg}");
        assert_eq!(err.kind(), opsweave_core::ErrorKind::Unavailable);
    }
}

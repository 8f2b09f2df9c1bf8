//! The one place opsweave errors become Python exceptions: one class per error kind, the location
//! as attributes, the cause chain as `__cause__`.

use opsweave::{Error, ErrorKind};
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::BoundObject;

pyo3::create_exception!(
    opsweave,
    OpsweaveError,
    PyException,
    "Base class of every opsweave error; `kind`, `message`, `file`, `line` and `field` say what and where."
);
pyo3::create_exception!(
    opsweave,
    InvalidInputError,
    OpsweaveError,
    "Something given was invalid (data, arguments, configuration); `file`, `line`, `field` say where."
);
pyo3::create_exception!(
    opsweave,
    NotFoundError,
    OpsweaveError,
    "The thing asked for does not exist in the scope."
);
pyo3::create_exception!(
    opsweave,
    ConflictError,
    OpsweaveError,
    "The operation conflicts with the current state (someone changed it first)."
);
pyo3::create_exception!(
    opsweave,
    UnauthorizedError,
    OpsweaveError,
    "The caller is not allowed to do this."
);
pyo3::create_exception!(
    opsweave,
    UnavailableError,
    OpsweaveError,
    "A backend or service could not be reached, or the handle is closed; retrying may help."
);
pyo3::create_exception!(
    opsweave,
    InternalError,
    OpsweaveError,
    "A bug or an unexpected state inside opsweave (a Rust panic ends up here too)."
);

/// The stable name of an error kind, as in JSON and the Node `code`s.
pub fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidInput => "invalid_input",
        ErrorKind::NotFound => "not_found",
        ErrorKind::Conflict => "conflict",
        ErrorKind::Unauthorized => "unauthorized",
        ErrorKind::Unavailable => "unavailable",
        ErrorKind::Internal => "internal",
        _ => "error",
    }
}

/// The Python exception for `err`: its kind's class, with `kind`, `message`, `file`, `line` and
/// `field` set and each underlying cause chained as `__cause__`.
pub fn to_py(py: Python<'_>, err: &Error) -> PyErr {
    let text = err.to_string();
    let exc = match err.kind() {
        ErrorKind::InvalidInput => InvalidInputError::new_err(text),
        ErrorKind::NotFound => NotFoundError::new_err(text),
        ErrorKind::Conflict => ConflictError::new_err(text),
        ErrorKind::Unauthorized => UnauthorizedError::new_err(text),
        ErrorKind::Unavailable => UnavailableError::new_err(text),
        ErrorKind::Internal => InternalError::new_err(text),
        _ => OpsweaveError::new_err(text),
    };
    let location = err.location();
    let value = exc.value(py);
    let attrs: [(&str, Py<PyAny>); 5] = [
        ("kind", object(py, kind_name(err.kind()))),
        ("message", object(py, err.message())),
        ("file", object(py, location.file.as_deref())),
        ("line", object(py, location.line)),
        ("field", object(py, location.field.as_deref())),
    ];
    for (name, item) in attrs {
        // Setting an attribute on a fresh exception instance cannot fail in practice; if it did,
        // the exception would still carry its kind and message.
        let _ = value.setattr(name, item);
    }
    if let Some(cause) = cause_chain(py, std::error::Error::source(err)) {
        exc.set_cause(py, Some(cause));
    }
    exc
}

/// `value` as a Python object (None when it cannot be converted, which plain values always can).
fn object<'py, T: IntoPyObject<'py>>(py: Python<'py>, value: T) -> Py<PyAny> {
    value
        .into_pyobject(py)
        .map_or_else(|_| py.None(), |v| v.into_bound().into_any().unbind())
}

/// The underlying causes as a chain of plain `Exception`s, outermost first.
fn cause_chain(
    py: Python<'_>,
    source: Option<&(dyn std::error::Error + 'static)>,
) -> Option<PyErr> {
    let source = source?;
    let exc = PyException::new_err(source.to_string());
    if let Some(next) = cause_chain(py, source.source()) {
        exc.set_cause(py, Some(next));
    }
    Some(exc)
}

/// Registers the exception classes on the module.
pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    module.add("OpsweaveError", py.get_type::<OpsweaveError>())?;
    module.add("InvalidInputError", py.get_type::<InvalidInputError>())?;
    module.add("NotFoundError", py.get_type::<NotFoundError>())?;
    module.add("ConflictError", py.get_type::<ConflictError>())?;
    module.add("UnauthorizedError", py.get_type::<UnauthorizedError>())?;
    module.add("UnavailableError", py.get_type::<UnavailableError>())?;
    module.add("InternalError", py.get_type::<InternalError>())?;
    Ok(())
}

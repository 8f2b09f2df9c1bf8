//! Built-in mappings for common exports.

//! One-row statements that read their text values where the caller keeps them.
//!
//! rusqlite binds every string with `SQLITE_TRANSIENT`: SQLite allocates a buffer for it and
//! copies it before the step, then frees it. An ingest row binds about 20 strings (~600 bytes)
//! into three inserts on the writer, the thread that bounds a load: without those copies a
//! 1M-row CLI load went from 8.36 to 7.77 s (docs/benchmarks.md, issue 2). Bound with
//! `SQLITE_STATIC`, SQLite reads the caller's bytes in place; that is sound only while they
//! live, so a value is bound, stepped and unbound within one call of
//! [`BorrowingStatement::execute`], whose borrow outlives all three.

#![allow(unsafe_code)]

use rusqlite::types::ValueRef;
use rusqlite::{ffi, Connection};
use std::ffi::{c_int, CStr};
use std::ptr::NonNull;

/// A prepared statement that binds its values without copying them.
pub(crate) struct BorrowingStatement<'c> {
    /// The connection it was prepared on (errors are read from it).
    db: NonNull<ffi::sqlite3>,
    stmt: NonNull<ffi::sqlite3_stmt>,
    /// How many parameters the statement has.
    parameters: usize,
    /// Ties the statement to the connection's lifetime: it is finalized before the connection
    /// can be closed.
    _conn: std::marker::PhantomData<&'c Connection>,
}

impl<'c> BorrowingStatement<'c> {
    /// Prepares `sql` (one statement) on `conn`.
    pub(crate) fn prepare(conn: &'c Connection, sql: &str) -> rusqlite::Result<Self> {
        // SAFETY: `conn` is open for 'c; `handle` is only used through SQLite's API.
        let db = NonNull::new(unsafe { conn.handle() })
            .ok_or_else(|| failure(ffi::SQLITE_MISUSE, None))?;
        let len = c_int::try_from(sql.len()).map_err(|_| failure(ffi::SQLITE_TOOBIG, None))?;
        let mut stmt = std::ptr::null_mut();
        // SAFETY: `sql` is valid for `len` bytes; SQLite writes the statement to `stmt`.
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                db.as_ptr(),
                sql.as_ptr().cast(),
                len,
                ffi::SQLITE_PREPARE_PERSISTENT,
                &mut stmt,
                std::ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(last_error(db, rc));
        }
        // SQL with no statement in it (blank, or only a comment) compiles to none.
        let stmt = NonNull::new(stmt)
            .ok_or_else(|| failure(ffi::SQLITE_MISUSE, Some("no statement in the SQL".into())))?;
        // SAFETY: `stmt` is a statement prepared above.
        let parameters = unsafe { ffi::sqlite3_bind_parameter_count(stmt.as_ptr()) } as usize;
        Ok(Self {
            db,
            stmt,
            parameters,
            _conn: std::marker::PhantomData,
        })
    }

    /// Binds `values` to the parameters in order, runs the statement to its end and unbinds
    /// them again.
    pub(crate) fn execute(&mut self, values: &[ValueRef<'_>]) -> rusqlite::Result<()> {
        if values.len() != self.parameters {
            return Err(rusqlite::Error::InvalidParameterCount(
                values.len(),
                self.parameters,
            ));
        }
        let stmt = self.stmt.as_ptr();
        let outcome = values
            .iter()
            .enumerate()
            .try_for_each(|(i, value)| self.bind(i as c_int + 1, value))
            .and_then(|()| {
                // SAFETY: every parameter is bound to memory `values` borrows for this call.
                match unsafe { ffi::sqlite3_step(stmt) } {
                    ffi::SQLITE_DONE | ffi::SQLITE_ROW => Ok(()),
                    rc => Err(last_error(self.db, rc)),
                }
            });
        // SAFETY: `stmt` is valid; after these no parameter points into `values` any more.
        unsafe {
            ffi::sqlite3_reset(stmt);
            ffi::sqlite3_clear_bindings(stmt);
        }
        outcome
    }

    /// Binds one value to parameter `index` (1-based) without a copy.
    fn bind(&self, index: c_int, value: &ValueRef<'_>) -> rusqlite::Result<()> {
        let stmt = self.stmt.as_ptr();
        // SAFETY: `stmt` is valid; text and blob pointers are valid for their lengths, and
        // `execute` unbinds them before its borrow of them ends (`None` = `SQLITE_STATIC`).
        let rc = unsafe {
            match *value {
                ValueRef::Null => ffi::sqlite3_bind_null(stmt, index),
                ValueRef::Integer(n) => ffi::sqlite3_bind_int64(stmt, index, n),
                ValueRef::Real(x) => ffi::sqlite3_bind_double(stmt, index, x),
                ValueRef::Text(text) => ffi::sqlite3_bind_text64(
                    stmt,
                    index,
                    text.as_ptr().cast(),
                    text.len() as u64,
                    None,
                    ffi::SQLITE_UTF8 as u8,
                ),
                ValueRef::Blob(blob) => ffi::sqlite3_bind_blob64(
                    stmt,
                    index,
                    blob.as_ptr().cast(),
                    blob.len() as u64,
                    None,
                ),
            }
        };
        match rc {
            ffi::SQLITE_OK => Ok(()),
            rc => Err(last_error(self.db, rc)),
        }
    }
}

impl Drop for BorrowingStatement<'_> {
    fn drop(&mut self) {
        // SAFETY: the statement is finalized once, here, while its connection is open.
        unsafe { ffi::sqlite3_finalize(self.stmt.as_ptr()) };
    }
}

/// The error SQLite reports on `db` for the result code `rc`.
fn last_error(db: NonNull<ffi::sqlite3>, rc: c_int) -> rusqlite::Error {
    // SAFETY: `db` is open; SQLite's message is copied out before any other call on it.
    let (code, message) = unsafe {
        let message = ffi::sqlite3_errmsg(db.as_ptr());
        let message =
            (!message.is_null()).then(|| CStr::from_ptr(message).to_string_lossy().into_owned());
        (ffi::sqlite3_extended_errcode(db.as_ptr()), message)
    };
    // A bind's own failure (e.g. a value too large) is not the connection's last error.
    let code = if code & 0xff == rc & 0xff { code } else { rc };
    failure(code, message)
}

/// A rusqlite error for SQLite's result code `code`.
fn failure(code: c_int, message: Option<String>) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(ffi::Error::new(code), message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::types::ValueRef;

    fn table() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL, note TEXT, score REAL, data BLOB)")
            .unwrap();
        conn
    }

    #[test]
    fn values_are_stored_as_bound_and_outlive_their_buffers() {
        let conn = table();
        let mut insert = BorrowingStatement::prepare(
            &conn,
            "INSERT INTO t (id, name, note, score, data) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .unwrap();
        for i in 0..3_i64 {
            // A fresh buffer per row, dropped right after the call: the row keeps its copy.
            let name = format!("name é {i}");
            let data = vec![i as u8; 3];
            insert
                .execute(&[
                    ValueRef::Integer(i),
                    ValueRef::from(name.as_str()),
                    if i == 1 {
                        ValueRef::Null
                    } else {
                        ValueRef::from("n")
                    },
                    ValueRef::Real(i as f64 / 2.0),
                    ValueRef::Blob(&data),
                ])
                .unwrap();
        }
        drop(insert);
        type Row = (i64, String, Option<String>, f64, Vec<u8>);
        let rows: Vec<Row> = conn
            .prepare("SELECT id, name, note, score, data FROM t ORDER BY id")
            .unwrap()
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[2],
            (2, "name é 2".into(), Some("n".into()), 1.0, vec![2; 3])
        );
        assert_eq!(rows[1].2, None);
    }

    #[test]
    fn a_failed_row_reports_sqlites_error_and_the_statement_goes_on() {
        let conn = table();
        let mut insert =
            BorrowingStatement::prepare(&conn, "INSERT INTO t (id, name) VALUES (?1, ?2)").unwrap();
        insert
            .execute(&[ValueRef::Integer(1), ValueRef::from("a")])
            .unwrap();
        let duplicate = insert.execute(&[ValueRef::Integer(1), ValueRef::from("b")]);
        match duplicate {
            Err(rusqlite::Error::SqliteFailure(e, Some(message))) => {
                assert_eq!(e.extended_code, ffi::SQLITE_CONSTRAINT_PRIMARYKEY);
                assert!(message.contains("t.id"), "{message}");
            }
            other => panic!("expected a constraint error, got {other:?}"),
        }
        let missing = insert.execute(&[ValueRef::Integer(2), ValueRef::Null]);
        assert!(
            matches!(&missing, Err(rusqlite::Error::SqliteFailure(e, _)) if e.extended_code == ffi::SQLITE_CONSTRAINT_NOTNULL),
            "{missing:?}"
        );
        assert!(matches!(
            insert.execute(&[ValueRef::Integer(3)]),
            Err(rusqlite::Error::InvalidParameterCount(1, 2))
        ));
        insert
            .execute(&[ValueRef::Integer(4), ValueRef::from("d")])
            .unwrap();
        let names: Vec<String> = conn
            .prepare("SELECT name FROM t ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(names, ["a", "d"]);
    }

    #[test]
    fn a_statement_that_does_not_compile_is_an_error() {
        let conn = table();
        let err = BorrowingStatement::prepare(&conn, "INSERT INTO nowhere VALUES (?1)")
            .err()
            .expect("no such table");
        assert!(err.to_string().contains("nowhere"), "{err}");
        let err = BorrowingStatement::prepare(&conn, "  -- nothing\n")
            .err()
            .expect("no statement");
        assert!(err.to_string().contains("no statement"), "{err}");
    }
}

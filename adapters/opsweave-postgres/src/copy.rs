//! Rows written with `COPY … FROM STDIN (FORMAT binary)`.
//!
//! For rows that must not exist yet, `COPY` is the cheapest write PostgreSQL has: it fills heap
//! pages many rows at a time (one WAL record per page, not per row) and reads each value once,
//! where `INSERT … SELECT FROM UNNEST(…)` first decodes every array and, with `ON CONFLICT`,
//! inserts each row speculatively. Measured in-server on 200,000 rows: records 5.2 s instead of
//! 6.7–7.4 s with `ON CONFLICT`, tasks 2.1 s instead of 2.6 s. Values are encoded by
//! sqlx's own `Encode` implementations (the binary form `COPY` reads is the one bind parameters
//! use); only the framing (signature, field counts, lengths, trailer) is written here.

use crate::error::map;
use opsweave_core::{Error, Result};
use sqlx::encode::IsNull;
use sqlx::postgres::{PgArgumentBuffer, PgConnection, Postgres};
use sqlx::Encode;

/// The binary `COPY` signature, then the flags field and the header-extension length (both 0).
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Rows in `COPY`'s binary format, built in memory and sent in one go.
pub(crate) struct CopyRows {
    buf: PgArgumentBuffer,
    columns: i16,
    /// Fields written in the current row, to catch a row with too few or too many.
    fields: i16,
}

impl CopyRows {
    /// An empty set of rows with `columns` fields each.
    pub(crate) fn new(columns: i16) -> Self {
        let mut buf = PgArgumentBuffer::default();
        buf.extend_from_slice(HEADER);
        Self {
            buf,
            columns,
            fields: columns,
        }
    }

    /// Starts a row; `field` must follow once per column, in the statement's column order.
    pub(crate) fn row(&mut self) {
        debug_assert_eq!(self.fields, self.columns, "the previous row is incomplete");
        self.buf.extend_from_slice(&self.columns.to_be_bytes());
        self.fields = 0;
    }

    /// Appends one field of the current row (`None` writes NULL).
    pub(crate) fn field<'q, T: Encode<'q, Postgres>>(&mut self, value: &T) -> Result<()> {
        self.fields += 1;
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        let len = match value.encode_by_ref(&mut self.buf) {
            Ok(IsNull::No) => i32::try_from(self.buf.len() - start - 4).map_err(|_| {
                Error::invalid("postgres: a value is larger than PostgreSQL's 1 GiB field limit")
            })?,
            Ok(IsNull::Yes) => -1,
            Err(e) => return Err(Error::internal(format!("postgres: encoding a value: {e}"))),
        };
        self.buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }

    /// Sends the rows with `statement` (`COPY table (columns) FROM STDIN (FORMAT binary)`); `what`
    /// names the rows in errors. Returns the rows written.
    pub(crate) async fn send(
        mut self,
        conn: &mut PgConnection,
        statement: &str,
        what: &str,
    ) -> Result<u64> {
        debug_assert_eq!(self.fields, self.columns, "the last row is incomplete");
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        let context = format!("write {what}");
        let mut copy = conn
            .copy_in_raw(statement)
            .await
            .map_err(|e| map(&context, e))?;
        copy.send(self.buf.as_slice())
            .await
            .map_err(|e| map(&context, e))?;
        copy.finish().await.map_err(|e| map(&context, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_framed_as_postgresql_reads_them() {
        let mut rows = CopyRows::new(2);
        rows.row();
        rows.field(&7i64).unwrap();
        rows.field(&Some("ab")).unwrap();
        rows.row();
        rows.field(&-1i64).unwrap();
        rows.field(&None::<&str>).unwrap();
        let mut expected = HEADER.to_vec();
        expected.extend_from_slice(&[
            0, 2, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 2, b'a', b'b',
        ]);
        expected.extend_from_slice(&[0, 2, 0, 0, 0, 8]);
        expected.extend_from_slice(&[0xff; 8]);
        expected.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(rows.buf.as_slice(), expected.as_slice());
        assert_eq!(HEADER.len(), 19);
    }
}

//! Multi-row INSERTs: each table described once, each statement sized to
//! what the server takes.
//!
//! A [`Table`] names the columns a row binds, in order; the statement's
//! text and its column count both come from it. [`insert`] sends the rows
//! in as few statements as fit under MySQL's placeholder limit, a row
//! count, and the server's max_allowed_packet as last read
//! ([`PacketLimit`]); a row that cannot fit on its own is
//! [`WriteError::TooLarge`] before MySQL sees it (issue 11: a 31 MB process
//! list dropped the connection, and the sink retried it forever).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use sqlx::mysql::{MySql, MySqlConnection};
use sqlx::query_builder::Separated;
use sqlx::QueryBuilder;

use super::error::{At as _, WriteError};

/// MySQL's limit on placeholders in one statement is 65,535.
const MAX_PARAMS: usize = 60_000;
const MAX_ROWS: usize = 1_000;
/// Bytes of variable-size values (JSON) a multi-row statement aims at:
/// larger statements gain nothing and hold locks longer. One row may be
/// larger, up to what the server takes ([`PacketLimit::row_budget`]).
const MAX_STATEMENT_BYTES: usize = 4 << 20;
/// The protocol's framing, the statement's text and the fixed-size values
/// around the variable ones, kept free in every packet.
const PACKET_HEADROOM: usize = 64 << 10;
/// What a row is counted as per column, unless its table says more: more
/// than any fixed-size value or string cut to its column takes.
const BYTES_PER_COLUMN: usize = 200;

/// A table rows are inserted into.
pub(super) struct Table {
    /// `INSERT` or `REPLACE`.
    pub verb: &'static str,
    pub name: &'static str,
    /// Comma-separated, in the order a row binds its values.
    pub columns: &'static str,
    /// After the rows: what becomes of a row already there (empty for
    /// REPLACE).
    pub on_duplicate: &'static str,
}

impl Table {
    /// `INSERT INTO name (a, b, ...) `, the text before the rows.
    fn head(&self) -> String {
        format!("{} INTO {} ({}) ", self.verb, self.name, self.columns)
    }

    /// How many values a row binds.
    fn width(&self) -> usize {
        self.columns.split(',').count()
    }

    /// What [`insert`] counts a row of this table as.
    pub fn row_bytes(&self) -> usize {
        self.width() * BYTES_PER_COLUMN
    }
}

/// The server's max_allowed_packet, as last read: at the first write, and
/// by every probe (a failed write is followed by one, and a reconnect by a
/// failed write), so a server restarted with another value is followed.
#[derive(Debug, Clone, Default)]
pub(crate) struct PacketLimit(Arc<AtomicUsize>);

impl PacketLimit {
    /// The packet size in bytes; 0 until read.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    pub(super) fn set(&self, bytes: u64) {
        let bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
        self.0.store(bytes, Ordering::Relaxed);
    }

    /// Reads the server's value on `conn`.
    pub(super) async fn read(&self, conn: &mut MySqlConnection) -> Result<(), sqlx::Error> {
        let bytes = sqlx::query_scalar::<_, u64>("SELECT @@max_allowed_packet")
            .fetch_one(conn)
            .await?;
        self.set(bytes);
        Ok(())
    }

    /// Most bytes of values one row may bring to a statement.
    fn row_budget(&self) -> usize {
        let packet = self.get();
        packet
            .saturating_sub(packet / 8)
            .saturating_sub(PACKET_HEADROOM)
    }

    /// Most bytes of values a multi-row statement gathers.
    fn statement_budget(&self) -> usize {
        self.row_budget().min(MAX_STATEMENT_BYTES)
    }
}

/// Inserts `rows` into `table`, in statements of as many rows as fit;
/// `size` says how many bytes of values a row brings ([`Table::row_bytes`]
/// for rows of fixed-size values and cut strings), and `bind` binds one
/// row's values in the order of the table's columns.
pub(super) async fn insert<'q, T>(
    conn: &mut MySqlConnection,
    packet: &PacketLimit,
    table: &Table,
    rows: &'q [T],
    size: impl Fn(&T) -> usize,
    bind: impl Fn(&mut Separated<'_, 'q, MySql, &'static str>, &'q T),
) -> Result<(), WriteError> {
    let head = table.head();
    let most_rows = (MAX_PARAMS / table.width()).min(MAX_ROWS);
    let (row_budget, statement_budget) = (packet.row_budget(), packet.statement_budget());
    let mut rest = rows;
    while !rest.is_empty() {
        let mut bytes = size(&rest[0]);
        if bytes > row_budget {
            return Err(WriteError::TooLarge {
                at: table.name,
                bytes,
                budget: row_budget,
                packet: packet.get(),
            });
        }
        let mut n = 1;
        while n < rest.len() && n < most_rows && bytes + size(&rest[n]) <= statement_budget {
            bytes += size(&rest[n]);
            n += 1;
        }
        let (part, tail_rows) = rest.split_at(n);
        let mut query = QueryBuilder::<'q, MySql>::new(&head);
        query.push_values(part, |mut b, row| bind(&mut b, row));
        query.push(table.on_duplicate);
        query.build().execute(&mut *conn).await.at(table.name)?;
        rest = tail_rows;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_is_written_from_its_table() {
        let table = Table {
            verb: "REPLACE",
            name: "process_lists",
            columns: "host, boot, seq",
            on_duplicate: "",
        };
        assert_eq!(
            table.head(),
            "REPLACE INTO process_lists (host, boot, seq) "
        );
        assert_eq!(table.row_bytes(), 3 * BYTES_PER_COLUMN);
    }

    #[test]
    fn budgets_follow_the_servers_packet() {
        let packet = PacketLimit::default();
        assert_eq!(packet.row_budget(), 0, "nothing fits before it is read");
        packet.set(16 << 20);
        assert_eq!(packet.row_budget(), (14 << 20) - PACKET_HEADROOM);
        assert_eq!(packet.statement_budget(), MAX_STATEMENT_BYTES);
        packet.set(1 << 20);
        assert_eq!(packet.statement_budget(), (7 << 17) - PACKET_HEADROOM);
    }
}

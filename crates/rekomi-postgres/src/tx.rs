//! The shared part of the repositories of one transaction, the PostgreSQL adapter's kernel:
//! [`PgTx`] wraps the connection that [`crate::PgStore`] checked out and opened a transaction
//! on. Each capability's module (`orgs`, `programs`, ...) implements its repository trait for
//! `PgTx` with what is here: [`PgTx::read`], [`PgTx::write`] and [`PgTx::guarded_write`], the
//! savepoints of the port's `Tx`, row decoding, batch sizes, and the query macros.
//!
//! Every query names the organization it is scoped to; lists are keyset-paginated on the
//! time-ordered id (`id < $after ORDER BY id DESC LIMIT $fetch_limit`), never OFFSET.

use diesel::prelude::*;
use diesel::result::QueryResult;
use diesel::sql_types::Text;
use rekomi_domain::ports::store::{Savepoints, StoreError, Tx};

use crate::error::{from_diesel, is_server_error};

diesel::define_sql_function!(
    /// SQL `lower(text)`, so a lookup compares the same expression as a `lower(..)` index
    /// (link slugs, customer emails) and uses it.
    fn lower(x: Text) -> Text
);

/// One connection inside one open transaction.
pub(crate) struct PgTx<'c> {
    conn: &'c mut PgConnection,
    /// The first statement PostgreSQL refused outside a savepoint. After it the server has
    /// aborted the transaction and would silently turn a `COMMIT` into a rollback, so
    /// [`crate::PgStore`] must not report a commit.
    aborted_by: Option<String>,
}

impl<'c> PgTx<'c> {
    pub(crate) fn new(conn: &'c mut PgConnection) -> Self {
        Self { conn, aborted_by: None }
    }

    /// Why the transaction can no longer commit, if it cannot.
    pub(crate) fn aborted_by(&self) -> Option<&str> {
        self.aborted_by.as_deref()
    }

    /// Runs a read. A server-side failure aborts the transaction; it is remembered so a work
    /// that swallows the error cannot be reported as committed.
    pub(crate) fn read<T>(&mut self, query: impl FnOnce(&mut PgConnection) -> QueryResult<T>) -> Result<T, StoreError> {
        query(self.conn).map_err(|e| {
            if is_server_error(&e) && self.aborted_by.is_none() {
                self.aborted_by = Some(e.to_string());
            }
            from_diesel(e)
        })
    }

    /// Runs a write that no constraint a use case handles can refuse: a failure is as fatal
    /// as a failed read, and the transaction will not commit.
    pub(crate) fn write<T>(&mut self, statement: impl FnOnce(&mut PgConnection) -> QueryResult<T>) -> Result<T, StoreError> {
        self.read(statement)
    }

    /// Runs a write a named constraint may refuse inside a savepoint. PostgreSQL aborts the
    /// whole transaction on any error; the savepoint confines a refused write to itself, so a
    /// use case may catch the `Conflict` (a taken code, say) and carry on in the same
    /// transaction, exactly as it can against the in-memory store. Savepoints cost two round
    /// trips, so only these writes take one.
    pub(crate) fn guarded_write<T>(&mut self, statement: impl FnOnce(&mut PgConnection) -> QueryResult<T>) -> Result<T, StoreError> {
        self.conn.transaction(statement).map_err(from_diesel)
    }
}

impl Savepoints for PgTx<'_> {
    fn savepoint(&mut self, work: &mut dyn FnMut(&mut dyn Tx) -> bool) -> Result<bool, StoreError> {
        if let Some(cause) = &self.aborted_by {
            return Err(StoreError::Unexpected(anyhow::anyhow!("a savepoint was asked for after a statement failed: {cause}")));
        }
        let mut kept = false;
        let result = self.conn.transaction::<(), UndoSavepoint, _>(|conn| {
            let mut inner = PgTx::new(conn);
            // A statement that failed inside (outside any savepoint of its own) aborted only
            // this savepoint: rolling back to it makes the outer transaction usable again.
            kept = work(&mut inner as &mut dyn Tx) && inner.aborted_by.is_none();
            if kept {
                Ok(())
            } else {
                Err(UndoSavepoint::Undo)
            }
        });
        match result {
            Ok(()) | Err(UndoSavepoint::Undo) => Ok(kept),
            Err(UndoSavepoint::Store(e)) => {
                self.aborted_by = Some(e.to_string());
                Err(e)
            }
        }
    }
}

/// Why a savepoint was not released.
enum UndoSavepoint {
    /// The work asked for it to be undone.
    Undo,
    /// Taking, releasing or rolling back the savepoint failed.
    Store(StoreError),
}

impl From<diesel::result::Error> for UndoSavepoint {
    fn from(e: diesel::result::Error) -> Self {
        Self::Store(from_diesel(e))
    }
}

/// Rows per multi-row insert: far below PostgreSQL's 65,535 bind parameters for the widest
/// row, and large enough that a batch of events takes one statement per table.
pub(crate) const INSERT_CHUNK: usize = 500;

/// Decodes rows through the domain's parsers.
pub(crate) fn decode<R, T>(rows: Vec<R>, into_domain: fn(R) -> Result<T, StoreError>) -> Result<Vec<T>, StoreError> {
    rows.into_iter().map(into_domain).collect()
}

/// Keyset pagination on `id`: rows strictly older than the cursor, newest first.
macro_rules! keyset {
    ($query:expr, $table:ident, $page:expr) => {{
        let mut query = $query;
        if let Some(after) = $page.after() {
            query = query.filter($table::id.lt(after));
        }
        query.order($table::id.desc()).limit($page.fetch_limit())
    }};
}
pub(crate) use keyset;

/// One row of a tenant table by organization and id, and the same read holding the row
/// locked (`$lock`: `for_update` or `for_no_key_update`) for read-modify-write use cases. Both
/// come from one definition so the locked read can never drift from the plain one.
/// The domain types are spelled out in full because the macro expands in each capability's
/// module, which need not import them.
macro_rules! get_by_org_and_id {
    ($plain:ident, $locked:ident, $lock:ident, $table:ident, $id:ty, $row:ty, $out:ty $(, $extra:expr)?) => {
        fn $plain(
            &mut self,
            org: ::rekomi_domain::kernel::ids::OrgId,
            id: $id,
        ) -> Result<Option<$out>, ::rekomi_domain::ports::store::StoreError> {
            let row = self.read(|c| {
                $table::table
                    .filter($table::org_id.eq(org.as_uuid()))
                    .filter($table::id.eq(id.as_uuid()))
                    $(.filter($extra))?
                    .select(<$row>::as_select())
                    .first(c)
                    .optional()
            })?;
            row.map(<$row>::into_domain).transpose()
        }

        fn $locked(
            &mut self,
            org: ::rekomi_domain::kernel::ids::OrgId,
            id: $id,
        ) -> Result<Option<$out>, ::rekomi_domain::ports::store::StoreError> {
            let row = self.read(|c| {
                $table::table
                    .filter($table::org_id.eq(org.as_uuid()))
                    .filter($table::id.eq(id.as_uuid()))
                    $(.filter($extra))?
                    .select(<$row>::as_select())
                    .$lock()
                    .first(c)
                    .optional()
            })?;
            row.map(<$row>::into_domain).transpose()
        }
    };
}
pub(crate) use get_by_org_and_id;

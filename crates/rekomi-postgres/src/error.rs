//! Translation of diesel, r2d2 and row-decoding failures into the storage port's
//! [`StoreError`], so nothing outside this crate sees a database type.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use rekomi_domain::ports::store::StoreError;

/// Maps a diesel error: unique and foreign-key violations become `Conflict` with the
/// constraint's name from the migrations, a lost connection becomes `Unavailable`, anything
/// else `Unexpected` with the cause kept for the one log line it gets.
pub(crate) fn from_diesel(err: DieselError) -> StoreError {
    match err {
        DieselError::DatabaseError(kind @ (DatabaseErrorKind::UniqueViolation | DatabaseErrorKind::ForeignKeyViolation), info) => {
            match info.constraint_name() {
                Some(name) => StoreError::Conflict { constraint: name.to_owned() },
                // Every constraint in the migrations is named; a violation without a name means
                // the schema is not the one this adapter was written for.
                None => StoreError::Unexpected(anyhow::anyhow!("{kind:?} without a constraint name: {}", info.message())),
            }
        }
        DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand, info) => {
            StoreError::Unavailable(format!("database connection lost: {}", info.message()))
        }
        other => StoreError::Unexpected(anyhow::Error::new(other)),
    }
}

/// Whether PostgreSQL itself refused a statement, which aborts the enclosing transaction
/// (as opposed to client-side failures such as decoding a column).
pub(crate) fn is_server_error(err: &DieselError) -> bool {
    matches!(err, DieselError::DatabaseError(..))
}

/// The pool could not hand out a connection in time (database down, or every connection
/// busy): the request should be answered with 503 and retried.
pub(crate) fn from_pool(err: &r2d2::Error) -> StoreError {
    StoreError::Unavailable(format!("no database connection available: {err}"))
}

/// A stored row that the domain refuses (a value its `parse` rejects, or a number out of
/// the domain type's range). The data is corrupt or newer than this code: never guess.
pub(crate) fn bad_row(table: &str, column: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Unexpected(anyhow::anyhow!("{table}.{column} holds a value the domain rejects: {detail}"))
}

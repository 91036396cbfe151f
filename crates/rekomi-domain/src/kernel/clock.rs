//! Time as a port, so tests pin exact timestamps.

use time::OffsetDateTime;

/// The source of "now".
pub trait Clock: Send + Sync + 'static {
    /// The current instant, in UTC.
    fn now(&self) -> OffsetDateTime;
}

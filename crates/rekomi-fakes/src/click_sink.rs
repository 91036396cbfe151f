//! [`StoreClickSink`]: the click sink port writing each click straight into an
//! [`InMemoryStore`], so a test sees a click as soon as it is submitted; it sheds on demand.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rekomi_domain::traffic::{Click, ClickSink, SinkFull};

use crate::InMemoryStore;

/// A [`ClickSink`] over an [`InMemoryStore`].
#[derive(Debug)]
pub struct StoreClickSink {
    store: InMemoryStore,
    full: AtomicBool,
    dropped: AtomicU64,
}

impl StoreClickSink {
    /// A sink writing into `store`.
    pub fn new(store: InMemoryStore) -> Self {
        Self { store, full: AtomicBool::new(false), dropped: AtomicU64::new(0) }
    }

    /// While set, every click is refused as if the buffer were full.
    pub fn set_full(&self, full: bool) {
        self.full.store(full, Ordering::SeqCst);
    }

    /// How many clicks were refused.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::SeqCst)
    }
}

impl ClickSink for StoreClickSink {
    fn submit(&self, click: Click) -> Result<(), SinkFull> {
        if self.full.load(Ordering::SeqCst) || self.store.write(|tx| tx.insert_clicks(&[click])).is_err() {
            self.dropped.fetch_add(1, Ordering::SeqCst);
            return Err(SinkFull);
        }
        Ok(())
    }
}

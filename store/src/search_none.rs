//! Without the `search` feature (the fuzz build): no full-text index. `SearchEvents` answers
//! nothing; nothing else changes, since no apply reads the index.

use crate::event_source::EventSource;
use crate::protocol::EventHit;

pub use crate::limits::QUERY_WORDS_MAX;

/// The search index of a [`Machine`](crate::Machine) built without one.
#[derive(Debug, Default)]
pub struct SearchIndex;

impl SearchIndex {
    /// Notes that an event changed: nothing to note.
    pub(crate) fn changed(&mut self, _event_id: &str) {}

    /// No index, no matches.
    pub(crate) fn search(&self, _m: &dyn EventSource, _text: &str, _limit: usize) -> Vec<EventHit> {
        Vec::new()
    }
}

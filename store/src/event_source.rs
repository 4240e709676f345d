//! What the search index reads of the state, so that the index needs nothing else of the
//! machine that holds it.

use std::collections::BTreeMap;

use crate::types::{Dt, Event, Venue};

/// The events, their dts and venues, as the search index reads them.
// A build without the `search` feature has an index that reads nothing.
#[cfg_attr(not(feature = "search"), allow(dead_code))]
pub(crate) trait EventSource {
    /// Every event, by id.
    fn events(&self) -> &BTreeMap<String, Event>;
    /// A venue by id.
    fn venue(&self, venue_id: &str) -> Option<&Venue>;
    /// The dts of an event, by dt id.
    fn dts_of_event(&self, event_id: &str) -> Vec<&Dt>;
}

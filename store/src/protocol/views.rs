//! The shapes of availability, search hits and orders that queries answer.

use serde::{Deserialize, Serialize};

use crate::types::{Event, Order, Ticket};

/// One answer of [`Query::BrowseEvents`](super::Query::BrowseEvents).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventHit {
    /// The event.
    pub event: Event,
    /// Its first matching dt.
    pub dt_id: String,
    /// That dt's start.
    pub starts_at_ms: i64,
    /// That dt's venue.
    pub venue_id: String,
    /// Distance from the filter's point, when one was given.
    pub distance_m: Option<u32>,
}

/// Availability of one tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierAvailability {
    /// Tier id.
    pub tier_id: String,
    /// Display name.
    pub name: String,
    /// Price in minor units.
    pub price_minor: i64,
    /// Platform fee per ticket at the seller's current rate.
    pub fee_minor: i64,
    /// Currency.
    pub currency: String,
    /// Seats and places.
    pub capacity: u32,
    /// Neither held nor sold.
    pub available: u32,
    /// In live holds.
    pub held: u32,
    /// Sold.
    pub sold: u32,
}

/// Availability of one GA area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GaAvailability {
    /// Area id.
    pub area_id: String,
    /// Covering tier id, if any.
    pub tier_id: Option<String>,
    /// Capacity.
    pub capacity: u32,
    /// Places neither held nor sold.
    pub available: u32,
}

/// A dt's availability, compact: a 100k-seat stadium is 25 kB of seat states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatMapView {
    /// The dt.
    pub dt_id: String,
    /// Its venue (the layout with coordinates comes from [`Query::GetVenueLayout`](super::Query::GetVenueLayout)).
    pub venue_id: String,
    /// Per tier.
    pub tiers: Vec<TierAvailability>,
    /// Per GA area.
    pub ga: Vec<GaAvailability>,
    /// Number of seats.
    pub seat_count: u32,
    /// Two bits per seat, four seats per byte, seat 0 in the low bits: 0 free, 1 held,
    /// 2 sold, 3 not for sale.
    pub seat_states: Vec<u8>,
    /// Which tier each seat is in, as runs `(first seat, length, tier index)`; tier index 63
    /// means no tier.
    pub seat_tiers: Vec<(u32, u32, u8)>,
}

/// An order with its tickets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderView {
    /// The order.
    pub order: Order,
    /// Its tickets.
    pub tickets: Vec<Ticket>,
}

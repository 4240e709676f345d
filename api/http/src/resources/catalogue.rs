//! Venues, events, dts and seat maps: what a seller creates and a buyer browses.

use serde::{Deserialize, Serialize};
use ticketd_store::command::{EventHit, SeatMapView};
use ticketd_store::types as st;
use utoipa::ToSchema;

use super::{rfc3339, EXAMPLE_TIME};

/// One seat of a row: its number and where it is drawn.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Seat {
    /// As printed on the ticket.
    pub number: String,
    /// Drawing position.
    pub x: i32,
    /// Drawing position.
    pub y: i32,
}

/// A row of seats.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Row {
    /// As printed on the ticket.
    pub label: String,
    /// Its seats, in seat-index order.
    pub seats: Vec<Seat>,
}

/// A section of rows.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// Its id, unique in the venue.
    pub section_id: String,
    /// Its name.
    pub name: String,
    /// Its rows.
    pub rows: Vec<Row>,
}

/// A general-admission area: places without seats.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GaArea {
    /// Its id, unique in the venue.
    pub area_id: String,
    /// Its name (the label of its tickets).
    pub name: String,
    /// Places.
    pub capacity: u32,
}

/// A venue's seats: sections of rows, then general-admission areas. Seat indexes count the
/// seats in this order (section by section, row by row), from 0.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"sections": [{"section_id": "A", "name": "Stalls", "rows": [
    {"label": "1", "seats": [{"number": "1", "x": 0, "y": 0}, {"number": "2", "x": 1, "y": 0}]}]}],
    "ga_areas": [{"area_id": "floor", "name": "Floor", "capacity": 200}]}))]
pub struct SeatingMap {
    /// Seated sections.
    #[serde(default)]
    pub sections: Vec<Section>,
    /// General-admission areas.
    #[serde(default)]
    pub ga_areas: Vec<GaArea>,
}

impl From<st::SeatingMap> for SeatingMap {
    fn from(m: st::SeatingMap) -> Self {
        let seat = |s: st::SeatDef| Seat {
            number: s.number,
            x: s.x,
            y: s.y,
        };
        let row = |r: st::RowDef| Row {
            label: r.label,
            seats: r.seats.into_iter().map(seat).collect(),
        };
        Self {
            sections: m
                .sections
                .into_iter()
                .map(|s| Section {
                    section_id: s.section_id,
                    name: s.name,
                    rows: s.rows.into_iter().map(row).collect(),
                })
                .collect(),
            ga_areas: m
                .ga_areas
                .into_iter()
                .map(|a| GaArea {
                    area_id: a.area_id,
                    name: a.name,
                    capacity: a.capacity,
                })
                .collect(),
        }
    }
}

impl From<SeatingMap> for st::SeatingMap {
    fn from(m: SeatingMap) -> Self {
        let seat = |s: Seat| st::SeatDef {
            number: s.number,
            x: s.x,
            y: s.y,
        };
        let row = |r: Row| st::RowDef {
            label: r.label,
            seats: r.seats.into_iter().map(seat).collect(),
        };
        Self {
            sections: m
                .sections
                .into_iter()
                .map(|s| st::SectionDef {
                    section_id: s.section_id,
                    name: s.name,
                    rows: s.rows.into_iter().map(row).collect(),
                })
                .collect(),
            ga_areas: m
                .ga_areas
                .into_iter()
                .map(|a| st::GaAreaDef {
                    area_id: a.area_id,
                    name: a.name,
                    capacity: a.capacity,
                })
                .collect(),
        }
    }
}

/// A venue: where it is and its seats.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"venue_id": "v-3f1c9a", "name": "Vega", "city": "Copenhagen",
    "address": "Enghavevej 40", "lat": 55.6675, "lon": 12.5449, "seat_count": 2,
    "seating_map": {"sections": [{"section_id": "A", "name": "Stalls", "rows": [{"label": "1",
    "seats": [{"number": "1", "x": 0, "y": 0}, {"number": "2", "x": 1, "y": 0}]}]}], "ga_areas": []}}))]
pub struct Venue {
    /// Its id.
    pub venue_id: String,
    /// Its name.
    pub name: String,
    /// Its city.
    pub city: String,
    /// Its street address; null before its layout is set.
    pub address: Option<String>,
    /// Latitude, degrees; null before its layout is set.
    pub lat: Option<f64>,
    /// Longitude, degrees; null before its layout is set.
    pub lon: Option<f64>,
    /// Seats in the map (general-admission places not counted).
    pub seat_count: u64,
    /// Its seats.
    pub seating_map: SeatingMap,
}

impl Venue {
    /// A venue and its layout, when it has one.
    pub fn of(v: st::Venue, layout: Option<st::VenueLayout>) -> Self {
        let seat_count = layout.as_ref().map_or(0, |l| l.seating_map.seat_count());
        Self {
            venue_id: v.venue_id,
            name: v.name,
            city: v.city,
            address: layout.as_ref().map(|l| l.address.clone()),
            lat: layout.as_ref().map(|l| f64::from(l.geo.lat_e6) / 1e6),
            lon: layout.as_ref().map(|l| f64::from(l.geo.lon_e6) / 1e6),
            seat_count,
            seating_map: layout.map(|l| l.seating_map.into()).unwrap_or_default(),
        }
    }
}

/// An event: a show that has dates and times (dts).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"event_id": "e-9a02f1", "seller_id": "u-77ab10", "title": "Comedy Club",
    "description": "Stand-up, every Friday", "category": "comedy", "performers": ["Anna Lund"],
    "popularity": 120}))]
pub struct Event {
    /// Its id.
    pub event_id: String,
    /// The seller who sells it.
    pub seller_id: String,
    /// Its title.
    pub title: String,
    /// Its description.
    pub description: String,
    /// Its category (`concert`, `comedy`, `sports`, ...).
    pub category: String,
    /// Who performs.
    pub performers: Vec<String>,
    /// Tickets sold over its dts: the browse order.
    pub popularity: u64,
}

impl From<st::Event> for Event {
    fn from(e: st::Event) -> Self {
        Self {
            event_id: e.event_id,
            seller_id: e.seller_id,
            title: e.title,
            description: e.description,
            category: e.category,
            performers: e.performers,
            popularity: e.popularity,
        }
    }
}

/// A browse or search hit: an event and its next dt.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventSummary {
    /// The event.
    #[serde(flatten)]
    pub event: Event,
    /// Its next dt on sale.
    pub dt_id: String,
    /// When that dt starts.
    #[schema(format = DateTime, example = "2027-06-01T19:30:00Z")]
    pub starts_at: String,
    /// Where.
    pub venue_id: String,
    /// Meters from the point searched near; null without one.
    pub distance_m: Option<u32>,
}

impl From<EventHit> for EventSummary {
    fn from(h: EventHit) -> Self {
        Self {
            event: h.event.into(),
            dt_id: h.dt_id,
            starts_at: rfc3339(h.starts_at_ms),
            venue_id: h.venue_id,
            distance_m: h.distance_m,
        }
    }
}

/// A page of events, most popular first (nearest first near a point).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"events": [{"event_id": "e-9a02f1", "seller_id": "u-77ab10",
    "title": "Comedy Club", "description": "Stand-up, every Friday", "category": "comedy",
    "performers": ["Anna Lund"], "popularity": 120, "dt_id": "d-51c2e0",
    "starts_at": EXAMPLE_TIME, "venue_id": "v-3f1c9a", "distance_m": 1200}],
    "next_cursor": "o20"}))]
pub struct EventPage {
    /// The events of this page.
    pub events: Vec<EventSummary>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// Seats by index, from `start` (included) to `end` (excluded).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeatRange {
    /// First seat index.
    pub start: u32,
    /// One past the last.
    pub end: u32,
}

/// A price tier as a seller defines it: its seats (sections, index ranges) and GA areas.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"tier_id": "front", "name": "Front", "price_minor": 45000,
    "currency": "DKK", "sections": ["A"], "seat_ranges": [], "ga_areas": []}))]
pub struct TierSpec {
    /// Its id, unique in the dt.
    pub tier_id: String,
    /// Its name.
    pub name: String,
    /// Face value, minor units, fees not included.
    pub price_minor: i64,
    /// ISO 4217.
    pub currency: String,
    /// Whole sections in the tier.
    #[serde(default)]
    pub sections: Vec<String>,
    /// Seat index ranges in the tier.
    #[serde(default)]
    pub seat_ranges: Vec<SeatRange>,
    /// General-admission areas in the tier.
    #[serde(default)]
    pub ga_areas: Vec<String>,
}

impl From<TierSpec> for st::TierSpec {
    fn from(t: TierSpec) -> Self {
        Self {
            tier_id: t.tier_id,
            name: t.name,
            price_minor: t.price_minor,
            currency: t.currency,
            sections: t.sections,
            seat_ranges: t
                .seat_ranges
                .into_iter()
                .map(|r| st::SeatRange {
                    start: r.start,
                    end: r.end,
                })
                .collect(),
            ga_areas: t.ga_areas,
        }
    }
}

impl From<st::TierSpec> for TierSpec {
    fn from(t: st::TierSpec) -> Self {
        Self {
            tier_id: t.tier_id,
            name: t.name,
            price_minor: t.price_minor,
            currency: t.currency,
            sections: t.sections,
            seat_ranges: t
                .seat_ranges
                .into_iter()
                .map(|r| SeatRange {
                    start: r.start,
                    end: r.end,
                })
                .collect(),
            ga_areas: t.ga_areas,
        }
    }
}

/// A tier of a dt: its definition and how many seats and places it has.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Tier {
    /// Its id, unique in the dt.
    pub tier_id: String,
    /// Its name.
    pub name: String,
    /// Face value, minor units, fees not included.
    pub price_minor: i64,
    /// ISO 4217.
    pub currency: String,
    /// Whole sections in the tier.
    pub sections: Vec<String>,
    /// Seat index ranges in the tier.
    pub seat_ranges: Vec<SeatRange>,
    /// General-admission areas in the tier.
    pub ga_areas: Vec<String>,
    /// Seats and places in it.
    pub capacity: u32,
}

impl From<st::Tier> for Tier {
    fn from(t: st::Tier) -> Self {
        let spec = TierSpec::from(t.spec);
        Self {
            tier_id: spec.tier_id,
            name: spec.name,
            price_minor: spec.price_minor,
            currency: spec.currency,
            sections: spec.sections,
            seat_ranges: spec.seat_ranges,
            ga_areas: spec.ga_areas,
            capacity: t.capacity,
        }
    }
}

/// Where a dt is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DtStatus {
    /// Not on sale yet: the seller still edits it.
    Draft,
    /// On sale within its window.
    Published,
    /// Called off; its orders are being canceled and refunded.
    Canceling,
    /// Called off; every order canceled.
    Canceled,
}

impl From<st::DtStatus> for DtStatus {
    fn from(s: st::DtStatus) -> Self {
        match s {
            st::DtStatus::Draft => Self::Draft,
            st::DtStatus::Published => Self::Published,
            st::DtStatus::Canceling => Self::Canceling,
            st::DtStatus::Canceled => Self::Canceled,
        }
    }
}

/// A dt: one date and time of an event at a venue, with its tiers and sale window.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"dt_id": "d-51c2e0", "event_id": "e-9a02f1", "venue_id": "v-3f1c9a",
    "status": "published", "starts_at": EXAMPLE_TIME, "time_zone": "Europe/Copenhagen",
    "sale_starts_at": "2027-03-01T10:00:00Z", "sale_ends_at": "2027-06-01T18:30:00Z",
    "tiers": [{"tier_id": "front", "name": "Front", "price_minor": 45000, "currency": "DKK",
    "sections": ["A"], "seat_ranges": [], "ga_areas": [], "capacity": 2}]}))]
pub struct Dt {
    /// Its id.
    pub dt_id: String,
    /// Its event.
    pub event_id: String,
    /// Its venue.
    pub venue_id: String,
    /// Where it is in its life.
    pub status: DtStatus,
    /// When it starts.
    #[schema(format = DateTime)]
    pub starts_at: String,
    /// The venue's IANA time zone, for showing local times.
    pub time_zone: String,
    /// When the sale opens.
    #[schema(format = DateTime)]
    pub sale_starts_at: String,
    /// When the sale closes.
    #[schema(format = DateTime)]
    pub sale_ends_at: String,
    /// Its price tiers.
    pub tiers: Vec<Tier>,
}

impl From<st::Dt> for Dt {
    fn from(d: st::Dt) -> Self {
        Self {
            dt_id: d.dt_id,
            event_id: d.event_id,
            venue_id: d.venue_id,
            status: d.status.into(),
            starts_at: rfc3339(d.starts_at_ms),
            time_zone: d.time_zone,
            sale_starts_at: rfc3339(d.sale_starts_at_ms),
            sale_ends_at: rfc3339(d.sale_ends_at_ms),
            tiers: d.tiers.into_iter().map(Tier::from).collect(),
        }
    }
}

/// An event's dts.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"dts": [{"dt_id": "d-51c2e0", "event_id": "e-9a02f1",
    "venue_id": "v-3f1c9a", "status": "published", "starts_at": EXAMPLE_TIME,
    "time_zone": "Europe/Copenhagen", "sale_starts_at": "2027-03-01T10:00:00Z",
    "sale_ends_at": "2027-06-01T18:30:00Z", "tiers": []}]}))]
pub struct DtList {
    /// Soonest first.
    pub dts: Vec<Dt>,
}

/// A tier's seats and places now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TierAvailability {
    /// The tier.
    pub tier_id: String,
    /// Its name.
    pub name: String,
    /// Face value, minor units.
    pub price_minor: i64,
    /// The platform's fee per ticket, minor units.
    pub fee_minor: i64,
    /// ISO 4217.
    pub currency: String,
    /// Seats and places.
    pub capacity: u32,
    /// Free now.
    pub available: u32,
    /// In live holds.
    pub held: u32,
    /// Sold.
    pub sold: u32,
}

/// A general-admission area's places now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GaAvailability {
    /// The area.
    pub area_id: String,
    /// Its tier; null when in none (not for sale).
    pub tier_id: Option<String>,
    /// Places.
    pub capacity: u32,
    /// Free now.
    pub available: u32,
}

/// Consecutive seats of one tier.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TierRun {
    /// First seat index.
    pub first_seat: u32,
    /// Seats in the run.
    pub length: u32,
    /// Their tier; null when in none (not for sale).
    pub tier_id: Option<String>,
}

/// Live availability of a dt's seats.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SeatMap {
    /// The dt.
    pub dt_id: String,
    /// Its venue (GET /v1/venues/{venue_id} draws the seats).
    pub venue_id: String,
    /// Seats (general-admission places not counted).
    pub seat_count: u32,
    /// One character per seat, by seat index: `f` free, `h` held, `s` sold, `x` not for sale.
    #[schema(pattern = "^[fhsx]*$", example = "ffhsx")]
    pub seat_states: String,
    /// Which tier each seat is in.
    pub tier_runs: Vec<TierRun>,
    /// Each tier's counts and prices.
    pub tiers: Vec<TierAvailability>,
    /// Each general-admission area's counts.
    pub ga: Vec<GaAvailability>,
}

impl SeatMap {
    /// The store's view, with tier indexes named by `dt`'s tiers.
    pub fn of(v: SeatMapView, dt: &st::Dt) -> Self {
        let count = v.seat_count as usize;
        let seat_states = v
            .seat_states
            .iter()
            .flat_map(|b| [0u8, 2, 4, 6].map(|shift| (b >> shift) & 3))
            .take(count)
            .map(|s| match s {
                0 => 'f',
                1 => 'h',
                2 => 's',
                _ => 'x',
            })
            .collect();
        let tier_id = |i: u8| dt.tiers.get(usize::from(i)).map(|t| t.spec.tier_id.clone());
        Self {
            dt_id: v.dt_id,
            venue_id: v.venue_id,
            seat_count: v.seat_count,
            seat_states,
            tier_runs: v
                .seat_tiers
                .into_iter()
                .map(|(first_seat, length, tier)| TierRun {
                    first_seat,
                    length,
                    tier_id: tier_id(tier),
                })
                .collect(),
            tiers: v
                .tiers
                .into_iter()
                .map(|t| TierAvailability {
                    tier_id: t.tier_id,
                    name: t.name,
                    price_minor: t.price_minor,
                    fee_minor: t.fee_minor,
                    currency: t.currency,
                    capacity: t.capacity,
                    available: t.available,
                    held: t.held,
                    sold: t.sold,
                })
                .collect(),
            ga: v
                .ga
                .into_iter()
                .map(|g| GaAvailability {
                    area_id: g.area_id,
                    tier_id: g.tier_id,
                    capacity: g.capacity,
                    available: g.available,
                })
                .collect(),
        }
    }
}

/// A dt with its live seat map.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"dt": {"dt_id": "d-51c2e0", "event_id": "e-9a02f1",
    "venue_id": "v-3f1c9a", "status": "published", "starts_at": EXAMPLE_TIME,
    "time_zone": "Europe/Copenhagen", "sale_starts_at": "2027-03-01T10:00:00Z",
    "sale_ends_at": "2027-06-01T18:30:00Z", "tiers": [{"tier_id": "front", "name": "Front",
    "price_minor": 45000, "currency": "DKK", "sections": ["A"], "seat_ranges": [],
    "ga_areas": [], "capacity": 2}]},
    "seat_map": {"dt_id": "d-51c2e0", "venue_id": "v-3f1c9a", "seat_count": 2,
    "seat_states": "fh", "tier_runs": [{"first_seat": 0, "length": 2, "tier_id": "front"}],
    "tiers": [{"tier_id": "front", "name": "Front", "price_minor": 45000, "fee_minor": 4500,
    "currency": "DKK", "capacity": 2, "available": 1, "held": 1, "sold": 0}], "ga": []}}))]
pub struct DtWithSeatMap {
    /// The dt.
    pub dt: Dt,
    /// Its seats now.
    pub seat_map: SeatMap,
}

/// A dt called off, and what that did.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"dt": {"dt_id": "d-51c2e0", "event_id": "e-9a02f1",
    "venue_id": "v-3f1c9a", "status": "canceling", "starts_at": EXAMPLE_TIME,
    "time_zone": "Europe/Copenhagen", "sale_starts_at": "2027-03-01T10:00:00Z",
    "sale_ends_at": "2027-06-01T18:30:00Z", "tiers": []}, "holds_released": 3,
    "orders_canceled": 12}))]
pub struct DtCancellation {
    /// The dt now.
    pub dt: Dt,
    /// Live holds whose seats went back.
    pub holds_released: u32,
    /// Orders canceled (each refunded through the outbox).
    pub orders_canceled: u32,
}

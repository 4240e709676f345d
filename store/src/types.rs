//! The entities of the ticket domain, as stored and as answered by queries.
//!
//! Every type here is part of the persisted format (postcard in the `sm_*` column families) and
//! of query answers (JSON on the wire), so fields are only ever added, with `#[serde(default)]`.
//! Money is integer minor units with an ISO 4217 code; time is Unix milliseconds of log time;
//! geo points are micro-degrees so that commands stay `Eq` and apply stays free of floats.

use serde::{Deserialize, Serialize};

/// A point on Earth in micro-degrees (1e-6 degree, about 11 cm at the equator).
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeoPoint {
    /// Latitude in micro-degrees, -90e6..=90e6.
    pub lat_e6: i32,
    /// Longitude in micro-degrees, -180e6..=180e6.
    pub lon_e6: i32,
}

/// One seat of a row, with where to draw it.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatDef {
    /// The number printed on the seat ("12", "12A").
    pub number: String,
    /// Drawing x coordinate, in the map's own units.
    pub x: i32,
    /// Drawing y coordinate, in the map's own units.
    pub y: i32,
}

/// A row of seats; seats in a row are adjacent in the order given.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowDef {
    /// Row label ("A", "12").
    pub label: String,
    /// Seats from one aisle to the other.
    pub seats: Vec<SeatDef>,
}

/// A section of a seating map.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionDef {
    /// Unique within the venue.
    pub section_id: String,
    /// Display name.
    pub name: String,
    /// Rows, best first.
    pub rows: Vec<RowDef>,
}

/// A general-admission area: no seats, a capacity.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GaAreaDef {
    /// Unique within the venue.
    pub area_id: String,
    /// Display name.
    pub name: String,
    /// How many people it admits.
    pub capacity: u32,
}

/// The seating map of a venue. Seats are numbered by a flat *seat index*: sections in order,
/// rows in order, seats in order, starting at 0. Commands and seat maps name seats by index.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatingMap {
    /// Seated sections.
    pub sections: Vec<SectionDef>,
    /// General-admission areas.
    pub ga_areas: Vec<GaAreaDef>,
}

impl SeatingMap {
    /// Number of seats (not counting general admission).
    pub fn seat_count(&self) -> u64 {
        self.sections
            .iter()
            .flat_map(|s| &s.rows)
            .map(|r| r.seats.len() as u64)
            .sum()
    }

    /// Human label of a seat index: "section row seat", or None out of range.
    pub fn seat_label(&self, index: u32) -> Option<String> {
        let mut i = index as usize;
        for s in &self.sections {
            for r in &s.rows {
                match r.seats.get(i) {
                    Some(seat) => {
                        return Some(format!("{} {} {}", s.section_id, r.label, seat.number))
                    }
                    None => i = i.saturating_sub(r.seats.len()),
                }
            }
        }
        None
    }
}

/// A venue: the basic record (kept small and stable; other crates construct it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Venue {
    /// Id.
    pub venue_id: String,
    /// Display name.
    pub name: String,
    /// City.
    pub city: String,
    /// Log index of the command that created it.
    pub created_index: u64,
}

/// Where a venue is and how it is seated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VenueLayout {
    /// The venue.
    pub venue_id: String,
    /// Postal address.
    pub address: String,
    /// Location for "near me".
    pub geo: GeoPoint,
    /// Sections, rows, seats and GA areas.
    pub seating_map: SeatingMap,
    /// Log index of the last change.
    pub updated_index: u64,
}

/// A seller's subscription.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SellerPlan {
    /// The default plan.
    Standard,
    /// The paid plan with advanced services.
    Vip,
}

/// Someone who sells tickets through the platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seller {
    /// Id.
    pub seller_id: String,
    /// Display name.
    pub name: String,
    /// The platform fee charged to buyers on each ticket, in basis points of its price.
    pub fee_bps: u32,
    /// Subscription plan.
    pub plan: SellerPlan,
    /// Log index of the command that created it.
    pub created_index: u64,
}

/// An event: a show that has one or more dates and times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Id.
    pub event_id: String,
    /// Who sells it.
    pub seller_id: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Category ("concert", "sports", ...).
    pub category: String,
    /// Performers.
    pub performers: Vec<String>,
    /// Popularity signal: tickets currently sold (valid or used) over all its dts.
    pub popularity: u64,
    /// Log index of the command that created it.
    pub created_index: u64,
}

/// A half-open range of seat indexes `[start, end)`.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatRange {
    /// First seat index.
    pub start: u32,
    /// One past the last seat index.
    pub end: u32,
}

/// A ticket tier as a seller defines it.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierSpec {
    /// Unique within the dt.
    pub tier_id: String,
    /// Display name.
    pub name: String,
    /// Price of one ticket in minor units.
    pub price_minor: i64,
    /// ISO 4217 code; every tier of a dt has the same.
    pub currency: String,
    /// Whole sections this tier covers.
    pub sections: Vec<String>,
    /// Seat index ranges this tier covers.
    pub seat_ranges: Vec<SeatRange>,
    /// General-admission areas this tier covers (their whole capacity).
    pub ga_areas: Vec<String>,
}

/// A tier of a dt as stored: the spec plus its capacity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier {
    /// What the seller asked for.
    pub spec: TierSpec,
    /// Seats plus GA capacity it covers.
    pub capacity: u32,
}

/// Where a dt is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DtStatus {
    /// Created, not on sale.
    Draft,
    /// Visible and on sale within its sale window.
    Published,
    /// Called off: holds released, tickets canceled.
    Canceled,
    /// Being called off: no longer selling, its holds released and orders canceled a bounded
    /// number per log entry; canceled when none is left.
    Canceling,
}

/// A date and time of an event at a venue (the seed's `event_unique_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dt {
    /// Id.
    pub dt_id: String,
    /// The event.
    pub event_id: String,
    /// The venue.
    pub venue_id: String,
    /// Start instant, Unix ms UTC.
    pub starts_at_ms: i64,
    /// IANA time zone of the venue, for local display ("Europe/Oslo").
    pub time_zone: String,
    /// Ticket tiers; a seat belongs to at most one.
    pub tiers: Vec<Tier>,
    /// Sale opens at (inclusive).
    pub sale_starts_at_ms: i64,
    /// Sale closes at (exclusive).
    pub sale_ends_at_ms: i64,
    /// Life cycle.
    pub status: DtStatus,
    /// Log index of the command that created it.
    pub created_index: u64,
}

/// What one hold item or ticket is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SeatRef {
    /// A reserved seat by seat index.
    Seat(u32),
    /// One place in a general-admission area, by area index in the seating map.
    Ga(u16),
}

/// One seat or GA place of a hold, priced when the hold was placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldItem {
    /// The seat or place.
    pub seat: SeatRef,
    /// Index of its tier in the dt.
    pub tier: u8,
    /// Ticket price in minor units.
    pub price_minor: i64,
    /// Platform fee in minor units.
    pub fee_minor: i64,
}

/// Where a hold is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HoldStatus {
    /// Seats are held.
    Live,
    /// Released by its user (or by a canceled dt) at a log time.
    Released {
        /// When.
        at_ms: i64,
    },
    /// Expired at a log time.
    Expired {
        /// When.
        at_ms: i64,
    },
    /// Turned into an order.
    Purchased {
        /// The order.
        order_id: String,
    },
}

/// Seats taken out of the pool for one user while they pay (the seed's purchase intent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// Minted by the client before proposing.
    pub hold_id: String,
    /// The dt.
    pub dt_id: String,
    /// Who holds.
    pub user_id: String,
    /// Seats and places, priced.
    pub items: Vec<HoldItem>,
    /// Sum of item prices.
    pub subtotal_minor: i64,
    /// Sum of item fees.
    pub fee_minor: i64,
    /// subtotal + fee: what the payment must be.
    pub total_minor: i64,
    /// Currency of the amounts.
    pub currency: String,
    /// Log time when placed.
    pub created_at_ms: i64,
    /// Log time when it lapses unless a payment pins it.
    pub expires_at_ms: i64,
    /// A payment in flight keeps the hold until this log time.
    pub pinned_until_ms: Option<i64>,
    /// The payment in flight, if any.
    pub payment_ref: Option<String>,
    /// Payments started on this hold (bounded).
    pub payment_attempts: u8,
    /// Life cycle.
    pub status: HoldStatus,
}

impl Hold {
    /// The log time at which a live hold lapses: its expiry, or later while a payment pins it.
    pub fn effective_expiry_ms(&self) -> i64 {
        match self.pinned_until_ms {
            Some(p) => p.max(self.expires_at_ms),
            None => self.expires_at_ms,
        }
    }
}

/// Where a payment is in its life, as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentStatus {
    /// Started: the provider authorizes it; the hold is pinned.
    Pending,
    /// Authorized and turned into an order (the caller captures it next).
    Confirmed {
        /// The order it paid for.
        order_id: String,
    },
    /// The provider refused it, or the caller gave up.
    Failed {
        /// Why.
        reason: String,
        /// When.
        at_ms: i64,
    },
}

/// A payment at the provider, known by the provider's reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// The provider's payment-intent id.
    pub payment_ref: String,
    /// The hold it pays for.
    pub hold_id: String,
    /// Who pays.
    pub user_id: String,
    /// Amount in minor units.
    pub amount_minor: i64,
    /// Currency.
    pub currency: String,
    /// Log time when started.
    pub started_at_ms: i64,
    /// Life cycle.
    pub status: PaymentStatus,
}

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderStatus {
    /// Paid, tickets issued.
    Confirmed,
    /// Some tickets refunded.
    PartiallyRefunded,
    /// Every ticket refunded.
    Refunded,
    /// Canceled as a whole.
    Canceled,
}

/// A purchase: the tickets of one hold, paid by one payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Minted by the client before proposing.
    pub order_id: String,
    /// Buyer.
    pub user_id: String,
    /// The event.
    pub event_id: String,
    /// The dt.
    pub dt_id: String,
    /// The hold it came from.
    pub hold_id: String,
    /// The payment.
    pub payment_ref: String,
    /// Tickets, in item order.
    pub ticket_ids: Vec<String>,
    /// Sum of ticket prices.
    pub subtotal_minor: i64,
    /// Sum of ticket fees (platform revenue).
    pub fee_minor: i64,
    /// subtotal + fee: what was paid.
    pub total_minor: i64,
    /// Owed back to the buyer for canceled and refunded tickets.
    pub refunded_minor: i64,
    /// Currency.
    pub currency: String,
    /// Life cycle.
    pub status: OrderStatus,
    /// Log time when confirmed.
    pub created_at_ms: i64,
    /// Log index of the confirming command.
    pub created_index: u64,
}

/// Where a ticket is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TicketStatus {
    /// Admits once.
    Valid,
    /// Admitted.
    Used {
        /// When.
        at_ms: i64,
        /// At which gate.
        gate: String,
    },
    /// Canceled with its order or its dt.
    Canceled {
        /// When.
        at_ms: i64,
    },
    /// Refunded.
    Refunded {
        /// When.
        at_ms: i64,
    },
}

/// The answer to one scan of a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScanVerdict {
    /// Valid until now; now used. The only verdict that admits.
    Admitted,
    /// Used before, at `at_ms` through `gate`.
    AlreadyUsed {
        /// When it was admitted.
        at_ms: i64,
        /// Where.
        gate: String,
    },
    /// Canceled.
    Canceled {
        /// When.
        at_ms: i64,
    },
    /// Refunded.
    Refunded {
        /// When.
        at_ms: i64,
    },
    /// A ticket of another dt.
    WrongDt {
        /// The dt it is for.
        dt_id: String,
    },
    /// No such ticket.
    Unknown,
}

/// One scan of a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanRecord {
    /// Log time.
    pub at_ms: i64,
    /// Gate.
    pub gate: String,
    /// What it answered.
    pub verdict: ScanVerdict,
}

/// An e-ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// `{order_id}-{n}`.
    pub ticket_id: String,
    /// Its order.
    pub order_id: String,
    /// The event.
    pub event_id: String,
    /// The dt.
    pub dt_id: String,
    /// Owner.
    pub user_id: String,
    /// Seat or GA place.
    pub seat: SeatRef,
    /// Printable seat ("A 12 7") or GA area name.
    pub seat_label: String,
    /// Tier id.
    pub tier_id: String,
    /// Price in minor units.
    pub price_minor: i64,
    /// Platform fee in minor units.
    pub fee_minor: i64,
    /// Currency.
    pub currency: String,
    /// Secret of the rotating code (derived from the client-minted seed of the purchase).
    pub secret: [u8; 32],
    /// Life cycle.
    pub status: TicketStatus,
    /// The latest scans, oldest first, at most [`crate::limits::SCANS_PER_TICKET_MAX`].
    pub scans: Vec<ScanRecord>,
    /// Log time of issue.
    pub created_at_ms: i64,
    /// Log time of the last change.
    pub updated_at_ms: i64,
}

/// A user's name and postal address.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// First name.
    pub first_name: String,
    /// Middle name.
    pub middle_name: String,
    /// Last name.
    pub last_name: String,
    /// Postal address.
    pub address: String,
}

/// How to reach a user.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Email address.
    pub email: String,
    /// Phone number (E.164).
    pub phone: String,
}

/// When and how to remind a user of their tickets.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReminderPreference {
    /// How long before the start to remind; 0 for never.
    pub lead_ms: i64,
    /// By email.
    pub email: bool,
    /// By SMS.
    pub sms: bool,
}

impl Default for ReminderPreference {
    fn default() -> Self {
        Self {
            lead_ms: crate::limits::REMINDER_LEAD_DEFAULT_MS,
            email: true,
            sms: false,
        }
    }
}

/// A user profile (the seed's User profile).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Id.
    pub user_id: String,
    /// Name and address.
    pub profile: Profile,
    /// Email and phone.
    pub contact: Contact,
    /// Reminders.
    pub reminder: ReminderPreference,
    /// The provider's payment-method token, encrypted by the API (opaque here).
    pub payment_token_sealed: Option<Vec<u8>>,
    /// Log index of the command that created it.
    pub created_index: u64,
    /// Log index of the last change.
    pub updated_index: u64,
}

/// What a user may do; the API decides each route's roles.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Buys tickets.
    #[default]
    User,
    /// Creates venues, events, dts, tiers and sale windows (as the seller whose id is the
    /// user's id).
    Seller,
    /// Admits tickets at a venue.
    Scanner,
    /// Operates the platform.
    Admin,
}

/// How a user signs in: one account per user and per email, kept in its own column family
/// (`sm_accounts`) keyed by the normalized email, so a profile read never carries the hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The user.
    pub user_id: String,
    /// Normalized (see [`normalize_email`]): unique among accounts.
    pub email: String,
    /// The password's argon2id hash as a PHC string (`$argon2id$v=19$...`), computed by the
    /// API before proposing: no password reaches the log.
    pub password_hash: String,
    /// What the user may do.
    pub role: Role,
    /// Log index of the command that created it.
    pub created_index: u64,
    /// Log index of the last change.
    pub updated_index: u64,
}

pub use crate::limits::EMAIL_LEN_MAX;

/// The form of an email address that accounts are keyed by: surrounding white space removed,
/// lower-cased (so `Ada@Example.org` and `ada@example.org` are one account). `None` when it is
/// not an address: no single `@` with text on both sides, white space or control characters
/// inside, or longer than [`EMAIL_LEN_MAX`] bytes.
pub fn normalize_email(email: &str) -> Option<String> {
    let e = email.trim().to_lowercase();
    let (local, domain) = e.split_once('@')?;
    let ok = !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && e.len() <= EMAIL_LEN_MAX
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then_some(e)
}

/// What a notification says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotificationKind {
    /// The purchase went through.
    Confirmation,
    /// The e-tickets.
    ETickets,
    /// The show is soon.
    Reminder,
    /// The order was canceled (by the user or with its dt).
    Cancellation,
    /// Money is owed back: the dispatcher refunds at the provider, then marks it sent.
    Refund {
        /// Amount in minor units.
        amount_minor: i64,
        /// The tickets it covers.
        ticket_ids: Vec<String>,
    },
}

/// Where a notification is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotificationStatus {
    /// Waiting for its due time and the dispatcher.
    Pending,
    /// Delivered.
    Sent {
        /// Log time it was recorded.
        at_ms: i64,
        /// Channel used ("email", "sms", "provider").
        channel: String,
    },
    /// No longer to be sent (a reminder of a canceled order).
    Void {
        /// When.
        at_ms: i64,
    },
}

/// Where the reconciler's walk over the payment provider's intents stands: the last intent it
/// visited, in the provider's creation order (version 2, `sm_cursors`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileCursor {
    /// The provider's creation time of that intent.
    pub created_ms: i64,
    /// The intent.
    pub intent_id: String,
}

/// A payment the reconciler has not yet seen settled at the provider (version 2,
/// `sm_unfinished`, keyed by payment ref): every payment the store started, and every intent
/// the reconciler's cursor passed without settling it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnfinishedPayment {
    /// The hold it pays for; empty for an intent the store has no payment of.
    pub hold_id: String,
    /// Log index of the entry that added it.
    pub started_index: u64,
}

/// A pending notification's failed deliveries (version 2, `sm_retries`, keyed by notification
/// id): the outbox offers it again at `next_at_ms`, not before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRetry {
    /// Failed deliveries so far.
    pub attempts: u32,
    /// Log time of its next attempt.
    pub next_at_ms: i64,
    /// Whether it is parked: it failed `park_after` times and waits the long delay.
    pub parked: bool,
    /// The last failure, as the dispatcher said it.
    pub last_error: String,
}

/// An entry of the outbox: something to tell a user, due at a log time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// `n-{log index}-{k}`, k counting over the entry's whole batch: stable, so redelivery is
    /// harmless.
    pub notification_id: String,
    /// Recipient.
    pub user_id: String,
    /// The order concerned.
    pub order_id: String,
    /// What to say.
    pub kind: NotificationKind,
    /// Not before this log time.
    pub due_at_ms: i64,
    /// Life cycle.
    pub status: NotificationStatus,
}

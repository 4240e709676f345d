//! Reads: the queries a replica answers from its applied state.

use serde::{Deserialize, Serialize};

use crate::types::GeoPoint;

/// Filters of [`Query::BrowseEvents`]; all given ones must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFilter {
    /// Only events with a dt at a venue within `radius_m` of `point`.
    pub near: Option<Near>,
    /// Only this category.
    pub category: Option<String>,
    /// Only events with a dt starting at or after this instant.
    pub from_ms: Option<i64>,
    /// Only events with a dt starting before this instant.
    pub to_ms: Option<i64>,
    /// At most this many (capped by [`crate::limits::QUERY_LIMIT_MAX`]).
    pub limit: u32,
}

/// A circle on Earth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Near {
    /// Center.
    pub point: GeoPoint,
    /// Radius in meters.
    pub radius_m: u32,
}

/// A read of the state machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Query {
    /// One venue by id.
    GetVenue {
        /// The venue id.
        venue_id: String,
    },
    /// A digest of the whole state, equal on replicas that applied the same log prefix.
    Digest,
    /// A venue's address, location and seating map.
    GetVenueLayout {
        /// The venue.
        venue_id: String,
    },
    /// A seller.
    GetSeller {
        /// The seller.
        seller_id: String,
    },
    /// An event.
    GetEvent {
        /// The event.
        event_id: String,
    },
    /// Published events by popularity, filtered by place, category and dates.
    BrowseEvents(EventFilter),
    /// An event's dts, by start.
    ListDts {
        /// The event.
        event_id: String,
    },
    /// One dt.
    GetDt {
        /// The dt.
        dt_id: String,
    },
    /// A dt's availability: per tier, per GA area and per seat (compact).
    SeatMap {
        /// The dt.
        dt_id: String,
    },
    /// A hold.
    GetHold {
        /// The hold.
        hold_id: String,
    },
    /// A payment by provider reference.
    GetPayment {
        /// The payment.
        payment_ref: String,
    },
    /// A user.
    GetUser {
        /// The user.
        user_id: String,
    },
    /// A user's orders with their tickets, newest first.
    UserOrders {
        /// The user.
        user_id: String,
        /// At most this many (capped by [`crate::limits::QUERY_LIMIT_MAX`]).
        limit: u32,
    },
    /// An order with its tickets.
    GetOrder {
        /// The order.
        order_id: String,
    },
    /// A ticket with its scan history.
    GetTicket {
        /// The ticket.
        ticket_id: String,
    },
    /// Pending notifications due at or before `up_to_ms`, oldest due first; a failed one is
    /// due at its next attempt ([`crate::types::DeliveryRetry`]).
    DueNotifications {
        /// Usually the dispatcher's clock.
        up_to_ms: i64,
        /// Only those after this (due, notification id) position: the next page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<(i64, String)>,
        /// At most this many (capped by [`crate::limits::QUERY_LIMIT_MAX`]).
        limit: u32,
    },
    /// Full-text search over title, description, performers, category and venue; answered
    /// with [`QueryResult::Events`], best match first.
    SearchEvents {
        /// Words to find.
        text: String,
        /// At most this many (capped by [`crate::limits::QUERY_LIMIT_MAX`]).
        limit: u32,
    },
    /// Sign-in: the account with this email (compared normalized), answered with
    /// [`QueryResult::Account`]; none for an unknown or malformed email.
    AccountByEmail {
        /// As typed.
        email: String,
    },
    /// A user's account, answered with [`QueryResult::Account`].
    GetAccount {
        /// The user.
        user_id: String,
    },
    /// A seller's payout ledger: totals per currency over every order of the seller's events,
    /// and the newest orders; answered with [`QueryResult::SellerLedger`].
    SellerLedger {
        /// The seller.
        seller_id: String,
        /// Newest orders listed, at most this many (capped by
        /// [`crate::limits::QUERY_LIMIT_MAX`]); the totals cover every order.
        limit: u32,
    },
    /// Dts being canceled, by id, answered with [`QueryResult::Dts`]: what the leader
    /// continues with [`Command::ContinueCancelDt`].
    CancelingDts {
        /// At most this many (capped by [`crate::limits::QUERY_LIMIT_MAX`]).
        limit: u32,
    },
    /// One notification, answered with [`QueryResult::Notifications`] (none or one).
    GetNotification {
        /// The notification.
        notification_id: String,
    },
    /// Every notification of an order, answered with [`QueryResult::Notifications`], by id.
    OrderNotifications {
        /// The order.
        order_id: String,
    },
    /// One notification's failed deliveries, answered with [`QueryResult::Retries`] (none or
    /// one).
    DeliveryRetry {
        /// The notification.
        notification_id: String,
    },
    /// The reconciler's cursor `name`, answered with [`QueryResult::Cursor`] (none until it
    /// first moved).
    ReconcileCursor {
        /// The cursor.
        name: String,
    },
    /// Payments started and not yet seen settled, by payment ref, answered with
    /// [`QueryResult::Unfinished`].
    UnfinishedPayments {
        /// Only refs after this one: the next page.
        after: Option<String>,
        /// At most this many (capped by [`crate::limits::QUERY_LIMIT_MAX`]).
        limit: u32,
    },
    /// Pending notifications with failed deliveries, by notification id, answered with
    /// [`QueryResult::Retries`].
    DeliveryRetries {
        /// Only ids after this one: the next page.
        after: Option<String>,
        /// Parked ones only.
        parked_only: bool,
        /// At most this many (capped by [`crate::limits::QUERY_LIMIT_MAX`]).
        limit: u32,
    },
}

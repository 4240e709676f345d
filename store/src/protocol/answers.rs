//! What a query answers.

use serde::{Deserialize, Serialize};

use super::ledger::SellerLedger;
use super::views::{EventHit, OrderView, SeatMapView};
use crate::types::{
    Account, DeliveryRetry, Dt, Event, Hold, Notification, Payment, ReconcileCursor, Seller,
    Ticket, UnfinishedPayment, User, Venue, VenueLayout,
};

/// The answer to a [`Query`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueryResult {
    /// A venue, or none.
    Venue(Option<Venue>),
    /// Hex SHA-256 over every persisted key and value.
    Digest(String),
    /// A venue layout, or none.
    VenueLayout(Option<VenueLayout>),
    /// A seller, or none.
    Seller(Option<Seller>),
    /// An event, or none.
    Event(Option<Event>),
    /// Events found.
    Events(Vec<EventHit>),
    /// Dts of an event.
    Dts(Vec<Dt>),
    /// A dt, or none.
    Dt(Option<Dt>),
    /// Availability of a dt, or none.
    SeatMap(Option<SeatMapView>),
    /// A hold, or none.
    Hold(Option<Hold>),
    /// A payment, or none.
    Payment(Option<Payment>),
    /// A user, or none.
    User(Option<User>),
    /// Orders with tickets.
    Orders(Vec<OrderView>),
    /// An order with tickets, or none.
    Order(Option<OrderView>),
    /// A ticket, or none.
    Ticket(Option<Ticket>),
    /// Notifications.
    Notifications(Vec<Notification>),
    /// An account (user id, role, password hash), or none.
    Account(Option<Account>),
    /// A seller's ledger, or none for an unknown seller.
    SellerLedger(Option<SellerLedger>),
    /// A reconciler's cursor, or none.
    Cursor(Option<ReconcileCursor>),
    /// Unfinished payments by payment ref.
    Unfinished(Vec<(String, UnfinishedPayment)>),
    /// Failed deliveries by notification id.
    Retries(Vec<(String, DeliveryRetry)>),
}

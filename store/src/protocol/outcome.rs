//! What an applied write answers: the outcome of its command, and the reply that places it in
//! the log's order.

use serde::{Deserialize, Serialize};

use super::rejection::Rejection;
use crate::types::{Role, ScanVerdict, SeatRef};

/// The answer to one applied [`Request`](super::Request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The command took effect.
    Done(Done),
    /// The command was refused; nothing changed.
    Rejected {
        /// Stable code.
        code: Rejection,
        /// Human-readable detail.
        detail: String,
    },
}

/// What a successful command produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Done {
    /// A venue was created.
    VenueCreated {
        /// Its id.
        venue_id: String,
    },
    /// A venue's layout was set.
    VenueLayoutSet {
        /// The venue.
        venue_id: String,
        /// Seats in the map.
        seat_count: u32,
    },
    /// A seller was registered.
    SellerCreated {
        /// Its id.
        seller_id: String,
    },
    /// A seller's fee or plan changed.
    SellerUpdated {
        /// Its id.
        seller_id: String,
    },
    /// An event was created.
    EventCreated {
        /// Its id.
        event_id: String,
    },
    /// A dt was created (as a draft).
    DtCreated {
        /// Its id.
        dt_id: String,
        /// Seats and places over all tiers.
        capacity: u32,
    },
    /// A dt's sale window moved.
    SaleWindowChanged {
        /// The dt.
        dt_id: String,
    },
    /// A dt went on sale.
    DtPublished {
        /// The dt.
        dt_id: String,
    },
    /// A dt was called off.
    DtCanceled {
        /// The dt.
        dt_id: String,
        /// Live holds released.
        holds_released: u32,
        /// Orders canceled (refunds owed through the outbox).
        orders_canceled: u32,
    },
    /// A user profile was stored.
    UserSaved {
        /// The user.
        user_id: String,
        /// True when it did not exist before.
        created: bool,
    },
    /// Seats left the pool for a user.
    HoldPlaced {
        /// The hold.
        hold_id: String,
        /// What is held.
        seats: Vec<SeatRef>,
        /// What the payment must be, fees included.
        total_minor: i64,
        /// Currency.
        currency: String,
        /// When it lapses without a payment.
        expires_at_ms: i64,
    },
    /// A hold's seats went back.
    HoldReleased {
        /// The hold.
        hold_id: String,
    },
    /// A payment is in flight; the hold is pinned.
    PaymentStarted {
        /// The hold.
        hold_id: String,
        /// The payment.
        payment_ref: String,
        /// The hold lives at least until then.
        pinned_until_ms: i64,
    },
    /// The purchase went through: capture the payment.
    PurchaseConfirmed {
        /// The order.
        order_id: String,
        /// Its tickets.
        ticket_ids: Vec<String>,
        /// Paid, fees included.
        total_minor: i64,
        /// Currency.
        currency: String,
    },
    /// A payment failed; the hold is unpinned.
    PaymentFailed {
        /// The hold.
        hold_id: String,
        /// The payment.
        payment_ref: String,
    },
    /// An order was canceled.
    OrderCanceled {
        /// The order.
        order_id: String,
        /// Owed back (a Refund notification carries it to the dispatcher).
        refund_minor: i64,
    },
    /// A ticket was refunded.
    TicketRefunded {
        /// The ticket.
        ticket_id: String,
        /// Owed back.
        refund_minor: i64,
    },
    /// A scan was answered; only [`ScanVerdict::Admitted`] admits.
    Scanned {
        /// The ticket scanned.
        ticket_id: String,
        /// The answer.
        verdict: ScanVerdict,
    },
    /// Holds expired in this entry.
    HoldsExpired {
        /// How many.
        count: u32,
    },
    /// A notification was recorded as delivered (or had been before).
    NotificationSent {
        /// The notification.
        notification_id: String,
    },
    /// A user and their account were created.
    UserRegistered {
        /// The user.
        user_id: String,
        /// The account's normalized email.
        email: String,
        /// The role given.
        role: Role,
    },
    /// A user's role changed (or was already that).
    UserRoleSet {
        /// The user.
        user_id: String,
        /// The role now.
        role: Role,
    },
    /// Replicas digest their state as of this entry.
    DigestRequested {},
    /// Replicas compare their digest of `index` with the leader's.
    DigestNoted {
        /// The digested entry.
        index: u64,
    },
    /// The cluster version is now `version`.
    ClusterVersionSet {
        /// The cluster version.
        version: u32,
    },
    /// The cursor moved.
    CursorAdvanced {
        /// The cursor.
        name: String,
    },
    /// Payments left the unfinished set.
    PaymentsSettled {
        /// How many left it (pending ones and unknown refs stay out of the count).
        removed: u32,
    },
    /// A failed delivery was recorded.
    NotificationDeferred {
        /// The notification.
        notification_id: String,
        /// Failures so far.
        attempts: u32,
        /// Log time of the next attempt.
        next_at_ms: i64,
        /// Whether it is parked.
        parked: bool,
    },
    /// What [`Command::Echo`] brought.
    #[cfg(feature = "next-version")]
    Echoed {
        /// The text.
        text: String,
    },
}

/// The reply to one applied request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// What happened.
    pub outcome: Outcome,
    /// Log index at which the command was first applied (earlier than the current entry's index
    /// when this is a replay of a remembered outcome).
    pub index: u64,
    /// The command's place in that entry's batch (0 for the first or only request): with
    /// `index`, its position in the total order of applied requests.
    #[serde(default)]
    pub seq: u32,
    /// True when the key had been seen and this is the remembered first outcome.
    pub replayed: bool,
}

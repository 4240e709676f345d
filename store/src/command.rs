//! What clients ask of the state machine and what it answers.
//!
//! These are the Raft log's payload types: their encoding is part of the on-disk format.
//! Variants are only ever appended (postcard, in the remembered outcomes and command digests,
//! numbers them in order), and fields only ever added, with `#[serde(default)]`.

use serde::{Deserialize, Serialize};

pub use crate::types::Venue;
use crate::types::{
    Account, Contact, Dt, Event, GeoPoint, Hold, Notification, Order, Payment, Profile,
    ReminderPreference, Role, ScanVerdict, SeatRef, SeatingMap, Seller, SellerPlan, Ticket,
    TierSpec, User, VenueLayout,
};

/// A client write as it travels through the Raft log.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Who sent it: together with `idempotency_key` it names the write for deduplication.
    pub client_id: String,
    /// Chosen by the client; a retry of the same write carries the same key.
    pub idempotency_key: String,
    /// Wall-clock time stamped by the leader when it proposed the entry: the only clock `apply`
    /// sees. Log time never goes backwards: `apply` uses the max of this and earlier stamps.
    pub stamped_at_ms: i64,
    /// The state change asked for.
    pub command: Command,
}

/// Some places in one general-admission area.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GaPick {
    /// The area id in the venue's seating map.
    pub area_id: String,
    /// How many places.
    pub quantity: u32,
}

/// A state change. Ids of new objects are minted by the client before proposing.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Seller: create a venue.
    CreateVenue {
        /// Minted before proposing.
        venue_id: String,
        /// Display name.
        name: String,
        /// City, for browsing.
        city: String,
    },
    /// Seller: set a venue's address, location and seating map. Refused once a dt uses the
    /// venue, because dts and tickets name seats by index.
    SetVenueLayout {
        /// The venue.
        venue_id: String,
        /// Postal address.
        address: String,
        /// Location.
        geo: GeoPoint,
        /// Sections, rows, seats, GA areas.
        seating_map: SeatingMap,
    },
    /// Register a seller.
    CreateSeller {
        /// Minted before proposing.
        seller_id: String,
        /// Display name.
        name: String,
        /// Platform fee on each ticket, in basis points.
        fee_bps: u32,
        /// Subscription.
        plan: SellerPlan,
    },
    /// Change a seller's fee and plan; holds placed before keep their fee.
    UpdateSeller {
        /// The seller.
        seller_id: String,
        /// New fee.
        fee_bps: u32,
        /// New plan.
        plan: SellerPlan,
    },
    /// Seller: create an event.
    CreateEvent {
        /// Minted before proposing.
        event_id: String,
        /// The seller.
        seller_id: String,
        /// Title.
        title: String,
        /// Description.
        description: String,
        /// Category.
        category: String,
        /// Performers.
        performers: Vec<String>,
    },
    /// Seller: create a date and time of an event at a venue, with tiers and a sale window.
    /// It starts as a draft.
    CreateDt {
        /// Minted before proposing.
        dt_id: String,
        /// The event.
        event_id: String,
        /// The venue (its layout is then frozen).
        venue_id: String,
        /// Start, Unix ms UTC.
        starts_at_ms: i64,
        /// IANA zone of the venue.
        time_zone: String,
        /// Tiers; each seat and GA area in at most one.
        tiers: Vec<TierSpec>,
        /// Sale opens (inclusive).
        sale_starts_at_ms: i64,
        /// Sale closes (exclusive).
        sale_ends_at_ms: i64,
    },
    /// Seller: move a dt's sale window.
    ChangeSaleWindow {
        /// The dt.
        dt_id: String,
        /// Sale opens.
        sale_starts_at_ms: i64,
        /// Sale closes.
        sale_ends_at_ms: i64,
    },
    /// Seller: put a draft dt on sale.
    PublishDt {
        /// The dt.
        dt_id: String,
    },
    /// Seller: call a dt off: releases its holds, cancels its tickets and orders, owes refunds.
    CancelDt {
        /// The dt.
        dt_id: String,
        /// Why, for the buyers.
        reason: String,
    },
    /// Create or replace a user's profile.
    UpsertUser {
        /// The user.
        user_id: String,
        /// Name and address.
        profile: Profile,
        /// Email and phone.
        contact: Contact,
        /// Reminders.
        reminder: ReminderPreference,
        /// Encrypted payment-method token (opaque bytes), if any.
        payment_token_sealed: Option<Vec<u8>>,
    },
    /// User: hold chosen seats and GA places.
    HoldSeats {
        /// Minted before proposing; unguessable.
        hold_id: String,
        /// The dt.
        dt_id: String,
        /// Who holds.
        user_id: String,
        /// Seat indexes.
        seats: Vec<u32>,
        /// GA places.
        ga: Vec<GaPick>,
        /// How long the hold keeps its seats, ms (`HOLD_TTL_MIN_MS..=HOLD_TTL_MAX_MS`); none:
        /// `HOLD_TTL_MS`. The API's operator sets it (`ticketd api --hold-ttl-s`).
        #[serde(default)]
        hold_ttl_ms: Option<i64>,
    },
    /// User: hold the best `quantity` available seats (or places) of a tier.
    HoldBestAvailable {
        /// Minted before proposing; unguessable.
        hold_id: String,
        /// The dt.
        dt_id: String,
        /// Who holds.
        user_id: String,
        /// The tier.
        tier_id: String,
        /// How many.
        quantity: u32,
        /// As for `HoldSeats`.
        #[serde(default)]
        hold_ttl_ms: Option<i64>,
    },
    /// User: give a hold's seats back.
    ReleaseHold {
        /// The hold.
        hold_id: String,
        /// Its user.
        user_id: String,
    },
    /// User: a payment was created at the provider for a hold; pins the hold for a bounded
    /// time while the provider authorizes it.
    StartPayment {
        /// The hold.
        hold_id: String,
        /// Its user.
        user_id: String,
        /// The provider's payment-intent id.
        payment_ref: String,
        /// Must equal the hold's total.
        amount_minor: i64,
        /// Must equal the hold's currency.
        currency: String,
    },
    /// The provider authorized the payment: turn the hold into an order and tickets.
    ConfirmPurchase {
        /// The hold.
        hold_id: String,
        /// Minted before proposing; unguessable.
        order_id: String,
        /// The started payment's reference.
        payment_ref: String,
        /// Exactly the hold's total, fees included.
        amount_minor: i64,
        /// The hold's currency.
        currency: String,
        /// Random bytes minted before proposing, from which each ticket's secret derives.
        secret_seed: Vec<u8>,
    },
    /// The provider refused the payment (or the caller voided it): unpins the hold.
    PaymentFailed {
        /// The hold.
        hold_id: String,
        /// The payment.
        payment_ref: String,
        /// Why.
        reason: String,
    },
    /// User: cancel a whole order; its valid tickets are canceled and seats go back.
    CancelOrder {
        /// The order.
        order_id: String,
        /// Its buyer.
        user_id: String,
        /// Why.
        reason: String,
    },
    /// User: refund one valid ticket; its seat goes back.
    RefundTicket {
        /// The ticket.
        ticket_id: String,
        /// Its owner.
        user_id: String,
    },
    /// Scanner: admit a ticket at a gate (valid -> used, once).
    Scan {
        /// The ticket (the API has verified its rotating code).
        ticket_id: String,
        /// The dt being admitted to.
        dt_id: String,
        /// The gate.
        gate: String,
    },
    /// System: expire live holds whose time is up, up to `min(up_to_ms, log time)`.
    ExpireHolds {
        /// Usually the leader's clock when proposing.
        up_to_ms: i64,
    },
    /// System: the dispatcher delivered a notification.
    MarkNotificationSent {
        /// The notification.
        notification_id: String,
        /// "email", "sms", "provider".
        channel: String,
    },
    /// Sign-up: a new user with a profile and an account to sign in with. Refused with
    /// [`Rejection::EmailTaken`] when an account has the email (compared normalized, see
    /// [`crate::types::normalize_email`]) and with [`Rejection::AlreadyExists`] when the user
    /// id exists.
    RegisterUser {
        /// Minted before proposing.
        user_id: String,
        /// Sign-in email, as typed: the account keeps it normalized, the profile's contact as
        /// typed (trimmed).
        email: String,
        /// argon2id PHC string (`$argon2id$...`) computed by the API; the store keeps it as is.
        password_hash: String,
        /// What the user may do.
        role: Role,
        /// Name and address.
        profile: Profile,
        /// Phone number (E.164), may be empty.
        phone: String,
    },
    /// Admin: change what a user with an account may do.
    SetUserRole {
        /// The user.
        user_id: String,
        /// The new role.
        role: Role,
    },
    /// System: the next step of a dt's cancellation (the leader proposes it while the dt shows
    /// as canceling): releases more of its live holds and cancels more of its orders, at most
    /// [`crate::limits::CANCEL_ROWS_PER_ENTRY_MAX`] in all.
    ContinueCancelDt {
        /// The dt.
        dt_id: String,
    },
    /// System: every replica digests its state as of this entry (the Raft runtime does, after
    /// applying it), so that replicas can be compared at one index; changes nothing.
    DigestState {},
    /// System: the leader's digest of its state as of entry `index`; every replica that
    /// digested that index compares its own; changes nothing.
    CheckDigest {
        /// The entry of the [`Command::DigestState`].
        index: u64,
        /// The leader's hex SHA-256 of its state as of that entry.
        digest: String,
    },
    /// System: raise the cluster version to `version` (never lowers it). The leader proposes it
    /// only once every member and learner runs a binary that supports `version`; from its
    /// entry on, commands and encodings of that version may be used. A replica whose binary
    /// does not support `version` stops before applying it (the Raft runtime checks).
    SetClusterVersion {
        /// The new cluster version.
        version: u32,
    },
    /// Echoes a text back, changing nothing: the command the next version's test build adds,
    /// which needs cluster version 2.
    #[cfg(feature = "next-version")]
    Echo {
        /// What comes back.
        text: String,
    },
}

impl Command {
    /// The cluster version this command needs: the leader refuses to propose it, and `apply`
    /// rejects it, while the cluster version is lower.
    pub fn required_version(&self) -> u32 {
        match self {
            #[cfg(feature = "next-version")]
            Command::Echo { .. } => 2,
            _ => crate::version::LEGACY,
        }
    }
}

/// Stable machine-readable rejection codes: the one catalogue of the domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Rejection {
    /// The same idempotency key was used before with a different command.
    IdempotencyKeyReused,
    /// An object with this id exists already.
    AlreadyExists,
    /// A field is out of its bounds.
    InvalidArgument,
    /// The object named does not exist.
    NotFound,
    /// The object is not in a state that allows this change.
    InvalidState,
    /// The dt is not published or outside its sale window.
    SaleNotOpen,
    /// The dt was canceled.
    DtCanceled,
    /// The seat or area does not exist or no tier covers it.
    SeatNotForSale,
    /// The seat is in a live hold.
    SeatAlreadyHeld,
    /// The seat is sold.
    SeatTaken,
    /// Not enough available seats or places.
    NotEnoughSeats,
    /// More seats in one hold than allowed.
    HoldLimitExceeded,
    /// More seats for one user in one dt than allowed.
    UserLimitExceeded,
    /// The hold lapsed.
    HoldExpired,
    /// The hold was released or purchased.
    HoldNotLive,
    /// The object belongs to another user.
    NotOwner,
    /// A payment is in flight for the hold.
    PaymentInProgress,
    /// No started payment with this reference for the hold.
    PaymentNotAuthorized,
    /// Too many payments started on the hold.
    PaymentAttemptsExceeded,
    /// The amount or currency is not exactly the hold's total.
    AmountMismatch,
    /// The order is canceled or refunded, or has a used ticket.
    OrderNotCancelable,
    /// The ticket is not valid (used, canceled or refunded).
    TicketNotRefundable,
    /// An account exists with this email.
    EmailTaken,
}

impl Rejection {
    /// Every code, for catalogues and tests.
    pub const ALL: &'static [Rejection] = &[
        Rejection::IdempotencyKeyReused,
        Rejection::AlreadyExists,
        Rejection::InvalidArgument,
        Rejection::NotFound,
        Rejection::InvalidState,
        Rejection::SaleNotOpen,
        Rejection::DtCanceled,
        Rejection::SeatNotForSale,
        Rejection::SeatAlreadyHeld,
        Rejection::SeatTaken,
        Rejection::NotEnoughSeats,
        Rejection::HoldLimitExceeded,
        Rejection::UserLimitExceeded,
        Rejection::HoldExpired,
        Rejection::HoldNotLive,
        Rejection::NotOwner,
        Rejection::PaymentInProgress,
        Rejection::PaymentNotAuthorized,
        Rejection::PaymentAttemptsExceeded,
        Rejection::AmountMismatch,
        Rejection::OrderNotCancelable,
        Rejection::TicketNotRefundable,
        Rejection::EmailTaken,
    ];

    /// The stable code string clients key off.
    pub fn code(self) -> &'static str {
        match self {
            Rejection::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Rejection::AlreadyExists => "ALREADY_EXISTS",
            Rejection::InvalidArgument => "INVALID_ARGUMENT",
            Rejection::NotFound => "NOT_FOUND",
            Rejection::InvalidState => "INVALID_STATE",
            Rejection::SaleNotOpen => "SALE_NOT_OPEN",
            Rejection::DtCanceled => "DT_CANCELED",
            Rejection::SeatNotForSale => "SEAT_NOT_FOR_SALE",
            Rejection::SeatAlreadyHeld => "SEAT_ALREADY_HELD",
            Rejection::SeatTaken => "SEAT_TAKEN",
            Rejection::NotEnoughSeats => "NOT_ENOUGH_SEATS",
            Rejection::HoldLimitExceeded => "HOLD_LIMIT_EXCEEDED",
            Rejection::UserLimitExceeded => "USER_LIMIT_EXCEEDED",
            Rejection::HoldExpired => "HOLD_EXPIRED",
            Rejection::HoldNotLive => "HOLD_NOT_LIVE",
            Rejection::NotOwner => "NOT_OWNER",
            Rejection::PaymentInProgress => "PAYMENT_IN_PROGRESS",
            Rejection::PaymentNotAuthorized => "PAYMENT_NOT_AUTHORIZED",
            Rejection::PaymentAttemptsExceeded => "PAYMENT_ATTEMPTS_EXCEEDED",
            Rejection::AmountMismatch => "AMOUNT_MISMATCH",
            Rejection::OrderNotCancelable => "ORDER_NOT_CANCELABLE",
            Rejection::TicketNotRefundable => "TICKET_NOT_REFUNDABLE",
            Rejection::EmailTaken => "EMAIL_TAKEN",
        }
    }
}

/// The answer to one applied [`Request`].
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
    /// What [`Command::Echo`] brought.
    #[cfg(feature = "next-version")]
    Echoed {
        /// The text.
        text: String,
    },
}

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
    /// Pending notifications due at or before `up_to_ms`, oldest due first.
    DueNotifications {
        /// Usually the dispatcher's clock.
        up_to_ms: i64,
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
}

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
}

/// One order as a seller's payout ledger sees it. Buyers pay price + platform fee; a canceled or
/// refunded ticket gives both back, so the platform keeps the fees of the tickets that stay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The order.
    pub order_id: String,
    /// Its dt.
    pub dt_id: String,
    /// Log time of the sale.
    pub created_at_ms: i64,
    /// Currency of the amounts.
    pub currency: String,
    /// Tickets sold in it.
    pub tickets: u32,
    /// Tickets canceled or refunded since.
    pub tickets_returned: u32,
    /// What the buyer paid: prices + fees.
    pub sales_minor: i64,
    /// Platform fees charged at the sale (the seller's rate x prices, per ticket).
    pub fees_charged_minor: i64,
    /// Platform fees kept: those of the tickets not returned.
    pub fees_minor: i64,
    /// Owed back to the buyer for returned tickets (their prices + fees).
    pub refunds_minor: i64,
    /// The seller's share: sales - fees - refunds.
    pub payout_minor: i64,
}

/// A seller's totals in one currency (the sums of [`LedgerEntry`] fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerTotals {
    /// Currency.
    pub currency: String,
    /// Orders.
    pub orders: u32,
    /// Tickets sold.
    pub tickets: u32,
    /// Tickets canceled or refunded since.
    pub tickets_returned: u32,
    /// What buyers paid: prices + fees.
    pub sales_minor: i64,
    /// Face value of the tickets sold (sales without fees).
    pub face_value_minor: i64,
    /// Platform fees charged at the sales.
    pub fees_charged_minor: i64,
    /// Platform fees kept.
    pub fees_minor: i64,
    /// Owed back to buyers.
    pub refunds_minor: i64,
    /// The seller's share: sales - fees - refunds.
    pub payout_minor: i64,
}

/// A seller's payout ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SellerLedger {
    /// The seller.
    pub seller_id: String,
    /// Its fee now, basis points (each order keeps the fee of its sale).
    pub fee_bps: u32,
    /// Its plan now.
    pub plan: crate::types::SellerPlan,
    /// Per currency, over every order.
    pub totals: Vec<LedgerTotals>,
    /// The newest orders first.
    pub entries: Vec<LedgerEntry>,
}

/// One answer of [`Query::BrowseEvents`].
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
    /// Its venue (the layout with coordinates comes from [`Query::GetVenueLayout`]).
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

//! Writes: a client's request and the command it carries, as they travel through the log.

use serde::{Deserialize, Serialize};

use crate::types::{
    Contact, GeoPoint, Profile, ReminderPreference, Role, SeatingMap, SellerPlan, TierSpec,
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
    /// System (version 2): the reconciler visited the provider's intents up to `intent_id`,
    /// created at `created_ms`; the cursor `name` moves there, and the intents it passed
    /// without seeing them settled join the unfinished set. Only forward: a position at or
    /// before the cursor's is refused with [`Rejection::InvalidState`] (a deposed leader's
    /// late step cannot move it back); so is a step that would overfill the set.
    AdvanceCursor {
        /// The cursor ([`crate::limits::CURSOR_NAME_LEN_MAX`] bytes at most; one per Raft
        /// group once events are sharded).
        name: String,
        /// The provider's creation time of the intent.
        created_ms: i64,
        /// The intent.
        intent_id: String,
        /// Intents passed and not settled (at most [`crate::limits::SETTLED_PER_ENTRY_MAX`]).
        unsettled: Vec<String>,
    },
    /// System (version 2): the reconciler saw these payments settled at the provider; they
    /// leave the set of unfinished payments. A payment the store still shows pending stays
    /// (its outcome is not known yet); refs not in the set are ignored.
    PaymentsSettled {
        /// At most [`crate::limits::SETTLED_PER_ENTRY_MAX`].
        payment_refs: Vec<String>,
    },
    /// System (version 2): a delivery of a pending notification failed. Its next attempt is
    /// `min(2^(attempts-1) s, 300 s)` of log time later, or, from the `park_after`th failure
    /// on, [`crate::limits::PARKED_RETRY_MS`] later (parked); the outbox offers it only then,
    /// so failing notifications never block the ones behind them.
    NotificationFailed {
        /// The notification.
        notification_id: String,
        /// Failures after which it is parked (1..=[`crate::limits::DELIVERY_ATTEMPTS_MAX`]).
        park_after: u32,
        /// What went wrong (at most [`crate::limits::DELIVERY_ERROR_LEN_MAX`] bytes).
        error: String,
    },
    /// Echoes a text back, changing nothing: the command the next version's test build adds,
    /// which needs cluster version 3.
    #[cfg(feature = "next-version")]
    Echo {
        /// What comes back.
        text: String,
    },
}

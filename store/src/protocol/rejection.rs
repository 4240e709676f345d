//! The one catalogue of the domain's rejection codes.

use serde::{Deserialize, Serialize};

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

//! Holds, orders, tickets, refunds and scans: what a buyer and a gate do.

use serde::Serialize;
use ticketd_store::command::OrderView;
use ticketd_store::types::{self as st, SeatRef};
use utoipa::ToSchema;

use super::{rfc3339, EXAMPLE_TIME};

/// A seat or general-admission place, with the label printed on its ticket.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HeldSeat {
    /// Its seat index in the seat map; null for a general-admission place.
    pub seat_index: Option<u32>,
    /// Its general-admission area; null for a seat.
    pub ga_area_id: Option<String>,
    /// `SECTION ROW NUMBER` for a seat, the area's name for a place.
    pub label: String,
}

impl HeldSeat {
    /// `seat` of a venue whose seats are `map`.
    pub fn of(seat: SeatRef, map: &st::SeatingMap) -> Self {
        match seat {
            SeatRef::Seat(i) => Self {
                seat_index: Some(i),
                ga_area_id: None,
                label: map.seat_label(i).unwrap_or_else(|| format!("seat {i}")),
            },
            SeatRef::Ga(a) => {
                let area = map.ga_areas.get(usize::from(a));
                Self {
                    seat_index: None,
                    ga_area_id: area.map(|a| a.area_id.clone()),
                    label: area.map_or_else(|| format!("area {a}"), |a| a.name.clone()),
                }
            }
        }
    }
}

/// Where a hold is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HoldStatus {
    /// Its seats are the buyer's until `expires_at`.
    Live,
    /// Given back by the buyer.
    Released,
    /// Lapsed without a purchase.
    Expired,
    /// Bought: `order_id` names the order.
    Purchased,
}

/// Seats held for one buyer while they pay (10 minutes).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"hold_id": "h-8d1e5b", "dt_id": "d-51c2e0", "status": "live",
    "seats": [{"seat_index": 0, "ga_area_id": null, "label": "A 1 1"}],
    "total_minor": 49500, "currency": "DKK", "expires_at": EXAMPLE_TIME, "order_id": null}))]
pub struct Hold {
    /// Its id (derived from the request's Idempotency-Key: a retry names the same hold).
    pub hold_id: String,
    /// Its dt.
    pub dt_id: String,
    /// Where it is in its life.
    pub status: HoldStatus,
    /// What is held.
    pub seats: Vec<HeldSeat>,
    /// What the purchase must pay, fees included, minor units.
    pub total_minor: i64,
    /// ISO 4217.
    pub currency: String,
    /// When it lapses without a purchase.
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// The order that bought it; null until then.
    pub order_id: Option<String>,
}

impl Hold {
    /// A stored hold, its seats labeled from `map`.
    pub fn of(h: &st::Hold, map: &st::SeatingMap) -> Self {
        let (status, order_id) = match &h.status {
            st::HoldStatus::Live => (HoldStatus::Live, None),
            st::HoldStatus::Released { .. } => (HoldStatus::Released, None),
            st::HoldStatus::Expired { .. } => (HoldStatus::Expired, None),
            st::HoldStatus::Purchased { order_id } => {
                (HoldStatus::Purchased, Some(order_id.clone()))
            }
        };
        Self {
            hold_id: h.hold_id.clone(),
            dt_id: h.dt_id.clone(),
            status,
            seats: h.items.iter().map(|i| HeldSeat::of(i.seat, map)).collect(),
            total_minor: h.total_minor,
            currency: h.currency.clone(),
            expires_at: rfc3339(h.effective_expiry_ms()),
            order_id,
        }
    }
}

/// Where a ticket is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    /// Admits once.
    Valid,
    /// Admitted at `used_at`, gate `used_gate`.
    Used,
    /// Its order or dt was canceled.
    Canceled,
    /// Refunded.
    Refunded,
}

/// A gate's verdict on a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScanVerdict {
    /// Admitted: the first valid scan.
    Admitted,
    /// Admitted before (`used_at`, `used_at_gate`).
    AlreadyUsed,
    /// The ticket was canceled.
    Canceled,
    /// The ticket was refunded.
    Refunded,
    /// The ticket is for another dt.
    WrongDt,
    /// No such ticket.
    UnknownTicket,
    /// The code was valid, but is no longer (codes rotate).
    StaleCode,
    /// The code was never valid for the ticket.
    ForgedCode,
}

impl From<&st::ScanVerdict> for ScanVerdict {
    fn from(v: &st::ScanVerdict) -> Self {
        match v {
            st::ScanVerdict::Admitted => Self::Admitted,
            st::ScanVerdict::AlreadyUsed { .. } => Self::AlreadyUsed,
            st::ScanVerdict::Canceled { .. } => Self::Canceled,
            st::ScanVerdict::Refunded { .. } => Self::Refunded,
            st::ScanVerdict::WrongDt { .. } => Self::WrongDt,
            st::ScanVerdict::Unknown => Self::UnknownTicket,
        }
    }
}

/// One scan of a ticket at a gate.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Scan {
    /// When.
    #[schema(format = DateTime)]
    pub at: String,
    /// Which gate.
    pub gate: String,
    /// What it answered.
    pub verdict: ScanVerdict,
}

/// A ticket: one seat or place of an order (without its code: see GET /v1/tickets/{id}).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"ticket_id": "t-0c7e41", "order_id": "o-4b9d2a", "event_id": "e-9a02f1",
    "dt_id": "d-51c2e0", "status": "valid", "seat_label": "A 1 1", "tier_id": "front",
    "price_minor": 45000, "fee_minor": 4500, "currency": "DKK", "used_at": null,
    "used_gate": null, "scans": [], "created_at": EXAMPLE_TIME, "updated_at": EXAMPLE_TIME}))]
pub struct Ticket {
    /// Its id.
    pub ticket_id: String,
    /// Its order.
    pub order_id: String,
    /// Its event.
    pub event_id: String,
    /// Its dt.
    pub dt_id: String,
    /// Where it is in its life.
    pub status: TicketStatus,
    /// The seat or place.
    pub seat_label: String,
    /// Its tier.
    pub tier_id: String,
    /// Face value, minor units.
    pub price_minor: i64,
    /// The platform's fee, minor units.
    pub fee_minor: i64,
    /// ISO 4217.
    pub currency: String,
    /// When it admitted; null if never.
    #[schema(format = DateTime)]
    pub used_at: Option<String>,
    /// Where it admitted; null if never.
    pub used_gate: Option<String>,
    /// Every scan of it, oldest first.
    pub scans: Vec<Scan>,
    /// When it was issued.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When its status last changed.
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&st::Ticket> for Ticket {
    fn from(t: &st::Ticket) -> Self {
        let (status, used) = match &t.status {
            st::TicketStatus::Valid => (TicketStatus::Valid, None),
            st::TicketStatus::Used { at_ms, gate } => {
                (TicketStatus::Used, Some((rfc3339(*at_ms), gate.clone())))
            }
            st::TicketStatus::Canceled { .. } => (TicketStatus::Canceled, None),
            st::TicketStatus::Refunded { .. } => (TicketStatus::Refunded, None),
        };
        let (used_at, used_gate) = used.unzip();
        Self {
            ticket_id: t.ticket_id.clone(),
            order_id: t.order_id.clone(),
            event_id: t.event_id.clone(),
            dt_id: t.dt_id.clone(),
            status,
            seat_label: t.seat_label.clone(),
            tier_id: t.tier_id.clone(),
            price_minor: t.price_minor,
            fee_minor: t.fee_minor,
            currency: t.currency.clone(),
            used_at,
            used_gate,
            scans: t
                .scans
                .iter()
                .map(|s| Scan {
                    at: rfc3339(s.at_ms),
                    gate: s.gate.clone(),
                    verdict: (&s.verdict).into(),
                })
                .collect(),
            created_at: rfc3339(t.created_at_ms),
            updated_at: rfc3339(t.updated_at_ms),
        }
    }
}

/// A ticket with its current entry code, which rotates.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"ticket_id": "t-0c7e41", "order_id": "o-4b9d2a", "event_id": "e-9a02f1",
    "dt_id": "d-51c2e0", "status": "valid", "seat_label": "A 1 1", "tier_id": "front",
    "price_minor": 45000, "fee_minor": 4500, "currency": "DKK", "used_at": null,
    "used_gate": null, "scans": [], "created_at": EXAMPLE_TIME, "updated_at": EXAMPLE_TIME,
    "code": "481516", "code_refresh_in_s": 17, "qr_payload": "ticketd:t-0c7e41:481516",
    "qr_svg": "<svg xmlns=\"http://www.w3.org/2000/svg\"/>"}))]
pub struct TicketWithCode {
    /// The ticket.
    #[serde(flatten)]
    pub ticket: Ticket,
    /// The entry code now.
    pub code: String,
    /// Seconds until the code changes.
    pub code_refresh_in_s: u64,
    /// What the QR code carries (a gate scans it).
    pub qr_payload: String,
    /// The QR code, as SVG.
    pub qr_svg: String,
}

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Paid; its tickets are valid.
    Confirmed,
    /// Some tickets refunded.
    PartiallyRefunded,
    /// Every ticket refunded.
    Refunded,
    /// Canceled (by the buyer or a called-off dt); refunded through the outbox.
    Canceled,
}

impl From<st::OrderStatus> for OrderStatus {
    fn from(s: st::OrderStatus) -> Self {
        match s {
            st::OrderStatus::Confirmed => Self::Confirmed,
            st::OrderStatus::PartiallyRefunded => Self::PartiallyRefunded,
            st::OrderStatus::Refunded => Self::Refunded,
            st::OrderStatus::Canceled => Self::Canceled,
        }
    }
}

/// An order: a paid hold, with its tickets.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"order_id": "o-4b9d2a", "status": "confirmed", "event_id": "e-9a02f1",
    "dt_id": "d-51c2e0", "hold_id": "h-8d1e5b", "tickets": [{"ticket_id": "t-0c7e41",
    "order_id": "o-4b9d2a", "event_id": "e-9a02f1", "dt_id": "d-51c2e0", "status": "valid",
    "seat_label": "A 1 1", "tier_id": "front", "price_minor": 45000, "fee_minor": 4500,
    "currency": "DKK", "used_at": null, "used_gate": null, "scans": [],
    "created_at": EXAMPLE_TIME, "updated_at": EXAMPLE_TIME}], "subtotal_minor": 45000,
    "fee_minor": 4500, "total_minor": 49500, "refunded_minor": 0, "currency": "DKK",
    "created_at": EXAMPLE_TIME}))]
pub struct Order {
    /// Its id.
    pub order_id: String,
    /// Where it is in its life.
    pub status: OrderStatus,
    /// Its event.
    pub event_id: String,
    /// Its dt.
    pub dt_id: String,
    /// The hold it bought.
    pub hold_id: String,
    /// Its tickets.
    pub tickets: Vec<Ticket>,
    /// Face value, minor units.
    pub subtotal_minor: i64,
    /// The platform's fees, minor units.
    pub fee_minor: i64,
    /// Paid, minor units.
    pub total_minor: i64,
    /// Refunded so far, minor units.
    pub refunded_minor: i64,
    /// ISO 4217.
    pub currency: String,
    /// When it was paid.
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&OrderView> for Order {
    fn from(v: &OrderView) -> Self {
        let o = &v.order;
        Self {
            order_id: o.order_id.clone(),
            status: o.status.into(),
            event_id: o.event_id.clone(),
            dt_id: o.dt_id.clone(),
            hold_id: o.hold_id.clone(),
            tickets: v.tickets.iter().map(Ticket::from).collect(),
            subtotal_minor: o.subtotal_minor,
            fee_minor: o.fee_minor,
            total_minor: o.total_minor,
            refunded_minor: o.refunded_minor,
            currency: o.currency.clone(),
            created_at: rfc3339(o.created_at_ms),
        }
    }
}

/// A buyer's orders.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"orders": []}))]
pub struct OrderList {
    /// Newest first.
    pub orders: Vec<Order>,
}

/// A buyer's tickets.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"tickets": []}))]
pub struct TicketList {
    /// Over their orders, newest order first.
    pub tickets: Vec<Ticket>,
}

/// A refund owed: the provider is paid back through the outbox, exactly once.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"ticket_id": "t-0c7e41", "order_id": "o-4b9d2a",
    "amount_minor": 45000, "currency": "DKK"}))]
pub struct Refund {
    /// The ticket refunded.
    pub ticket_id: String,
    /// Its order.
    pub order_id: String,
    /// Owed back, minor units.
    pub amount_minor: i64,
    /// ISO 4217.
    pub currency: String,
}

/// A gate's answer to a scan: admitted or refused, with the reason.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"admitted": true, "verdict": "admitted", "ticket_id": "t-0c7e41",
    "seat_label": "A 1 1", "used_at": null, "used_at_gate": null}))]
pub struct ScanAnswer {
    /// Whether to let the holder in.
    pub admitted: bool,
    /// Why.
    pub verdict: ScanVerdict,
    /// The ticket scanned, when the code names one.
    pub ticket_id: Option<String>,
    /// Its seat, when known.
    pub seat_label: Option<String>,
    /// For `already_used`: when it admitted.
    #[schema(format = DateTime)]
    pub used_at: Option<String>,
    /// For `already_used`: where it admitted.
    pub used_at_gate: Option<String>,
}

impl ScanAnswer {
    /// A refusal before any write (the code did not check out, or no such ticket).
    pub fn refused(
        verdict: ScanVerdict,
        ticket_id: Option<String>,
        seat_label: Option<String>,
    ) -> Self {
        Self {
            admitted: false,
            verdict,
            ticket_id,
            seat_label,
            used_at: None,
            used_at_gate: None,
        }
    }

    /// The store's verdict on `ticket`.
    pub fn of(verdict: &st::ScanVerdict, ticket_id: String, seat_label: String) -> Self {
        let mut a = Self::refused(verdict.into(), Some(ticket_id), Some(seat_label));
        a.admitted = matches!(verdict, st::ScanVerdict::Admitted);
        if let st::ScanVerdict::AlreadyUsed { at_ms, gate } = verdict {
            a.used_at = Some(rfc3339(*at_ms));
            a.used_at_gate = Some(gate.clone());
        }
        a
    }
}

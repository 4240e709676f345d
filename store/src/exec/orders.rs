//! Orders and tickets: the purchase, cancellations and refunds, scans at the gate, and the
//! outbox of notifications they owe.

use sha2::{Digest as _, Sha256};

use crate::columns::column_family;
use crate::derived::rows_of;
use crate::limits::*;
use crate::machine::{ApplyContext, Machine};
use crate::money::ticket_return_minor;
use crate::persist::put;
use crate::protocol::{Done, Rejection};
use crate::seats::{FREE, HELD, SOLD};
use crate::types::*;

use super::refusal::{not_found, reject, HandlerResult};
use super::validate;

/// What a purchase needs besides the hold, gathered while validating.
struct Purchase {
    dt: Dt,
    seller_id: String,
    reminder_lead_ms: i64,
    /// Per item of the hold: its seat's label and its tier's id.
    labels: Vec<(String, String)>,
}

impl Machine {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn confirm_purchase(
        &mut self,
        context: &mut ApplyContext<'_>,
        hold_id: &str,
        order_id: &str,
        payment_ref: &str,
        amount_minor: i64,
        currency: &str,
        secret_seed: &[u8],
    ) -> HandlerResult<Done> {
        let hold = self.live_hold(hold_id, None)?;
        let payment = match self.payment_pending(&hold) {
            Some(pending) if pending.payment_ref == payment_ref => pending.clone(),
            _ => {
                return Err(reject(
                    Rejection::PaymentNotAuthorized,
                    format!("no payment {payment_ref} in flight for hold {hold_id}"),
                ))
            }
        };
        if amount_minor != hold.total_minor || currency != hold.currency {
            return Err(reject(
                Rejection::AmountMismatch,
                format!(
                    "hold {hold_id} costs {} {}",
                    hold.total_minor, hold.currency
                ),
            ));
        }
        validate::id("order_id", order_id)?;
        if self.orders.contains_key(order_id) {
            return Err(reject(
                Rejection::AlreadyExists,
                format!("order {order_id} exists"),
            ));
        }
        if !SECRET_SEED_LEN.contains(&secret_seed.len()) {
            return Err(reject(
                Rejection::InvalidArgument,
                format!("secret seed must be {SECRET_SEED_LEN:?} bytes"),
            ));
        }
        let mut purchase = self.purchase_of(&hold)?;

        if let Some(book) = self.derived.books.get_mut(&hold.dt_id) {
            for item in &hold.items {
                book.shift(item.seat, HELD, SOLD);
            }
        }
        let labels = std::mem::take(&mut purchase.labels);
        let ticket_ids =
            self.issue_tickets(context, &hold, order_id, secret_seed, &purchase.dt, labels);
        let order = Order {
            order_id: order_id.to_string(),
            user_id: hold.user_id.clone(),
            event_id: purchase.dt.event_id.clone(),
            dt_id: purchase.dt.dt_id.clone(),
            hold_id: hold_id.to_string(),
            payment_ref: payment_ref.to_string(),
            ticket_ids: ticket_ids.clone(),
            subtotal_minor: hold.subtotal_minor,
            fee_minor: hold.fee_minor,
            total_minor: hold.total_minor,
            refunded_minor: 0,
            currency: hold.currency.clone(),
            status: OrderStatus::Confirmed,
            created_at_ms: context.now_ms,
            created_index: context.index,
        };
        put(
            &mut self.orders,
            context.writes,
            column_family::ORDERS,
            order_id,
            order,
        );
        self.derived
            .user_orders
            .insert((hold.user_id.clone(), order_id.to_string()));
        self.derived
            .seller_orders
            .insert((purchase.seller_id.clone(), order_id.to_string()));
        self.derived
            .dt_open_orders
            .insert((purchase.dt.dt_id.clone(), order_id.to_string()));

        let user_id = hold.user_id.clone();
        self.close_purchased_hold(context, hold, payment, order_id);
        // At most SEATS_PER_HOLD_MAX tickets.
        self.bump_popularity(context, &purchase.dt.event_id, ticket_ids.len() as i64);

        self.notify_purchase(context, &user_id, order_id, &purchase);
        context.touched_dt = Some(purchase.dt.dt_id.clone());
        Ok(Done::PurchaseConfirmed {
            order_id: order_id.to_string(),
            ticket_ids,
            total_minor: amount_minor,
            currency: currency.to_string(),
        })
    }

    /// Marks a purchased hold and its payment with their order, and takes the hold out of the
    /// live indexes (its seats are sold now).
    fn close_purchased_hold(
        &mut self,
        context: &mut ApplyContext<'_>,
        mut hold: Hold,
        payment: Payment,
        order_id: &str,
    ) {
        let hold_id = hold.hold_id.clone();
        let payment_ref = payment.payment_ref.clone();
        self.derived
            .live_by_expiry
            .remove(&(hold.effective_expiry_ms(), hold_id.clone()));
        self.derived
            .dt_live_holds
            .remove(&(hold.dt_id.clone(), hold_id.clone()));
        hold.pinned_until_ms = None;
        hold.status = HoldStatus::Purchased {
            order_id: order_id.to_string(),
        };
        put(
            &mut self.holds,
            context.writes,
            column_family::HOLDS,
            &hold_id,
            hold,
        );
        let mut payment = payment;
        payment.status = PaymentStatus::Confirmed {
            order_id: order_id.to_string(),
        };
        put(
            &mut self.payments,
            context.writes,
            column_family::PAYMENTS,
            &payment_ref,
            payment,
        );
    }

    /// Issues the tickets of a purchase of `hold`, one per item, each with its seat's label
    /// and tier (`labels`, by item) and a secret derived from the buyer's seed; their ids.
    fn issue_tickets(
        &mut self,
        context: &mut ApplyContext<'_>,
        hold: &Hold,
        order_id: &str,
        secret_seed: &[u8],
        dt: &Dt,
        labels: Vec<(String, String)>,
    ) -> Vec<String> {
        let mut ticket_ids = Vec::with_capacity(hold.items.len());
        for ((k, item), (seat_label, tier_id)) in (1u32..).zip(&hold.items).zip(labels) {
            let ticket_id = format!("{order_id}-{k}");
            let secret: [u8; 32] = Sha256::new()
                .chain_update(b"ticketd ticket secret\0")
                .chain_update(secret_seed)
                .chain_update(ticket_id.as_bytes())
                .finalize()
                .into();
            let ticket = Ticket {
                ticket_id: ticket_id.clone(),
                order_id: order_id.to_string(),
                event_id: dt.event_id.clone(),
                dt_id: dt.dt_id.clone(),
                user_id: hold.user_id.clone(),
                seat: item.seat,
                seat_label,
                tier_id,
                price_minor: item.price_minor,
                fee_minor: item.fee_minor,
                currency: hold.currency.clone(),
                secret,
                status: TicketStatus::Valid,
                scans: Vec::new(),
                created_at_ms: context.now_ms,
                updated_at_ms: context.now_ms,
            };
            put(
                &mut self.tickets,
                context.writes,
                column_family::TICKETS,
                &ticket_id,
                ticket,
            );
            ticket_ids.push(ticket_id);
        }
        ticket_ids
    }

    /// Queues what a buyer is told of a purchase: its confirmation, the e-tickets, and a
    /// reminder before the dt when the buyer wants one and it is still ahead.
    fn notify_purchase(
        &mut self,
        context: &mut ApplyContext<'_>,
        user_id: &str,
        order_id: &str,
        purchase: &Purchase,
    ) {
        self.notify(
            context,
            user_id,
            order_id,
            NotificationKind::Confirmation,
            context.now_ms,
        );
        self.notify(
            context,
            user_id,
            order_id,
            NotificationKind::ETickets,
            context.now_ms,
        );
        // A dt starts by TIME_MS_MAX and a lead is at most REMINDER_LEAD_MAX_MS: no overflow.
        let remind_at = purchase
            .dt
            .starts_at_ms
            .saturating_sub(purchase.reminder_lead_ms);
        if purchase.reminder_lead_ms > 0 && remind_at > context.now_ms {
            self.notify(
                context,
                user_id,
                order_id,
                NotificationKind::Reminder,
                remind_at,
            );
        }
    }

    /// The dt (still selling), seller, buyer's reminder lead and seat labels of a purchase of
    /// `hold`; NotFound where the state lacks one of them.
    fn purchase_of(&self, hold: &Hold) -> HandlerResult<Purchase> {
        let dt = self.dt_live(&hold.dt_id)?.clone();
        let seller_id = self
            .events
            .get(&dt.event_id)
            .ok_or_else(|| not_found("event", &dt.event_id))?
            .seller_id
            .clone();
        let reminder_lead_ms = self
            .users
            .get(&hold.user_id)
            .ok_or_else(|| not_found("user", &hold.user_id))?
            .reminder
            .lead_ms;
        let map = &self
            .layouts
            .get(&dt.venue_id)
            .ok_or_else(|| not_found("layout of venue", &dt.venue_id))?
            .seating_map;
        let mut labels = Vec::with_capacity(hold.items.len());
        for item in &hold.items {
            let seat_label = match item.seat {
                SeatRef::Seat(s) => map.seat_label(s),
                SeatRef::Ga(a) => map.ga_areas.get(usize::from(a)).map(|a| a.name.clone()),
            };
            let tier_id = dt
                .tiers
                .get(usize::from(item.tier))
                .map(|t| t.spec.tier_id.clone())
                .ok_or_else(|| not_found("tier of", &format!("{:?}", item.seat)))?;
            labels.push((seat_label.unwrap_or_default(), tier_id));
        }
        Ok(Purchase {
            dt,
            seller_id,
            reminder_lead_ms,
            labels,
        })
    }

    /// Moves an event's popularity (tickets sold and not returned) by `by`.
    fn bump_popularity(&mut self, context: &mut ApplyContext<'_>, event_id: &str, by: i64) {
        let Some(mut e) = self.events.get(event_id).cloned() else {
            return;
        };
        e.popularity = e.popularity.saturating_add_signed(by);
        put(
            &mut self.events,
            context.writes,
            column_family::EVENTS,
            event_id,
            e,
        );
    }

    /// Adds a notification to the outbox, due at `due_at_ms`.
    fn notify(
        &mut self,
        context: &mut ApplyContext<'_>,
        user_id: &str,
        order_id: &str,
        kind: NotificationKind,
        due_at_ms: i64,
    ) {
        // A few per request and per canceled order: far below u32::MAX in one entry.
        context.notifications_minted = context.notifications_minted.saturating_add(1);
        let id = format!("n-{}-{}", context.index, context.notifications_minted);
        self.derived.pending_outbox.insert((due_at_ms, id.clone()));
        self.derived
            .order_notes
            .insert((order_id.to_string(), id.clone()));
        let n = Notification {
            notification_id: id.clone(),
            user_id: user_id.to_string(),
            order_id: order_id.to_string(),
            kind,
            due_at_ms,
            status: NotificationStatus::Pending,
        };
        put(
            &mut self.outbox,
            context.writes,
            column_family::OUTBOX,
            &id,
            n,
        );
    }

    /// Voids the pending reminders of an order with no valid ticket left.
    fn void_reminders(&mut self, context: &mut ApplyContext<'_>, order_id: &str) {
        let ids: Vec<String> = rows_of(&self.derived.order_notes, order_id).collect();
        for id in ids {
            let Some(mut n) = self.outbox.get(&id).cloned() else {
                continue;
            };
            if n.kind != NotificationKind::Reminder || n.status != NotificationStatus::Pending {
                continue;
            }
            self.leave_outbox(context, &n);
            n.status = NotificationStatus::Void {
                at_ms: context.now_ms,
            };
            put(
                &mut self.outbox,
                context.writes,
                column_family::OUTBOX,
                &id,
                n,
            );
        }
    }

    /// Cancels a buyer's order: its valid tickets are canceled, their seats freed, their price
    /// and fee owed back, and the buyer told.
    pub(super) fn cancel_order(
        &mut self,
        context: &mut ApplyContext<'_>,
        order_id: &str,
        user_id: &str,
        reason: &str,
    ) -> HandlerResult<Done> {
        validate::text("reason", reason, TEXT_LEN_MAX)?;
        let order = self
            .orders
            .get(order_id)
            .ok_or_else(|| not_found("order", order_id))?;
        if order.user_id != user_id {
            return Err(reject(
                Rejection::NotOwner,
                format!("order {order_id} belongs to another user"),
            ));
        }
        if matches!(order.status, OrderStatus::Canceled | OrderStatus::Refunded) {
            return Err(reject(
                Rejection::OrderNotCancelable,
                format!("order {order_id} is {:?}", order.status),
            ));
        }
        let used = order.ticket_ids.iter().any(|t| {
            self.tickets
                .get(t)
                .is_some_and(|t| matches!(t.status, TicketStatus::Used { .. }))
        });
        if used {
            return Err(reject(
                Rejection::OrderNotCancelable,
                format!("order {order_id} has a used ticket"),
            ));
        }
        let refund_minor = self.cancel_order_effects(context, order_id);
        Ok(Done::OrderCanceled {
            order_id: order_id.to_string(),
            refund_minor,
        })
    }

    /// Cancels every valid ticket of an order, frees their seats, owes their money back and
    /// marks the order canceled. Returns the refund. The ids its callers pass name orders
    /// (checked by the caller, or taken from the dt -> open orders index).
    pub(super) fn cancel_order_effects(
        &mut self,
        context: &mut ApplyContext<'_>,
        order_id: &str,
    ) -> i64 {
        let Some(mut order) = self.orders.get(order_id).cloned() else {
            return 0;
        };
        let mut refund = 0i64;
        let mut refunded_ids = Vec::new();
        for ticket_id in &order.ticket_ids {
            let Some(mut t) = self.tickets.get(ticket_id).cloned() else {
                continue;
            };
            if t.status != TicketStatus::Valid {
                continue;
            }
            self.free_ticket_seat(&t);
            // An order's tickets sum to its total (an invariant), far inside i64.
            refund = refund.saturating_add(ticket_return_minor(&t));
            t.status = TicketStatus::Canceled {
                at_ms: context.now_ms,
            };
            t.updated_at_ms = context.now_ms;
            refunded_ids.push(ticket_id.clone());
            put(
                &mut self.tickets,
                context.writes,
                column_family::TICKETS,
                ticket_id,
                t,
            );
        }
        order.refunded_minor = order.refunded_minor.saturating_add(refund);
        order.status = OrderStatus::Canceled;
        let (user_id, event_id, dt_id) = (
            order.user_id.clone(),
            order.event_id.clone(),
            order.dt_id.clone(),
        );
        put(
            &mut self.orders,
            context.writes,
            column_family::ORDERS,
            order_id,
            order,
        );
        self.derived
            .dt_open_orders
            .remove(&(dt_id.clone(), order_id.to_string()));
        // At most SEATS_PER_HOLD_MAX tickets per order.
        let returned = refunded_ids.len() as i64;
        self.bump_popularity(context, &event_id, returned.saturating_neg());
        self.notify(
            context,
            &user_id,
            order_id,
            NotificationKind::Cancellation,
            context.now_ms,
        );
        if refund > 0 {
            self.notify(
                context,
                &user_id,
                order_id,
                NotificationKind::Refund {
                    amount_minor: refund,
                    ticket_ids: refunded_ids,
                },
                context.now_ms,
            );
        }
        self.void_reminders(context, order_id);
        context.touched_dt = Some(dt_id);
        refund
    }

    /// Gives a valid ticket's seat back to the pool.
    fn free_ticket_seat(&mut self, ticket: &Ticket) {
        if let Some(book) = self.derived.books.get_mut(&ticket.dt_id) {
            book.shift(ticket.seat, SOLD, FREE);
        }
        self.uncount((ticket.dt_id.clone(), ticket.user_id.clone()), 1);
    }

    /// Refunds one valid ticket: its seat is freed and its price and fee owed back; the order is
    /// refunded once all its tickets are, partially refunded before.
    pub(super) fn refund_ticket(
        &mut self,
        context: &mut ApplyContext<'_>,
        ticket_id: &str,
        user_id: &str,
    ) -> HandlerResult<Done> {
        let mut t = self
            .tickets
            .get(ticket_id)
            .ok_or_else(|| not_found("ticket", ticket_id))?
            .clone();
        if t.user_id != user_id {
            return Err(reject(
                Rejection::NotOwner,
                format!("ticket {ticket_id} belongs to another user"),
            ));
        }
        if t.status != TicketStatus::Valid {
            return Err(reject(
                Rejection::TicketNotRefundable,
                format!("ticket {ticket_id} is {:?}", t.status),
            ));
        }
        let mut order = self
            .orders
            .get(&t.order_id)
            .cloned()
            .ok_or_else(|| not_found("order", &t.order_id))?;
        self.free_ticket_seat(&t);
        let refund = ticket_return_minor(&t);
        t.status = TicketStatus::Refunded {
            at_ms: context.now_ms,
        };
        t.updated_at_ms = context.now_ms;
        let (order_id, event_id, dt_id) = (t.order_id.clone(), t.event_id.clone(), t.dt_id.clone());
        put(
            &mut self.tickets,
            context.writes,
            column_family::TICKETS,
            ticket_id,
            t,
        );

        order.refunded_minor = order.refunded_minor.saturating_add(refund);
        let statuses: Vec<Option<&TicketStatus>> = order
            .ticket_ids
            .iter()
            .map(|id| self.tickets.get(id).map(|t| &t.status))
            .collect();
        let any_valid = statuses.contains(&Some(&TicketStatus::Valid));
        let all_refunded = statuses
            .iter()
            .all(|s| matches!(s, Some(TicketStatus::Refunded { .. })));
        order.status = if all_refunded {
            OrderStatus::Refunded
        } else {
            OrderStatus::PartiallyRefunded
        };
        if all_refunded {
            self.derived
                .dt_open_orders
                .remove(&(dt_id.clone(), order_id.clone()));
        }
        put(
            &mut self.orders,
            context.writes,
            column_family::ORDERS,
            &order_id,
            order,
        );
        self.bump_popularity(context, &event_id, -1);
        self.notify(
            context,
            user_id,
            &order_id,
            NotificationKind::Refund {
                amount_minor: refund,
                ticket_ids: vec![ticket_id.to_string()],
            },
            context.now_ms,
        );
        if !any_valid {
            self.void_reminders(context, &order_id);
        }
        context.touched_dt = Some(dt_id);
        Ok(Done::TicketRefunded {
            ticket_id: ticket_id.to_string(),
            refund_minor: refund,
        })
    }

    /// Scans a ticket at a gate of a dt. The verdict (admitted, already used, wrong dt, canceled,
    /// refunded, unknown ticket) is recorded on the ticket, bounded to the latest `SCANS_PER_TICKET_MAX`; a ticket
    /// is admitted at most once.
    pub(super) fn scan(
        &mut self,
        context: &mut ApplyContext<'_>,
        ticket_id: &str,
        dt_id: &str,
        gate: &str,
    ) -> HandlerResult<Done> {
        validate::id("gate", gate)?;
        let Some(t) = self.tickets.get(ticket_id) else {
            return Ok(Done::Scanned {
                ticket_id: ticket_id.to_string(),
                verdict: ScanVerdict::Unknown,
            });
        };
        let mut t = t.clone();
        let called_off = self
            .dts
            .get(&t.dt_id)
            .is_some_and(|d| matches!(d.status, DtStatus::Canceling | DtStatus::Canceled));
        let verdict = if t.dt_id != dt_id {
            ScanVerdict::WrongDt {
                dt_id: t.dt_id.clone(),
            }
        } else {
            match &t.status {
                // Its dt is being called off: its ticket is about to be canceled.
                TicketStatus::Valid if called_off => ScanVerdict::Canceled {
                    at_ms: context.now_ms,
                },
                TicketStatus::Valid => ScanVerdict::Admitted,
                TicketStatus::Used { at_ms, gate } => ScanVerdict::AlreadyUsed {
                    at_ms: *at_ms,
                    gate: gate.clone(),
                },
                TicketStatus::Canceled { at_ms } => ScanVerdict::Canceled { at_ms: *at_ms },
                TicketStatus::Refunded { at_ms } => ScanVerdict::Refunded { at_ms: *at_ms },
            }
        };
        if verdict == ScanVerdict::Admitted {
            t.status = TicketStatus::Used {
                at_ms: context.now_ms,
                gate: gate.to_string(),
            };
        }
        if t.scans.len() >= SCANS_PER_TICKET_MAX {
            t.scans.remove(0);
        }
        t.scans.push(ScanRecord {
            at_ms: context.now_ms,
            gate: gate.to_string(),
            verdict: verdict.clone(),
        });
        t.updated_at_ms = context.now_ms;
        put(
            &mut self.tickets,
            context.writes,
            column_family::TICKETS,
            ticket_id,
            t,
        );
        Ok(Done::Scanned {
            ticket_id: ticket_id.to_string(),
            verdict,
        })
    }

    /// Marks a notification of the outbox sent on a channel, so the dispatcher does not send it
    /// again.
    pub(super) fn mark_sent(
        &mut self,
        context: &mut ApplyContext<'_>,
        notification_id: &str,
        channel: &str,
    ) -> HandlerResult<Done> {
        validate::id("channel", channel)?;
        let mut n = self
            .outbox
            .get(notification_id)
            .ok_or_else(|| not_found("notification", notification_id))?
            .clone();
        match n.status {
            NotificationStatus::Sent { .. } => {}
            NotificationStatus::Void { .. } => {
                return Err(reject(
                    Rejection::InvalidState,
                    format!("notification {notification_id} is void"),
                ))
            }
            NotificationStatus::Pending => {
                self.leave_outbox(context, &n);
                n.status = NotificationStatus::Sent {
                    at_ms: context.now_ms,
                    channel: channel.to_string(),
                };
                put(
                    &mut self.outbox,
                    context.writes,
                    column_family::OUTBOX,
                    notification_id,
                    n,
                );
            }
        }
        Ok(Done::NotificationSent {
            notification_id: notification_id.to_string(),
        })
    }
}

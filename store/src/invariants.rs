//! The invariants that make selling safe, checked over the whole state.
//!
//! Called by `Machine::open` (so a snapshot that breaks one is refused) and by tests after
//! every apply. Within `apply`, every build asserts each seat move (a seat leaves only the
//! state it is believed in; held + sold never exceeds a tier's or area's capacity), which
//! costs a compare per seat; debug builds also recount the whole book of the dt it touched.

use std::collections::BTreeMap;

use crate::derived::rows_of;
use crate::machine::Machine;
use crate::types::{DtStatus, HoldStatus, OrderStatus, PaymentStatus, ScanVerdict, TicketStatus};

/// The sum of some i64 amounts, in i128.
fn sum(amounts: impl Iterator<Item = i64>) -> i128 {
    amounts.fold(0i128, |s, a| s.saturating_add(i128::from(a)))
}

impl Machine {
    /// Checks every invariant; the error says which and where.
    ///
    /// 1. A seat is in at most one live hold or valid (or used) ticket, and the seat books
    ///    and indexes equal a fresh rebuild from the entities.
    /// 2. Per dt and tier, available + held + sold = capacity.
    /// 3. An order's total = its tickets' prices + fees, and what it owes back = the prices +
    ///    fees of its canceled and refunded tickets.
    /// 4. A ticket is admitted at most once.
    /// 5. Money and tickets move together: a confirmed payment has its order and back.
    /// 6. An account is keyed by its email and belongs to an existing user; a user has at
    ///    most one account.
    /// 7. A canceled dt has no live hold and no order left to cancel.
    /// 8. There are at most [`crate::limits::UNFINISHED_PAYMENTS_MAX`] unfinished payments;
    ///    each failed delivery is of a pending notification.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.check_derived()?;
        self.check_dts_and_holds()?;
        let popularity = self.check_orders()?;
        self.check_payments_and_popularity(&popularity)?;
        self.check_worker_rows()?;
        self.check_accounts_and_tickets()
    }

    /// The rows the leader's worker keeps in the store name what exists (8).
    fn check_worker_rows(&self) -> Result<(), String> {
        if self.unfinished.len() > crate::limits::UNFINISHED_PAYMENTS_MAX {
            return Err(format!(
                "{} unfinished payments, more than {}",
                self.unfinished.len(),
                crate::limits::UNFINISHED_PAYMENTS_MAX
            ));
        }
        let pending = |id: &str| {
            self.outbox
                .get(id)
                .is_some_and(|n| n.status == crate::types::NotificationStatus::Pending)
        };
        if let Some(id) = self.retries.keys().find(|id| !pending(id)) {
            return Err(format!(
                "failed delivery {id} is of no pending notification"
            ));
        }
        Ok(())
    }

    /// What is derived equals a rebuild, and every seat book counts right (1, 2).
    fn check_derived(&self) -> Result<(), String> {
        let fresh = self.derive()?;
        for (dt, book) in &fresh.books {
            book.check_counts().map_err(|e| format!("dt {dt}: {e}"))?;
        }
        if fresh != self.derived {
            for (dt, book) in &fresh.books {
                if self.derived.books.get(dt) != Some(book) {
                    return Err(format!("dt {dt}: seat book differs from a rebuild"));
                }
            }
            return Err("derived indexes differ from a rebuild".into());
        }
        Ok(())
    }

    /// Canceled dts keep nothing open; holds add up and purchased ones have their order (2, 7).
    fn check_dts_and_holds(&self) -> Result<(), String> {
        for (id, dt) in &self.dts {
            let open = rows_of(&self.derived.dt_live_holds, id).next().is_some()
                || rows_of(&self.derived.dt_open_orders, id).next().is_some();
            if dt.status == DtStatus::Canceled && open {
                return Err(format!("dt {id}: canceled with live holds or open orders"));
            }
        }

        for (_, h) in self.holds.unordered() {
            let sub = sum(h.items.iter().map(|i| i.price_minor));
            let fee = sum(h.items.iter().map(|i| i.fee_minor));
            let totals = [h.subtotal_minor, h.fee_minor, h.total_minor].map(i128::from);
            if totals != [sub, fee, sub.saturating_add(fee)] {
                return Err(format!("hold {}: totals do not add up", h.hold_id));
            }
            if let HoldStatus::Purchased { order_id } = &h.status {
                if !self.orders.contains_key(order_id) {
                    return Err(format!("hold {}: purchased without order", h.hold_id));
                }
            }
        }
        Ok(())
    }

    /// Orders add up, match their tickets and payments (3, 5); the tickets each event has sold
    /// and not taken back, for its popularity.
    fn check_orders(&self) -> Result<BTreeMap<&str, u64>, String> {
        let mut popularity: BTreeMap<&str, u64> = BTreeMap::new();
        for (_, o) in self.orders.unordered() {
            // Sums in i128 of at most a few billion i64 values: they cannot overflow, whatever a
            // snapshot holds.
            let (mut sub, mut fee, mut back) = (0i128, 0i128, 0i128);
            let mut all_refunded = true;
            for id in &o.ticket_ids {
                let t = self
                    .tickets
                    .get(id)
                    .ok_or_else(|| format!("order {}: no ticket {id}", o.order_id))?;
                if t.order_id != o.order_id || t.user_id != o.user_id || t.dt_id != o.dt_id {
                    return Err(format!("ticket {id} does not match order {}", o.order_id));
                }
                sub = sub.saturating_add(i128::from(t.price_minor));
                fee = fee.saturating_add(i128::from(t.fee_minor));
                match t.status {
                    TicketStatus::Canceled { .. } | TicketStatus::Refunded { .. } => {
                        back = back
                            .saturating_add(i128::from(t.price_minor))
                            .saturating_add(i128::from(t.fee_minor));
                    }
                    TicketStatus::Valid | TicketStatus::Used { .. } => {
                        let n = popularity.entry(&t.event_id).or_default();
                        *n = n.saturating_add(1);
                    }
                }
                all_refunded &= matches!(t.status, TicketStatus::Refunded { .. });
            }
            let totals = [o.subtotal_minor, o.fee_minor, o.total_minor].map(i128::from);
            if totals != [sub, fee, sub.saturating_add(fee)] {
                return Err(format!(
                    "order {}: total {} != ticket prices {sub} + fees {fee}",
                    o.order_id, o.total_minor
                ));
            }
            if back != i128::from(o.refunded_minor) {
                return Err(format!(
                    "order {}: owes back {} but its canceled and refunded tickets sum to {back}",
                    o.order_id, o.refunded_minor
                ));
            }
            if (o.status == OrderStatus::Refunded) != (all_refunded && !o.ticket_ids.is_empty()) {
                return Err(format!(
                    "order {}: status {:?} vs tickets",
                    o.order_id, o.status
                ));
            }
            match self.payments.get(&o.payment_ref).map(|p| &p.status) {
                Some(PaymentStatus::Confirmed { order_id }) if order_id == &o.order_id => {}
                other => {
                    return Err(format!(
                        "order {}: payment {} is {other:?}",
                        o.order_id, o.payment_ref
                    ))
                }
            }
        }
        Ok(popularity)
    }

    /// Confirmed payments have their order (5); each event's popularity is what it sold.
    fn check_payments_and_popularity(
        &self,
        popularity: &BTreeMap<&str, u64>,
    ) -> Result<(), String> {
        for (_, p) in self.payments.unordered() {
            if let PaymentStatus::Confirmed { order_id } = &p.status {
                if self.orders.get(order_id).map(|o| &o.payment_ref) != Some(&p.payment_ref) {
                    return Err(format!(
                        "payment {} confirmed without its order",
                        p.payment_ref
                    ));
                }
            }
        }
        for e in self.events.values() {
            let want = popularity.get(e.event_id.as_str()).copied().unwrap_or(0);
            if e.popularity != want {
                return Err(format!(
                    "event {}: popularity {} but {want} tickets sold",
                    e.event_id, e.popularity
                ));
            }
        }
        Ok(())
    }

    /// Accounts are keyed right (6); a ticket is admitted at most once (4).
    fn check_accounts_and_tickets(&self) -> Result<(), String> {
        for (email, a) in self.accounts.unordered() {
            if a.email != *email || !self.users.contains_key(&a.user_id) {
                return Err(format!("account {email}: key or user {} wrong", a.user_id));
            }
        }

        for (_, t) in self.tickets.unordered() {
            let admitted: Vec<_> = t
                .scans
                .iter()
                .filter(|s| s.verdict == ScanVerdict::Admitted)
                .collect();
            if admitted.len() > 1 {
                return Err(format!("ticket {} admitted twice", t.ticket_id));
            }
            if let Some(s) = admitted.first() {
                let used_here = TicketStatus::Used {
                    at_ms: s.at_ms,
                    gate: s.gate.clone(),
                };
                if t.status != used_here {
                    return Err(format!(
                        "ticket {}: admitted at {} but status {:?}",
                        t.ticket_id, s.at_ms, t.status
                    ));
                }
            }
            if let TicketStatus::Used { at_ms, .. } = &t.status {
                let later_admit = t
                    .scans
                    .iter()
                    .any(|s| s.verdict == ScanVerdict::Admitted && s.at_ms != *at_ms);
                if later_admit {
                    return Err(format!("ticket {} admitted after use", t.ticket_id));
                }
            }
        }
        Ok(())
    }
}

//! Holds: seats out of the pool for a user, their expiry, and the payments that pin them.

use crate::columns::column_family;
use crate::limits::*;
use crate::machine::{ApplyContext, Machine};
use crate::money::{platform_fee_minor, HoldAmounts};
use crate::persist::put;
use crate::protocol::{Done, GaPick, Rejection};
use crate::seats::{FREE, HELD, OFF, SOLD, TIER_NONE};
use crate::types::*;

use super::refusal::{not_found, reject, HandlerResult};
use super::validate;

/// What a hold of one dt needs to know of its sale: the seller's fee, the dt's currency and
/// the price of each tier.
pub(super) struct Sale {
    fee_bps: u32,
    currency: String,
    prices: Vec<i64>,
}

impl Sale {
    /// The item of a seat or GA place of tier `tier`, priced.
    fn item(&self, seat: SeatRef, tier: u8) -> HandlerResult<HoldItem> {
        let price_minor = *self
            .prices
            .get(usize::from(tier))
            .ok_or_else(|| reject(Rejection::SeatNotForSale, format!("{seat:?} is in no tier")))?;
        Ok(HoldItem {
            seat,
            tier,
            price_minor,
            fee_minor: platform_fee_minor(price_minor, self.fee_bps),
        })
    }
}

impl Machine {
    /// Checks shared by both ways of holding: the dt is on sale, the user and hold id are
    /// good, and `count` seats fit the per-hold and per-user bounds.
    fn hold_preflight(
        &self,
        now: i64,
        hold_id: &str,
        dt_id: &str,
        user_id: &str,
        count: u64,
    ) -> HandlerResult<Sale> {
        validate::id("hold_id", hold_id)?;
        let dt = self.dt_live(dt_id)?;
        if dt.status != DtStatus::Published
            || now < dt.sale_starts_at_ms
            || now >= dt.sale_ends_at_ms
        {
            return Err(reject(
                Rejection::SaleNotOpen,
                format!("dt {dt_id} is not on sale now"),
            ));
        }
        if !self.users.contains_key(user_id) {
            return Err(not_found("user", user_id));
        }
        if self.holds.contains_key(hold_id) {
            return Err(reject(
                Rejection::AlreadyExists,
                format!("hold {hold_id} exists"),
            ));
        }
        if count == 0 {
            return Err(reject(Rejection::InvalidArgument, "nothing to hold"));
        }
        if count > u64::from(SEATS_PER_HOLD_MAX) {
            return Err(reject(
                Rejection::HoldLimitExceeded,
                format!("at most {SEATS_PER_HOLD_MAX} seats per hold"),
            ));
        }
        let have = self
            .derived
            .user_dt_seats
            .get(&(dt_id.to_string(), user_id.to_string()))
            .copied()
            .unwrap_or(0);
        if u64::from(have).saturating_add(count) > u64::from(SEATS_PER_USER_PER_DT_MAX) {
            return Err(reject(
                Rejection::UserLimitExceeded,
                format!("user has {have} seats of dt {dt_id}; at most {SEATS_PER_USER_PER_DT_MAX}"),
            ));
        }
        let fee_bps = self
            .events
            .get(&dt.event_id)
            .and_then(|e| self.sellers.get(&e.seller_id))
            .ok_or_else(|| not_found("seller of event", &dt.event_id))?
            .fee_bps;
        Ok(Sale {
            fee_bps,
            currency: dt
                .tiers
                .first()
                .map(|t| t.spec.currency.clone())
                .unwrap_or_default(),
            prices: dt.tiers.iter().map(|t| t.spec.price_minor).collect(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn hold_seats(
        &mut self,
        context: &mut ApplyContext<'_>,
        hold_id: &str,
        dt_id: &str,
        user_id: &str,
        seats: &[u32],
        ga: &[GaPick],
        ttl_ms: i64,
    ) -> HandlerResult<Done> {
        // The preflight bounds the count by SEATS_PER_HOLD_MAX before the loops below walk
        // the lists; GA picks of quantity 0 are refused at the first one, so neither loop
        // runs past SEATS_PER_HOLD_MAX + 1 items.
        let count = ga.iter().fold(seats.len() as u64, |n, g| {
            n.saturating_add(u64::from(g.quantity))
        });
        let sale = self.hold_preflight(context.now_ms, hold_id, dt_id, user_id, count)?;
        let book = self
            .derived
            .books
            .get(dt_id)
            .ok_or_else(|| not_found("seat book of dt", dt_id))?;
        let mut items = Vec::with_capacity(seats.len());
        for (i, s) in seats.iter().enumerate() {
            if seats.iter().take(i).any(|o| o == s) {
                return Err(reject(
                    Rejection::InvalidArgument,
                    format!("seat {s} named twice"),
                ));
            }
            let seat = SeatRef::Seat(*s);
            match book.lookup(seat) {
                None | Some((_, OFF)) => {
                    return Err(reject(
                        Rejection::SeatNotForSale,
                        format!("seat {s} is not for sale"),
                    ))
                }
                Some((_, HELD)) => {
                    return Err(reject(
                        Rejection::SeatAlreadyHeld,
                        format!("seat {s} is held"),
                    ))
                }
                Some((_, SOLD)) => {
                    return Err(reject(Rejection::SeatTaken, format!("seat {s} is sold")))
                }
                Some((tier, _)) => items.push(sale.item(seat, tier)?),
            }
        }
        let areas = self
            .dts
            .get(dt_id)
            .and_then(|dt| self.layouts.get(&dt.venue_id))
            .map_or(&[][..], |l| l.seating_map.ga_areas.as_slice());
        for (i, g) in ga.iter().enumerate() {
            if ga.iter().take(i).any(|o| o.area_id == g.area_id) || g.quantity == 0 {
                return Err(reject(
                    Rejection::InvalidArgument,
                    format!("GA area {} named twice or with quantity 0", g.area_id),
                ));
            }
            let area = areas
                .iter()
                .position(|a| a.area_id == g.area_id)
                .and_then(|a| u16::try_from(a).ok());
            let Some((a, (tier, counts))) =
                area.and_then(|a| book.ga().get(usize::from(a)).map(|c| (a, *c)))
            else {
                return Err(reject(
                    Rejection::SeatNotForSale,
                    format!("no GA area {}", g.area_id),
                ));
            };
            if tier == TIER_NONE {
                return Err(reject(
                    Rejection::SeatNotForSale,
                    format!("GA area {} is not for sale", g.area_id),
                ));
            }
            if counts.available() < g.quantity {
                return Err(reject(
                    Rejection::NotEnoughSeats,
                    format!(
                        "GA area {} has {} places left",
                        g.area_id,
                        counts.available()
                    ),
                ));
            }
            // quantity <= SEATS_PER_HOLD_MAX (the count was checked above).
            let place = sale.item(SeatRef::Ga(a), tier)?;
            items.extend(std::iter::repeat_n(place, g.quantity as usize));
        }
        Ok(self.place_hold(
            context,
            hold_id,
            dt_id,
            user_id,
            items,
            sale.currency,
            ttl_ms,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn hold_best_available(
        &mut self,
        context: &mut ApplyContext<'_>,
        hold_id: &str,
        dt_id: &str,
        user_id: &str,
        tier_id: &str,
        quantity: u32,
        ttl_ms: i64,
    ) -> HandlerResult<Done> {
        let sale =
            self.hold_preflight(context.now_ms, hold_id, dt_id, user_id, u64::from(quantity))?;
        let tier = self
            .dts
            .get(dt_id)
            .and_then(|dt| dt.tiers.iter().position(|t| t.spec.tier_id == tier_id))
            .and_then(|t| u8::try_from(t).ok())
            .ok_or_else(|| not_found("tier", tier_id))?;
        let book = self
            .derived
            .books
            .get_mut(dt_id)
            .ok_or_else(|| not_found("seat book of dt", dt_id))?;
        // quantity <= SEATS_PER_HOLD_MAX (the preflight checked it).
        let picked = book.best_available(tier, quantity as usize);
        if picked.len() < quantity as usize {
            return Err(reject(
                Rejection::NotEnoughSeats,
                format!("tier {tier_id} has {} left", picked.len()),
            ));
        }
        let items = picked
            .into_iter()
            .map(|seat| sale.item(seat, tier))
            .collect::<HandlerResult<Vec<_>>>()?;
        Ok(self.place_hold(
            context,
            hold_id,
            dt_id,
            user_id,
            items,
            sale.currency,
            ttl_ms,
        ))
    }

    /// Takes validated free seats out of the pool into a new hold.
    #[allow(clippy::too_many_arguments)]
    fn place_hold(
        &mut self,
        context: &mut ApplyContext<'_>,
        hold_id: &str,
        dt_id: &str,
        user_id: &str,
        items: Vec<HoldItem>,
        currency: String,
        ttl_ms: i64,
    ) -> Done {
        if let Some(book) = self.derived.books.get_mut(dt_id) {
            for item in &items {
                book.shift(item.seat, FREE, HELD);
            }
        }
        let amounts = HoldAmounts::of(&items);
        let seats: Vec<SeatRef> = items.iter().map(|i| i.seat).collect();
        let held = u32::try_from(items.len()).unwrap_or(u32::MAX);
        let hold = Hold {
            hold_id: hold_id.to_string(),
            dt_id: dt_id.to_string(),
            user_id: user_id.to_string(),
            items,
            subtotal_minor: amounts.subtotal_minor,
            fee_minor: amounts.fee_minor,
            total_minor: amounts.total_minor,
            currency,
            created_at_ms: context.now_ms,
            // Log time is at most TIME_MS_MAX and a TTL at most HOLD_TTL_MAX_MS.
            expires_at_ms: context.now_ms.saturating_add(ttl_ms),
            pinned_until_ms: None,
            payment_ref: None,
            payment_attempts: 0,
            status: HoldStatus::Live,
        };
        let done = Done::HoldPlaced {
            hold_id: hold_id.to_string(),
            seats,
            total_minor: hold.total_minor,
            currency: hold.currency.clone(),
            expires_at_ms: hold.expires_at_ms,
        };
        let owned = self
            .derived
            .user_dt_seats
            .entry((dt_id.to_string(), user_id.to_string()))
            .or_default();
        // At most SEATS_PER_USER_PER_DT_MAX (the preflight checked it).
        *owned = owned.saturating_add(held);
        self.derived
            .live_by_expiry
            .insert((hold.effective_expiry_ms(), hold_id.to_string()));
        self.derived
            .dt_live_holds
            .insert((dt_id.to_string(), hold_id.to_string()));
        put(
            &mut self.holds,
            context.writes,
            column_family::HOLDS,
            hold_id,
            hold,
        );
        context.touched_dt = Some(dt_id.to_string());
        done
    }

    /// A live hold of `user_id`, or why not.
    pub(super) fn live_hold(&self, hold_id: &str, user_id: Option<&str>) -> HandlerResult<Hold> {
        let hold = self
            .holds
            .get(hold_id)
            .ok_or_else(|| not_found("hold", hold_id))?;
        if user_id.is_some_and(|u| u != hold.user_id) {
            return Err(reject(
                Rejection::NotOwner,
                format!("hold {hold_id} belongs to another user"),
            ));
        }
        match &hold.status {
            HoldStatus::Live => Ok(hold.clone()),
            HoldStatus::Expired { at_ms } => Err(reject(
                Rejection::HoldExpired,
                format!("hold {hold_id} expired at {at_ms}"),
            )),
            HoldStatus::Released { .. } | HoldStatus::Purchased { .. } => Err(reject(
                Rejection::HoldNotLive,
                format!("hold {hold_id} is {:?}", hold.status),
            )),
        }
    }

    /// The payment a hold names, while it is still pending.
    pub(super) fn payment_pending(&self, hold: &Hold) -> Option<&Payment> {
        hold.payment_ref
            .as_ref()
            .and_then(|r| self.payments.get(r))
            .filter(|p| p.status == PaymentStatus::Pending)
    }

    /// Releases a buyer's live hold, freeing its seats; refused while a payment is in flight.
    pub(super) fn release_hold(
        &mut self,
        context: &mut ApplyContext<'_>,
        hold_id: &str,
        user_id: &str,
    ) -> HandlerResult<Done> {
        let hold = self.live_hold(hold_id, Some(user_id))?;
        if let Some(p) = self.payment_pending(&hold) {
            return Err(reject(
                Rejection::PaymentInProgress,
                format!("payment {} is in flight", p.payment_ref),
            ));
        }
        self.end_hold(
            context,
            hold_id,
            HoldStatus::Released {
                at_ms: context.now_ms,
            },
            "",
        );
        Ok(Done::HoldReleased {
            hold_id: hold_id.to_string(),
        })
    }

    /// Ends a live hold (released or expired): seats go back, a pending payment fails. The ids
    /// its callers pass come from the live-hold indexes, which name live holds only (checked
    /// against a rebuild); anything else is left as it is.
    pub(super) fn end_hold(
        &mut self,
        context: &mut ApplyContext<'_>,
        hold_id: &str,
        status: HoldStatus,
        why: &str,
    ) {
        let Some(mut hold) = self.holds.get(hold_id).cloned() else {
            return;
        };
        if hold.status != HoldStatus::Live {
            return;
        }
        if let Some(book) = self.derived.books.get_mut(&hold.dt_id) {
            for item in &hold.items {
                book.shift(item.seat, HELD, FREE);
            }
        }
        self.derived
            .live_by_expiry
            .remove(&(hold.effective_expiry_ms(), hold_id.to_string()));
        self.derived
            .dt_live_holds
            .remove(&(hold.dt_id.clone(), hold_id.to_string()));
        let key = (hold.dt_id.clone(), hold.user_id.clone());
        self.uncount(key, hold.items.len());
        if let Some(p) = self.payment_pending(&hold).cloned() {
            let reason = if why.is_empty() { "hold ended" } else { why };
            self.fail_payment(context, p, reason);
        }
        hold.pinned_until_ms = None;
        hold.status = status;
        context.touched_dt = Some(hold.dt_id.clone());
        put(
            &mut self.holds,
            context.writes,
            column_family::HOLDS,
            hold_id,
            hold,
        );
    }

    /// Takes `n` seats off what a user holds or owns of a dt.
    pub(super) fn uncount(&mut self, key: (String, String), n: usize) {
        if let Some(c) = self.derived.user_dt_seats.get_mut(&key) {
            *c = c.saturating_sub(u32::try_from(n).unwrap_or(u32::MAX));
            if *c == 0 {
                self.derived.user_dt_seats.remove(&key);
            }
        }
    }

    /// Marks a payment failed with its reason and writes it through.
    pub(super) fn fail_payment(
        &mut self,
        context: &mut ApplyContext<'_>,
        mut payment: Payment,
        reason: &str,
    ) {
        payment.status = PaymentStatus::Failed {
            reason: reason.to_string(),
            at_ms: context.now_ms,
        };
        let id = payment.payment_ref.clone();
        put(
            &mut self.payments,
            context.writes,
            column_family::PAYMENTS,
            &id,
            payment,
        );
    }

    /// Expires every live hold whose effective expiry is at or before `up_to_ms`.
    pub(crate) fn expire_due(&mut self, context: &mut ApplyContext<'_>, up_to_ms: i64) {
        while let Some((at, id)) = self.derived.live_by_expiry.first().cloned() {
            if at > up_to_ms {
                break;
            }
            // Off the index first: the loop ends even if the hold were not live.
            self.derived.live_by_expiry.pop_first();
            self.end_hold(
                context,
                &id,
                HoldStatus::Expired { at_ms: at },
                "hold expired",
            );
            context.holds_expired = context.holds_expired.saturating_add(1);
        }
    }

    /// Moves a live hold to a new effective expiry in the index.
    fn reindex_hold(&mut self, before: i64, hold: &Hold) {
        self.derived
            .live_by_expiry
            .remove(&(before, hold.hold_id.clone()));
        self.derived
            .live_by_expiry
            .insert((hold.effective_expiry_ms(), hold.hold_id.clone()));
    }

    /// Starts paying for a live hold: the amount must be the hold's total, and the hold is
    /// pinned for `PAYMENT_PIN_MS` so it does not expire while the provider answers.
    pub(super) fn start_payment(
        &mut self,
        context: &mut ApplyContext<'_>,
        hold_id: &str,
        user_id: &str,
        payment_ref: &str,
        amount_minor: i64,
        currency: &str,
    ) -> HandlerResult<Done> {
        let mut hold = self.live_hold(hold_id, Some(user_id))?;
        self.dt_live(&hold.dt_id)?;
        validate::id("payment_ref", payment_ref)?;
        if let Some(p) = self.payment_pending(&hold) {
            return Err(reject(
                Rejection::PaymentInProgress,
                format!("payment {} is in flight", p.payment_ref),
            ));
        }
        if self.payments.contains_key(payment_ref) {
            return Err(reject(
                Rejection::AlreadyExists,
                format!("payment {payment_ref} exists"),
            ));
        }
        if hold.payment_attempts >= PAYMENT_ATTEMPTS_PER_HOLD_MAX {
            return Err(reject(
                Rejection::PaymentAttemptsExceeded,
                format!("at most {PAYMENT_ATTEMPTS_PER_HOLD_MAX} payments per hold"),
            ));
        }
        if amount_minor != hold.total_minor || currency != hold.currency {
            return Err(reject(
                Rejection::AmountMismatch,
                format!(
                    "hold {hold_id} costs {} {}",
                    hold.total_minor, hold.currency
                ),
            ));
        }
        self.check_unfinished_room()?;
        let before = hold.effective_expiry_ms();
        // Log time is at most TIME_MS_MAX.
        let pinned_until_ms = context.now_ms.saturating_add(PAYMENT_PIN_MS);
        hold.pinned_until_ms = Some(pinned_until_ms);
        hold.payment_ref = Some(payment_ref.to_string());
        // Below PAYMENT_ATTEMPTS_PER_HOLD_MAX (checked above).
        hold.payment_attempts = hold.payment_attempts.saturating_add(1);
        self.reindex_hold(before, &hold);
        let payment = Payment {
            payment_ref: payment_ref.to_string(),
            hold_id: hold_id.to_string(),
            user_id: user_id.to_string(),
            amount_minor,
            currency: currency.to_string(),
            started_at_ms: context.now_ms,
            status: PaymentStatus::Pending,
        };
        put(
            &mut self.payments,
            context.writes,
            column_family::PAYMENTS,
            payment_ref,
            payment,
        );
        self.record_unfinished(context, payment_ref, hold_id);
        put(
            &mut self.holds,
            context.writes,
            column_family::HOLDS,
            hold_id,
            hold,
        );
        Ok(Done::PaymentStarted {
            hold_id: hold_id.to_string(),
            payment_ref: payment_ref.to_string(),
            pinned_until_ms,
        })
    }

    /// Records that the provider refused the payment in flight for a hold: the pin ends and the
    /// hold lives on until its own expiry, so the buyer may try again.
    pub(super) fn payment_failed(
        &mut self,
        context: &mut ApplyContext<'_>,
        hold_id: &str,
        payment_ref: &str,
        reason: &str,
    ) -> HandlerResult<Done> {
        validate::text("reason", reason, TEXT_LEN_MAX)?;
        let p = self
            .payments
            .get(payment_ref)
            .ok_or_else(|| not_found("payment", payment_ref))?
            .clone();
        if p.hold_id != hold_id || p.status != PaymentStatus::Pending {
            return Err(reject(
                Rejection::InvalidState,
                format!("payment {payment_ref} is not in flight for hold {hold_id}"),
            ));
        }
        let hold = self
            .holds
            .get(hold_id)
            .cloned()
            .ok_or_else(|| not_found("hold", hold_id))?;
        self.fail_payment(context, p, reason);
        if hold.status == HoldStatus::Live {
            let mut hold = hold;
            let before = hold.effective_expiry_ms();
            hold.pinned_until_ms = None;
            self.reindex_hold(before, &hold);
            put(
                &mut self.holds,
                context.writes,
                column_family::HOLDS,
                hold_id,
                hold,
            );
            // Unpinned past its own expiry: it lapses now, not at some later entry.
            self.expire_due(context, context.now_ms);
        }
        Ok(Done::PaymentFailed {
            hold_id: hold_id.to_string(),
            payment_ref: payment_ref.to_string(),
        })
    }
}

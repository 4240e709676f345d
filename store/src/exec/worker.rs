//! What the leader's worker keeps in the store (version 2): the reconciler's cursor over the
//! provider's intents, the set of payments not yet seen settled, and failed deliveries with
//! their next attempt.

use crate::columns::column_family;
use crate::limits::*;
use crate::machine::{ApplyContext, Machine};
use crate::persist::put;
use crate::protocol::{Done, Rejection};
use crate::types::*;

use super::refusal::{not_found, reject, HandlerResult};
use super::validate;

impl Machine {
    /// Moves cursor `name` forward to (`created_ms`, `intent_id`); the intents in
    /// `unsettled` join the unfinished set.
    pub(super) fn advance_cursor(
        &mut self,
        context: &mut ApplyContext<'_>,
        name: &str,
        (created_ms, intent_id): (i64, &str),
        unsettled: &[String],
    ) -> HandlerResult<Done> {
        if name.is_empty()
            || name.len() > CURSOR_NAME_LEN_MAX
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b))
        {
            return Err(reject(
                Rejection::InvalidArgument,
                format!(
                    "a cursor name is 1..={CURSOR_NAME_LEN_MAX} bytes of letters, digits and -_.:/"
                ),
            ));
        }
        validate::id("intent_id", intent_id)?;
        validate::count("unsettled intents", unsettled.len(), SETTLED_PER_ENTRY_MAX)?;
        for r in unsettled {
            validate::id("unsettled intent", r)?;
        }
        let joining = unsettled
            .iter()
            .filter(|r| !self.unfinished.contains_key(r.as_str()))
            .count();
        if self.unfinished.len().saturating_add(joining) > UNFINISHED_PAYMENTS_MAX {
            return Err(reject(
                Rejection::InvalidState,
                format!("the unfinished set would pass {UNFINISHED_PAYMENTS_MAX} payments"),
            ));
        }
        if !(TIME_MS_MIN..=TIME_MS_MAX).contains(&created_ms) {
            return Err(reject(
                Rejection::InvalidArgument,
                format!("created_ms must be within {TIME_MS_MIN}..={TIME_MS_MAX}"),
            ));
        }
        if let Some(c) = self.cursors.get(name) {
            if (created_ms, intent_id) <= (c.created_ms, c.intent_id.as_str()) {
                return Err(reject(
                    Rejection::InvalidState,
                    format!(
                        "cursor {name} is at {} ({}) already",
                        c.intent_id, c.created_ms
                    ),
                ));
            }
        }
        let cursor = ReconcileCursor {
            created_ms,
            intent_id: intent_id.to_string(),
        };
        put(
            &mut self.cursors,
            context.writes,
            column_family::CURSORS,
            name,
            cursor,
        );
        for r in unsettled {
            if !self.unfinished.contains_key(r.as_str()) {
                let row = UnfinishedPayment {
                    hold_id: self
                        .payments
                        .get(r)
                        .map(|p| p.hold_id.clone())
                        .unwrap_or_default(),
                    started_index: context.index,
                };
                put(
                    &mut self.unfinished,
                    context.writes,
                    column_family::UNFINISHED,
                    r,
                    row,
                );
            }
        }
        Ok(Done::CursorAdvanced {
            name: name.to_string(),
        })
    }

    /// Drops settled payments from the unfinished set; pending ones stay.
    pub(super) fn payments_settled(
        &mut self,
        context: &mut ApplyContext<'_>,
        refs: &[String],
    ) -> HandlerResult<Done> {
        validate::count("payment refs", refs.len(), SETTLED_PER_ENTRY_MAX)?;
        for r in refs {
            validate::id("payment_ref", r)?;
        }
        let mut removed = 0u32;
        for r in refs {
            let pending = self
                .payments
                .get(r)
                .is_some_and(|p| p.status == PaymentStatus::Pending);
            if !pending && self.unfinished.remove(r).is_some() {
                context
                    .writes
                    .delete(column_family::UNFINISHED, r.as_bytes());
                // At most SETTLED_PER_ENTRY_MAX.
                removed = removed.saturating_add(1);
            }
        }
        Ok(Done::PaymentsSettled { removed })
    }

    /// Records a failed delivery of a pending notification and when to try it next.
    pub(super) fn notification_failed(
        &mut self,
        context: &mut ApplyContext<'_>,
        notification_id: &str,
        park_after: u32,
        error: &str,
    ) -> HandlerResult<Done> {
        if !(1..=DELIVERY_ATTEMPTS_MAX).contains(&park_after) {
            return Err(reject(
                Rejection::InvalidArgument,
                format!("park_after must be 1..={DELIVERY_ATTEMPTS_MAX}"),
            ));
        }
        validate::text("error", error, DELIVERY_ERROR_LEN_MAX)?;
        let n = self
            .outbox
            .get(notification_id)
            .ok_or_else(|| not_found("notification", notification_id))?;
        if n.status != NotificationStatus::Pending {
            return Err(reject(
                Rejection::InvalidState,
                format!("notification {notification_id} is not pending"),
            ));
        }
        let offered = self.offered_at(n);
        let attempts = self
            .retries
            .get(notification_id)
            .map_or(0, |r| r.attempts)
            .saturating_add(1);
        let parked = attempts >= park_after;
        let delay = if parked {
            PARKED_RETRY_MS
        } else {
            // The shift is capped at 20: 2^20 s is far past the longest delay.
            RETRY_DELAY_FIRST_MS
                .saturating_mul(1i64 << attempts.saturating_sub(1).min(20))
                .min(RETRY_DELAY_MAX_MS)
        };
        // Log time is at most TIME_MS_MAX, the delays an hour at most.
        let next_at_ms = context.now_ms.saturating_add(delay);
        let retry = DeliveryRetry {
            attempts,
            next_at_ms,
            parked,
            last_error: error.to_string(),
        };
        self.derived
            .pending_outbox
            .remove(&(offered, notification_id.to_string()));
        self.derived
            .pending_outbox
            .insert((next_at_ms, notification_id.to_string()));
        put(
            &mut self.retries,
            context.writes,
            column_family::RETRIES,
            notification_id,
            retry,
        );
        Ok(Done::NotificationDeferred {
            notification_id: notification_id.to_string(),
            attempts,
            next_at_ms,
            parked,
        })
    }

    /// Refuses a `StartPayment` when the unfinished set is full (from version 2 on): called
    /// while validating, before anything changed.
    pub(super) fn check_unfinished_room(&self) -> HandlerResult<()> {
        if self.cluster_version() >= crate::version::PAYMENTS_IN_STORE
            && self.unfinished.len() >= UNFINISHED_PAYMENTS_MAX
        {
            return Err(reject(
                Rejection::InvalidState,
                format!(
                    "{UNFINISHED_PAYMENTS_MAX} payments wait for the reconciler: \
                     the reconciler is behind, try again later"
                ),
            ));
        }
        Ok(())
    }

    /// Adds a started payment to the unfinished set (from version 2 on; before, no replica
    /// keeps the set).
    pub(super) fn record_unfinished(
        &mut self,
        context: &mut ApplyContext<'_>,
        payment_ref: &str,
        hold_id: &str,
    ) {
        if self.cluster_version() < crate::version::PAYMENTS_IN_STORE
            || self.unfinished.contains_key(payment_ref)
        {
            return;
        }
        let row = UnfinishedPayment {
            hold_id: hold_id.to_string(),
            started_index: context.index,
        };
        put(
            &mut self.unfinished,
            context.writes,
            column_family::UNFINISHED,
            payment_ref,
            row,
        );
    }

    /// Takes pending notification `n` out of the outbox's offer (sent or void) and forgets
    /// its failed deliveries.
    pub(super) fn leave_outbox(&mut self, context: &mut ApplyContext<'_>, n: &Notification) {
        let offered = self.offered_at(n);
        self.derived
            .pending_outbox
            .remove(&(offered, n.notification_id.clone()));
        if self.retries.remove(&n.notification_id).is_some() {
            context
                .writes
                .delete(column_family::RETRIES, n.notification_id.as_bytes());
        }
    }
}

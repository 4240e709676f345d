//! One handler per command. Each validates everything first, against the named bounds of
//! [`crate::limits`], and only then changes state, so a rejection leaves the state (and the
//! write set) exactly as it was.
//!
//! Architecture invariant: no value a command brings can make a handler panic. Lookups are
//! fallible and happen while validating; arithmetic on command values is checked (a rejection)
//! or runs on values whose bounds validation established (saturating, with the bound named).
//!
//! - `catalogue`: venues, sellers, events, dts, and a dt's cancellation in bounded steps.
//! - `users`: profiles, accounts, roles.
//! - `holds`: holds, their expiry, payments started and failed.
//! - `orders`: purchases, cancellations, refunds, scans, the outbox.
//! - `worker`: what the leader's worker keeps (version 2): the reconciler's cursor, unfinished
//!   payments, failed deliveries.

mod catalogue;
mod holds;
mod orders;
mod refusal;
mod users;
mod validate;
mod worker;

use crate::machine::{ApplyContext, Machine};
use crate::protocol::{Command, Done, Rejection};
use crate::types::*;

use refusal::{misrouted, reject, HandlerResult};

impl Machine {
    pub(crate) fn execute(
        &mut self,
        context: &mut ApplyContext<'_>,
        command: &Command,
    ) -> HandlerResult<Done> {
        // The leader refuses to propose a command its cluster version does not allow yet;
        // one that reaches the log anyway is rejected here, the same way on every replica,
        // since the cluster version is replicated state.
        let needs = command.required_version();
        if needs > self.cluster_version() {
            return Err(reject(
                Rejection::InvalidState,
                format!(
                    "this command needs cluster version {needs}; the cluster is at {}",
                    self.cluster_version()
                ),
            ));
        }
        // Each family unpacks its own commands; this match names every command once, so a new
        // one does not compile until it is routed.
        match command {
            Command::CreateVenue { .. }
            | Command::SetVenueLayout { .. }
            | Command::CreateSeller { .. }
            | Command::UpdateSeller { .. }
            | Command::CreateEvent { .. }
            | Command::CreateDt { .. }
            | Command::ChangeSaleWindow { .. }
            | Command::PublishDt { .. }
            | Command::CancelDt { .. }
            | Command::ContinueCancelDt { .. } => self.execute_catalogue(context, command),
            Command::HoldSeats { .. }
            | Command::HoldBestAvailable { .. }
            | Command::ReleaseHold { .. }
            | Command::StartPayment { .. }
            | Command::PaymentFailed { .. }
            | Command::ExpireHolds { .. } => self.execute_holds(context, command),
            Command::ConfirmPurchase { .. }
            | Command::CancelOrder { .. }
            | Command::RefundTicket { .. }
            | Command::Scan { .. }
            | Command::MarkNotificationSent { .. } => self.execute_orders(context, command),
            Command::UpsertUser { .. }
            | Command::RegisterUser { .. }
            | Command::SetUserRole { .. } => self.execute_users(context, command),
            Command::DigestState { .. }
            | Command::CheckDigest { .. }
            | Command::SetClusterVersion { .. } => self.execute_node(context, command),
            Command::AdvanceCursor {
                name,
                created_ms,
                intent_id,
                unsettled,
            } => self.advance_cursor(context, name, (*created_ms, intent_id), unsettled),
            Command::PaymentsSettled { payment_refs } => {
                self.payments_settled(context, payment_refs)
            }
            Command::NotificationFailed {
                notification_id,
                park_after,
                error,
            } => self.notification_failed(context, notification_id, *park_after, error),
            #[cfg(feature = "next-version")]
            Command::Echo { .. } => self.execute_node(context, command),
        }
    }

    /// Unpacks a command of venues, sellers, events and dts for its handler.
    fn execute_catalogue(
        &mut self,
        context: &mut ApplyContext<'_>,
        command: &Command,
    ) -> HandlerResult<Done> {
        match command {
            Command::CreateVenue {
                venue_id,
                name,
                city,
            } => self.create_venue(context, venue_id, name, city),
            Command::SetVenueLayout {
                venue_id,
                address,
                geo,
                seating_map,
            } => self.set_venue_layout(context, venue_id, address, *geo, seating_map),
            Command::CreateSeller {
                seller_id,
                name,
                fee_bps,
                plan,
            } => self.create_seller(context, seller_id, name, *fee_bps, *plan),
            Command::UpdateSeller {
                seller_id,
                fee_bps,
                plan,
            } => self.update_seller(context, seller_id, *fee_bps, *plan),
            Command::CreateEvent {
                event_id,
                seller_id,
                title,
                description,
                category,
                performers,
            } => self.create_event(
                context,
                Event {
                    event_id: event_id.clone(),
                    seller_id: seller_id.clone(),
                    title: title.clone(),
                    description: description.clone(),
                    category: category.clone(),
                    performers: performers.clone(),
                    popularity: 0,
                    created_index: context.index,
                },
            ),
            Command::CreateDt {
                dt_id,
                event_id,
                venue_id,
                starts_at_ms,
                time_zone,
                tiers,
                sale_starts_at_ms,
                sale_ends_at_ms,
            } => self.create_dt(
                context,
                Dt {
                    dt_id: dt_id.clone(),
                    event_id: event_id.clone(),
                    venue_id: venue_id.clone(),
                    starts_at_ms: *starts_at_ms,
                    time_zone: time_zone.clone(),
                    tiers: Vec::new(),
                    sale_starts_at_ms: *sale_starts_at_ms,
                    sale_ends_at_ms: *sale_ends_at_ms,
                    status: DtStatus::Draft,
                    created_index: context.index,
                },
                tiers,
            ),
            Command::ChangeSaleWindow {
                dt_id,
                sale_starts_at_ms,
                sale_ends_at_ms,
            } => self.change_sale_window(context, dt_id, *sale_starts_at_ms, *sale_ends_at_ms),
            Command::PublishDt { dt_id } => self.publish_dt(context, dt_id),
            Command::CancelDt { dt_id, reason } => self.cancel_dt(context, dt_id, reason),
            Command::ContinueCancelDt { dt_id } => self.continue_cancel_dt(context, dt_id),
            other => Err(misrouted(other)),
        }
    }

    /// Unpacks a command of holds and the payments that pin them for its handler.
    fn execute_holds(
        &mut self,
        context: &mut ApplyContext<'_>,
        command: &Command,
    ) -> HandlerResult<Done> {
        match command {
            Command::HoldSeats {
                hold_id,
                dt_id,
                user_id,
                seats,
                ga,
                hold_ttl_ms,
            } => {
                let ttl = validate::hold_ttl(*hold_ttl_ms)?;
                self.hold_seats(context, hold_id, dt_id, user_id, seats, ga, ttl)
            }
            Command::HoldBestAvailable {
                hold_id,
                dt_id,
                user_id,
                tier_id,
                quantity,
                hold_ttl_ms,
            } => {
                let ttl = validate::hold_ttl(*hold_ttl_ms)?;
                self.hold_best_available(context, hold_id, dt_id, user_id, tier_id, *quantity, ttl)
            }
            Command::ReleaseHold { hold_id, user_id } => {
                self.release_hold(context, hold_id, user_id)
            }
            Command::StartPayment {
                hold_id,
                user_id,
                payment_ref,
                amount_minor,
                currency,
            } => self.start_payment(
                context,
                hold_id,
                user_id,
                payment_ref,
                *amount_minor,
                currency,
            ),
            Command::PaymentFailed {
                hold_id,
                payment_ref,
                reason,
            } => self.payment_failed(context, hold_id, payment_ref, reason),
            Command::ExpireHolds { up_to_ms } => {
                self.expire_due(context, (*up_to_ms).min(context.now_ms));
                Ok(Done::HoldsExpired {
                    count: context.holds_expired,
                })
            }
            other => Err(misrouted(other)),
        }
    }

    /// Unpacks a command of purchases, cancellations, refunds, scans and the outbox for its handler.
    fn execute_orders(
        &mut self,
        context: &mut ApplyContext<'_>,
        command: &Command,
    ) -> HandlerResult<Done> {
        match command {
            Command::ConfirmPurchase {
                hold_id,
                order_id,
                payment_ref,
                amount_minor,
                currency,
                secret_seed,
            } => self.confirm_purchase(
                context,
                hold_id,
                order_id,
                payment_ref,
                *amount_minor,
                currency,
                secret_seed,
            ),
            Command::CancelOrder {
                order_id,
                user_id,
                reason,
            } => self.cancel_order(context, order_id, user_id, reason),
            Command::RefundTicket { ticket_id, user_id } => {
                self.refund_ticket(context, ticket_id, user_id)
            }
            Command::Scan {
                ticket_id,
                dt_id,
                gate,
            } => self.scan(context, ticket_id, dt_id, gate),
            Command::MarkNotificationSent {
                notification_id,
                channel,
            } => self.mark_sent(context, notification_id, channel),
            other => Err(misrouted(other)),
        }
    }

    /// Unpacks a command of profiles, accounts and roles for its handler.
    fn execute_users(
        &mut self,
        context: &mut ApplyContext<'_>,
        command: &Command,
    ) -> HandlerResult<Done> {
        match command {
            Command::UpsertUser {
                user_id,
                profile,
                contact,
                reminder,
                payment_token_sealed,
            } => self.upsert_user(
                context,
                User {
                    user_id: user_id.clone(),
                    profile: profile.clone(),
                    contact: contact.clone(),
                    reminder: reminder.clone(),
                    payment_token_sealed: payment_token_sealed.clone(),
                    created_index: context.index,
                    updated_index: context.index,
                },
            ),
            Command::RegisterUser {
                user_id,
                email,
                password_hash,
                role,
                profile,
                phone,
            } => self.register_user(
                context,
                user_id,
                email,
                password_hash,
                *role,
                profile,
                phone,
            ),
            Command::SetUserRole { user_id, role } => self.set_user_role(context, user_id, *role),
            other => Err(misrouted(other)),
        }
    }

    /// Unpacks a command of what the Raft runtime acts on, and the cluster version for its handler.
    fn execute_node(
        &mut self,
        context: &mut ApplyContext<'_>,
        command: &Command,
    ) -> HandlerResult<Done> {
        match command {
            // Node-level: the Raft runtime acts on them after the entry is applied.
            Command::DigestState {} => Ok(Done::DigestRequested {}),
            Command::CheckDigest { index, digest } => {
                validate::digest(*index, digest, context.index)?;
                Ok(Done::DigestNoted { index: *index })
            }
            Command::SetClusterVersion { version } => self.set_cluster_version(context, *version),
            #[cfg(feature = "next-version")]
            Command::Echo { text } => {
                validate::text("text", text, crate::limits::TEXT_LEN_MAX)?;
                Ok(Done::Echoed { text: text.clone() })
            }
            other => Err(misrouted(other)),
        }
    }

    /// Raises the cluster version. Lowering it is refused: what was written at a version
    /// stays readable only by binaries of that version or later.
    fn set_cluster_version(
        &mut self,
        context: &mut ApplyContext<'_>,
        version: u32,
    ) -> HandlerResult<Done> {
        let current = self.cluster_version();
        if version > crate::limits::CLUSTER_VERSION_MAX {
            return Err(reject(
                Rejection::InvalidArgument,
                format!(
                    "cluster version {version} passes {}",
                    crate::limits::CLUSTER_VERSION_MAX
                ),
            ));
        }
        if version < current {
            return Err(reject(
                Rejection::InvalidState,
                format!("the cluster is at version {current}; it is never lowered to {version}"),
            ));
        }
        if version > current {
            self.set_cluster_version_raw(context.writes, version);
        }
        Ok(Done::ClusterVersionSet { version })
    }
}

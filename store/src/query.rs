//! Reads of the applied state. Queries never change state and may use floats (distances):
//! they are answered by one replica, not replayed.

use std::ops::Bound;

use crate::limits::QUERY_LIMIT_MAX;
use crate::machine::Machine;
use crate::money::{add_to_totals, ledger_entry, platform_fee_minor};
use crate::protocol::{
    EventFilter, EventHit, GaAvailability, LedgerEntry, LedgerTotals, OrderView, Query,
    QueryResult, SeatMapView, SellerLedger, TierAvailability,
};
use crate::seats::TIER_NONE;
use crate::types::{DtStatus, GeoPoint};

/// Great-circle distance in meters (haversine on a sphere of the Earth's mean radius).
pub fn distance_m(a: GeoPoint, b: GeoPoint) -> f64 {
    const EARTH_RADIUS_M: f64 = 6_371_008.8;
    let rad = |e6: i32| (e6 as f64 * 1e-6).to_radians();
    let (lat1, lon1, lat2, lon2) = (rad(a.lat_e6), rad(a.lon_e6), rad(b.lat_e6), rad(b.lon_e6));
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// A distance within a radius (a u32 of meters), rounded to whole meters.
#[allow(clippy::cast_possible_truncation)] // in 0..=u32::MAX: `as` saturates besides
fn meters(d: f64) -> u32 {
    d.round() as u32
}

fn cap(limit: u32) -> usize {
    limit.clamp(1, QUERY_LIMIT_MAX) as usize
}

impl Machine {
    /// Answers a read from the applied state.
    pub fn query(&self, query: &Query) -> QueryResult {
        answer(self, query)
    }
}

fn answer(machine: &Machine, query: &Query) -> QueryResult {
    match query {
        Query::GetVenue { venue_id } => QueryResult::Venue(machine.venues.get(venue_id).cloned()),
        Query::Digest => QueryResult::Digest(machine.digest()),
        Query::GetVenueLayout { venue_id } => {
            QueryResult::VenueLayout(machine.layouts.get(venue_id).cloned())
        }
        Query::GetSeller { seller_id } => {
            QueryResult::Seller(machine.sellers.get(seller_id).cloned())
        }
        Query::GetEvent { event_id } => QueryResult::Event(machine.events.get(event_id).cloned()),
        Query::BrowseEvents(f) => QueryResult::Events(browse(machine, f)),
        Query::ListDts { event_id } => {
            let mut dts: Vec<_> = machine.event_dts(event_id).cloned().collect();
            dts.sort_by(|a, b| (a.starts_at_ms, &a.dt_id).cmp(&(b.starts_at_ms, &b.dt_id)));
            QueryResult::Dts(dts)
        }
        Query::GetDt { dt_id } => QueryResult::Dt(machine.dts.get(dt_id).cloned()),
        Query::SeatMap { dt_id } => QueryResult::SeatMap(seat_map(machine, dt_id)),
        Query::GetHold { hold_id } => QueryResult::Hold(machine.holds.get(hold_id).cloned()),
        Query::GetPayment { payment_ref } => {
            QueryResult::Payment(machine.payments.get(payment_ref).cloned())
        }
        Query::GetUser { user_id } => QueryResult::User(machine.users.get(user_id).cloned()),
        Query::UserOrders { user_id, limit } => {
            let mut views: Vec<OrderView> = machine
                .derived
                .user_orders
                .range((user_id.clone(), String::new())..)
                .take_while(|(u, _)| u == user_id)
                .filter_map(|(_, o)| order_view(machine, o))
                .collect();
            views.sort_by_key(|v| std::cmp::Reverse(v.order.created_index));
            views.truncate(cap(*limit));
            QueryResult::Orders(views)
        }
        Query::GetOrder { order_id } => QueryResult::Order(order_view(machine, order_id)),
        Query::GetTicket { ticket_id } => {
            QueryResult::Ticket(machine.tickets.get(ticket_id).cloned())
        }
        Query::DueNotifications {
            up_to_ms,
            after,
            limit,
        } => QueryResult::Notifications(
            machine
                .derived
                .pending_outbox
                .range((after_bound(after), Bound::Unbounded))
                .take_while(|(due, _)| due <= up_to_ms)
                .take(cap(*limit))
                .filter_map(|(_, id)| machine.outbox.get(id).cloned())
                .collect(),
        ),
        Query::AccountByEmail { email } => QueryResult::Account(
            crate::types::normalize_email(email).and_then(|e| machine.accounts.get(&e).cloned()),
        ),
        Query::GetAccount { user_id } => QueryResult::Account(
            machine
                .derived
                .account_of_user
                .get(user_id)
                .and_then(|e| machine.accounts.get(e))
                .cloned(),
        ),
        Query::SellerLedger { seller_id, limit } => {
            QueryResult::SellerLedger(seller_ledger(machine, seller_id, cap(*limit)))
        }
        Query::CancelingDts { limit } => QueryResult::Dts(
            machine
                .derived
                .canceling_dts
                .iter()
                .take(cap(*limit))
                .filter_map(|id| machine.dts.get(id).cloned())
                .collect(),
        ),
        Query::SearchEvents { text, limit } => {
            QueryResult::Events(machine.search.search(machine, text, cap(*limit)))
        }
        Query::GetNotification { .. }
        | Query::OrderNotifications { .. }
        | Query::DeliveryRetry { .. }
        | Query::ReconcileCursor { .. }
        | Query::UnfinishedPayments { .. }
        | Query::DeliveryRetries { .. } => {
            // Every query routed here has its answer there.
            worker_rows(machine, query).unwrap_or(QueryResult::Notifications(Vec::new()))
        }
    }
}

/// A seller's ledger: every order of its events (one pass over the seller's orders).
fn seller_ledger(machine: &Machine, seller_id: &str, limit: usize) -> Option<SellerLedger> {
    let seller = machine.sellers.get(seller_id)?;
    let mut entries: Vec<(u64, LedgerEntry)> = machine
        .derived
        .seller_orders
        .range((seller_id.to_string(), String::new())..)
        .take_while(|(s, _)| s == seller_id)
        .filter_map(|(_, id)| machine.orders.get(id))
        .map(|o| {
            let returned: Vec<&crate::types::Ticket> = o
                .ticket_ids
                .iter()
                .filter_map(|t| machine.tickets.get(t))
                .filter(|t| {
                    matches!(
                        t.status,
                        crate::types::TicketStatus::Canceled { .. }
                            | crate::types::TicketStatus::Refunded { .. }
                    )
                })
                .collect();
            (o.created_index, ledger_entry(o, &returned))
        })
        .collect();
    let mut totals: std::collections::BTreeMap<&str, LedgerTotals> = Default::default();
    for (_, e) in &entries {
        let t = totals.entry(&e.currency).or_insert_with(|| LedgerTotals {
            currency: e.currency.clone(),
            ..Default::default()
        });
        add_to_totals(t, e);
    }
    let totals = totals.into_values().collect();
    entries.sort_by_key(|(index, _)| std::cmp::Reverse(*index));
    entries.truncate(limit);
    Some(SellerLedger {
        seller_id: seller_id.to_string(),
        fee_bps: seller.fee_bps,
        plan: seller.plan,
        totals,
        entries: entries.into_iter().map(|(_, e)| e).collect(),
    })
}

fn order_view(machine: &Machine, order_id: &str) -> Option<OrderView> {
    let order = machine.orders.get(order_id)?.clone();
    let tickets = order
        .ticket_ids
        .iter()
        .filter_map(|t| machine.tickets.get(t).cloned())
        .collect();
    Some(OrderView { order, tickets })
}

/// Events with a published dt matching the filter, most popular first, then nearest, then id.
fn browse(machine: &Machine, filter: &EventFilter) -> Vec<EventHit> {
    let mut best: std::collections::BTreeMap<&str, EventHit> = Default::default();
    for dt in machine.dts.values() {
        if dt.status != DtStatus::Published
            || filter.from_ms.is_some_and(|from| dt.starts_at_ms < from)
            || filter.to_ms.is_some_and(|to| dt.starts_at_ms >= to)
        {
            continue;
        }
        let Some(event) = machine.events.get(&dt.event_id) else {
            continue;
        };
        if filter
            .category
            .as_ref()
            .is_some_and(|c| c != &event.category)
        {
            continue;
        }
        let distance_m = match &filter.near {
            None => None,
            Some(near) => {
                let Some(layout) = machine.layouts.get(&dt.venue_id) else {
                    continue;
                };
                let d = distance_m(near.point, layout.geo);
                if d > near.radius_m as f64 {
                    continue;
                }
                Some(meters(d))
            }
        };
        let hit = EventHit {
            event: event.clone(),
            dt_id: dt.dt_id.clone(),
            starts_at_ms: dt.starts_at_ms,
            venue_id: dt.venue_id.clone(),
            distance_m,
        };
        // Keep the nearest dt, then the earliest.
        let better = |old: &EventHit| {
            (hit.distance_m, hit.starts_at_ms, &hit.dt_id)
                < (old.distance_m, old.starts_at_ms, &old.dt_id)
        };
        match best.get(event.event_id.as_str()) {
            Some(old) if !better(old) => {}
            _ => {
                best.insert(&event.event_id, hit);
            }
        }
    }
    let mut hits: Vec<EventHit> = best.into_values().collect();
    hits.sort_by(|a, b| {
        b.event
            .popularity
            .cmp(&a.event.popularity)
            .then(a.distance_m.cmp(&b.distance_m))
            .then(a.event.event_id.cmp(&b.event.event_id))
    });
    hits.truncate(cap(filter.limit));
    hits
}

fn seat_map(machine: &Machine, dt_id: &str) -> Option<SeatMapView> {
    let dt = machine.dts.get(dt_id)?;
    let book = machine.derived.books.get(dt_id)?;
    let fee_bps = machine
        .events
        .get(&dt.event_id)
        .and_then(|e| machine.sellers.get(&e.seller_id))
        .map(|s| s.fee_bps)
        .unwrap_or(0);
    let tiers = dt
        .tiers
        .iter()
        .zip(book.tiers())
        .map(|(t, c)| TierAvailability {
            tier_id: t.spec.tier_id.clone(),
            name: t.spec.name.clone(),
            price_minor: t.spec.price_minor,
            fee_minor: platform_fee_minor(t.spec.price_minor, fee_bps),
            currency: t.spec.currency.clone(),
            capacity: c.capacity,
            available: c.available(),
            held: c.held,
            sold: c.sold,
        })
        .collect();
    let areas = machine
        .layouts
        .get(&dt.venue_id)
        .map(|l| l.seating_map.ga_areas.as_slice())
        .unwrap_or(&[]);
    let ga = areas
        .iter()
        .zip(book.ga())
        .map(|(a, (t, c))| GaAvailability {
            area_id: a.area_id.clone(),
            tier_id: dt
                .tiers
                .get(usize::from(*t))
                .map(|tier| tier.spec.tier_id.clone()),
            capacity: c.capacity,
            available: if *t == TIER_NONE { 0 } else { c.available() },
        })
        .collect();
    Some(SeatMapView {
        dt_id: dt_id.to_string(),
        venue_id: dt.venue_id.clone(),
        tiers,
        ga,
        // At most SEATS_PER_VENUE_MAX.
        seat_count: u32::try_from(book.seat_count()).unwrap_or(u32::MAX),
        seat_states: book.packed_states(),
        seat_tiers: book.tier_runs(),
    })
}

/// The answers of what the leader's worker keeps (version 2) and of one notification.
fn worker_rows(machine: &Machine, query: &Query) -> Option<QueryResult> {
    Some(match query {
        Query::GetNotification { notification_id } => QueryResult::Notifications(
            machine
                .outbox
                .get(notification_id)
                .cloned()
                .into_iter()
                .collect(),
        ),
        Query::OrderNotifications { order_id } => QueryResult::Notifications(
            crate::derived::rows_of(&machine.derived.order_notes, order_id)
                .filter_map(|id| machine.outbox.get(&id).cloned())
                .collect(),
        ),
        Query::DeliveryRetry { notification_id } => QueryResult::Retries(
            machine
                .retries
                .get(notification_id)
                .map(|r| (notification_id.clone(), r.clone()))
                .into_iter()
                .collect(),
        ),
        Query::ReconcileCursor { name } => QueryResult::Cursor(machine.cursors.get(name).cloned()),
        Query::UnfinishedPayments { after, limit } => QueryResult::Unfinished(
            machine
                .unfinished
                .range::<String, _>((after_bound(after), Bound::Unbounded))
                .take(cap(*limit))
                .map(|(r, u)| (r.clone(), u.clone()))
                .collect(),
        ),
        Query::DeliveryRetries {
            after,
            parked_only,
            limit,
        } => QueryResult::Retries(
            machine
                .retries
                .range::<String, _>((after_bound(after), Bound::Unbounded))
                .filter(|(_, r)| r.parked || !parked_only)
                .take(cap(*limit))
                .map(|(id, r)| (id.clone(), r.clone()))
                .collect(),
        ),
        _ => return None,
    })
}

/// The lower bound of a page that starts after `after`.
fn after_bound<K: Clone>(after: &Option<K>) -> Bound<K> {
    match after {
        Some(a) => Bound::Excluded(a.clone()),
        None => Bound::Unbounded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_oslo_to_bergen_is_about_305_km() {
        let oslo = GeoPoint {
            lat_e6: 59_913_900,
            lon_e6: 10_752_200,
        };
        let bergen = GeoPoint {
            lat_e6: 60_391_300,
            lon_e6: 5_322_100,
        };
        let d = distance_m(oslo, bergen);
        assert!((300_000.0..310_000.0).contains(&d), "{d}");
        assert_eq!(distance_m(oslo, oslo), 0.0);
    }
}

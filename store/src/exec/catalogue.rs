//! The catalogue: venues and their layouts, sellers, events, dts and their sale windows, and a
//! dt's cancellation, done in bounded steps.

use crate::columns::column_family;
use crate::derived::rows_of;
use crate::limits::*;
use crate::machine::{ApplyContext, Machine};
use crate::persist::put;
use crate::protocol::{Done, Rejection};
use crate::types::*;

use super::refusal::{not_found, reject, HandlerResult};
use super::validate;

impl Machine {
    /// Creates a venue with a name and city; its layout comes later (`set_venue_layout`).
    pub(super) fn create_venue(
        &mut self,
        context: &mut ApplyContext<'_>,
        venue_id: &str,
        name: &str,
        city: &str,
    ) -> HandlerResult<Done> {
        if venue_id.is_empty() || name.is_empty() {
            return Err(reject(
                Rejection::InvalidArgument,
                "venue id and name are required",
            ));
        }
        validate::id("venue_id", venue_id)?;
        validate::text("name", name, TEXT_LEN_MAX)?;
        validate::text("city", city, TEXT_LEN_MAX)?;
        if self.venues.contains_key(venue_id) {
            return Err(reject(
                Rejection::AlreadyExists,
                format!("venue {venue_id} exists"),
            ));
        }
        let venue = Venue {
            venue_id: venue_id.to_string(),
            name: name.to_string(),
            city: city.to_string(),
            created_index: context.index,
        };
        put(
            &mut self.venues,
            context.writes,
            column_family::VENUES,
            venue_id,
            venue,
        );
        Ok(Done::VenueCreated {
            venue_id: venue_id.to_string(),
        })
    }

    /// Sets a venue's address, position and seating map. Refused once the venue has a dt:
    /// the dts' seat books are built from the map, so it is frozen from then on.
    pub(super) fn set_venue_layout(
        &mut self,
        context: &mut ApplyContext<'_>,
        venue_id: &str,
        address: &str,
        geo: GeoPoint,
        map: &SeatingMap,
    ) -> HandlerResult<Done> {
        if !self.venues.contains_key(venue_id) {
            return Err(not_found("venue", venue_id));
        }
        if self.venue_has_dts(venue_id) {
            return Err(reject(
                Rejection::InvalidState,
                format!("venue {venue_id} has dts: its seats are frozen"),
            ));
        }
        validate::text("address", address, TEXT_LEN_MAX)?;
        validate::geo(geo)?;
        let seat_count = validate::seating_map(map)?;
        let layout = VenueLayout {
            venue_id: venue_id.to_string(),
            address: address.to_string(),
            geo,
            seating_map: map.clone(),
            updated_index: context.index,
        };
        put(
            &mut self.layouts,
            context.writes,
            column_family::LAYOUTS,
            venue_id,
            layout,
        );
        Ok(Done::VenueLayoutSet {
            venue_id: venue_id.to_string(),
            // At most SEATS_PER_VENUE_MAX (validated).
            seat_count: u32::try_from(seat_count).unwrap_or(u32::MAX),
        })
    }

    /// True when some dt (of any status) is at the venue: one step in the venue -> dts index.
    fn venue_has_dts(&self, venue_id: &str) -> bool {
        self.derived
            .venue_dts
            .range((venue_id.to_string(), String::new())..)
            .next()
            .is_some_and(|(v, _)| v == venue_id)
    }

    /// Creates a seller with its platform fee (at most `FEE_BPS_MAX` basis points) and plan.
    pub(super) fn create_seller(
        &mut self,
        context: &mut ApplyContext<'_>,
        seller_id: &str,
        name: &str,
        fee_bps: u32,
        plan: SellerPlan,
    ) -> HandlerResult<Done> {
        validate::id("seller_id", seller_id)?;
        validate::text("name", name, TEXT_LEN_MAX)?;
        check_fee(fee_bps)?;
        if self.sellers.contains_key(seller_id) {
            return Err(reject(
                Rejection::AlreadyExists,
                format!("seller {seller_id} exists"),
            ));
        }
        let seller = Seller {
            seller_id: seller_id.to_string(),
            name: name.to_string(),
            fee_bps,
            plan,
            created_index: context.index,
        };
        put(
            &mut self.sellers,
            context.writes,
            column_family::SELLERS,
            seller_id,
            seller,
        );
        Ok(Done::SellerCreated {
            seller_id: seller_id.to_string(),
        })
    }

    /// Changes a seller's fee and plan. Holds and orders keep the fee they were priced with.
    pub(super) fn update_seller(
        &mut self,
        context: &mut ApplyContext<'_>,
        seller_id: &str,
        fee_bps: u32,
        plan: SellerPlan,
    ) -> HandlerResult<Done> {
        let mut seller = self
            .sellers
            .get(seller_id)
            .cloned()
            .ok_or_else(|| not_found("seller", seller_id))?;
        check_fee(fee_bps)?;
        seller.fee_bps = fee_bps;
        seller.plan = plan;
        put(
            &mut self.sellers,
            context.writes,
            column_family::SELLERS,
            seller_id,
            seller,
        );
        Ok(Done::SellerUpdated {
            seller_id: seller_id.to_string(),
        })
    }

    /// Creates an event of an existing seller, its text checked against the named bounds.
    pub(super) fn create_event(
        &mut self,
        context: &mut ApplyContext<'_>,
        event: Event,
    ) -> HandlerResult<Done> {
        validate::id("event_id", &event.event_id)?;
        validate::text("title", &event.title, TEXT_LEN_MAX)?;
        validate::text("description", &event.description, TEXT_LEN_MAX)?;
        validate::text("category", &event.category, ID_LEN_MAX)?;
        if event.title.is_empty() {
            return Err(reject(Rejection::InvalidArgument, "title is required"));
        }
        validate::count("performers", event.performers.len(), PERFORMERS_MAX)?;
        for p in &event.performers {
            validate::text("performer", p, TEXT_LEN_MAX)?;
        }
        if self.events.contains_key(&event.event_id) {
            return Err(reject(
                Rejection::AlreadyExists,
                format!("event {} exists", event.event_id),
            ));
        }
        if !self.sellers.contains_key(&event.seller_id) {
            return Err(not_found("seller", &event.seller_id));
        }
        let id = event.event_id.clone();
        put(
            &mut self.events,
            context.writes,
            column_family::EVENTS,
            &id,
            event,
        );
        self.search.changed(&id);
        Ok(Done::EventCreated { event_id: id })
    }

    /// Creates a dt (a date and time of an event at a venue) as a draft, its tiers priced in
    /// one currency and its seat book built from the venue's seating map.
    pub(super) fn create_dt(
        &mut self,
        context: &mut ApplyContext<'_>,
        mut dt: Dt,
        specs: &[TierSpec],
    ) -> HandlerResult<Done> {
        validate::id("dt_id", &dt.dt_id)?;
        if self.dts.contains_key(&dt.dt_id) {
            return Err(reject(
                Rejection::AlreadyExists,
                format!("dt {} exists", dt.dt_id),
            ));
        }
        if !self.events.contains_key(&dt.event_id) {
            return Err(not_found("event", &dt.event_id));
        }
        if !self.venues.contains_key(&dt.venue_id) {
            return Err(not_found("venue", &dt.venue_id));
        }
        if self.event_dts(&dt.event_id).count() >= DTS_PER_EVENT_MAX {
            return Err(reject(
                Rejection::InvalidArgument,
                format!("an event has at most {DTS_PER_EVENT_MAX} dts"),
            ));
        }
        validate::time_zone(&dt.time_zone)?;
        validate::instant("starts_at_ms", dt.starts_at_ms)?;
        validate::window(dt.sale_starts_at_ms, dt.sale_ends_at_ms)?;
        if specs.is_empty() || specs.len() > TIERS_PER_DT_MAX {
            return Err(reject(
                Rejection::InvalidArgument,
                format!("a dt has 1..={TIERS_PER_DT_MAX} tiers"),
            ));
        }
        let currency = specs.first().map_or("", |t| t.currency.as_str());
        for (i, t) in specs.iter().enumerate() {
            check_tier(t, currency)?;
            if specs.iter().take(i).any(|o| o.tier_id == t.tier_id) {
                return Err(reject(
                    Rejection::InvalidArgument,
                    format!("tier {} twice", t.tier_id),
                ));
            }
        }
        let empty = SeatingMap::default();
        let map = self
            .layouts
            .get(&dt.venue_id)
            .map(|l| &l.seating_map)
            .unwrap_or(&empty);
        let book = crate::seats::SeatBook::build(map, specs)
            .map_err(|e| reject(Rejection::InvalidArgument, e))?;
        dt.tiers = specs
            .iter()
            .zip(book.tiers())
            .map(|(s, c)| Tier {
                spec: s.clone(),
                capacity: c.capacity,
            })
            .collect();
        // Seats and places of a venue are at most PLACES_PER_VENUE_MAX (checked by the build).
        let capacity = book
            .tiers()
            .iter()
            .fold(0u32, |sum, c| sum.saturating_add(c.capacity));
        let id = dt.dt_id.clone();
        self.derived.books.insert(id.clone(), book);
        self.derived
            .event_dts
            .entry(dt.event_id.clone())
            .or_default()
            .insert(id.clone());
        self.derived
            .venue_dts
            .insert((dt.venue_id.clone(), id.clone()));
        // The event is now also found by this dt's venue.
        self.search.changed(&dt.event_id);
        put(&mut self.dts, context.writes, column_family::DTS, &id, dt);
        Ok(Done::DtCreated {
            dt_id: id,
            capacity,
        })
    }

    /// A dt that is neither canceled nor being canceled.
    pub(super) fn dt_live(&self, dt_id: &str) -> HandlerResult<&Dt> {
        let dt = self.dts.get(dt_id).ok_or_else(|| not_found("dt", dt_id))?;
        if matches!(dt.status, DtStatus::Canceled | DtStatus::Canceling) {
            return Err(reject(
                Rejection::DtCanceled,
                format!("dt {dt_id} is canceled"),
            ));
        }
        Ok(dt)
    }

    /// Moves the window in which a dt sells.
    pub(super) fn change_sale_window(
        &mut self,
        context: &mut ApplyContext<'_>,
        dt_id: &str,
        starts: i64,
        ends: i64,
    ) -> HandlerResult<Done> {
        let mut dt = self.dt_live(dt_id)?.clone();
        validate::window(starts, ends)?;
        dt.sale_starts_at_ms = starts;
        dt.sale_ends_at_ms = ends;
        put(&mut self.dts, context.writes, column_family::DTS, dt_id, dt);
        Ok(Done::SaleWindowChanged {
            dt_id: dt_id.to_string(),
        })
    }

    /// Publishes a draft dt: it becomes visible and sells within its sale window.
    pub(super) fn publish_dt(
        &mut self,
        context: &mut ApplyContext<'_>,
        dt_id: &str,
    ) -> HandlerResult<Done> {
        let mut dt = self.dt_live(dt_id)?.clone();
        if dt.status != DtStatus::Draft {
            return Err(reject(
                Rejection::InvalidState,
                format!("dt {dt_id} is already published"),
            ));
        }
        dt.status = DtStatus::Published;
        put(&mut self.dts, context.writes, column_family::DTS, dt_id, dt);
        Ok(Done::DtPublished {
            dt_id: dt_id.to_string(),
        })
    }

    /// Calls a dt off: it stops selling at once and shows as canceling while its live holds
    /// are released and its orders canceled, [`CANCEL_ROWS_PER_ENTRY_MAX`] of them per entry;
    /// the leader proposes [`crate::Command::ContinueCancelDt`] for the rest.
    pub(super) fn cancel_dt(
        &mut self,
        context: &mut ApplyContext<'_>,
        dt_id: &str,
        reason: &str,
    ) -> HandlerResult<Done> {
        let mut dt = self.dt_live(dt_id)?.clone();
        validate::text("reason", reason, TEXT_LEN_MAX)?;
        dt.status = DtStatus::Canceling;
        put(&mut self.dts, context.writes, column_family::DTS, dt_id, dt);
        self.derived.canceling_dts.insert(dt_id.to_string());
        Ok(self.cancel_step(context, dt_id))
    }

    /// The next step of a dt's cancellation.
    pub(super) fn continue_cancel_dt(
        &mut self,
        context: &mut ApplyContext<'_>,
        dt_id: &str,
    ) -> HandlerResult<Done> {
        let dt = self.dts.get(dt_id).ok_or_else(|| not_found("dt", dt_id))?;
        if dt.status != DtStatus::Canceling {
            return Err(reject(
                Rejection::InvalidState,
                format!("dt {dt_id} is not being canceled"),
            ));
        }
        Ok(self.cancel_step(context, dt_id))
    }

    /// At most `n` open orders of a dt, in id order: what a cancellation step cancels.
    #[cfg(not(feature = "fault-hash-order"))]
    fn orders_to_cancel(&self, dt_id: &str, count: usize) -> Vec<String> {
        rows_of(&self.derived.dt_open_orders, dt_id)
            .take(count)
            .collect()
    }

    /// Fault injection (feature `fault-hash-order`, never in a release): the open orders of a
    /// dt taken in the order table's hash order, which differs between replicas, so they number
    /// their refund notifications differently. The determinism tests, `ticketctl endpoint
    /// hashkv` and the chaos checker must each catch it.
    #[cfg(feature = "fault-hash-order")]
    fn orders_to_cancel(&self, dt_id: &str, count: usize) -> Vec<String> {
        self.orders
            .unordered()
            .filter(|(_, o)| {
                o.dt_id == dt_id
                    && matches!(
                        o.status,
                        OrderStatus::Confirmed | OrderStatus::PartiallyRefunded
                    )
            })
            .map(|(id, _)| id.clone())
            .take(count)
            .collect()
    }

    /// Releases live holds, then cancels open orders, of a canceling dt, in id order, at most
    /// [`CANCEL_ROWS_PER_ENTRY_MAX`] in all; marks the dt canceled when none is left.
    fn cancel_step(&mut self, context: &mut ApplyContext<'_>, dt_id: &str) -> Done {
        context.touched_dt = Some(dt_id.to_string());
        let holds: Vec<String> = rows_of(&self.derived.dt_live_holds, dt_id)
            .take(CANCEL_ROWS_PER_ENTRY_MAX)
            .collect();
        for h in &holds {
            self.end_hold(
                context,
                h,
                HoldStatus::Released {
                    at_ms: context.now_ms,
                },
                "dt canceled",
            );
        }
        let room = CANCEL_ROWS_PER_ENTRY_MAX.saturating_sub(holds.len());
        let orders = self.orders_to_cancel(dt_id, room);
        for o in &orders {
            self.cancel_order_effects(context, o);
        }
        let left = rows_of(&self.derived.dt_live_holds, dt_id).next().is_some()
            || rows_of(&self.derived.dt_open_orders, dt_id)
                .next()
                .is_some();
        if !left {
            if let Some(mut dt) = self.dts.get(dt_id).cloned() {
                dt.status = DtStatus::Canceled;
                put(&mut self.dts, context.writes, column_family::DTS, dt_id, dt);
            }
            self.derived.canceling_dts.remove(dt_id);
        }
        // Both at most CANCEL_ROWS_PER_ENTRY_MAX.
        Done::DtCanceled {
            dt_id: dt_id.to_string(),
            holds_released: u32::try_from(holds.len()).unwrap_or(u32::MAX),
            orders_canceled: u32::try_from(orders.len()).unwrap_or(u32::MAX),
        }
    }
}

fn check_fee(fee_bps: u32) -> HandlerResult<()> {
    if fee_bps > FEE_BPS_MAX {
        return Err(reject(
            Rejection::InvalidArgument,
            format!("fee above {FEE_BPS_MAX} bps"),
        ));
    }
    Ok(())
}

/// One tier of a new dt: its id, name, currency (that of the dt's first tier), price, and how
/// many sections, ranges and areas it names.
fn check_tier(tier: &TierSpec, currency: &str) -> HandlerResult<()> {
    validate::id("tier_id", &tier.tier_id)?;
    validate::text("tier name", &tier.name, TEXT_LEN_MAX)?;
    validate::currency(&tier.currency)?;
    if tier.currency != currency {
        return Err(reject(
            Rejection::InvalidArgument,
            "every tier of a dt has the same currency",
        ));
    }
    if !(0..=PRICE_MINOR_MAX).contains(&tier.price_minor) {
        return Err(reject(
            Rejection::InvalidArgument,
            format!("price must be 0..={PRICE_MINOR_MAX}"),
        ));
    }
    validate::count("sections per tier", tier.sections.len(), TIER_PARTS_MAX)?;
    validate::count("GA areas per tier", tier.ga_areas.len(), TIER_PARTS_MAX)?;
    validate::count(
        "seat ranges per tier",
        tier.seat_ranges.len(),
        SEAT_RANGES_PER_TIER_MAX,
    )
}

//! One handler per command. Each validates everything first and only then changes state, so a
//! rejection leaves the state (and the write set) exactly as it was.

use sha2::{Digest as _, Sha256};

use crate::command::{Command, Done, GaPick, Rejection};
use crate::limits::*;
use crate::machine::{cf, put, Cx, Machine};
use crate::seats::{FREE, HELD, OFF, SOLD};
use crate::types::*;

/// A refusal on its way to becoming [`crate::Outcome::Rejected`].
#[derive(Debug)]
pub(crate) struct Reject {
    pub code: Rejection,
    pub detail: String,
}

type R<T> = Result<T, Reject>;

fn no(code: Rejection, detail: impl Into<String>) -> Reject {
    Reject {
        code,
        detail: detail.into(),
    }
}

fn check_id(field: &str, v: &str) -> R<()> {
    if v.is_empty() || v.len() > ID_LEN_MAX || v.contains('\0') {
        return Err(no(
            Rejection::InvalidArgument,
            format!("{field} must be 1..={ID_LEN_MAX} bytes without NUL"),
        ));
    }
    Ok(())
}

fn check_text(field: &str, v: &str, max: usize) -> R<()> {
    if v.len() > max {
        return Err(no(
            Rejection::InvalidArgument,
            format!("{field} longer than {max} bytes"),
        ));
    }
    Ok(())
}

fn check_currency(v: &str) -> R<()> {
    if v.len() != 3 || !v.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(no(
            Rejection::InvalidArgument,
            format!("currency {v:?} is not an ISO 4217 code"),
        ));
    }
    Ok(())
}

/// The TTL a hold command names, within its bounds, or the default.
fn hold_ttl(named: Option<i64>) -> R<i64> {
    match named {
        None => Ok(HOLD_TTL_MS),
        Some(ms) if (HOLD_TTL_MIN_MS..=HOLD_TTL_MAX_MS).contains(&ms) => Ok(ms),
        Some(ms) => Err(no(
            Rejection::InvalidArgument,
            format!("a hold's TTL is {HOLD_TTL_MIN_MS}..={HOLD_TTL_MAX_MS} ms, not {ms}"),
        )),
    }
}

fn check_window(starts: i64, ends: i64) -> R<()> {
    if starts >= ends {
        return Err(no(
            Rejection::InvalidArgument,
            "sale must start before it ends",
        ));
    }
    Ok(())
}

/// A PHC string of an argon2id hash: printable ASCII starting `$argon2id$`. A plain password
/// sent by mistake is refused rather than kept.
fn check_password_hash(v: &str) -> R<()> {
    let ok = v.starts_with("$argon2id$")
        && v.len() <= PASSWORD_HASH_LEN_MAX
        && v.bytes().all(|b| b.is_ascii_graphic());
    if !ok {
        return Err(no(
            Rejection::InvalidArgument,
            format!("password hash must be an argon2id PHC string of at most {PASSWORD_HASH_LEN_MAX} bytes"),
        ));
    }
    Ok(())
}

fn not_found(what: &str, id: &str) -> Reject {
    no(Rejection::NotFound, format!("no {what} {id}"))
}

/// The platform fee on a price, rounded half up.
pub(crate) fn fee_of(price_minor: i64, fee_bps: u32) -> i64 {
    ((price_minor as i128 * fee_bps as i128 + 5_000) / 10_000) as i64
}

/// Prices above this are refused, so sums of a hold never overflow.
const PRICE_MINOR_MAX: i64 = 1_000_000_000_000;

impl Machine {
    pub(crate) fn execute(&mut self, cx: &mut Cx<'_>, cmd: &Command) -> R<Done> {
        match cmd {
            Command::CreateVenue {
                venue_id,
                name,
                city,
            } => self.create_venue(cx, venue_id, name, city),
            Command::SetVenueLayout {
                venue_id,
                address,
                geo,
                seating_map,
            } => self.set_venue_layout(cx, venue_id, address, *geo, seating_map),
            Command::CreateSeller {
                seller_id,
                name,
                fee_bps,
                plan,
            } => self.create_seller(cx, seller_id, name, *fee_bps, *plan),
            Command::UpdateSeller {
                seller_id,
                fee_bps,
                plan,
            } => self.update_seller(cx, seller_id, *fee_bps, *plan),
            Command::CreateEvent {
                event_id,
                seller_id,
                title,
                description,
                category,
                performers,
            } => self.create_event(
                cx,
                Event {
                    event_id: event_id.clone(),
                    seller_id: seller_id.clone(),
                    title: title.clone(),
                    description: description.clone(),
                    category: category.clone(),
                    performers: performers.clone(),
                    popularity: 0,
                    created_index: cx.index,
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
                cx,
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
                    created_index: cx.index,
                },
                tiers,
            ),
            Command::ChangeSaleWindow {
                dt_id,
                sale_starts_at_ms,
                sale_ends_at_ms,
            } => self.change_sale_window(cx, dt_id, *sale_starts_at_ms, *sale_ends_at_ms),
            Command::PublishDt { dt_id } => self.publish_dt(cx, dt_id),
            Command::CancelDt { dt_id, reason } => self.cancel_dt(cx, dt_id, reason),
            Command::UpsertUser {
                user_id,
                profile,
                contact,
                reminder,
                payment_token_sealed,
            } => self.upsert_user(
                cx,
                User {
                    user_id: user_id.clone(),
                    profile: profile.clone(),
                    contact: contact.clone(),
                    reminder: reminder.clone(),
                    payment_token_sealed: payment_token_sealed.clone(),
                    created_index: cx.index,
                    updated_index: cx.index,
                },
            ),
            Command::HoldSeats {
                hold_id,
                dt_id,
                user_id,
                seats,
                ga,
                hold_ttl_ms,
            } => {
                let ttl = hold_ttl(*hold_ttl_ms)?;
                self.hold_seats(cx, hold_id, dt_id, user_id, seats, ga, ttl)
            }
            Command::HoldBestAvailable {
                hold_id,
                dt_id,
                user_id,
                tier_id,
                quantity,
                hold_ttl_ms,
            } => {
                let ttl = hold_ttl(*hold_ttl_ms)?;
                self.hold_best_available(cx, hold_id, dt_id, user_id, tier_id, *quantity, ttl)
            }
            Command::ReleaseHold { hold_id, user_id } => self.release_hold(cx, hold_id, user_id),
            Command::StartPayment {
                hold_id,
                user_id,
                payment_ref,
                amount_minor,
                currency,
            } => self.start_payment(cx, hold_id, user_id, payment_ref, *amount_minor, currency),
            Command::ConfirmPurchase {
                hold_id,
                order_id,
                payment_ref,
                amount_minor,
                currency,
                secret_seed,
            } => self.confirm_purchase(
                cx,
                hold_id,
                order_id,
                payment_ref,
                *amount_minor,
                currency,
                secret_seed,
            ),
            Command::PaymentFailed {
                hold_id,
                payment_ref,
                reason,
            } => self.payment_failed(cx, hold_id, payment_ref, reason),
            Command::CancelOrder {
                order_id,
                user_id,
                reason,
            } => self.cancel_order(cx, order_id, user_id, reason),
            Command::RefundTicket { ticket_id, user_id } => {
                self.refund_ticket(cx, ticket_id, user_id)
            }
            Command::Scan {
                ticket_id,
                dt_id,
                gate,
            } => self.scan(cx, ticket_id, dt_id, gate),
            Command::ExpireHolds { up_to_ms } => {
                self.expire_due(cx, (*up_to_ms).min(cx.now));
                Ok(Done::HoldsExpired { count: cx.expired })
            }
            Command::MarkNotificationSent {
                notification_id,
                channel,
            } => self.mark_sent(cx, notification_id, channel),
            Command::RegisterUser {
                user_id,
                email,
                password_hash,
                role,
                profile,
                phone,
            } => self.register_user(cx, user_id, email, password_hash, *role, profile, phone),
            Command::SetUserRole { user_id, role } => self.set_user_role(cx, user_id, *role),
        }
    }

    fn create_venue(&mut self, cx: &mut Cx<'_>, venue_id: &str, name: &str, city: &str) -> R<Done> {
        if venue_id.is_empty() || name.is_empty() {
            return Err(no(
                Rejection::InvalidArgument,
                "venue id and name are required",
            ));
        }
        check_id("venue_id", venue_id)?;
        check_text("name", name, TEXT_LEN_MAX)?;
        check_text("city", city, TEXT_LEN_MAX)?;
        if self.venues.contains_key(venue_id) {
            return Err(no(
                Rejection::AlreadyExists,
                format!("venue {venue_id} exists"),
            ));
        }
        let venue = crate::types::Venue {
            venue_id: venue_id.to_string(),
            name: name.to_string(),
            city: city.to_string(),
            created_index: cx.index,
        };
        put(&mut self.venues, cx.ws, cf::VENUES, venue_id, venue);
        Ok(Done::VenueCreated {
            venue_id: venue_id.to_string(),
        })
    }

    fn set_venue_layout(
        &mut self,
        cx: &mut Cx<'_>,
        venue_id: &str,
        address: &str,
        geo: GeoPoint,
        map: &SeatingMap,
    ) -> R<Done> {
        if !self.venues.contains_key(venue_id) {
            return Err(not_found("venue", venue_id));
        }
        if self.dts.values().any(|d| d.venue_id == venue_id) {
            return Err(no(
                Rejection::InvalidState,
                format!("venue {venue_id} has dts: its seats are frozen"),
            ));
        }
        check_text("address", address, TEXT_LEN_MAX)?;
        if geo.lat_e6.abs() > 90_000_000 || geo.lon_e6.abs() > 180_000_000 {
            return Err(no(Rejection::InvalidArgument, "geo point out of range"));
        }
        let seat_count = map.seat_count();
        if seat_count > SEATS_PER_VENUE_MAX || map.ga_areas.len() > GA_AREAS_PER_VENUE_MAX {
            return Err(no(
                Rejection::InvalidArgument,
                format!(
                    "at most {SEATS_PER_VENUE_MAX} seats and {GA_AREAS_PER_VENUE_MAX} GA areas"
                ),
            ));
        }
        let mut ids = std::collections::BTreeSet::new();
        for s in &map.sections {
            check_id("section_id", &s.section_id)?;
            if s.rows.iter().any(|r| r.seats.len() > SEATS_PER_ROW_MAX) {
                return Err(no(
                    Rejection::InvalidArgument,
                    format!("at most {SEATS_PER_ROW_MAX} seats per row"),
                ));
            }
            if !ids.insert(s.section_id.as_str()) {
                return Err(no(
                    Rejection::InvalidArgument,
                    format!("section {} twice", s.section_id),
                ));
            }
        }
        ids.clear();
        for a in &map.ga_areas {
            check_id("area_id", &a.area_id)?;
            if !ids.insert(a.area_id.as_str()) {
                return Err(no(
                    Rejection::InvalidArgument,
                    format!("GA area {} twice", a.area_id),
                ));
            }
        }
        let layout = VenueLayout {
            venue_id: venue_id.to_string(),
            address: address.to_string(),
            geo,
            seating_map: map.clone(),
            updated_index: cx.index,
        };
        put(&mut self.layouts, cx.ws, cf::LAYOUTS, venue_id, layout);
        Ok(Done::VenueLayoutSet {
            venue_id: venue_id.to_string(),
            seat_count: seat_count as u32,
        })
    }

    fn create_seller(
        &mut self,
        cx: &mut Cx<'_>,
        seller_id: &str,
        name: &str,
        fee_bps: u32,
        plan: SellerPlan,
    ) -> R<Done> {
        check_id("seller_id", seller_id)?;
        check_text("name", name, TEXT_LEN_MAX)?;
        if fee_bps > FEE_BPS_MAX {
            return Err(no(
                Rejection::InvalidArgument,
                format!("fee above {FEE_BPS_MAX} bps"),
            ));
        }
        if self.sellers.contains_key(seller_id) {
            return Err(no(
                Rejection::AlreadyExists,
                format!("seller {seller_id} exists"),
            ));
        }
        let seller = Seller {
            seller_id: seller_id.to_string(),
            name: name.to_string(),
            fee_bps,
            plan,
            created_index: cx.index,
        };
        put(&mut self.sellers, cx.ws, cf::SELLERS, seller_id, seller);
        Ok(Done::SellerCreated {
            seller_id: seller_id.to_string(),
        })
    }

    fn update_seller(
        &mut self,
        cx: &mut Cx<'_>,
        seller_id: &str,
        fee_bps: u32,
        plan: SellerPlan,
    ) -> R<Done> {
        let mut seller = self
            .sellers
            .get(seller_id)
            .cloned()
            .ok_or_else(|| not_found("seller", seller_id))?;
        if fee_bps > FEE_BPS_MAX {
            return Err(no(
                Rejection::InvalidArgument,
                format!("fee above {FEE_BPS_MAX} bps"),
            ));
        }
        seller.fee_bps = fee_bps;
        seller.plan = plan;
        put(&mut self.sellers, cx.ws, cf::SELLERS, seller_id, seller);
        Ok(Done::SellerUpdated {
            seller_id: seller_id.to_string(),
        })
    }

    fn create_event(&mut self, cx: &mut Cx<'_>, event: Event) -> R<Done> {
        check_id("event_id", &event.event_id)?;
        check_text("title", &event.title, TEXT_LEN_MAX)?;
        check_text("description", &event.description, TEXT_LEN_MAX)?;
        check_text("category", &event.category, ID_LEN_MAX)?;
        if event.title.is_empty() {
            return Err(no(Rejection::InvalidArgument, "title is required"));
        }
        if event.performers.len() > PERFORMERS_MAX {
            return Err(no(
                Rejection::InvalidArgument,
                format!("at most {PERFORMERS_MAX} performers"),
            ));
        }
        for p in &event.performers {
            check_text("performer", p, TEXT_LEN_MAX)?;
        }
        if self.events.contains_key(&event.event_id) {
            return Err(no(
                Rejection::AlreadyExists,
                format!("event {} exists", event.event_id),
            ));
        }
        if !self.sellers.contains_key(&event.seller_id) {
            return Err(not_found("seller", &event.seller_id));
        }
        let id = event.event_id.clone();
        put(&mut self.events, cx.ws, cf::EVENTS, &id, event);
        self.search.changed(&id);
        Ok(Done::EventCreated { event_id: id })
    }

    fn create_dt(&mut self, cx: &mut Cx<'_>, mut dt: Dt, specs: &[TierSpec]) -> R<Done> {
        check_id("dt_id", &dt.dt_id)?;
        if self.dts.contains_key(&dt.dt_id) {
            return Err(no(
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
        let tz_ok = !dt.time_zone.is_empty()
            && dt.time_zone.len() <= 64
            && dt
                .time_zone
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/_+-".contains(&b));
        if !tz_ok {
            return Err(no(
                Rejection::InvalidArgument,
                format!("time zone {:?} is not an IANA name", dt.time_zone),
            ));
        }
        check_window(dt.sale_starts_at_ms, dt.sale_ends_at_ms)?;
        if specs.is_empty() || specs.len() > TIERS_PER_DT_MAX {
            return Err(no(
                Rejection::InvalidArgument,
                format!("a dt has 1..={TIERS_PER_DT_MAX} tiers"),
            ));
        }
        for (i, t) in specs.iter().enumerate() {
            check_id("tier_id", &t.tier_id)?;
            check_text("tier name", &t.name, TEXT_LEN_MAX)?;
            check_currency(&t.currency)?;
            if specs[..i].iter().any(|o| o.tier_id == t.tier_id) {
                return Err(no(
                    Rejection::InvalidArgument,
                    format!("tier {} twice", t.tier_id),
                ));
            }
            if t.currency != specs[0].currency {
                return Err(no(
                    Rejection::InvalidArgument,
                    "every tier of a dt has the same currency",
                ));
            }
            if !(0..=PRICE_MINOR_MAX).contains(&t.price_minor) {
                return Err(no(
                    Rejection::InvalidArgument,
                    format!("price must be 0..={PRICE_MINOR_MAX}"),
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
            .map_err(|e| no(Rejection::InvalidArgument, e))?;
        dt.tiers = specs
            .iter()
            .zip(book.tiers())
            .map(|(s, c)| Tier {
                spec: s.clone(),
                capacity: c.capacity,
            })
            .collect();
        let capacity = book.tiers().iter().map(|c| c.capacity).sum();
        let id = dt.dt_id.clone();
        self.d.books.insert(id.clone(), book);
        self.d
            .event_dts
            .entry(dt.event_id.clone())
            .or_default()
            .insert(id.clone());
        // The event is now also found by this dt's venue.
        self.search.changed(&dt.event_id);
        put(&mut self.dts, cx.ws, cf::DTS, &id, dt);
        Ok(Done::DtCreated {
            dt_id: id,
            capacity,
        })
    }

    /// A dt that is not canceled.
    fn dt_live(&self, dt_id: &str) -> R<&Dt> {
        let dt = self.dts.get(dt_id).ok_or_else(|| not_found("dt", dt_id))?;
        if dt.status == DtStatus::Canceled {
            return Err(no(Rejection::DtCanceled, format!("dt {dt_id} is canceled")));
        }
        Ok(dt)
    }

    fn change_sale_window(
        &mut self,
        cx: &mut Cx<'_>,
        dt_id: &str,
        starts: i64,
        ends: i64,
    ) -> R<Done> {
        let mut dt = self.dt_live(dt_id)?.clone();
        check_window(starts, ends)?;
        dt.sale_starts_at_ms = starts;
        dt.sale_ends_at_ms = ends;
        put(&mut self.dts, cx.ws, cf::DTS, dt_id, dt);
        Ok(Done::SaleWindowChanged {
            dt_id: dt_id.to_string(),
        })
    }

    fn publish_dt(&mut self, cx: &mut Cx<'_>, dt_id: &str) -> R<Done> {
        let mut dt = self.dt_live(dt_id)?.clone();
        if dt.status != DtStatus::Draft {
            return Err(no(
                Rejection::InvalidState,
                format!("dt {dt_id} is already published"),
            ));
        }
        dt.status = DtStatus::Published;
        put(&mut self.dts, cx.ws, cf::DTS, dt_id, dt);
        Ok(Done::DtPublished {
            dt_id: dt_id.to_string(),
        })
    }

    fn cancel_dt(&mut self, cx: &mut Cx<'_>, dt_id: &str, reason: &str) -> R<Done> {
        let mut dt = self.dt_live(dt_id)?.clone();
        check_text("reason", reason, TEXT_LEN_MAX)?;
        dt.status = DtStatus::Canceled;
        put(&mut self.dts, cx.ws, cf::DTS, dt_id, dt);
        cx.touched_dt = Some(dt_id.to_string());
        let live: Vec<String> = self
            .d
            .live_by_expiry
            .iter()
            .filter(|(_, h)| self.holds[h].dt_id == dt_id)
            .map(|(_, h)| h.clone())
            .collect();
        for h in &live {
            self.end_hold(cx, h, HoldStatus::Released { at_ms: cx.now }, "dt canceled");
        }
        let orders: Vec<String> = self
            .orders
            .values()
            .filter(|o| {
                o.dt_id == dt_id
                    && matches!(
                        o.status,
                        OrderStatus::Confirmed | OrderStatus::PartiallyRefunded
                    )
            })
            .map(|o| o.order_id.clone())
            .collect();
        for o in &orders {
            self.cancel_order_effects(cx, o);
        }
        Ok(Done::DtCanceled {
            dt_id: dt_id.to_string(),
            holds_released: live.len() as u32,
            orders_canceled: orders.len() as u32,
        })
    }

    fn upsert_user(&mut self, cx: &mut Cx<'_>, mut user: User) -> R<Done> {
        check_id("user_id", &user.user_id)?;
        for (f, v) in [
            ("first_name", &user.profile.first_name),
            ("middle_name", &user.profile.middle_name),
            ("last_name", &user.profile.last_name),
            ("address", &user.profile.address),
            ("email", &user.contact.email),
            ("phone", &user.contact.phone),
        ] {
            check_text(f, v, TEXT_LEN_MAX)?;
        }
        if !(0..=365 * 24 * 3_600_000).contains(&user.reminder.lead_ms) {
            return Err(no(
                Rejection::InvalidArgument,
                "reminder lead must be 0..=1 year",
            ));
        }
        if user
            .payment_token_sealed
            .as_ref()
            .is_some_and(|t| t.len() > PAYMENT_TOKEN_LEN_MAX)
        {
            return Err(no(
                Rejection::InvalidArgument,
                format!("payment token longer than {PAYMENT_TOKEN_LEN_MAX} bytes"),
            ));
        }
        let created = match self.users.get(&user.user_id) {
            Some(old) => {
                user.created_index = old.created_index;
                false
            }
            None => true,
        };
        let id = user.user_id.clone();
        put(&mut self.users, cx.ws, cf::USERS, &id, user);
        Ok(Done::UserSaved {
            user_id: id,
            created,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn register_user(
        &mut self,
        cx: &mut Cx<'_>,
        user_id: &str,
        email: &str,
        password_hash: &str,
        role: Role,
        profile: &Profile,
        phone: &str,
    ) -> R<Done> {
        check_id("user_id", user_id)?;
        let normalized = normalize_email(email)
            .ok_or_else(|| no(Rejection::InvalidArgument, "email is not an address"))?;
        check_password_hash(password_hash)?;
        for (f, v) in [
            ("first_name", &profile.first_name),
            ("middle_name", &profile.middle_name),
            ("last_name", &profile.last_name),
            ("address", &profile.address),
        ] {
            check_text(f, v, TEXT_LEN_MAX)?;
        }
        check_text("phone", phone, ID_LEN_MAX)?;
        if self.accounts.contains_key(&normalized) {
            return Err(no(
                Rejection::EmailTaken,
                format!("an account uses {normalized}"),
            ));
        }
        if self.users.contains_key(user_id) {
            return Err(no(
                Rejection::AlreadyExists,
                format!("user {user_id} exists"),
            ));
        }
        let user = User {
            user_id: user_id.to_string(),
            profile: profile.clone(),
            contact: Contact {
                email: email.trim().to_string(),
                phone: phone.to_string(),
            },
            reminder: ReminderPreference::default(),
            payment_token_sealed: None,
            created_index: cx.index,
            updated_index: cx.index,
        };
        put(&mut self.users, cx.ws, cf::USERS, user_id, user);
        let account = Account {
            user_id: user_id.to_string(),
            email: normalized.clone(),
            password_hash: password_hash.to_string(),
            role,
            created_index: cx.index,
            updated_index: cx.index,
        };
        put(
            &mut self.accounts,
            cx.ws,
            cf::ACCOUNTS,
            &normalized,
            account,
        );
        self.d
            .account_of_user
            .insert(user_id.to_string(), normalized.clone());
        Ok(Done::UserRegistered {
            user_id: user_id.to_string(),
            email: normalized,
            role,
        })
    }

    fn set_user_role(&mut self, cx: &mut Cx<'_>, user_id: &str, role: Role) -> R<Done> {
        let email = self
            .d
            .account_of_user
            .get(user_id)
            .ok_or_else(|| not_found("account of user", user_id))?
            .clone();
        let mut account = self.accounts[&email].clone();
        if account.role != role {
            account.role = role;
            account.updated_index = cx.index;
            put(&mut self.accounts, cx.ws, cf::ACCOUNTS, &email, account);
        }
        Ok(Done::UserRoleSet {
            user_id: user_id.to_string(),
            role,
        })
    }

    /// Checks shared by both ways of holding: the dt is on sale, the user and hold id are
    /// good, and `count` seats fit the per-hold and per-user bounds. Returns the seller's fee.
    fn hold_preflight(
        &self,
        now: i64,
        hold_id: &str,
        dt_id: &str,
        user_id: &str,
        count: u64,
    ) -> R<u32> {
        check_id("hold_id", hold_id)?;
        let dt = self.dt_live(dt_id)?;
        if dt.status != DtStatus::Published
            || now < dt.sale_starts_at_ms
            || now >= dt.sale_ends_at_ms
        {
            return Err(no(
                Rejection::SaleNotOpen,
                format!("dt {dt_id} is not on sale now"),
            ));
        }
        if !self.users.contains_key(user_id) {
            return Err(not_found("user", user_id));
        }
        if self.holds.contains_key(hold_id) {
            return Err(no(
                Rejection::AlreadyExists,
                format!("hold {hold_id} exists"),
            ));
        }
        if count == 0 {
            return Err(no(Rejection::InvalidArgument, "nothing to hold"));
        }
        if count > SEATS_PER_HOLD_MAX as u64 {
            return Err(no(
                Rejection::HoldLimitExceeded,
                format!("at most {SEATS_PER_HOLD_MAX} seats per hold"),
            ));
        }
        let have = self
            .d
            .user_dt_seats
            .get(&(dt_id.to_string(), user_id.to_string()))
            .copied()
            .unwrap_or(0);
        if have as u64 + count > SEATS_PER_USER_PER_DT_MAX as u64 {
            return Err(no(
                Rejection::UserLimitExceeded,
                format!("user has {have} seats of dt {dt_id}; at most {SEATS_PER_USER_PER_DT_MAX}"),
            ));
        }
        let seller = &self.events[&dt.event_id].seller_id;
        Ok(self.sellers[seller].fee_bps)
    }

    #[allow(clippy::too_many_arguments)]
    fn hold_seats(
        &mut self,
        cx: &mut Cx<'_>,
        hold_id: &str,
        dt_id: &str,
        user_id: &str,
        seats: &[u32],
        ga: &[GaPick],
        ttl_ms: i64,
    ) -> R<Done> {
        let count = seats.len() as u64 + ga.iter().map(|g| g.quantity as u64).sum::<u64>();
        let fee_bps = self.hold_preflight(cx.now, hold_id, dt_id, user_id, count)?;
        let book = &self.d.books[dt_id];
        let mut picked = Vec::with_capacity(count as usize);
        for (i, s) in seats.iter().enumerate() {
            if seats[..i].contains(s) {
                return Err(no(
                    Rejection::InvalidArgument,
                    format!("seat {s} named twice"),
                ));
            }
            match book.lookup(SeatRef::Seat(*s)) {
                None | Some((_, OFF)) => {
                    return Err(no(
                        Rejection::SeatNotForSale,
                        format!("seat {s} is not for sale"),
                    ))
                }
                Some((_, HELD)) => {
                    return Err(no(Rejection::SeatAlreadyHeld, format!("seat {s} is held")))
                }
                Some((_, SOLD)) => {
                    return Err(no(Rejection::SeatTaken, format!("seat {s} is sold")))
                }
                Some(_) => picked.push(SeatRef::Seat(*s)),
            }
        }
        let areas = &self.layouts[&self.dts[dt_id].venue_id].seating_map.ga_areas;
        for (i, g) in ga.iter().enumerate() {
            if ga[..i].iter().any(|o| o.area_id == g.area_id) || g.quantity == 0 {
                return Err(no(
                    Rejection::InvalidArgument,
                    format!("GA area {} named twice or with quantity 0", g.area_id),
                ));
            }
            let Some(a) = areas.iter().position(|a| a.area_id == g.area_id) else {
                return Err(no(
                    Rejection::SeatNotForSale,
                    format!("no GA area {}", g.area_id),
                ));
            };
            let (tier, counts) = book.ga()[a];
            if tier == crate::seats::TIER_NONE {
                return Err(no(
                    Rejection::SeatNotForSale,
                    format!("GA area {} is not for sale", g.area_id),
                ));
            }
            if counts.available() < g.quantity {
                return Err(no(
                    Rejection::NotEnoughSeats,
                    format!(
                        "GA area {} has {} places left",
                        g.area_id,
                        counts.available()
                    ),
                ));
            }
            picked.extend(std::iter::repeat_n(
                SeatRef::Ga(a as u16),
                g.quantity as usize,
            ));
        }
        Ok(self.place_hold(cx, hold_id, dt_id, user_id, picked, fee_bps, ttl_ms))
    }

    #[allow(clippy::too_many_arguments)]
    fn hold_best_available(
        &mut self,
        cx: &mut Cx<'_>,
        hold_id: &str,
        dt_id: &str,
        user_id: &str,
        tier_id: &str,
        quantity: u32,
        ttl_ms: i64,
    ) -> R<Done> {
        let fee_bps = self.hold_preflight(cx.now, hold_id, dt_id, user_id, quantity as u64)?;
        let tier = self.dts[dt_id]
            .tiers
            .iter()
            .position(|t| t.spec.tier_id == tier_id)
            .ok_or_else(|| not_found("tier", tier_id))?;
        let book = self.d.books.get_mut(dt_id).expect("every dt has a book");
        let picked = book.best_available(tier as u8, quantity as usize);
        if picked.len() < quantity as usize {
            return Err(no(
                Rejection::NotEnoughSeats,
                format!("tier {tier_id} has {} left", picked.len()),
            ));
        }
        Ok(self.place_hold(cx, hold_id, dt_id, user_id, picked, fee_bps, ttl_ms))
    }

    /// Takes validated free seats out of the pool into a new hold.
    #[allow(clippy::too_many_arguments)]
    fn place_hold(
        &mut self,
        cx: &mut Cx<'_>,
        hold_id: &str,
        dt_id: &str,
        user_id: &str,
        picked: Vec<SeatRef>,
        fee_bps: u32,
        ttl_ms: i64,
    ) -> Done {
        let dt = &self.dts[dt_id];
        let book = self.d.books.get_mut(dt_id).expect("every dt has a book");
        let mut items = Vec::with_capacity(picked.len());
        for r in &picked {
            let (tier, _) = book.lookup(*r).expect("validated seat");
            book.shift(*r, FREE, HELD);
            let price = dt.tiers[tier as usize].spec.price_minor;
            items.push(HoldItem {
                seat: *r,
                tier,
                price_minor: price,
                fee_minor: fee_of(price, fee_bps),
            });
        }
        let subtotal: i64 = items.iter().map(|i| i.price_minor).sum();
        let fee: i64 = items.iter().map(|i| i.fee_minor).sum();
        let hold = Hold {
            hold_id: hold_id.to_string(),
            dt_id: dt_id.to_string(),
            user_id: user_id.to_string(),
            items,
            subtotal_minor: subtotal,
            fee_minor: fee,
            total_minor: subtotal + fee,
            currency: dt.tiers[0].spec.currency.clone(),
            created_at_ms: cx.now,
            expires_at_ms: cx.now + ttl_ms,
            pinned_until_ms: None,
            payment_ref: None,
            payment_attempts: 0,
            status: HoldStatus::Live,
        };
        let done = Done::HoldPlaced {
            hold_id: hold_id.to_string(),
            seats: picked,
            total_minor: hold.total_minor,
            currency: hold.currency.clone(),
            expires_at_ms: hold.expires_at_ms,
        };
        *self
            .d
            .user_dt_seats
            .entry((dt_id.to_string(), user_id.to_string()))
            .or_default() += hold.items.len() as u32;
        self.d
            .live_by_expiry
            .insert((hold.effective_expiry_ms(), hold_id.to_string()));
        put(&mut self.holds, cx.ws, cf::HOLDS, hold_id, hold);
        cx.touched_dt = Some(dt_id.to_string());
        done
    }

    /// A live hold of `user_id`, or why not.
    fn live_hold(&self, hold_id: &str, user_id: Option<&str>) -> R<Hold> {
        let hold = self
            .holds
            .get(hold_id)
            .ok_or_else(|| not_found("hold", hold_id))?;
        if user_id.is_some_and(|u| u != hold.user_id) {
            return Err(no(
                Rejection::NotOwner,
                format!("hold {hold_id} belongs to another user"),
            ));
        }
        match &hold.status {
            HoldStatus::Live => Ok(hold.clone()),
            HoldStatus::Expired { at_ms } => Err(no(
                Rejection::HoldExpired,
                format!("hold {hold_id} expired at {at_ms}"),
            )),
            HoldStatus::Released { .. } | HoldStatus::Purchased { .. } => Err(no(
                Rejection::HoldNotLive,
                format!("hold {hold_id} is {:?}", hold.status),
            )),
        }
    }

    fn payment_pending(&self, hold: &Hold) -> Option<&Payment> {
        hold.payment_ref
            .as_ref()
            .and_then(|r| self.payments.get(r))
            .filter(|p| p.status == PaymentStatus::Pending)
    }

    fn release_hold(&mut self, cx: &mut Cx<'_>, hold_id: &str, user_id: &str) -> R<Done> {
        let hold = self.live_hold(hold_id, Some(user_id))?;
        if let Some(p) = self.payment_pending(&hold) {
            return Err(no(
                Rejection::PaymentInProgress,
                format!("payment {} is in flight", p.payment_ref),
            ));
        }
        self.end_hold(cx, hold_id, HoldStatus::Released { at_ms: cx.now }, "");
        Ok(Done::HoldReleased {
            hold_id: hold_id.to_string(),
        })
    }

    /// Ends a live hold (released or expired): seats go back, a pending payment fails.
    fn end_hold(&mut self, cx: &mut Cx<'_>, hold_id: &str, status: HoldStatus, why: &str) {
        let mut hold = self.holds[hold_id].clone();
        debug_assert_eq!(hold.status, HoldStatus::Live);
        let book = self
            .d
            .books
            .get_mut(&hold.dt_id)
            .expect("every dt has a book");
        for it in &hold.items {
            book.shift(it.seat, HELD, FREE);
        }
        self.d
            .live_by_expiry
            .remove(&(hold.effective_expiry_ms(), hold_id.to_string()));
        let key = (hold.dt_id.clone(), hold.user_id.clone());
        self.uncount(key, hold.items.len() as u32);
        if let Some(p) = self.payment_pending(&hold).cloned() {
            let reason = if why.is_empty() { "hold ended" } else { why };
            self.fail_payment(cx, p, reason);
        }
        hold.pinned_until_ms = None;
        hold.status = status;
        cx.touched_dt = Some(hold.dt_id.clone());
        put(&mut self.holds, cx.ws, cf::HOLDS, hold_id, hold);
    }

    fn uncount(&mut self, key: (String, String), n: u32) {
        if let Some(c) = self.d.user_dt_seats.get_mut(&key) {
            *c -= n;
            if *c == 0 {
                self.d.user_dt_seats.remove(&key);
            }
        }
    }

    fn fail_payment(&mut self, cx: &mut Cx<'_>, mut p: Payment, reason: &str) {
        p.status = PaymentStatus::Failed {
            reason: reason.to_string(),
            at_ms: cx.now,
        };
        let id = p.payment_ref.clone();
        put(&mut self.payments, cx.ws, cf::PAYMENTS, &id, p);
    }

    /// Expires every live hold whose effective expiry is at or before `up_to_ms`.
    pub(crate) fn expire_due(&mut self, cx: &mut Cx<'_>, up_to_ms: i64) {
        while let Some((at, id)) = self.d.live_by_expiry.first().cloned() {
            if at > up_to_ms {
                break;
            }
            self.end_hold(cx, &id, HoldStatus::Expired { at_ms: at }, "hold expired");
            cx.expired += 1;
        }
    }

    /// Moves a live hold to a new effective expiry in the index.
    fn reindex_hold(&mut self, before: i64, hold: &Hold) {
        self.d
            .live_by_expiry
            .remove(&(before, hold.hold_id.clone()));
        self.d
            .live_by_expiry
            .insert((hold.effective_expiry_ms(), hold.hold_id.clone()));
    }

    fn start_payment(
        &mut self,
        cx: &mut Cx<'_>,
        hold_id: &str,
        user_id: &str,
        payment_ref: &str,
        amount_minor: i64,
        currency: &str,
    ) -> R<Done> {
        let mut hold = self.live_hold(hold_id, Some(user_id))?;
        check_id("payment_ref", payment_ref)?;
        if let Some(p) = self.payment_pending(&hold) {
            return Err(no(
                Rejection::PaymentInProgress,
                format!("payment {} is in flight", p.payment_ref),
            ));
        }
        if self.payments.contains_key(payment_ref) {
            return Err(no(
                Rejection::AlreadyExists,
                format!("payment {payment_ref} exists"),
            ));
        }
        if hold.payment_attempts >= PAYMENT_ATTEMPTS_PER_HOLD_MAX {
            return Err(no(
                Rejection::PaymentAttemptsExceeded,
                format!("at most {PAYMENT_ATTEMPTS_PER_HOLD_MAX} payments per hold"),
            ));
        }
        if amount_minor != hold.total_minor || currency != hold.currency {
            return Err(no(
                Rejection::AmountMismatch,
                format!(
                    "hold {hold_id} costs {} {}",
                    hold.total_minor, hold.currency
                ),
            ));
        }
        let before = hold.effective_expiry_ms();
        let pinned_until_ms = cx.now + PAYMENT_PIN_MS;
        hold.pinned_until_ms = Some(pinned_until_ms);
        hold.payment_ref = Some(payment_ref.to_string());
        hold.payment_attempts += 1;
        self.reindex_hold(before, &hold);
        let payment = Payment {
            payment_ref: payment_ref.to_string(),
            hold_id: hold_id.to_string(),
            user_id: user_id.to_string(),
            amount_minor,
            currency: currency.to_string(),
            started_at_ms: cx.now,
            status: PaymentStatus::Pending,
        };
        put(
            &mut self.payments,
            cx.ws,
            cf::PAYMENTS,
            payment_ref,
            payment,
        );
        put(&mut self.holds, cx.ws, cf::HOLDS, hold_id, hold);
        Ok(Done::PaymentStarted {
            hold_id: hold_id.to_string(),
            payment_ref: payment_ref.to_string(),
            pinned_until_ms,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn confirm_purchase(
        &mut self,
        cx: &mut Cx<'_>,
        hold_id: &str,
        order_id: &str,
        payment_ref: &str,
        amount_minor: i64,
        currency: &str,
        secret_seed: &[u8],
    ) -> R<Done> {
        let mut hold = self.live_hold(hold_id, None)?;
        let payment = match self.payment_pending(&hold) {
            Some(p) if p.payment_ref == payment_ref => p.clone(),
            _ => {
                return Err(no(
                    Rejection::PaymentNotAuthorized,
                    format!("no payment {payment_ref} in flight for hold {hold_id}"),
                ))
            }
        };
        if amount_minor != hold.total_minor || currency != hold.currency {
            return Err(no(
                Rejection::AmountMismatch,
                format!(
                    "hold {hold_id} costs {} {}",
                    hold.total_minor, hold.currency
                ),
            ));
        }
        check_id("order_id", order_id)?;
        if self.orders.contains_key(order_id) {
            return Err(no(
                Rejection::AlreadyExists,
                format!("order {order_id} exists"),
            ));
        }
        if !SECRET_SEED_LEN.contains(&secret_seed.len()) {
            return Err(no(
                Rejection::InvalidArgument,
                format!("secret seed must be {SECRET_SEED_LEN:?} bytes"),
            ));
        }

        let dt = self.dts[&hold.dt_id].clone();
        let map = &self.layouts[&dt.venue_id].seating_map;
        let book = self
            .d
            .books
            .get_mut(&hold.dt_id)
            .expect("every dt has a book");
        let mut ticket_ids = Vec::with_capacity(hold.items.len());
        for (k, it) in hold.items.iter().enumerate() {
            book.shift(it.seat, HELD, SOLD);
            let ticket_id = format!("{order_id}-{}", k + 1);
            let secret: [u8; 32] = Sha256::new()
                .chain_update(b"ticketd ticket secret\0")
                .chain_update(secret_seed)
                .chain_update(ticket_id.as_bytes())
                .finalize()
                .into();
            let seat_label = match it.seat {
                SeatRef::Seat(s) => map.seat_label(s).unwrap_or_default(),
                SeatRef::Ga(a) => map.ga_areas[a as usize].name.clone(),
            };
            let ticket = Ticket {
                ticket_id: ticket_id.clone(),
                order_id: order_id.to_string(),
                event_id: dt.event_id.clone(),
                dt_id: dt.dt_id.clone(),
                user_id: hold.user_id.clone(),
                seat: it.seat,
                seat_label,
                tier_id: dt.tiers[it.tier as usize].spec.tier_id.clone(),
                price_minor: it.price_minor,
                fee_minor: it.fee_minor,
                currency: hold.currency.clone(),
                secret,
                status: TicketStatus::Valid,
                scans: Vec::new(),
                created_at_ms: cx.now,
                updated_at_ms: cx.now,
            };
            put(&mut self.tickets, cx.ws, cf::TICKETS, &ticket_id, ticket);
            ticket_ids.push(ticket_id);
        }
        let order = Order {
            order_id: order_id.to_string(),
            user_id: hold.user_id.clone(),
            event_id: dt.event_id.clone(),
            dt_id: dt.dt_id.clone(),
            hold_id: hold_id.to_string(),
            payment_ref: payment_ref.to_string(),
            ticket_ids: ticket_ids.clone(),
            subtotal_minor: hold.subtotal_minor,
            fee_minor: hold.fee_minor,
            total_minor: hold.total_minor,
            refunded_minor: 0,
            currency: hold.currency.clone(),
            status: OrderStatus::Confirmed,
            created_at_ms: cx.now,
            created_index: cx.index,
        };
        put(&mut self.orders, cx.ws, cf::ORDERS, order_id, order);
        self.d
            .user_orders
            .insert((hold.user_id.clone(), order_id.to_string()));
        let seller_id = self.events[&dt.event_id].seller_id.clone();
        self.d
            .seller_orders
            .insert((seller_id, order_id.to_string()));

        self.d
            .live_by_expiry
            .remove(&(hold.effective_expiry_ms(), hold_id.to_string()));
        hold.pinned_until_ms = None;
        hold.status = HoldStatus::Purchased {
            order_id: order_id.to_string(),
        };
        let user_id = hold.user_id.clone();
        put(&mut self.holds, cx.ws, cf::HOLDS, hold_id, hold);
        let mut payment = payment;
        payment.status = PaymentStatus::Confirmed {
            order_id: order_id.to_string(),
        };
        put(
            &mut self.payments,
            cx.ws,
            cf::PAYMENTS,
            payment_ref,
            payment,
        );
        self.bump_popularity(cx, &dt.event_id, ticket_ids.len() as i64);

        self.notify(
            cx,
            &user_id,
            order_id,
            NotificationKind::Confirmation,
            cx.now,
        );
        self.notify(cx, &user_id, order_id, NotificationKind::ETickets, cx.now);
        let lead = self.users[&user_id].reminder.lead_ms;
        if lead > 0 && dt.starts_at_ms - lead > cx.now {
            self.notify(
                cx,
                &user_id,
                order_id,
                NotificationKind::Reminder,
                dt.starts_at_ms - lead,
            );
        }
        cx.touched_dt = Some(dt.dt_id.clone());
        Ok(Done::PurchaseConfirmed {
            order_id: order_id.to_string(),
            ticket_ids,
            total_minor: amount_minor,
            currency: currency.to_string(),
        })
    }

    fn bump_popularity(&mut self, cx: &mut Cx<'_>, event_id: &str, by: i64) {
        let mut e = self.events[event_id].clone();
        e.popularity = (e.popularity as i64 + by) as u64;
        put(&mut self.events, cx.ws, cf::EVENTS, event_id, e);
    }

    /// Adds a notification to the outbox, due at `due_at_ms`.
    fn notify(
        &mut self,
        cx: &mut Cx<'_>,
        user_id: &str,
        order_id: &str,
        kind: NotificationKind,
        due_at_ms: i64,
    ) {
        cx.notes += 1;
        let id = format!("n-{}-{}", cx.index, cx.notes);
        self.d.pending_outbox.insert((due_at_ms, id.clone()));
        self.d
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
        put(&mut self.outbox, cx.ws, cf::OUTBOX, &id, n);
    }

    /// Voids the pending reminders of an order with no valid ticket left.
    fn void_reminders(&mut self, cx: &mut Cx<'_>, order_id: &str) {
        let ids: Vec<String> = self
            .d
            .order_notes
            .range((order_id.to_string(), String::new())..)
            .take_while(|(o, _)| o == order_id)
            .map(|(_, n)| n.clone())
            .collect();
        for id in ids {
            let mut n = self.outbox[&id].clone();
            if n.kind != NotificationKind::Reminder || n.status != NotificationStatus::Pending {
                continue;
            }
            self.d.pending_outbox.remove(&(n.due_at_ms, id.clone()));
            n.status = NotificationStatus::Void { at_ms: cx.now };
            put(&mut self.outbox, cx.ws, cf::OUTBOX, &id, n);
        }
    }

    fn payment_failed(
        &mut self,
        cx: &mut Cx<'_>,
        hold_id: &str,
        payment_ref: &str,
        reason: &str,
    ) -> R<Done> {
        check_text("reason", reason, TEXT_LEN_MAX)?;
        let p = self
            .payments
            .get(payment_ref)
            .ok_or_else(|| not_found("payment", payment_ref))?
            .clone();
        if p.hold_id != hold_id || p.status != PaymentStatus::Pending {
            return Err(no(
                Rejection::InvalidState,
                format!("payment {payment_ref} is not in flight for hold {hold_id}"),
            ));
        }
        self.fail_payment(cx, p, reason);
        let mut hold = self.holds[hold_id].clone();
        if hold.status == HoldStatus::Live {
            let before = hold.effective_expiry_ms();
            hold.pinned_until_ms = None;
            self.reindex_hold(before, &hold);
            put(&mut self.holds, cx.ws, cf::HOLDS, hold_id, hold);
            // Unpinned past its own expiry: it lapses now, not at some later entry.
            self.expire_due(cx, cx.now);
        }
        Ok(Done::PaymentFailed {
            hold_id: hold_id.to_string(),
            payment_ref: payment_ref.to_string(),
        })
    }

    fn cancel_order(
        &mut self,
        cx: &mut Cx<'_>,
        order_id: &str,
        user_id: &str,
        reason: &str,
    ) -> R<Done> {
        check_text("reason", reason, TEXT_LEN_MAX)?;
        let order = self
            .orders
            .get(order_id)
            .ok_or_else(|| not_found("order", order_id))?;
        if order.user_id != user_id {
            return Err(no(
                Rejection::NotOwner,
                format!("order {order_id} belongs to another user"),
            ));
        }
        if matches!(order.status, OrderStatus::Canceled | OrderStatus::Refunded) {
            return Err(no(
                Rejection::OrderNotCancelable,
                format!("order {order_id} is {:?}", order.status),
            ));
        }
        if order
            .ticket_ids
            .iter()
            .any(|t| matches!(self.tickets[t].status, TicketStatus::Used { .. }))
        {
            return Err(no(
                Rejection::OrderNotCancelable,
                format!("order {order_id} has a used ticket"),
            ));
        }
        let refund_minor = self.cancel_order_effects(cx, order_id);
        Ok(Done::OrderCanceled {
            order_id: order_id.to_string(),
            refund_minor,
        })
    }

    /// Cancels every valid ticket of an order, frees their seats, owes their money back and
    /// marks the order canceled. Returns the refund.
    fn cancel_order_effects(&mut self, cx: &mut Cx<'_>, order_id: &str) -> i64 {
        let mut order = self.orders[order_id].clone();
        let mut refund = 0;
        let mut refunded_ids = Vec::new();
        for tid in &order.ticket_ids {
            let mut t = self.tickets[tid].clone();
            if t.status != TicketStatus::Valid {
                continue;
            }
            self.free_ticket_seat(&t);
            refund += t.price_minor + t.fee_minor;
            t.status = TicketStatus::Canceled { at_ms: cx.now };
            t.updated_at_ms = cx.now;
            refunded_ids.push(tid.clone());
            put(&mut self.tickets, cx.ws, cf::TICKETS, tid, t);
        }
        order.refunded_minor += refund;
        order.status = OrderStatus::Canceled;
        let (user_id, event_id, dt_id) = (
            order.user_id.clone(),
            order.event_id.clone(),
            order.dt_id.clone(),
        );
        put(&mut self.orders, cx.ws, cf::ORDERS, order_id, order);
        self.bump_popularity(cx, &event_id, -(refunded_ids.len() as i64));
        self.notify(
            cx,
            &user_id,
            order_id,
            NotificationKind::Cancellation,
            cx.now,
        );
        if refund > 0 {
            self.notify(
                cx,
                &user_id,
                order_id,
                NotificationKind::Refund {
                    amount_minor: refund,
                    ticket_ids: refunded_ids,
                },
                cx.now,
            );
        }
        self.void_reminders(cx, order_id);
        cx.touched_dt = Some(dt_id);
        refund
    }

    /// Gives a valid ticket's seat back to the pool.
    fn free_ticket_seat(&mut self, t: &Ticket) {
        self.d
            .books
            .get_mut(&t.dt_id)
            .expect("every dt has a book")
            .shift(t.seat, SOLD, FREE);
        self.uncount((t.dt_id.clone(), t.user_id.clone()), 1);
    }

    fn refund_ticket(&mut self, cx: &mut Cx<'_>, ticket_id: &str, user_id: &str) -> R<Done> {
        let mut t = self
            .tickets
            .get(ticket_id)
            .ok_or_else(|| not_found("ticket", ticket_id))?
            .clone();
        if t.user_id != user_id {
            return Err(no(
                Rejection::NotOwner,
                format!("ticket {ticket_id} belongs to another user"),
            ));
        }
        if t.status != TicketStatus::Valid {
            return Err(no(
                Rejection::TicketNotRefundable,
                format!("ticket {ticket_id} is {:?}", t.status),
            ));
        }
        self.free_ticket_seat(&t);
        let refund = t.price_minor + t.fee_minor;
        t.status = TicketStatus::Refunded { at_ms: cx.now };
        t.updated_at_ms = cx.now;
        let (order_id, event_id, dt_id) = (t.order_id.clone(), t.event_id.clone(), t.dt_id.clone());
        put(&mut self.tickets, cx.ws, cf::TICKETS, ticket_id, t);

        let mut order = self.orders[&order_id].clone();
        order.refunded_minor += refund;
        let statuses: Vec<&TicketStatus> = order
            .ticket_ids
            .iter()
            .map(|id| &self.tickets[id].status)
            .collect();
        let any_valid = statuses.iter().any(|s| **s == TicketStatus::Valid);
        order.status = if statuses
            .iter()
            .all(|s| matches!(s, TicketStatus::Refunded { .. }))
        {
            OrderStatus::Refunded
        } else {
            OrderStatus::PartiallyRefunded
        };
        put(&mut self.orders, cx.ws, cf::ORDERS, &order_id, order);
        self.bump_popularity(cx, &event_id, -1);
        self.notify(
            cx,
            user_id,
            &order_id,
            NotificationKind::Refund {
                amount_minor: refund,
                ticket_ids: vec![ticket_id.to_string()],
            },
            cx.now,
        );
        if !any_valid {
            self.void_reminders(cx, &order_id);
        }
        cx.touched_dt = Some(dt_id);
        Ok(Done::TicketRefunded {
            ticket_id: ticket_id.to_string(),
            refund_minor: refund,
        })
    }

    fn scan(&mut self, cx: &mut Cx<'_>, ticket_id: &str, dt_id: &str, gate: &str) -> R<Done> {
        check_id("gate", gate)?;
        let Some(t) = self.tickets.get(ticket_id) else {
            return Ok(Done::Scanned {
                ticket_id: ticket_id.to_string(),
                verdict: ScanVerdict::Unknown,
            });
        };
        let mut t = t.clone();
        let verdict = if t.dt_id != dt_id {
            ScanVerdict::WrongDt {
                dt_id: t.dt_id.clone(),
            }
        } else {
            match &t.status {
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
                at_ms: cx.now,
                gate: gate.to_string(),
            };
        }
        if t.scans.len() >= SCANS_PER_TICKET_MAX {
            t.scans.remove(0);
        }
        t.scans.push(ScanRecord {
            at_ms: cx.now,
            gate: gate.to_string(),
            verdict: verdict.clone(),
        });
        t.updated_at_ms = cx.now;
        put(&mut self.tickets, cx.ws, cf::TICKETS, ticket_id, t);
        Ok(Done::Scanned {
            ticket_id: ticket_id.to_string(),
            verdict,
        })
    }

    fn mark_sent(&mut self, cx: &mut Cx<'_>, notification_id: &str, channel: &str) -> R<Done> {
        check_id("channel", channel)?;
        let mut n = self
            .outbox
            .get(notification_id)
            .ok_or_else(|| not_found("notification", notification_id))?
            .clone();
        match n.status {
            NotificationStatus::Sent { .. } => {}
            NotificationStatus::Void { .. } => {
                return Err(no(
                    Rejection::InvalidState,
                    format!("notification {notification_id} is void"),
                ))
            }
            NotificationStatus::Pending => {
                self.d
                    .pending_outbox
                    .remove(&(n.due_at_ms, notification_id.to_string()));
                n.status = NotificationStatus::Sent {
                    at_ms: cx.now,
                    channel: channel.to_string(),
                };
                put(&mut self.outbox, cx.ws, cf::OUTBOX, notification_id, n);
            }
        }
        Ok(Done::NotificationSent {
            notification_id: notification_id.to_string(),
        })
    }
}

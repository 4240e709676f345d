//! The fuzz harness of `apply`: raw bytes become a sequence of log entries (decoded
//! structurally with `arbitrary`, not parsed as text, so nearly every input reaches `apply`),
//! applied to a fresh or a pre-seeded state machine on the in-memory backend.
//!
//! After every entry the invariants must hold and a twin machine, whose hash tables are seeded
//! differently, must have given the same answers; at the end the machine reopened from what it
//! wrote, and the twin, must equal the one in memory. A panic anywhere is a finding: there is no
//! `catch_unwind` here.
//!
//! Commands are drawn whole by `arbitrary`, then *steered*: each id, time, amount and count a
//! command carries is, at the input's choice, replaced by one from a small vocabulary of ids
//! (`v0`..`v2`, `d0`..`d3`, ...) or by the values of objects that exist (a hold's total, a
//! ticket's owner), or left as drawn. Steered commands reach deep states (holds, purchases,
//! refunds, cancellations); unsteered ones try every bound.
#![cfg_attr(not(test), deny(clippy::too_many_lines))]

use std::collections::BTreeMap;

use arbitrary::Unstructured;
use ticketd_store::command::GaPick;
use ticketd_store::types::*;
use ticketd_store::{
    Backend, Command, Machine, MemBackend, Outcome, Query, QueryResult, Request, WriteSet,
};

/// Log time of the first entry (2026-01-01).
pub const T0_MS: i64 = 1_767_225_600_000;
const DAY_MS: i64 = 86_400_000;
/// Entries applied per input at most.
const ENTRIES_MAX: usize = 48;
/// Requests in one entry at most.
const REQUESTS_PER_ENTRY_MAX: usize = 4;
/// An argon2id PHC string within the store's bounds.
const PASSWORD_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$\
                             aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";

/// What one input did, for the corpus report.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Entries applied.
    pub entries: u64,
    /// Per command variant: (done, rejected).
    pub by_variant: BTreeMap<&'static str, (u64, u64)>,
}

impl Stats {
    /// Commands that took effect.
    pub fn done(&self) -> u64 {
        self.by_variant.values().map(|(d, _)| d).sum()
    }

    /// Adds another input's figures.
    pub fn add(&mut self, other: &Stats) {
        self.entries += other.entries;
        for (k, (d, r)) in &other.by_variant {
            let e = self.by_variant.entry(k).or_default();
            e.0 += d;
            e.1 += r;
        }
    }
}

/// The variant name of a command.
pub fn variant(c: &Command) -> &'static str {
    match c {
        Command::CreateVenue { .. } => "CreateVenue",
        Command::SetVenueLayout { .. } => "SetVenueLayout",
        Command::CreateSeller { .. } => "CreateSeller",
        Command::UpdateSeller { .. } => "UpdateSeller",
        Command::CreateEvent { .. } => "CreateEvent",
        Command::CreateDt { .. } => "CreateDt",
        Command::ChangeSaleWindow { .. } => "ChangeSaleWindow",
        Command::PublishDt { .. } => "PublishDt",
        Command::CancelDt { .. } => "CancelDt",
        Command::UpsertUser { .. } => "UpsertUser",
        Command::HoldSeats { .. } => "HoldSeats",
        Command::HoldBestAvailable { .. } => "HoldBestAvailable",
        Command::ReleaseHold { .. } => "ReleaseHold",
        Command::StartPayment { .. } => "StartPayment",
        Command::ConfirmPurchase { .. } => "ConfirmPurchase",
        Command::PaymentFailed { .. } => "PaymentFailed",
        Command::CancelOrder { .. } => "CancelOrder",
        Command::RefundTicket { .. } => "RefundTicket",
        Command::Scan { .. } => "Scan",
        Command::ExpireHolds { .. } => "ExpireHolds",
        Command::MarkNotificationSent { .. } => "MarkNotificationSent",
        Command::RegisterUser { .. } => "RegisterUser",
        Command::SetUserRole { .. } => "SetUserRole",
        Command::ContinueCancelDt { .. } => "ContinueCancelDt",
        Command::DigestState { .. } => "DigestState",
        Command::CheckDigest { .. } => "CheckDigest",
        Command::SetClusterVersion { .. } => "SetClusterVersion",
        Command::AdvanceCursor { .. } => "AdvanceCursor",
        Command::PaymentsSettled { .. } => "PaymentsSettled",
        Command::NotificationFailed { .. } => "NotificationFailed",
    }
}

/// A state machine on the in-memory backend, and the log it was given.
struct Harness {
    backend: MemBackend,
    m: Machine,
    /// The same state machine with its hash tables seeded differently: it must give every
    /// answer `m` gives and reach the same digest, whatever order its tables iterate in.
    twin: Machine,
    index: u64,
    now_ms: i64,
    keys: u64,
}

impl Harness {
    fn new() -> Self {
        let backend = MemBackend::new();
        let (m, twin) = pair(&backend);
        Harness {
            backend,
            m,
            twin,
            index: 0,
            now_ms: T0_MS,
            keys: 0,
        }
    }

    /// Applies one entry of `reqs`, commits its writes and checks every invariant.
    fn entry(&mut self, reqs: &[Request], stats: &mut Stats) {
        self.index += 1;
        let mut ws = WriteSet::new();
        let replies = self.m.apply_batch(self.index, reqs, &mut ws);
        assert_eq!(replies.len(), reqs.len(), "one reply per request");
        let twin = self
            .twin
            .apply_batch(self.index, reqs, &mut WriteSet::new());
        assert_eq!(
            replies, twin,
            "entry {}: machines of other hash seeds answered differently",
            self.index
        );
        self.backend
            .write(&ws)
            .expect("the in-memory backend takes every write set");
        if let Err(e) = self.m.check_invariants() {
            panic!("invariant broken after entry {}: {e}", self.index);
        }
        stats.entries += 1;
        for (req, reply) in reqs.iter().zip(&replies) {
            let e = stats.by_variant.entry(variant(&req.command)).or_default();
            match &reply.outcome {
                Outcome::Done(_) if !reply.replayed => e.0 += 1,
                _ => e.1 += 1,
            }
        }
    }

    /// A request of `command` with a fresh key, stamped now.
    fn request(&mut self, command: Command) -> Request {
        self.keys += 1;
        Request {
            client_id: "fuzz".into(),
            idempotency_key: format!("k{}", self.keys),
            stamped_at_ms: self.now_ms,
            command,
        }
    }

    fn setup(&mut self, commands: Vec<Command>) {
        let mut stats = Stats::default();
        for c in commands {
            let req = self.request(c);
            self.entry(std::slice::from_ref(&req), &mut stats);
        }
    }

    /// A venue v0 (sections S0: 3 rows of 6, S1: 2 rows of 4; GA area A0 of 20 places),
    /// seller sl0, event e0, dt d0 on sale (tiers t0 = S0, t1 = S1 + A0), users u0..u3.
    /// Built once per process; each input opens a machine on a copy of what it wrote.
    fn seeded() -> Self {
        static SEEDED: std::sync::OnceLock<(WriteSet, u64, u64)> = std::sync::OnceLock::new();
        let (writes, index, keys) = SEEDED.get_or_init(|| {
            let h = Harness::build_seeded();
            let mut writes = WriteSet::new();
            h.m.visit_persisted(&mut |cf, k, v| writes.put(cf, k.to_vec(), v.to_vec()));
            (writes, h.index, h.keys)
        });
        let backend = MemBackend::new();
        backend
            .write(writes)
            .expect("the in-memory backend takes every write set");
        let (m, twin) = pair(&backend);
        Harness {
            backend,
            m,
            twin,
            index: *index,
            now_ms: T0_MS,
            keys: *keys,
        }
    }

    fn build_seeded() -> Self {
        let mut h = Harness::new();
        let row = |r: usize, n: usize| RowDef {
            label: format!("{r}"),
            seats: (0..n)
                .map(|s| SeatDef {
                    number: format!("{s}"),
                    x: s as i32,
                    y: r as i32,
                })
                .collect(),
        };
        let section = |id: &str, rows: usize, per: usize| SectionDef {
            section_id: id.into(),
            name: id.into(),
            rows: (0..rows).map(|r| row(r, per)).collect(),
        };
        let tier = |id: &str, price: i64, sections: &[&str], ga: &[&str]| TierSpec {
            tier_id: id.into(),
            name: id.into(),
            price_minor: price,
            currency: "EUR".into(),
            sections: sections.iter().map(|s| s.to_string()).collect(),
            seat_ranges: vec![],
            ga_areas: ga.iter().map(|s| s.to_string()).collect(),
        };
        let mut setup = vec![
            Command::CreateVenue {
                venue_id: "v0".into(),
                name: "Arena".into(),
                city: "Oslo".into(),
            },
            Command::SetVenueLayout {
                venue_id: "v0".into(),
                address: "Street 1".into(),
                geo: GeoPoint {
                    lat_e6: 59_900_000,
                    lon_e6: 10_700_000,
                },
                seating_map: SeatingMap {
                    sections: vec![section("S0", 3, 6), section("S1", 2, 4)],
                    ga_areas: vec![GaAreaDef {
                        area_id: "A0".into(),
                        name: "Floor".into(),
                        capacity: 20,
                    }],
                },
            },
            Command::CreateSeller {
                seller_id: "sl0".into(),
                name: "Seller".into(),
                fee_bps: 1_000,
                plan: SellerPlan::Standard,
            },
            Command::CreateEvent {
                event_id: "e0".into(),
                seller_id: "sl0".into(),
                title: "Show".into(),
                description: String::new(),
                category: "music".into(),
                performers: vec![],
            },
            Command::CreateDt {
                dt_id: "d0".into(),
                event_id: "e0".into(),
                venue_id: "v0".into(),
                starts_at_ms: T0_MS + 30 * DAY_MS,
                time_zone: "Europe/Oslo".into(),
                tiers: vec![
                    tier("t0", 10_000, &["S0"], &[]),
                    tier("t1", 5_000, &["S1"], &["A0"]),
                ],
                sale_starts_at_ms: 0,
                sale_ends_at_ms: T0_MS + 30 * DAY_MS,
            },
            Command::PublishDt { dt_id: "d0".into() },
        ];
        for u in 0..4 {
            setup.push(Command::RegisterUser {
                user_id: format!("u{u}"),
                email: format!("u{u}@example.org"),
                password_hash: PASSWORD_HASH.into(),
                role: Role::User,
                profile: Profile::default(),
                phone: String::new(),
            });
        }
        h.setup(setup);
        h
    }
}

/// Steering decisions: each reads one byte of the input; past its end, bytes read as 0,
/// which steers.
struct Steer<'a, 'b> {
    u: &'a mut Unstructured<'b>,
}

impl Steer<'_, '_> {
    /// True (most of the time) when the drawn value should be replaced.
    fn yes(&mut self) -> bool {
        self.u.arbitrary::<u8>().unwrap_or(0) < 224
    }

    /// A number below `n` from the input.
    fn below(&mut self, n: u32) -> u32 {
        self.u.arbitrary::<u32>().unwrap_or(0) % n.max(1)
    }

    /// Replaces `id` by `{prefix}{k}`, k below `n`, unless the input says keep it.
    fn id(&mut self, id: &mut String, prefix: &str, n: u32) {
        if self.yes() {
            *id = format!("{prefix}{}", self.below(n));
        }
    }

    /// Replaces a text by `with`, unless the input says keep it.
    fn text(&mut self, v: &mut String, with: &str) {
        if self.yes() {
            *v = with.to_string();
        }
    }

    fn small<T: TryFrom<u32>>(&mut self, v: &mut T, n: u32) {
        if self.yes() {
            if let Ok(x) = T::try_from(self.below(n)) {
                *v = x;
            }
        }
    }

    /// Sometimes replaces `v` by one of `edges` (the bounds around it and the type's extremes):
    /// where arithmetic overflows and checks are off by one.
    fn edge<T: Copy>(&mut self, v: &mut T, edges: &[T]) {
        if self.u.arbitrary::<u8>().unwrap_or(0) >= 160 {
            if let Some(e) = edges.get(self.below(edges.len() as u32) as usize) {
                *v = *e;
            }
        }
    }
}

/// Capacities at and around the bounds of a GA area and of the tier counters.
const CAPACITY_EDGES: &[u32] = &[
    1,
    ticketd_store::limits::GA_AREA_CAPACITY_MAX,
    ticketd_store::limits::GA_AREA_CAPACITY_MAX + 1,
    u32::MAX / 2 + 1,
    u32::MAX,
];
/// Prices at and around their bound.
const PRICE_EDGES: &[i64] = &[
    0,
    ticketd_store::limits::PRICE_MINOR_MAX,
    ticketd_store::limits::PRICE_MINOR_MAX + 1,
    i64::MAX,
    -1,
];
/// Instants at and around the calendar's bounds.
const INSTANT_EDGES: &[i64] = &[
    ticketd_store::limits::TIME_MS_MIN,
    ticketd_store::limits::TIME_MS_MAX,
    ticketd_store::limits::TIME_MS_MAX + 1,
    i64::MAX,
    i64::MIN,
];

fn hold_of(m: &Machine, hold_id: &str) -> Option<Hold> {
    match m.query(&Query::GetHold {
        hold_id: hold_id.to_string(),
    }) {
        QueryResult::Hold(h) => h,
        _ => None,
    }
}

fn ticket_of(m: &Machine, ticket_id: &str) -> Option<Ticket> {
    match m.query(&Query::GetTicket {
        ticket_id: ticket_id.to_string(),
    }) {
        QueryResult::Ticket(t) => t,
        _ => None,
    }
}

fn order_user(m: &Machine, order_id: &str) -> Option<String> {
    match m.query(&Query::GetOrder {
        order_id: order_id.to_string(),
    }) {
        QueryResult::Order(o) => o.map(|o| o.order.user_id),
        _ => None,
    }
}

/// Pending notifications, oldest due first.
fn pending_notes(m: &Machine) -> Vec<String> {
    match m.query(&Query::DueNotifications {
        up_to_ms: i64::MAX,
        after: None,
        limit: 64,
    }) {
        QueryResult::Notifications(n) => n.into_iter().map(|n| n.notification_id).collect(),
        _ => Vec::new(),
    }
}

/// A map shaped like the seeded venue's (sections S0..S2 of a few rows, GA areas A0 and A1),
/// with the GA capacities drawn: what the canonical tiers fit.
fn canonical_map(capacities: [u32; 2]) -> SeatingMap {
    let section = |id: &str| SectionDef {
        section_id: id.into(),
        name: id.into(),
        rows: (0..2)
            .map(|r| RowDef {
                label: format!("{r}"),
                seats: (0..4)
                    .map(|n| SeatDef {
                        number: format!("{n}"),
                        x: n,
                        y: r,
                    })
                    .collect(),
            })
            .collect(),
    };
    SeatingMap {
        sections: vec![section("S0"), section("S1"), section("S2")],
        ga_areas: (0..2)
            .zip(capacities)
            .map(|(i, capacity)| GaAreaDef {
                area_id: format!("A{i}"),
                name: format!("Area {i}"),
                capacity,
            })
            .collect(),
    }
}

fn steer_map(s: &mut Steer<'_, '_>, map: &mut SeatingMap) {
    if s.yes() {
        let mut capacities = [0, 1].map(|i| map.ga_areas.get(i).map_or(100, |a| a.capacity));
        for c in &mut capacities {
            s.edge(c, CAPACITY_EDGES);
        }
        *map = canonical_map(capacities);
        return;
    }
    for sec in &mut map.sections {
        s.id(&mut sec.section_id, "S", 3);
        sec.rows.truncate(8);
        for r in &mut sec.rows {
            r.seats.truncate(16);
        }
    }
    for a in &mut map.ga_areas {
        s.id(&mut a.area_id, "A", 2);
    }
}

/// Tiers that fit the seeded venue's sections and areas (or, for `k` 3, a section and an
/// area it lacks).
fn canonical_tiers(k: u32) -> Vec<TierSpec> {
    let tier = |id: &str, sections: &[&str], ga: &[&str]| TierSpec {
        tier_id: id.into(),
        name: id.into(),
        price_minor: 2_500,
        currency: "EUR".into(),
        sections: sections.iter().map(|s| s.to_string()).collect(),
        seat_ranges: vec![],
        ga_areas: ga.iter().map(|s| s.to_string()).collect(),
    };
    match k {
        0 => vec![tier("t0", &["S0"], &[]), tier("t1", &["S1"], &["A0"])],
        1 => vec![tier("t0", &["S0", "S1"], &["A0"])],
        2 => vec![tier("t0", &["S0"], &["A0", "A1"]), tier("t1", &["S1"], &[])],
        _ => vec![tier("t2", &["S2"], &["A1"])],
    }
}

fn steer_tiers(s: &mut Steer<'_, '_>, tiers: &mut [TierSpec]) {
    for t in tiers {
        s.id(&mut t.tier_id, "t", 3);
        if s.yes() {
            t.currency = "EUR".into();
        }
        s.small(&mut t.price_minor, 100_000);
        s.edge(&mut t.price_minor, PRICE_EDGES);
        for sec in &mut t.sections {
            s.id(sec, "S", 3);
        }
        for a in &mut t.ga_areas {
            s.id(a, "A", 2);
        }
        for r in &mut t.seat_ranges {
            s.small(&mut r.start, 40);
            s.small(&mut r.end, 40);
        }
    }
}

/// Steers the ids and values of a drawn command towards objects that exist.
// One arm per command variant, so a new variant shows up here as one more arm: the fuzzer's
// steering table is read as one list (test code; the limit binds what ships).
#[allow(clippy::too_many_lines)]
fn steer(s: &mut Steer<'_, '_>, m: &Machine, now_ms: i64, cmd: &mut Command) {
    match cmd {
        Command::CreateVenue { venue_id, name, .. } => {
            s.id(venue_id, "v", 3);
            s.text(name, "Hall");
        }
        Command::SetVenueLayout {
            venue_id,
            seating_map,
            ..
        } => {
            s.id(venue_id, "v", 3);
            steer_map(s, seating_map);
        }
        Command::CreateSeller {
            seller_id, fee_bps, ..
        }
        | Command::UpdateSeller {
            seller_id, fee_bps, ..
        } => {
            s.id(seller_id, "sl", 2);
            s.small(fee_bps, 6_000);
        }
        Command::CreateEvent {
            event_id,
            seller_id,
            title,
            ..
        } => {
            s.id(event_id, "e", 3);
            s.id(seller_id, "sl", 2);
            s.text(title, "Show");
        }
        Command::CreateDt {
            dt_id,
            event_id,
            venue_id,
            starts_at_ms,
            time_zone,
            tiers,
            sale_starts_at_ms,
            sale_ends_at_ms,
        } => {
            s.id(dt_id, "d", 4);
            s.id(event_id, "e", 3);
            s.id(venue_id, "v", 3);
            if s.yes() {
                *starts_at_ms = now_ms.saturating_add(10 * DAY_MS);
                *sale_starts_at_ms = 0;
                *sale_ends_at_ms = *starts_at_ms;
                *time_zone = "Europe/Oslo".into();
            }
            s.edge(starts_at_ms, INSTANT_EDGES);
            s.edge(sale_ends_at_ms, INSTANT_EDGES);
            if s.yes() {
                *tiers = canonical_tiers(s.below(4));
            }
            steer_tiers(s, tiers);
        }
        Command::ChangeSaleWindow {
            dt_id,
            sale_starts_at_ms,
            sale_ends_at_ms,
        } => {
            s.id(dt_id, "d", 4);
            if s.yes() {
                let days = i64::from(s.below(4)) - 1;
                *sale_starts_at_ms = now_ms.saturating_add(days * DAY_MS);
                *sale_ends_at_ms = now_ms.saturating_add(DAY_MS);
            }
        }
        Command::PublishDt { dt_id }
        | Command::CancelDt { dt_id, .. }
        | Command::ContinueCancelDt { dt_id } => s.id(dt_id, "d", 4),
        Command::UpsertUser { user_id, .. } | Command::SetUserRole { user_id, .. } => {
            s.id(user_id, "u", 4)
        }
        Command::RegisterUser {
            user_id,
            email,
            password_hash,
            ..
        } => {
            s.id(user_id, "u", 6);
            if s.yes() {
                *email = format!("{user_id}@example.org");
                *password_hash = PASSWORD_HASH.into();
            }
        }
        Command::HoldSeats {
            hold_id,
            dt_id,
            user_id,
            seats,
            ga,
            hold_ttl_ms,
        } => {
            s.id(hold_id, "h", 4);
            s.id(dt_id, "d", 4);
            s.id(user_id, "u", 4);
            seats.truncate(12);
            for seat in seats.iter_mut() {
                s.small(seat, 40);
            }
            ga.truncate(3);
            for GaPick { area_id, quantity } in ga.iter_mut() {
                s.id(area_id, "A", 2);
                s.small(quantity, 5);
            }
            if s.yes() {
                *hold_ttl_ms = None;
            }
        }
        Command::HoldBestAvailable {
            hold_id,
            dt_id,
            user_id,
            tier_id,
            quantity,
            hold_ttl_ms,
        } => {
            s.id(hold_id, "h", 4);
            s.id(dt_id, "d", 4);
            s.id(user_id, "u", 4);
            s.id(tier_id, "t", 3);
            s.small(quantity, 6);
            if s.yes() {
                *hold_ttl_ms = None;
            }
        }
        Command::ReleaseHold { hold_id, user_id } => {
            s.id(hold_id, "h", 4);
            if let (true, Some(h)) = (s.yes(), hold_of(m, hold_id)) {
                *user_id = h.user_id;
            }
        }
        Command::StartPayment {
            hold_id,
            user_id,
            payment_ref,
            amount_minor,
            currency,
        } => {
            s.id(hold_id, "h", 4);
            s.id(payment_ref, "p", 4);
            if let (true, Some(h)) = (s.yes(), hold_of(m, hold_id)) {
                *user_id = h.user_id;
                *amount_minor = h.total_minor;
                *currency = h.currency;
            }
        }
        Command::ConfirmPurchase {
            hold_id,
            order_id,
            payment_ref,
            amount_minor,
            currency,
            secret_seed,
        } => {
            s.id(hold_id, "h", 4);
            s.id(order_id, "o", 4);
            if let (true, Some(h)) = (s.yes(), hold_of(m, hold_id)) {
                *payment_ref = h.payment_ref.unwrap_or_default();
                *amount_minor = h.total_minor;
                *currency = h.currency;
            }
            if s.yes() {
                *secret_seed = vec![7; 32];
            }
        }
        Command::PaymentFailed {
            hold_id,
            payment_ref,
            ..
        } => {
            s.id(hold_id, "h", 4);
            if let (true, Some(h)) = (s.yes(), hold_of(m, hold_id)) {
                *payment_ref = h.payment_ref.unwrap_or_default();
            }
        }
        Command::CancelOrder {
            order_id, user_id, ..
        } => {
            s.id(order_id, "o", 4);
            if let (true, Some(u)) = (s.yes(), order_user(m, order_id)) {
                *user_id = u;
            }
        }
        Command::RefundTicket { ticket_id, user_id } => {
            if s.yes() {
                *ticket_id = format!("o{}-{}", s.below(4), 1 + s.below(4));
            }
            if let (true, Some(t)) = (s.yes(), ticket_of(m, ticket_id)) {
                *user_id = t.user_id;
            }
        }
        Command::Scan {
            ticket_id,
            dt_id,
            gate,
        } => {
            if s.yes() {
                *ticket_id = format!("o{}-{}", s.below(4), 1 + s.below(4));
            }
            if let (true, Some(t)) = (s.yes(), ticket_of(m, ticket_id)) {
                *dt_id = t.dt_id;
            }
            s.id(gate, "g", 2);
        }
        Command::DigestState {} => {}
        Command::SetClusterVersion { version } => s.small(version, 4),
        Command::CheckDigest { index, digest } => {
            s.small(index, 64);
            if s.yes() {
                *digest = "ab".repeat(32);
            }
        }
        Command::ExpireHolds { up_to_ms } => {
            if s.yes() {
                *up_to_ms = now_ms;
            }
        }
        Command::MarkNotificationSent {
            notification_id,
            channel,
        } => {
            let pending = pending_notes(m);
            if !pending.is_empty() && s.yes() {
                let k = s.below(u32::try_from(pending.len()).unwrap_or(u32::MAX));
                notification_id.clone_from(&pending[k as usize]);
            }
            if s.yes() {
                *channel = "email".into();
            }
        }
        Command::AdvanceCursor {
            name,
            created_ms,
            intent_id,
            unsettled,
        } => {
            if s.yes() {
                *name = "payments".into();
            }
            if s.yes() {
                *created_ms = now_ms;
            }
            s.id(intent_id, "pi", 8);
            for r in unsettled.iter_mut() {
                s.id(r, "p", 4);
            }
        }
        Command::PaymentsSettled { payment_refs } => {
            for r in payment_refs.iter_mut() {
                s.id(r, "p", 4);
            }
        }
        Command::NotificationFailed {
            notification_id,
            park_after,
            error: _,
        } => {
            let pending = pending_notes(m);
            if !pending.is_empty() && s.yes() {
                let k = s.below(u32::try_from(pending.len()).unwrap_or(u32::MAX));
                notification_id.clone_from(&pending[k as usize]);
            }
            s.small(park_after, 8);
        }
    }
}

/// The stamp of the next entry: mostly seconds after the last one, sometimes days (holds
/// expire, sales close), rarely any i64 at all (the store holds log time to its bounds).
fn next_stamp(u: &mut Unstructured<'_>, last_ms: i64) -> arbitrary::Result<i64> {
    Ok(match u.arbitrary::<u8>()? {
        0..=239 => last_ms.saturating_add(i64::from(u.arbitrary::<u8>()?) * 1_000),
        240..=251 => last_ms.saturating_add(i64::from(u.arbitrary::<u8>()? % 16) * DAY_MS),
        _ => u.arbitrary::<i64>()?,
    })
}

/// Runs one input. Panics on a finding.
pub fn run(data: &[u8]) -> Stats {
    let mut u = Unstructured::new(data);
    let mut stats = Stats::default();
    let mut h = if u.arbitrary::<bool>().unwrap_or(true) {
        Harness::seeded()
    } else {
        Harness::new()
    };
    let mut earlier: Vec<(String, String)> = Vec::new();
    for _ in 0..ENTRIES_MAX {
        if u.is_empty() {
            break;
        }
        let Ok(stamp) = next_stamp(&mut u, h.now_ms) else {
            break;
        };
        h.now_ms = stamp;
        let n = 1 + (u.arbitrary::<u8>().unwrap_or(0) as usize) % REQUESTS_PER_ENTRY_MAX;
        let mut reqs = Vec::with_capacity(n);
        for _ in 0..n {
            let Ok(mut command) = u.arbitrary::<Command>() else {
                break;
            };
            let mut s = Steer { u: &mut u };
            steer(&mut s, &h.m, h.now_ms, &mut command);
            let mut req = h.request(command);
            // Now and then a retry under an earlier key, or a drawn client and key.
            match u.arbitrary::<u8>().unwrap_or(0) {
                0..=7 if !earlier.is_empty() => {
                    let k = u.arbitrary::<usize>().unwrap_or(0) % earlier.len();
                    (req.client_id, req.idempotency_key) = earlier[k].clone();
                }
                8..=9 => {
                    req.client_id = u.arbitrary().unwrap_or_default();
                    req.idempotency_key = u.arbitrary().unwrap_or_default();
                }
                _ => {}
            }
            earlier.push((req.client_id.clone(), req.idempotency_key.clone()));
            reqs.push(req);
        }
        if reqs.is_empty() {
            break;
        }
        // An entry past this binary's version is never applied: the node stops before it
        // (the Raft runtime's check), and so does the run.
        if reqs.iter().any(|r| {
            ticketd_store::version::needed_version(r) > ticketd_store::version::BINARY_VERSION
        }) {
            break;
        }
        h.entry(&reqs, &mut stats);
    }
    let reopened = Machine::open(&h.backend)
        .unwrap_or_else(|e| panic!("the written state does not reopen: {e}"));
    let digest = h.m.digest();
    assert_eq!(
        reopened.digest(),
        digest,
        "the written state differs from the state in memory"
    );
    assert_eq!(
        h.twin.digest(),
        digest,
        "machines of other hash seeds reached different states"
    );
    stats
}

/// Two machines on what `backend` holds, their hash tables seeded 1 and 2: fixed seeds, so a
/// finding replays exactly.
fn pair(backend: &MemBackend) -> (Machine, Machine) {
    let open =
        |seed| Machine::open_with_hash_seed(backend, seed).expect("what the harness wrote opens");
    (open(1), open(2))
}

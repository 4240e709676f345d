//! A test harness: a machine on the in-memory backend that commits every write set and checks,
//! after every apply, the invariants and that the backend holds exactly what the machine says
//! it persisted.

#![allow(dead_code)]

use ticketd_store::command::{Done, GaPick};
use ticketd_store::types::*;
use ticketd_store::{
    Backend, Command, Machine, MemBackend, Outcome, Query, QueryResult, Rejection, Reply, Request,
    WriteSet, COLUMN_FAMILIES,
};

pub const MIN_MS: i64 = 60_000;
pub const DAY_MS: i64 = 24 * 60 * MIN_MS;
/// Log time at the start of every test.
pub const T0: i64 = 1_700_000_000_000;

pub struct H {
    pub backend: MemBackend,
    pub m: Machine,
    pub index: u64,
    pub now: i64,
    seq: u64,
    /// Every entry applied, for replaying on another backend.
    pub log: Vec<(u64, Request)>,
}

impl Default for H {
    fn default() -> Self {
        Self::new()
    }
}

impl H {
    pub fn new() -> Self {
        Self::with_hash_seed(None)
    }

    /// A harness whose machine seeds its hash tables with `seed` (the process's own when None).
    pub fn with_hash_seed(seed: Option<u64>) -> Self {
        let backend = MemBackend::new();
        let m = match seed {
            Some(s) => Machine::open_with_hash_seed(&backend, s).unwrap(),
            None => Machine::open(&backend).unwrap(),
        };
        H {
            backend,
            m,
            index: 0,
            now: T0,
            seq: 0,
            log: Vec::new(),
        }
    }

    /// Applies with an explicit client and key.
    pub fn apply_as(&mut self, client: &str, key: &str, command: Command) -> Reply {
        self.index += 1;
        let req = Request {
            client_id: client.into(),
            idempotency_key: key.into(),
            stamped_at_ms: self.now,
            command,
        };
        let mut ws = WriteSet::new();
        let reply = self.m.apply(self.index, &req, &mut ws);
        self.log.push((self.index, req));
        self.backend.write(&ws).unwrap();
        self.m
            .check_invariants()
            .unwrap_or_else(|e| panic!("after entry {}: {e}", self.index));
        assert_backend_matches(&self.m, &self.backend);
        reply
    }

    /// Applies with a fresh key.
    pub fn run(&mut self, command: Command) -> Outcome {
        self.seq += 1;
        let key = format!("k{}", self.seq);
        self.apply_as("test", &key, command).outcome
    }

    pub fn ok(&mut self, command: Command) -> Done {
        match self.run(command.clone()) {
            Outcome::Done(d) => d,
            Outcome::Rejected { code, detail } => {
                panic!("{command:?} rejected: {} {detail}", code.code())
            }
        }
    }

    pub fn code(&mut self, command: Command) -> Rejection {
        match self.run(command.clone()) {
            Outcome::Rejected { code, .. } => code,
            Outcome::Done(d) => panic!("{command:?} accepted: {d:?}"),
        }
    }

    /// Reopens the machine from the backend and checks nothing was lost.
    pub fn reopen(&mut self) {
        let before = self.m.digest();
        self.m = Machine::open(&self.backend).unwrap();
        assert_eq!(self.m.digest(), before, "state after restart differs");
    }

    pub fn q(&self, q: Query) -> QueryResult {
        self.m.query(&q)
    }

    pub fn hold(&self, id: &str) -> Hold {
        match self.q(Query::GetHold { hold_id: id.into() }) {
            QueryResult::Hold(Some(h)) => h,
            other => panic!("{other:?}"),
        }
    }

    pub fn ticket(&self, id: &str) -> Ticket {
        match self.q(Query::GetTicket {
            ticket_id: id.into(),
        }) {
            QueryResult::Ticket(Some(t)) => t,
            other => panic!("{other:?}"),
        }
    }

    pub fn seat_map(&self, dt: &str) -> ticketd_store::command::SeatMapView {
        match self.q(Query::SeatMap { dt_id: dt.into() }) {
            QueryResult::SeatMap(Some(v)) => v,
            other => panic!("{other:?}"),
        }
    }

    /// A show: venue v1 (section A: 2 rows of 5 seats, 0..10; section B: 1 row of 5, 10..15;
    /// GA floor of 5), seller s1 (10 % fee), event e1, dt d1 published in 30 days with tiers
    /// gold (A, 100.00 EUR) and silver (B and the floor, 50.00 EUR), users u1..u3.
    pub fn show() -> Self {
        let mut h = H::new();
        h.ok(Command::CreateVenue {
            venue_id: "v1".into(),
            name: "Arena".into(),
            city: "Oslo".into(),
        });
        h.ok(Command::SetVenueLayout {
            venue_id: "v1".into(),
            address: "Sonja Henies plass 2".into(),
            geo: GeoPoint {
                lat_e6: 59_912_000,
                lon_e6: 10_754_000,
            },
            seating_map: seating(&[("A", 2, 5), ("B", 1, 5)], &[("floor", 5)]),
        });
        h.ok(Command::CreateSeller {
            seller_id: "s1".into(),
            name: "Live".into(),
            fee_bps: 1_000,
            plan: SellerPlan::Standard,
        });
        h.ok(event("e1", "s1", "concert"));
        h.ok(dt_cmd("d1", "e1", "v1", T0 + 30 * DAY_MS));
        h.ok(Command::PublishDt { dt_id: "d1".into() });
        for u in ["u1", "u2", "u3"] {
            h.ok(user(u));
        }
        h
    }
}

pub fn seating(sections: &[(&str, usize, usize)], ga: &[(&str, u32)]) -> SeatingMap {
    SeatingMap {
        sections: sections
            .iter()
            .map(|(id, rows, per_row)| SectionDef {
                section_id: id.to_string(),
                name: format!("Section {id}"),
                rows: (0..*rows)
                    .map(|r| RowDef {
                        label: (r + 1).to_string(),
                        seats: (0..*per_row)
                            .map(|s| SeatDef {
                                number: (s + 1).to_string(),
                                x: s as i32 * 10,
                                y: r as i32 * 10,
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
        ga_areas: ga
            .iter()
            .map(|(id, cap)| GaAreaDef {
                area_id: id.to_string(),
                name: format!("GA {id}"),
                capacity: *cap,
            })
            .collect(),
    }
}

pub fn event(id: &str, seller: &str, category: &str) -> Command {
    Command::CreateEvent {
        event_id: id.into(),
        seller_id: seller.into(),
        title: format!("Event {id}"),
        description: "A night to remember".into(),
        category: category.into(),
        performers: vec!["The Band".into()],
    }
}

pub fn tier(id: &str, price: i64, sections: &[&str], ga: &[&str]) -> TierSpec {
    TierSpec {
        tier_id: id.into(),
        name: id.into(),
        price_minor: price,
        currency: "EUR".into(),
        sections: sections.iter().map(|s| s.to_string()).collect(),
        seat_ranges: vec![],
        ga_areas: ga.iter().map(|s| s.to_string()).collect(),
    }
}

pub fn dt_cmd(id: &str, event: &str, venue: &str, starts_at_ms: i64) -> Command {
    Command::CreateDt {
        dt_id: id.into(),
        event_id: event.into(),
        venue_id: venue.into(),
        starts_at_ms,
        time_zone: "Europe/Oslo".into(),
        tiers: vec![
            tier("gold", 10_000, &["A"], &[]),
            tier("silver", 5_000, &["B"], &["floor"]),
        ],
        sale_starts_at_ms: 0,
        sale_ends_at_ms: starts_at_ms,
    }
}

pub fn user(id: &str) -> Command {
    Command::UpsertUser {
        user_id: id.into(),
        profile: Profile {
            first_name: "Ada".into(),
            last_name: id.into(),
            ..Profile::default()
        },
        contact: Contact {
            email: format!("{id}@example.org"),
            phone: "+4712345678".into(),
        },
        reminder: ReminderPreference::default(),
        payment_token_sealed: Some(vec![1, 2, 3]),
    }
}

/// A PHC string shaped like the API's argon2id hashes (the store only keeps it).
pub const HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";

/// Sign-up of `id` with `email`.
pub fn register(id: &str, email: &str, role: Role) -> Command {
    Command::RegisterUser {
        user_id: id.into(),
        email: email.into(),
        password_hash: HASH.into(),
        role,
        profile: Profile {
            first_name: "Grace".into(),
            last_name: id.into(),
            ..Profile::default()
        },
        phone: String::new(),
    }
}

pub fn hold(id: &str, user: &str, seats: &[u32]) -> Command {
    Command::HoldSeats {
        hold_id: id.into(),
        dt_id: "d1".into(),
        user_id: user.into(),
        seats: seats.to_vec(),
        ga: vec![],
        hold_ttl_ms: None,
    }
}

pub fn hold_ga(id: &str, user: &str, area: &str, quantity: u32) -> Command {
    Command::HoldSeats {
        hold_id: id.into(),
        dt_id: "d1".into(),
        user_id: user.into(),
        seats: vec![],
        ga: vec![GaPick {
            area_id: area.into(),
            quantity,
        }],
        hold_ttl_ms: None,
    }
}

pub fn best(id: &str, user: &str, tier: &str, quantity: u32) -> Command {
    Command::HoldBestAvailable {
        hold_id: id.into(),
        dt_id: "d1".into(),
        user_id: user.into(),
        tier_id: tier.into(),
        quantity,
        hold_ttl_ms: None,
    }
}

pub fn start_payment(hold: &str, user: &str, pay: &str, amount: i64) -> Command {
    Command::StartPayment {
        hold_id: hold.into(),
        user_id: user.into(),
        payment_ref: pay.into(),
        amount_minor: amount,
        currency: "EUR".into(),
    }
}

pub fn confirm(hold: &str, order: &str, pay: &str, amount: i64) -> Command {
    Command::ConfirmPurchase {
        hold_id: hold.into(),
        order_id: order.into(),
        payment_ref: pay.into(),
        amount_minor: amount,
        currency: "EUR".into(),
        secret_seed: vec![7; 32],
    }
}

/// Holds, pays and confirms: returns the ticket ids.
pub fn buy(h: &mut H, hold_id: &str, user: &str, seats: &[u32]) -> Vec<String> {
    let Done::HoldPlaced { total_minor, .. } = h.ok(hold(hold_id, user, seats)) else {
        unreachable!()
    };
    let pay = format!("pi-{hold_id}");
    h.ok(start_payment(hold_id, user, &pay, total_minor));
    let order = format!("o-{hold_id}");
    match h.ok(confirm(hold_id, &order, &pay, total_minor)) {
        Done::PurchaseConfirmed { ticket_ids, .. } => ticket_ids,
        other => panic!("{other:?}"),
    }
}

/// Every (cf, key, value) of a backend, in order.
pub fn backend_contents(b: &dyn Backend) -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for cf in COLUMN_FAMILIES {
        b.scan(cf, &mut |k, v| {
            out.push((*cf, k.to_vec(), v.to_vec()));
            Ok(())
        })
        .unwrap();
    }
    out
}

/// The write-through check: the backend holds exactly what the machine persisted.
pub fn assert_backend_matches(m: &Machine, b: &dyn Backend) {
    let mut want = Vec::new();
    m.visit_persisted(&mut |cf, k, v| want.push((cf, k.to_vec(), v.to_vec())));
    let have = backend_contents(b);
    if have != want {
        let diff = have
            .iter()
            .zip(&want)
            .position(|(a, b)| a != b)
            .unwrap_or(have.len().min(want.len()));
        panic!(
            "backend differs from machine at row {diff}: backend {:?} machine {:?}",
            have.get(diff).map(|r| (r.0, String::from_utf8_lossy(&r.1))),
            want.get(diff).map(|r| (r.0, String::from_utf8_lossy(&r.1)))
        );
    }
}

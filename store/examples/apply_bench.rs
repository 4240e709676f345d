//! Microbenchmark of `apply` on a 100k-seat stadium: a one-seat hold, best-available 4, holds
//! applied 64 to an entry (`apply_batch`), and the seat map: reading the packed availability and
//! encoding it as the API sends it (JSON); then the full-text index, and the cost of a hold as
//! the state grows over six sold-out dts.
//!
//! Run in release: `cargo run --release --no-default-features --example apply_bench [growth]`.
//! It prints µs per command and bytes of state per seat; it asserts nothing about time.

use std::time::Instant;

// The allocator the binaries run with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use ticketd_store::command::{Done, Outcome};
use ticketd_store::types::*;
use ticketd_store::{Backend, Command, Machine, MemBackend, Query, QueryResult, Request, WriteSet};

const SECTIONS: usize = 50;
const ROWS: usize = 40;
const SEATS_PER_ROW: usize = 50;
const NOW_MS: i64 = 1_700_000_000_000;

fn stadium() -> SeatingMap {
    SeatingMap {
        sections: (0..SECTIONS)
            .map(|s| SectionDef {
                section_id: format!("S{s}"),
                name: format!("Section {s}"),
                rows: (0..ROWS)
                    .map(|r| RowDef {
                        label: (r + 1).to_string(),
                        seats: (0..SEATS_PER_ROW)
                            .map(|n| SeatDef {
                                number: (n + 1).to_string(),
                                x: (s * 1000 + n * 10) as i32,
                                y: (r * 10) as i32,
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
        ga_areas: vec![],
    }
}

struct Bench {
    m: Machine,
    index: u64,
    ws: WriteSet,
}

impl Bench {
    /// A fresh in-memory machine.
    fn new() -> Self {
        Bench {
            m: Machine::open(&MemBackend::new()).unwrap(),
            index: 0,
            ws: WriteSet::new(),
        }
    }

    /// The venue "stadium" with `map` as its layout, seller "s" and its event "e"; returns the
    /// bytes of the stored layout.
    fn stadium_event(&mut self, map: SeatingMap, title: &str, category: &str) -> usize {
        self.ok(
            "v".into(),
            Command::CreateVenue {
                venue_id: "stadium".into(),
                name: "Stadium".into(),
                city: "Oslo".into(),
            },
        );
        self.ok(
            "l".into(),
            Command::SetVenueLayout {
                venue_id: "stadium".into(),
                address: "Somewhere 1".into(),
                geo: GeoPoint::default(),
                seating_map: map,
            },
        );
        let layout_bytes = self
            .ws
            .ops()
            .iter()
            .map(|op| match op {
                ticketd_store::WriteOp::Put { value, .. } => value.len(),
                ticketd_store::WriteOp::Delete { .. } => 0,
            })
            .max()
            .unwrap_or(0);
        self.ok(
            "s".into(),
            Command::CreateSeller {
                seller_id: "s".into(),
                name: "S".into(),
                fee_bps: 800,
                plan: SellerPlan::Vip,
            },
        );
        self.ok(
            "e".into(),
            Command::CreateEvent {
                event_id: "e".into(),
                seller_id: "s".into(),
                title: title.into(),
                description: "".into(),
                category: category.into(),
                performers: vec![],
            },
        );
        layout_bytes
    }

    fn apply(&mut self, key: String, command: Command) -> Outcome {
        self.index += 1;
        let req = Request {
            client_id: "bench".into(),
            idempotency_key: key,
            stamped_at_ms: NOW_MS,
            command,
        };
        self.m.apply(self.index, &req, &mut self.ws).outcome
    }

    /// Applies `reqs` in log entries of 64 on a fresh write set; returns the refused count and
    /// µs per request (the write set's reset is not timed).
    fn apply_entries(&mut self, reqs: &[Request]) -> (usize, f64) {
        self.ws = WriteSet::new();
        let start = Instant::now();
        let mut refused = 0;
        for chunk in reqs.chunks(64) {
            self.index += 1;
            for reply in self.m.apply_batch(self.index, chunk, &mut self.ws) {
                if let Outcome::Rejected { .. } = reply.outcome {
                    refused += 1;
                }
            }
        }
        (
            refused,
            start.elapsed().as_secs_f64() * 1e6 / reqs.len() as f64,
        )
    }

    fn ok(&mut self, key: String, command: Command) -> Done {
        match self.apply(key, command) {
            Outcome::Done(d) => d,
            other => panic!("{other:?}"),
        }
    }
}

fn main() {
    // `apply_bench growth`: only the figures of a growing state.
    if std::env::args().nth(1).as_deref() == Some("growth") {
        growth_figures();
        return;
    }
    let mut b = Bench::new();
    let map = stadium();
    let seats = map.seat_count();
    let layout_bytes = b.stadium_event(map, "Final", "sports");
    // Two tiers: the first 25 sections and the rest.
    let tier = |id: &str, from: usize, to: usize| TierSpec {
        tier_id: id.into(),
        name: id.into(),
        price_minor: 9_900,
        currency: "EUR".into(),
        sections: (from..to).map(|s| format!("S{s}")).collect(),
        seat_ranges: vec![],
        ga_areas: vec![],
    };
    b.ok(
        "d".into(),
        Command::CreateDt {
            dt_id: "d".into(),
            event_id: "e".into(),
            venue_id: "stadium".into(),
            starts_at_ms: NOW_MS + 86_400_000,
            time_zone: "Europe/Oslo".into(),
            tiers: vec![tier("lower", 0, 25), tier("upper", 25, 50)],
            sale_starts_at_ms: 0,
            sale_ends_at_ms: NOW_MS + 86_400_000,
        },
    );
    b.ok("p".into(), Command::PublishDt { dt_id: "d".into() });
    // The first search indexes the event and its dt (noted by the two commands above).
    let start = Instant::now();
    let _ = b.m.query(&Query::SearchEvents {
        text: "final".into(),
        limit: 10,
    });
    let first_search_ms = start.elapsed().as_secs_f64() * 1e3;
    const USERS: usize = 14_000;
    for u in 0..USERS {
        b.ok(
            format!("u{u}"),
            Command::UpsertUser {
                user_id: format!("user-{u:05}"),
                profile: Profile::default(),
                contact: Contact::default(),
                reminder: ReminderPreference::default(),
                payment_token_sealed: None,
            },
        );
    }
    b.ws = WriteSet::new();

    // One-seat holds spread over the lower tier (a stride walks every section).
    const HOLDS: usize = 20_000;
    let commands: Vec<Command> = (0..HOLDS)
        .map(|i| Command::HoldSeats {
            hold_id: format!("hold-{i:06}-7f3a9c"),
            dt_id: "d".into(),
            user_id: format!("user-{:05}", i % 4_000),
            seats: vec![((i * 7_919) % (seats as usize / 2)) as u32],
            ga: vec![],
            hold_ttl_ms: None,
        })
        .collect();
    let writes_before = b.ws.len();
    let start = Instant::now();
    let mut refused = 0;
    for (i, c) in commands.into_iter().enumerate() {
        if let Outcome::Rejected { .. } = b.apply(format!("h{i}"), c) {
            refused += 1;
        }
    }
    let hold_us = start.elapsed().as_secs_f64() * 1e6 / HOLDS as f64;
    let writes_per_hold = (b.ws.len() - writes_before) as f64 / HOLDS as f64;
    let bytes_per_hold: usize = b.ws.ops()[writes_before..]
        .iter()
        .map(|op| match op {
            ticketd_store::WriteOp::Put { key, value, .. } => key.len() + value.len(),
            ticketd_store::WriteOp::Delete { key, .. } => key.len(),
        })
        .sum::<usize>()
        / HOLDS;
    b.ws = WriteSet::new();

    // Best-available 4 in the upper tier.
    const BESTS: usize = 10_000;
    let commands: Vec<Command> = (0..BESTS)
        .map(|i| Command::HoldBestAvailable {
            hold_id: format!("best-{i:06}-7f3a9c"),
            dt_id: "d".into(),
            user_id: format!("user-{:05}", 4_000 + i),
            tier_id: "upper".into(),
            quantity: 4,
            hold_ttl_ms: None,
        })
        .collect();
    let start = Instant::now();
    let mut best_refused = 0;
    for (i, c) in commands.into_iter().enumerate() {
        if let Outcome::Rejected { .. } = b.apply(format!("b{i}"), c) {
            best_refused += 1;
        }
    }
    let best_us = start.elapsed().as_secs_f64() * 1e6 / BESTS as f64;

    // Search after all those holds: they noted nothing for the index, so nothing to catch up.
    let search = |m: &Machine, text: &str| {
        let start = Instant::now();
        let QueryResult::Events(hits) = m.query(&Query::SearchEvents {
            text: text.into(),
            limit: 10,
        }) else {
            unreachable!()
        };
        (start.elapsed().as_secs_f64() * 1e6, hits.len())
    };
    let (search_after_holds_us, found) = search(&b.m, "final oslo");
    assert_eq!(found, 1);

    // One-seat holds in entries of 64 requests (the leader's batches under load).
    const BATCHED: usize = 12_800;
    let reqs: Vec<Request> = (0..BATCHED)
        .map(|i| Request {
            client_id: "bench".into(),
            idempotency_key: format!("bb{i}"),
            stamped_at_ms: NOW_MS,
            command: Command::HoldSeats {
                hold_id: format!("bhold-{i:06}-7f3a9c"),
                dt_id: "d".into(),
                user_id: format!("user-{:05}", 8_000 + i % 6_000),
                // The stride continued past the one-seat holds: lower-tier seats still free.
                seats: vec![(((HOLDS + i) * 7_919) % (seats as usize / 2)) as u32],
                ga: vec![],
                hold_ttl_ms: None,
            },
        })
        .collect();
    let (batched_refused, batched_us) = b.apply_entries(&reqs);
    b.ws = WriteSet::new();

    // The seat map of the 100k-seat dt, as the API reads it and sends it.
    const MAPS: usize = 200;
    let q = Query::SeatMap { dt_id: "d".into() };
    let start = Instant::now();
    let mut view = b.m.query(&q);
    for _ in 1..MAPS {
        view = b.m.query(&q);
    }
    let map_read_us = start.elapsed().as_secs_f64() * 1e6 / MAPS as f64;
    let QueryResult::SeatMap(Some(map_view)) = view else {
        unreachable!()
    };
    let start = Instant::now();
    let mut json_len = 0;
    for _ in 0..MAPS {
        json_len = serde_json::to_vec(&map_view).unwrap().len();
    }
    let map_json_us = start.elapsed().as_secs_f64() * 1e6 / MAPS as f64;

    let book = b.m.seat_book_heap_bytes("d").unwrap();
    println!("stadium: {seats} seats, 2 tiers");
    println!(
        "one-seat hold: {hold_us:.2} µs/command over {HOLDS} ({refused} refused), \
         {writes_per_hold:.1} writes and {bytes_per_hold} bytes written per hold"
    );
    println!("best-available 4: {best_us:.2} µs/command over {BESTS} ({best_refused} refused)");
    println!(
        "one-seat hold in entries of 64: {batched_us:.2} µs/command over {BATCHED} ({batched_refused} refused)"
    );
    println!(
        "seat map of {seats} seats: read {map_read_us:.1} µs ({} bytes of seat states), \
         JSON {map_json_us:.1} µs for {json_len} bytes = {:.2} bytes/seat",
        map_view.seat_states.len(),
        json_len as f64 / seats as f64
    );
    println!(
        "availability state per dt: {book} bytes in memory = {:.2} bytes/seat; 0 bytes/seat on disk (derived from holds and tickets)",
        book as f64 / seats as f64
    );
    println!(
        "venue layout (once per venue, with labels and x/y): {layout_bytes} bytes = {:.2} bytes/seat on disk",
        layout_bytes as f64 / seats as f64
    );
    println!(
        "search: first one after the event and dt were created (re-index + commit) \
         {first_search_ms:.1} ms; right after the {} holds {search_after_holds_us:.0} µs \
         (holds note nothing for the index)",
        HOLDS + BESTS
    );
    search_figures();
    growth_figures();
}

/// An id that looks like the API's (a keyed hash in hex): random order, no shared prefix.
fn hex_id(prefix: &str, i: u64) -> String {
    let mut x = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    format!("{prefix}{:016x}{:016x}", x ^ (x >> 31), x.rotate_left(17))
}

/// Apply cost as the state grows, the way a day of sales grows it: six 100k-seat dts sold one
/// after the other by best-available holds of one seat in entries of 64, hold ids and
/// idempotency keys as random as the API's. Each round adds 40,000 holds and 40,000
/// remembered keys; the last round runs against 200,000 of each.
fn growth_figures() {
    let mut b = Bench::new();
    b.stadium_event(stadium(), "Tour", "music");
    const ROUNDS: usize = 6;
    for r in 0..ROUNDS {
        b.ok(
            format!("d{r}"),
            Command::CreateDt {
                dt_id: format!("d{r}"),
                event_id: "e".into(),
                venue_id: "stadium".into(),
                starts_at_ms: NOW_MS + 86_400_000,
                time_zone: "Europe/Oslo".into(),
                tiers: vec![TierSpec {
                    tier_id: "all".into(),
                    name: "All".into(),
                    price_minor: 9_900,
                    currency: "EUR".into(),
                    sections: (0..SECTIONS).map(|s| format!("S{s}")).collect(),
                    seat_ranges: vec![],
                    ga_areas: vec![],
                }],
                sale_starts_at_ms: 0,
                sale_ends_at_ms: NOW_MS + 86_400_000,
            },
        );
        b.ok(
            format!("p{r}"),
            Command::PublishDt {
                dt_id: format!("d{r}"),
            },
        );
    }
    const USERS: usize = 20_000;
    for u in 0..USERS {
        b.ok(
            format!("u{u}"),
            Command::UpsertUser {
                user_id: hex_id("u-", u as u64),
                profile: Profile::default(),
                contact: Contact::default(),
                reminder: ReminderPreference::default(),
                payment_token_sealed: None,
            },
        );
    }
    const PER_ROUND: usize = 40_000;
    let mut per_round = Vec::new();
    for r in 0..ROUNDS {
        let reqs: Vec<Request> = (0..PER_ROUND)
            .map(|i| {
                let n = (r * PER_ROUND + i) as u64;
                Request {
                    client_id: "api-7f3a9c".into(),
                    idempotency_key: hex_id("k-", n),
                    // Ten holds per millisecond of log time, as at 10,000 holds/s.
                    stamped_at_ms: NOW_MS + n as i64 / 10,
                    command: Command::HoldBestAvailable {
                        hold_id: hex_id("h-", n),
                        dt_id: format!("d{r}"),
                        user_id: hex_id("u-", (i % USERS) as u64),
                        tier_id: "all".into(),
                        quantity: 1,
                        hold_ttl_ms: None,
                    },
                }
            })
            .collect();
        let (refused, us) = b.apply_entries(&reqs);
        assert_eq!(refused, 0, "round {r}: every hold fits");
        per_round.push(us);
    }
    let rounds: Vec<String> = per_round.iter().map(|us| format!("{us:.2}")).collect();
    println!(
        "best-available 1 in entries of 64, random ids, per round of {PER_ROUND} as the state \
         grows to {} holds: {} µs/command (last / first = {:.2})",
        ROUNDS * PER_ROUND,
        rounds.join(", "),
        per_round[ROUNDS - 1] / per_round[0]
    );
}

/// Full-text index costs on a catalogue: building it on open, catching up after one new
/// event, and a search.
fn search_figures() {
    const EVENTS: usize = 5_000;
    let backend = MemBackend::new();
    let mut b = Bench {
        m: Machine::open(&backend).unwrap(),
        index: 0,
        ws: WriteSet::new(),
    };
    let words = [
        "rock",
        "jazz",
        "opera",
        "night",
        "live",
        "festival",
        "tour",
        "orchestra",
        "quartet",
        "symphony",
        "ballet",
        "comedy",
        "derby",
        "final",
        "cup",
        "league",
    ];
    b.ok(
        "s".into(),
        Command::CreateSeller {
            seller_id: "s".into(),
            name: "S".into(),
            fee_bps: 800,
            plan: SellerPlan::Vip,
        },
    );
    for v in 0..50 {
        b.ok(
            format!("v{v}"),
            Command::CreateVenue {
                venue_id: format!("v{v}"),
                name: format!("Hall {v}"),
                city: ["Oslo", "Bergen", "Stockholm", "Copenhagen", "Helsinki"][v % 5].into(),
            },
        );
        b.ok(
            format!("l{v}"),
            Command::SetVenueLayout {
                venue_id: format!("v{v}"),
                address: String::new(),
                geo: GeoPoint::default(),
                seating_map: SeatingMap {
                    sections: vec![],
                    ga_areas: vec![GaAreaDef {
                        area_id: "floor".into(),
                        name: "Floor".into(),
                        capacity: 1_000,
                    }],
                },
            },
        );
    }
    for e in 0..EVENTS {
        let w = |k: usize| words[(e * 7 + k * 3) % words.len()];
        b.ok(
            format!("e{e}"),
            Command::CreateEvent {
                event_id: format!("e{e:05}"),
                seller_id: "s".into(),
                title: format!("{} {} {e}", w(0), w(1)),
                description: format!("A {} {} with {} and {}", w(2), w(3), w(4), w(5)),
                category: w(6).into(),
                performers: vec![format!("The {} Band", w(7)), format!("DJ {}", w(8))],
            },
        );
        b.ok(
            format!("d{e}"),
            Command::CreateDt {
                dt_id: format!("d{e:05}"),
                event_id: format!("e{e:05}"),
                venue_id: format!("v{}", e % 50),
                starts_at_ms: NOW_MS + 86_400_000,
                time_zone: "Europe/Oslo".into(),
                tiers: vec![TierSpec {
                    tier_id: "ga".into(),
                    name: "GA".into(),
                    price_minor: 1_000,
                    currency: "EUR".into(),
                    sections: vec![],
                    seat_ranges: vec![],
                    ga_areas: vec!["floor".into()],
                }],
                sale_starts_at_ms: 0,
                sale_ends_at_ms: NOW_MS + 86_400_000,
            },
        );
        b.ok(
            format!("p{e}"),
            Command::PublishDt {
                dt_id: format!("d{e:05}"),
            },
        );
    }
    backend.write(&b.ws).unwrap();
    let start = Instant::now();
    let m = Machine::open(&backend).unwrap();
    let open_ms = start.elapsed().as_secs_f64() * 1e3;
    let searches = [
        "rock",
        "jazz night",
        "oslo",
        "the quart",
        "dj symph",
        "hall 7",
    ];
    let start = Instant::now();
    let mut found = 0;
    for q in searches {
        let QueryResult::Events(hits) = m.query(&Query::SearchEvents {
            text: q.into(),
            limit: 20,
        }) else {
            unreachable!()
        };
        found += hits.len();
    }
    let search_us = start.elapsed().as_secs_f64() * 1e6 / searches.len() as f64;
    let mut b = Bench {
        m,
        index: b.index,
        ws: WriteSet::new(),
    };
    b.ok(
        "late".into(),
        Command::CreateEvent {
            event_id: "late".into(),
            seller_id: "s".into(),
            title: "Late addition".into(),
            description: String::new(),
            category: "rock".into(),
            performers: vec![],
        },
    );
    let start = Instant::now();
    let _ = b.m.query(&Query::SearchEvents {
        text: "rock".into(),
        limit: 20,
    });
    let catch_up_ms = start.elapsed().as_secs_f64() * 1e3;
    println!(
        "search index over {EVENTS} events with dts: open (state load, checks and index build) \
         {open_ms:.0} ms; search {search_us:.0} µs ({found} hits over {} queries); first search \
         after one new event (re-index + commit) {catch_up_ms:.1} ms",
        searches.len()
    );
}

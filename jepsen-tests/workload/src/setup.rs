//! The sale's setup: the seller, the venue (two seated sections and a GA floor), the dts on
//! sale and the users, written before the clients start.

use ticketd_store::types::{
    Contact, GaAreaDef, GeoPoint, Profile, ReminderPreference, RowDef, SeatDef, SeatingMap,
    SectionDef, SellerPlan, TierSpec,
};
use ticketd_store::Command;

/// The client id of the setup writes.
pub const SETUP_CLIENT: &str = "setup";
/// The sale's venue.
pub const VENUE: &str = "hall";
/// Users per client.
pub const USERS_PER_CLIENT: usize = 4;
/// Seats of section A (the hot set is its first row).
pub const SECTION_A: u32 = 16;
/// Seats of section B.
pub const SECTION_B: u32 = 30;
/// The GA floor's capacity.
pub const FLOOR: u32 = 20;
/// Tier ids, in dt order.
pub const TIERS: [&str; 3] = ["front", "back", "floor"];

/// The id of the `k`-th dt.
pub fn dt_id(k: usize) -> String {
    format!("dt{k}")
}

/// The users of client `idx`.
pub fn users_of(idx: usize) -> Vec<String> {
    (0..USERS_PER_CLIENT)
        .map(|j| format!("u{idx}-{j}"))
        .collect()
}

fn seating_map() -> SeatingMap {
    let row = |label: &str, n: u32| RowDef {
        label: label.into(),
        seats: (1..=n)
            .map(|i| SeatDef {
                number: i.to_string(),
                x: i as i32,
                y: 0,
            })
            .collect(),
    };
    SeatingMap {
        sections: vec![
            SectionDef {
                section_id: "A".into(),
                name: "Front".into(),
                rows: vec![row("1", 8), row("2", 8)],
            },
            SectionDef {
                section_id: "B".into(),
                name: "Back".into(),
                rows: vec![row("1", 10), row("2", 10), row("3", 10)],
            },
        ],
        ga_areas: vec![GaAreaDef {
            area_id: "floor".into(),
            name: "Floor".into(),
            capacity: FLOOR,
        }],
    }
}

fn tiers() -> Vec<TierSpec> {
    let t = |id: &str, price: i64, sections: &[&str], ga: &[&str]| TierSpec {
        tier_id: id.into(),
        name: id.into(),
        price_minor: price,
        currency: "EUR".into(),
        sections: sections.iter().map(|s| s.to_string()).collect(),
        seat_ranges: Vec::new(),
        ga_areas: ga.iter().map(|s| s.to_string()).collect(),
    };
    vec![
        t(TIERS[0], 5_000, &["A"], &[]),
        t(TIERS[1], 3_000, &["B"], &[]),
        t(TIERS[2], 2_000, &[], &["floor"]),
    ]
}

/// The sale's setup, in order: (idempotency key, command). Sale windows are open for any
/// plausible log time (from 0 to the year 2100), so no clock decides whether a dt is on sale.
pub fn sale_setup(dts: usize, clients: usize) -> Vec<(String, Command)> {
    const Y2100_MS: i64 = 4_102_444_800_000;
    let mut out = vec![
        Command::CreateSeller {
            seller_id: "seller".into(),
            name: "Chaos Seller".into(),
            fee_bps: 250,
            plan: SellerPlan::Standard,
        },
        Command::CreateEvent {
            event_id: "show".into(),
            seller_id: "seller".into(),
            title: "The Chaos Show".into(),
            description: "Faults, nightly.".into(),
            category: "concert".into(),
            performers: vec!["The Nemesis".into()],
        },
        Command::CreateVenue {
            venue_id: VENUE.into(),
            name: "Chaos Hall".into(),
            city: "Chaos".into(),
        },
        Command::SetVenueLayout {
            venue_id: VENUE.into(),
            address: "1 Fault Line".into(),
            geo: GeoPoint::default(),
            seating_map: seating_map(),
        },
    ];
    for k in 0..dts {
        out.push(Command::CreateDt {
            dt_id: dt_id(k),
            event_id: "show".into(),
            venue_id: VENUE.into(),
            starts_at_ms: Y2100_MS,
            time_zone: "Europe/Oslo".into(),
            tiers: tiers(),
            sale_starts_at_ms: 0,
            sale_ends_at_ms: Y2100_MS,
        });
        out.push(Command::PublishDt { dt_id: dt_id(k) });
    }
    for c in 0..clients {
        for u in users_of(c) {
            out.push(Command::UpsertUser {
                user_id: u,
                profile: Profile::default(),
                contact: Contact::default(),
                reminder: ReminderPreference::default(),
                payment_token_sealed: None,
            });
        }
    }
    out.into_iter()
        .enumerate()
        .map(|(i, c)| (format!("setup-{i}"), c))
        .collect()
}

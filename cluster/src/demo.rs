//! Demo data: sellers, venues (a 50k-seat stadium among them), events in several cities, dts on
//! sale, users. Written through the cluster client with fixed idempotency keys, so seeding twice
//! changes nothing.

use sha2::{Digest as _, Sha256};
use ticketd_raft::client::ClusterClient;
use ticketd_store::types::{
    Contact, GaAreaDef, GeoPoint, Profile, ReminderPreference, Role, RowDef, SeatDef, SeatingMap,
    SectionDef, SellerPlan, TierSpec,
};
use ticketd_store::{Command, Outcome, Rejection};

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Sections per line of the drawing grid.
const SECTIONS_PER_LINE: usize = 6;
/// Drawing units between neighbouring seats, and between sections.
const SEAT_PITCH: usize = 4;
const SECTION_GAP: usize = 12;

/// A seating map of `sections` sections, each `rows` rows of `per_row` seats, and GA areas.
/// Sections are drawn side by side, up to six to a line, with a gap between them.
pub fn seating(sections: &[(&str, usize, usize)], ga: &[(&str, u32)]) -> SeatingMap {
    let width = sections.iter().map(|(_, _, p)| *p).max().unwrap_or(0) * SEAT_PITCH + SECTION_GAP;
    let height = sections.iter().map(|(_, r, _)| *r).max().unwrap_or(0) * SEAT_PITCH + SECTION_GAP;
    SeatingMap {
        sections: sections
            .iter()
            .enumerate()
            .map(|(si, (id, rows, per_row))| SectionDef {
                section_id: id.to_string(),
                name: format!("Section {id}"),
                rows: (0..*rows)
                    .map(|r| RowDef {
                        label: (r + 1).to_string(),
                        seats: (0..*per_row)
                            .map(|s| SeatDef {
                                number: (s + 1).to_string(),
                                x: ((si % SECTIONS_PER_LINE) * width + s * SEAT_PITCH) as i32,
                                y: ((si / SECTIONS_PER_LINE) * height + r * SEAT_PITCH) as i32,
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

fn tier(id: &str, price_minor: i64, sections: &[&str], ga: &[&str]) -> TierSpec {
    TierSpec {
        tier_id: id.into(),
        name: id.into(),
        price_minor,
        currency: "EUR".into(),
        sections: sections.iter().map(|s| s.to_string()).collect(),
        seat_ranges: vec![],
        ga_areas: ga.iter().map(|s| s.to_string()).collect(),
    }
}

/// Writes one demo object under its fixed key. Seeding again is a no-op: an object that exists
/// is kept, and a key already used by an earlier seed (whose times, taken from the clock then,
/// differ from this one's) keeps that seed's object.
async fn put(client: &ClusterClient, key: &str, cmd: Command) -> anyhow::Result<()> {
    let w = client.write("demo-seed", key, &cmd).await?;
    match w.reply.outcome {
        Outcome::Done(_)
        | Outcome::Rejected {
            code: Rejection::AlreadyExists | Rejection::IdempotencyKeyReused,
            ..
        } => Ok(()),
        Outcome::Rejected { code, detail } => {
            anyhow::bail!("seeding {key}: {} {detail}", code.code())
        }
    }
}

/// A venue with a layout.
pub struct VenueSpec<'a> {
    /// Id.
    pub id: &'a str,
    /// Name.
    pub name: &'a str,
    /// City.
    pub city: &'a str,
    /// Latitude and longitude, degrees.
    pub at: (f64, f64),
    /// Sections (id, rows, seats per row).
    pub sections: Vec<(&'a str, usize, usize)>,
    /// GA areas (id, capacity).
    pub ga: Vec<(&'a str, u32)>,
}

/// Creates a venue with its layout.
pub async fn venue(client: &ClusterClient, v: &VenueSpec<'_>) -> anyhow::Result<()> {
    put(
        client,
        &format!("venue-{}", v.id),
        Command::CreateVenue {
            venue_id: v.id.into(),
            name: v.name.into(),
            city: v.city.into(),
        },
    )
    .await?;
    let sections: Vec<(&str, usize, usize)> = v.sections.clone();
    put(
        client,
        &format!("layout-{}", v.id),
        Command::SetVenueLayout {
            venue_id: v.id.into(),
            address: format!("{}, {}", v.name, v.city),
            geo: GeoPoint {
                lat_e6: (v.at.0 * 1e6) as i32,
                lon_e6: (v.at.1 * 1e6) as i32,
            },
            seating_map: seating(&sections, &v.ga),
        },
    )
    .await
}

/// A published dt of a new event at `venue_id`, on sale now, tiers gold (first section, 120 EUR)
/// and silver (the rest and GA, 60 EUR).
#[allow(clippy::too_many_arguments)]
pub async fn event_with_dt(
    client: &ClusterClient,
    seller_id: &str,
    event_id: &str,
    title: &str,
    category: &str,
    venue_id: &str,
    dt_id: &str,
    starts_at_ms: i64,
    sections: &[&str],
    ga: &[&str],
) -> anyhow::Result<()> {
    put(
        client,
        &format!("event-{event_id}"),
        Command::CreateEvent {
            event_id: event_id.into(),
            seller_id: seller_id.into(),
            title: title.into(),
            description: format!("{title}: one night only"),
            category: category.into(),
            performers: vec![format!("{title} Band")],
        },
    )
    .await?;
    let (first, rest) = sections
        .split_first()
        .map(|(f, r)| (vec![*f], r.to_vec()))
        .unwrap_or_default();
    put(
        client,
        &format!("dt-{dt_id}"),
        Command::CreateDt {
            dt_id: dt_id.into(),
            event_id: event_id.into(),
            venue_id: venue_id.into(),
            starts_at_ms,
            time_zone: "Europe/Oslo".into(),
            tiers: vec![
                tier("gold", 12_000, &first, &[]),
                tier("silver", 6_000, &rest, ga),
            ],
            sale_starts_at_ms: 0,
            sale_ends_at_ms: starts_at_ms,
        },
    )
    .await?;
    put(
        client,
        &format!("publish-{dt_id}"),
        Command::PublishDt {
            dt_id: dt_id.into(),
        },
    )
    .await
}

/// The password of every demo account.
pub const DEMO_PASSWORD: &str = "demo-password";

/// Creates a demo account (user, seller, scanner or admin) with [`DEMO_PASSWORD`]; the salt
/// derives from the id, so seeding twice proposes the same command.
pub async fn account(
    client: &ClusterClient,
    id: &str,
    email: &str,
    role: Role,
) -> anyhow::Result<()> {
    let seed: [u8; 32] = Sha256::digest(format!("demo-salt:{id}").as_bytes()).into();
    let password_hash = ticketd_http::auth::hash_password_seeded(DEMO_PASSWORD, &seed)
        .map_err(|p| anyhow::anyhow!("hashing: {}", p.detail))?;
    let cmd = Command::RegisterUser {
        user_id: id.into(),
        email: email.into(),
        password_hash,
        role,
        profile: Profile {
            first_name: "Demo".into(),
            last_name: id.into(),
            ..Profile::default()
        },
        phone: "+4700000000".into(),
    };
    let w = client
        .write("demo-seed", &format!("account-{id}"), &cmd)
        .await?;
    match w.reply.outcome {
        Outcome::Done(_)
        | Outcome::Rejected {
            code: Rejection::AlreadyExists | Rejection::EmailTaken,
            ..
        } => Ok(()),
        Outcome::Rejected { code, detail } => {
            anyhow::bail!("seeding account {id}: {} {detail}", code.code())
        }
    }
}

/// Buyers for load tests, users `buyer-1..=n` (a profile and contact, no account: load
/// generators sign their tokens with the API's key). Written `in_flight` at a time; fixed
/// idempotency keys, so seeding twice changes nothing.
pub async fn buyers(client: &ClusterClient, n: u32, in_flight: usize) -> anyhow::Result<()> {
    use futures::StreamExt as _;
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(1..=n)
        .map(|i| async move {
            let id = format!("buyer-{i}");
            let cmd = Command::UpsertUser {
                user_id: id.clone(),
                profile: Profile {
                    first_name: "Buyer".into(),
                    last_name: i.to_string(),
                    ..Profile::default()
                },
                contact: Contact {
                    email: format!("{id}@buyers.invalid"),
                    phone: "+4700000000".into(),
                },
                reminder: ReminderPreference::default(),
                payment_token_sealed: None,
            };
            let w = client
                .write("demo-seed", &format!("buyer-{i}"), &cmd)
                .await?;
            match w.reply.outcome {
                Outcome::Done(_) => Ok(()),
                Outcome::Rejected { code, detail } => {
                    anyhow::bail!("seeding buyer {id}: {} {detail}", code.code())
                }
            }
        })
        .buffer_unordered(in_flight.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

/// Creates a seller.
pub async fn seller(
    client: &ClusterClient,
    id: &str,
    fee_bps: u32,
    plan: SellerPlan,
) -> anyhow::Result<()> {
    put(
        client,
        &format!("seller-{id}"),
        Command::CreateSeller {
            seller_id: id.into(),
            name: format!("Seller {id}"),
            fee_bps,
            plan,
        },
    )
    .await
}

/// The demo data set; `stadium` adds a 50,400-seat stadium with a sold-out-scale on-sale.
pub async fn seed(client: &ClusterClient, now_ms: i64, stadium: bool) -> anyhow::Result<()> {
    seller(client, "live-nation-demo", 1_000, SellerPlan::Standard).await?;
    seller(client, "indie-demo", 500, SellerPlan::Vip).await?;
    venues_and_shows(client, now_ms).await?;
    if stadium {
        stadium_tour(client, now_ms).await?;
    }
    accounts(client).await
}

/// Three venues in three cities, each with a show on two dts.
async fn venues_and_shows(client: &ClusterClient, now_ms: i64) -> anyhow::Result<()> {
    let venues = [
        VenueSpec {
            id: "oslo-spektrum",
            name: "Oslo Spektrum",
            city: "Oslo",
            at: (59.9128, 10.7547),
            sections: vec![("A", 10, 20), ("B", 10, 20)],
            ga: vec![("floor", 500)],
        },
        VenueSpec {
            id: "gota-lejon",
            name: "Göta Lejon",
            city: "Stockholm",
            at: (59.3152, 18.0719),
            sections: vec![("P", 12, 20), ("R", 8, 20)],
            ga: vec![],
        },
        VenueSpec {
            id: "vega",
            name: "VEGA",
            city: "Copenhagen",
            at: (55.6677, 12.5431),
            sections: vec![("B", 5, 20)],
            ga: vec![("floor", 800)],
        },
    ];
    for v in &venues {
        venue(client, v).await?;
    }
    let shows = [
        (
            "aurora-live",
            "Aurora Live",
            "concert",
            "oslo-spektrum",
            vec!["A", "B"],
            vec!["floor"],
        ),
        (
            "nordic-jazz",
            "Nordic Jazz Night",
            "jazz",
            "gota-lejon",
            vec!["P", "R"],
            vec![],
        ),
        (
            "comedy-club",
            "Comedy Club",
            "comedy",
            "vega",
            vec!["B"],
            vec!["floor"],
        ),
    ];
    for (show, (id, title, category, venue_id, sections, ga)) in shows.iter().enumerate() {
        for dt_number in 0..2 {
            let dt_id = format!("{id}-d{dt_number}");
            let at = now_ms + (10 + show as i64 * 3 + dt_number * 7) * DAY_MS;
            event_with_dt(
                client,
                "live-nation-demo",
                id,
                title,
                category,
                venue_id,
                &dt_id,
                at,
                sections,
                ga,
            )
            .await?;
        }
    }
    Ok(())
}

/// The 50,400-seat stadium and its tour's dt.
async fn stadium_tour(client: &ClusterClient, now_ms: i64) -> anyhow::Result<()> {
    let sections: Vec<(String, usize, usize)> =
        (0..24).map(|s| (format!("S{s:02}"), 50, 42)).collect();
    let refs: Vec<(&str, usize, usize)> = sections
        .iter()
        .map(|(n, r, p)| (n.as_str(), *r, *p))
        .collect();
    let v = VenueSpec {
        id: "ullevaal",
        name: "Ullevaal Stadion",
        city: "Oslo",
        at: (59.9489, 10.7339),
        sections: refs,
        ga: vec![],
    };
    venue(client, &v).await?;
    let names: Vec<&str> = sections.iter().map(|(n, _, _)| n.as_str()).collect();
    event_with_dt(
        client,
        "indie-demo",
        "stadium-tour",
        "Stadium Tour",
        "concert",
        "ullevaal",
        "stadium-tour-d0",
        now_ms + 30 * DAY_MS,
        &names,
        &[],
    )
    .await?;
    Ok(())
}

/// The demo accounts: three buyers, the two sellers, a scanner and an admin.
async fn accounts(client: &ClusterClient) -> anyhow::Result<()> {
    for u in 1..=3 {
        account(
            client,
            &format!("demo-user-{u}"),
            &format!("demo{u}@example.org"),
            Role::User,
        )
        .await?;
    }
    account(
        client,
        "live-nation-demo",
        "seller1@example.org",
        Role::Seller,
    )
    .await?;
    account(client, "indie-demo", "seller2@example.org", Role::Seller).await?;
    account(
        client,
        "gate-scanner-1",
        "scanner@example.org",
        Role::Scanner,
    )
    .await?;
    account(client, "demo-admin", "admin@example.org", Role::Admin).await?;
    Ok(())
}

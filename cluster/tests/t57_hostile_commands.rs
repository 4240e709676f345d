//! Apply is total, shown on a real 3-node cluster: the commands that once halted every replica
//! (or were accepted off any calendar) are refused with a clear 4xx problem through the public
//! API, and with a typed rejection through a node's client service; after each, the cluster
//! goes on taking writes and every node stays healthy.

mod common;

use common::*;
use serde_json::{json, Value};
use ticketd_http::auth::Role;
use ticketd_store::types::{
    Contact, GeoPoint, Profile, ReminderPreference, Role as StoreRole, SeatingMap,
};
use ticketd_store::{Command, Outcome, Rejection};

async fn post(api: &ApiProcess, path: &str, tok: &str, key: &str, body: Value) -> (u16, Value) {
    let mut r = api.http.post(api.url(path)).header("idempotency-key", key);
    if !tok.is_empty() {
        r = r.bearer_auth(tok);
    }
    let r = r.json(&body).send().await.expect("the API answers");
    let status = r.status().as_u16();
    (status, r.json::<Value>().await.unwrap_or(Value::Null))
}

/// The cluster still takes writes: a buyer holds a seat of the demo's comedy club through the
/// API, and `ticketctl endpoint health` is healthy on every node.
async fn still_selling(stack: &Stack, key: &str) {
    let buyer = token("demo-user-2", Role::User);
    let (s, v) = post(
        &stack.api,
        "/v1/events/comedy-club/dts/comedy-club-d1/holds",
        &buyer,
        key,
        json!({"tier_id": "gold", "quantity": 1}),
    )
    .await;
    assert_eq!(s, 201, "the cluster still sells: {v}");
    let out = std::process::Command::new(ticketctl_bin())
        .args(
            stack
                .c
                .tls_args(&ticketd_raft::identity::Identity::Admin("dev".into())),
        )
        .args([
            "--endpoints",
            &stack.c.endpoints().join(","),
            "endpoint",
            "health",
        ])
        .output()
        .expect("ticketctl runs");
    assert!(
        out.status.success(),
        "every node healthy: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn rejected(o: &Outcome) -> Rejection {
    match o {
        Outcome::Rejected { code, .. } => *code,
        other => panic!("accepted: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_commands_are_refused_and_the_cluster_goes_on() -> anyhow::Result<()> {
    let stack = seeded_stack(&[]).await?;
    let api = &stack.api;

    phase("a self-registered seller signs up");
    let signup = json!({"email": "mallory@example.org", "password": "correct horse battery",
                        "name": "Mallory", "role": "seller"});
    let (s, v) = post(api, "/v1/users", "", "signup-mallory", signup).await;
    assert_eq!(s, 201, "{v}");
    let login = json!({"email": "mallory@example.org", "password": "correct horse battery"});
    let (s, session) = post(api, "/v1/sessions", "", "login-mallory", login).await;
    assert_eq!(s, 201, "{session}");
    let seller = session["token"].as_str().expect("a token").to_string();

    phase("a venue whose two GA areas add up past u32::MAX: refused, 400");
    let huge = u32::MAX / 2 + 1;
    let venue = json!({
        "name": "Overflow Field", "city": "Oslo", "address": "Nowhere 1", "lat": 59.9, "lon": 10.7,
        "seating_map": {"sections": [], "ga_areas": [
            {"area_id": "north", "name": "North", "capacity": huge},
            {"area_id": "south", "name": "South", "capacity": huge}]}
    });
    let (s, v) = post(api, "/v1/venues", &seller, "venue-overflow", venue).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (400, Some("INVALID_ARGUMENT")),
        "{v}"
    );
    still_selling(&stack, "after-overflow").await;

    phase("a dt starting at the last instant RFC 3339 can say (9999-12-31), far past the store's calendar: refused, 400");
    let venue = json!({
        "name": "Small Hall", "city": "Oslo", "address": "Somewhere 2", "lat": 59.9, "lon": 10.7,
        "seating_map": {"sections": [], "ga_areas": [{"area_id": "floor", "name": "Floor", "capacity": 100}]}
    });
    let (s, v) = post(api, "/v1/venues", &seller, "venue-small", venue).await;
    assert_eq!(s, 201, "{v}");
    let venue_id = v["venue_id"].as_str().unwrap().to_string();
    let (s, v) = post(
        api,
        "/v1/events",
        &seller,
        "event-1",
        json!({"title": "Forever", "category": "concert"}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let event_id = v["event_id"].as_str().unwrap().to_string();
    let dt = |starts: Value| {
        json!({"venue_id": venue_id, "starts_at": starts, "time_zone": "Europe/Oslo",
               "tiers": [{"tier_id": "ga", "name": "GA", "price_minor": 1000, "currency": "NOK",
                          "sections": [], "seat_ranges": [], "ga_areas": ["floor"]}],
               "sale_starts_at": rfc3339(0), "sale_ends_at": starts, "publish": true})
    };
    let path = format!("/v1/events/{event_id}/dts");
    // 9999-12-31T23:59:59.999Z: what RFC 3339 can say at most, past the store's last instant.
    let last = rfc3339(253_402_300_799_999);
    assert_eq!(last, "9999-12-31T23:59:59.999Z");
    let (s, v) = post(api, &path, &seller, "dt-forever", dt(json!(last))).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (400, Some("INVALID_ARGUMENT")),
        "{v}"
    );
    still_selling(&stack, "after-forever").await;

    phase("a dt whose start is the old i64::MAX milliseconds, or not a time at all: refused, 4xx");
    let (s, v) = post(api, &path, &seller, "dt-forever-ms", dt(json!(i64::MAX))).await;
    assert!((400..500).contains(&s), "{s} {v}");
    let (s, v) = post(
        api,
        &path,
        &seller,
        "dt-not-a-time",
        dt(json!("9223372036854775807")),
    )
    .await;
    assert_eq!((s, v["code"].as_str()), (400, Some("BAD_REQUEST")), "{v}");
    still_selling(&stack, "after-not-a-time").await;

    phase(
        "through a node's client service: a latitude of i32::MIN, a 4 GiB password hash, \
           a year-long-plus reminder lead, a key the store cannot remember",
    );
    let client = stack.c.client();
    let mut cmds = vec![Command::CreateVenue {
        venue_id: "grpc-venue".into(),
        name: "Door".into(),
        city: "Oslo".into(),
    }];
    cmds.push(Command::SetVenueLayout {
        venue_id: "grpc-venue".into(),
        address: "Back door".into(),
        geo: GeoPoint {
            lat_e6: i32::MIN,
            lon_e6: 0,
        },
        seating_map: SeatingMap::default(),
    });
    let greedy_hash = "$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0$\
                       aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
    cmds.push(Command::RegisterUser {
        user_id: "greedy".into(),
        email: "greedy@example.org".into(),
        password_hash: greedy_hash.into(),
        role: StoreRole::User,
        profile: Profile::default(),
        phone: String::new(),
    });
    cmds.push(Command::UpsertUser {
        user_id: "demo-user-3".into(),
        profile: Profile::default(),
        contact: Contact::default(),
        reminder: ReminderPreference {
            lead_ms: i64::MAX,
            email: true,
            sms: false,
        },
        payment_token_sealed: None,
    });
    let mut codes = Vec::new();
    for (i, cmd) in cmds.iter().enumerate() {
        let w = client.write("hostile", &format!("grpc-{i}"), cmd).await?;
        codes.push(match &w.reply.outcome {
            Outcome::Done(_) => None,
            o => Some(rejected(o)),
        });
    }
    assert_eq!(
        codes,
        [
            None,
            Some(Rejection::InvalidArgument),
            Some(Rejection::InvalidArgument),
            Some(Rejection::InvalidArgument)
        ]
    );
    let w = client.write("hostile", &"k".repeat(200), &cmds[0]).await?;
    assert_eq!(rejected(&w.reply.outcome), Rejection::InvalidArgument);
    still_selling(&stack, "after-grpc").await;
    Ok(())
}

//! schemathesis (PyPI) fuzzes the HTTP API from its own `/openapi.json`, against a real 3-node
//! cluster with the demo data: no 5xx, and every response matches the schema (status code,
//! content type, body). It runs once per identity, a buyer's, a seller's and a gate scanner's
//! token, so the seller and gate routes are fuzzed past their authorization too.
//! `scripts/test.sh` installs schemathesis and sets `TICKETD_SCHEMATHESIS`.

mod common;

use std::process::Command;

use common::*;
use ticketd_http::auth::Role;
use ticketd_testkit::cluster::{NodeOpts, TestCluster};

/// A demo account the API is fuzzed as: its user id, role, and the path parameters fixed for it.
type FuzzedAs = (&'static str, Role, &'static [(&'static str, &'static str)]);

/// Wall-clock budget of the fuzzing per identity, seconds.
const FUZZ_SECONDS: &str = "40";

/// The identities the API is fuzzed as: demo accounts of each role that has routes of its own,
/// and the path parameters fixed for each. The buyer's ids are drawn (so unknown and other
/// users' objects are tried); the seller's and the scanner's name the seller's own demo event,
/// dt, venue and seller record, so their routes are fuzzed past ownership, on real objects.
const IDENTITIES: &[FuzzedAs] = &[
    ("demo-user-1", Role::User, &[]),
    ("live-nation-demo", Role::Seller, SELLER_OBJECTS),
    ("gate-scanner-1", Role::Scanner, SELLER_OBJECTS),
];

const SELLER_OBJECTS: &[(&str, &str)] = &[
    ("event_id", "comedy-club"),
    ("dt_id", "comedy-club-d1"),
    ("venue_id", "vega"),
    ("seller_id", "live-nation-demo"),
];

/// The document's examples are bodies its schemas accept: checked with the JSON Schema
/// validator schemathesis itself uses (jsonschema_rs, in its venv).
/// Runs scripts/openapi_examples.py with the venv's python over docs/openapi.json (and, when
/// given, a file of bodies seen): its report, after asserting it exited 0.
fn openapi_examples(bodies: Option<&std::path::Path>) -> String {
    let bin = std::env::var("TICKETD_SCHEMATHESIS")
        .unwrap_or_else(|_| "/var/cache/ticketd/venv/bin/schemathesis".into());
    let python = std::path::Path::new(&bin).with_file_name("python");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut cmd = Command::new(&python);
    cmd.arg(format!("{root}/scripts/openapi_examples.py"))
        .arg(format!("{root}/docs/openapi.json"));
    if let Some(b) = bodies {
        cmd.arg(b);
    }
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run scripts/test.sh: it installs the venv)",
            python.display()
        )
    });
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{text}");
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The document's examples are bodies its schemas accept: checked with the JSON Schema
/// validator schemathesis itself uses (jsonschema_rs, in its venv).
#[test]
fn every_example_in_the_document_matches_its_schema() {
    let text = openapi_examples(None);
    assert!(text.contains("0 problems"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_errors_and_no_schema_violations() -> anyhow::Result<()> {
    let bin = std::env::var("TICKETD_SCHEMATHESIS")
        .unwrap_or_else(|_| "/var/cache/ticketd/venv/bin/schemathesis".into());
    anyhow::ensure!(
        std::path::Path::new(&bin).exists(),
        "schemathesis not found at {bin}: run scripts/test.sh (it installs it) or set TICKETD_SCHEMATHESIS"
    );
    let c = TestCluster::start(&ticketd_bin(), 3, NodeOpts::default()).await?;
    let dir = tempfile::tempdir()?;
    let (pay_addr, _paysim) = start_paysim().await?;
    // Generous hold limits: the fuzzer is one client at a high rate.
    let api = ApiProcess::start_with(
        &c,
        &c.endpoints(),
        dir.path(),
        &[
            "--payments",
            &pay_addr,
            "--holds-per-user-per-minute",
            "100000",
            "--holds-per-ip-per-minute",
            "100000",
        ],
    )
    .await?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    ticketd_cluster::demo::seed(&c.client(), now_ms, false).await?;
    let mut failed = Vec::new();
    for (user_id, role, params) in IDENTITIES {
        phase(&format!(
            "schemathesis as {user_id} ({role:?}), path {params:?}"
        ));
        let schema = api.url("/openapi.json");
        let (ok, stdout, stderr) =
            fuzz_as(&bin, &schema, &token(user_id, *role), params, dir.path()).await?;
        // The summary, for the test log (and the issue note).
        let tail: Vec<&str> = stdout.lines().rev().take(40).collect();
        for l in tail.iter().rev() {
            eprintln!("{l}");
        }
        if !ok {
            failed.push(format!("as {user_id}:\n{stdout}\n{stderr}"));
        }
    }
    assert!(
        failed.is_empty(),
        "schemathesis found problems:\n{}",
        failed.join("\n")
    );
    Ok(())
}

/// One schemathesis run with `token` and the path parameters `params` fixed: whether it
/// passed, its stdout and stderr.
async fn fuzz_as(
    bin: &str,
    schema: &str,
    token: &str,
    params: &[(&str, &str)],
    dir: &std::path::Path,
) -> anyhow::Result<(bool, String, String)> {
    let (bin, schema) = (bin.to_string(), schema.to_string());
    let auth = format!("Authorization: Bearer {token}");
    let cwd = tempfile::tempdir_in(dir)?;
    // schemathesis reads schemathesis.toml from its working directory.
    let mut config = String::from("[parameters]\n");
    for (name, value) in params {
        config.push_str(&format!("\"path.{name}\" = \"{value}\"\n"));
    }
    std::fs::write(cwd.path().join("schemathesis.toml"), config)?;
    let report = cwd.path().join("report");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin)
            .arg("run")
            .arg(&schema)
            .args(["--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"])
            .args(["--max-time", FUZZ_SECONDS, "--workers", "2", "--request-timeout", "15"])
            .args(["--phases", "examples,coverage,fuzzing"])
            .args(["--header", &auth])
            .args(["--report", "ndjson", "--report-dir"])
            .arg(&report)
            .args(["--seed", "1"])
            .env("NO_COLOR", "1")
            // schemathesis keeps a cache in its working directory: a temporary one.
            .current_dir(cwd.path())
            .output()
    })
    .await??;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Every 2xx answer of a walk through all the routes, as (method, path template, status, body).
#[derive(Default)]
struct Answers {
    seen: Vec<serde_json::Value>,
}

impl Answers {
    /// Sends `req` (for the route `method template`), expects `status`, keeps the JSON body.
    async fn call(
        &mut self,
        req: reqwest::RequestBuilder,
        method: &str,
        template: &str,
        status: u16,
    ) -> anyhow::Result<serde_json::Value> {
        let r = req.send().await?;
        let got = r.status().as_u16();
        let location = r.headers().get("location").cloned();
        let text = r.text().await?;
        anyhow::ensure!(got == status, "{method} {template}: {got} {text}");
        if status == 201 && template != "/v1/users" && template != "/v1/sessions" {
            anyhow::ensure!(
                location.is_some(),
                "{method} {template}: 201 without Location"
            );
        }
        let body: serde_json::Value = if template == "/healthz" {
            serde_json::Value::String(text)
        } else {
            serde_json::from_str(&text)?
        };
        self.seen.push(serde_json::json!({
            "method": method, "path": template, "status": status.to_string(), "body": body,
        }));
        Ok(body)
    }
}

/// RFC 3339 of now + `s` seconds.
fn at(s: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    ticketd_http::resources::rfc3339(now + s * 1000)
}

/// One walk through every route, each answered with success; every body is then validated
/// against its operation's response schema in docs/openapi.json (jsonschema_rs), and every
/// success answer the document describes must have been seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_bodies_its_schema_accepts() -> anyhow::Result<()> {
    use serde_json::json;
    let s = seeded_stack(&[]).await?;
    let (api, http) = (&s.api, &s.api.http);
    let mut a = Answers::default();

    phase("accounts: a buyer and a seller sign up and log in");
    a.call(http.get(api.url("/healthz")), "get", "/healthz", 200)
        .await?;
    let mut sessions = Vec::new();
    for (who, role) in [("ada", "user"), ("sam", "seller")] {
        let email = format!("{who}@example.org");
        let body = json!({"email": email, "password": "long enough", "name": who, "role": role});
        let req = http
            .post(api.url("/v1/users"))
            .header("idempotency-key", format!("su-{who}"))
            .json(&body);
        a.call(req, "post", "/v1/users", 201).await?;
        let req = http
            .post(api.url("/v1/sessions"))
            .header("idempotency-key", format!("li-{who}"))
            .json(&json!({"email": email, "password": "long enough"}));
        let session = a.call(req, "post", "/v1/sessions", 201).await?;
        sessions.push((
            session["token"].as_str().unwrap_or_default().to_string(),
            session["user_id"].as_str().unwrap_or_default().to_string(),
        ));
    }
    let (buyer, _) = sessions[0].clone();
    let (seller, seller_id) = sessions[1].clone();

    phase("the seller: a venue, an event, a dt on sale and a draft");
    let venue = json!({"name": "Walk Hall", "city": "Oslo", "address": "Gata 1", "lat": 59.9, "lon": 10.7,
        "seating_map": {"sections": [{"section_id": "A", "name": "Stalls", "rows": [{"label": "1", "seats": [
            {"number": "1", "x": 0, "y": 0}, {"number": "2", "x": 1, "y": 0},
            {"number": "3", "x": 2, "y": 0}, {"number": "4", "x": 3, "y": 0}]}]}], "ga_areas": []}});
    let req = http
        .post(api.url("/v1/venues"))
        .bearer_auth(&seller)
        .header("idempotency-key", "v")
        .json(&venue);
    let v = a.call(req, "post", "/v1/venues", 201).await?;
    let venue_id = v["venue_id"].as_str().unwrap_or_default().to_string();
    let req = http
        .post(api.url("/v1/events"))
        .bearer_auth(&seller)
        .header("idempotency-key", "e")
        .json(&json!({"title": "Walk Show", "category": "comedy"}));
    let e = a.call(req, "post", "/v1/events", 201).await?;
    let event_id = e["event_id"].as_str().unwrap_or_default().to_string();
    let dt_body = |publish: bool| {
        json!({"venue_id": venue_id, "starts_at": at(2 * 86_400), "time_zone": "Europe/Oslo",
        "tiers": [{"tier_id": "all", "name": "All", "price_minor": 10_000, "currency": "NOK", "sections": ["A"]}],
        "sale_starts_at": at(-3600), "sale_ends_at": at(86_400), "publish": publish})
    };
    let dts = format!("/v1/events/{event_id}/dts");
    let req = http
        .post(api.url(&dts))
        .bearer_auth(&seller)
        .header("idempotency-key", "d1")
        .json(&dt_body(true));
    let d = a
        .call(req, "post", "/v1/events/{event_id}/dts", 201)
        .await?;
    let dt_id = d["dt_id"].as_str().unwrap_or_default().to_string();
    let req = http
        .post(api.url(&dts))
        .bearer_auth(&seller)
        .header("idempotency-key", "d2")
        .json(&dt_body(false));
    let d2 = a
        .call(req, "post", "/v1/events/{event_id}/dts", 201)
        .await?;
    let draft = format!("{dts}/{}", d2["dt_id"].as_str().unwrap_or_default());
    let req = http
        .put(api.url(&format!("{draft}/sale-window")))
        .bearer_auth(&seller)
        .header("idempotency-key", "w")
        .json(&json!({"sale_starts_at": at(-60), "sale_ends_at": at(3600)}));
    a.call(
        req,
        "put",
        "/v1/events/{event_id}/dts/{dt_id}/sale-window",
        200,
    )
    .await?;
    let req = http
        .post(api.url(&format!("{draft}/publish")))
        .bearer_auth(&seller)
        .header("idempotency-key", "p");
    a.call(
        req,
        "post",
        "/v1/events/{event_id}/dts/{dt_id}/publish",
        200,
    )
    .await?;

    phase("browsing");
    a.call(http.get(api.url("/v1/events")), "get", "/v1/events", 200)
        .await?;
    a.call(
        http.get(api.url(&format!("/v1/events/{event_id}"))),
        "get",
        "/v1/events/{event_id}",
        200,
    )
    .await?;
    a.call(
        http.get(api.url(&dts)),
        "get",
        "/v1/events/{event_id}/dts",
        200,
    )
    .await?;
    let dt_url = format!("{dts}/{dt_id}");
    a.call(
        http.get(api.url(&dt_url)),
        "get",
        "/v1/events/{event_id}/dts/{dt_id}",
        200,
    )
    .await?;
    a.call(
        http.get(api.url(&format!("/v1/venues/{venue_id}"))),
        "get",
        "/v1/venues/{venue_id}",
        200,
    )
    .await?;

    phase("the buyer: hold, release, hold and buy, read it all back");
    let b = |r: reqwest::RequestBuilder| r.bearer_auth(&buyer);
    let holds = format!("{dt_url}/holds");
    let h = a
        .call(
            b(http.post(api.url(&holds)))
                .header("idempotency-key", "h0")
                .json(&json!({"seats": [0]})),
            "post",
            "/v1/events/{event_id}/dts/{dt_id}/holds",
            201,
        )
        .await?;
    let hold_url = format!("{holds}/{}", h["hold_id"].as_str().unwrap_or_default());
    a.call(
        b(http.get(api.url(&hold_url))),
        "get",
        "/v1/events/{event_id}/dts/{dt_id}/holds/{hold_id}",
        200,
    )
    .await?;
    let released = a
        .call(
            b(http.delete(api.url(&hold_url))).header("idempotency-key", "r0"),
            "delete",
            "/v1/events/{event_id}/dts/{dt_id}/holds/{hold_id}",
            200,
        )
        .await?;
    assert_eq!(released["status"], "released", "{released}");
    let mut orders = Vec::new();
    for (i, seat) in [1, 2, 3].into_iter().enumerate() {
        let h = a
            .call(
                b(http.post(api.url(&holds)))
                    .header("idempotency-key", format!("h{seat}"))
                    .json(&json!({"seats": [seat]})),
                "post",
                "/v1/events/{event_id}/dts/{dt_id}/holds",
                201,
            )
            .await?;
        let mut buy = json!({"hold_id": h["hold_id"], "expected_total_minor": h["total_minor"]});
        if i == 0 {
            buy["payment_method_token"] = json!("pm_card_visa");
        } else if i == 1 {
            a.call(
                b(http.put(api.url("/v1/me/payment-method")))
                    .header("idempotency-key", "pm")
                    .json(&json!({"payment_method_token": "pm_card_visa"})),
                "put",
                "/v1/me/payment-method",
                200,
            )
            .await?;
        }
        let o = a
            .call(
                b(http.post(api.url(&dt_url)))
                    .header("idempotency-key", format!("buy{seat}"))
                    .json(&buy),
                "post",
                "/v1/events/{event_id}/dts/{dt_id}",
                201,
            )
            .await?;
        orders.push(o);
    }
    let order_id = orders[0]["order_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    a.call(
        b(http.get(api.url(&format!("/v1/orders/{order_id}")))),
        "get",
        "/v1/orders/{order_id}",
        200,
    )
    .await?;
    a.call(
        b(http.get(api.url("/v1/me/orders"))),
        "get",
        "/v1/me/orders",
        200,
    )
    .await?;
    a.call(
        b(http.get(api.url("/v1/me/tickets"))),
        "get",
        "/v1/me/tickets",
        200,
    )
    .await?;
    let ticket_id = orders[0]["tickets"][0]["ticket_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let t = a
        .call(
            b(http.get(api.url(&format!("/v1/tickets/{ticket_id}")))),
            "get",
            "/v1/tickets/{ticket_id}",
            200,
        )
        .await?;
    a.call(
        b(http.put(api.url("/v1/me/reminders")))
            .header("idempotency-key", "rem")
            .json(&json!({"days_before": 2, "email": true, "sms": false})),
        "put",
        "/v1/me/reminders",
        200,
    )
    .await?;
    a.call(b(http.get(api.url("/v1/me"))), "get", "/v1/me", 200)
        .await?;

    phase("the gate admits; the buyer refunds a ticket and cancels an order");
    let scanner = token("gate-scanner-1", Role::Scanner);
    let scan = a
        .call(
            http.post(api.url("/v1/scans"))
                .header("authorization", format!("Bearer {scanner}"))
                .header("idempotency-key", "scan")
                .json(&json!({"qr_payload": t["qr_payload"], "dt_id": dt_id, "gate": "north"})),
            "post",
            "/v1/scans",
            200,
        )
        .await?;
    assert_eq!(scan["verdict"], "admitted", "{scan}");
    let refunded = orders[1]["tickets"][0]["ticket_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    a.call(
        b(http.post(api.url(&format!("/v1/tickets/{refunded}/refund"))))
            .header("idempotency-key", "ref"),
        "post",
        "/v1/tickets/{ticket_id}/refund",
        200,
    )
    .await?;
    let canceled = orders[2]["order_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let c = a
        .call(
            b(http.post(api.url(&format!("/v1/orders/{canceled}/cancel"))))
                .header("idempotency-key", "can")
                .json(&json!({"reason": "walk"})),
            "post",
            "/v1/orders/{order_id}/cancel",
            200,
        )
        .await?;
    assert_eq!(c["status"], "canceled", "{c}");

    phase("the seller's reports, plan, and the dt called off");
    let sl = |r: reqwest::RequestBuilder| r.bearer_auth(&seller);
    a.call(
        sl(http.get(api.url(&format!("{dt_url}/sales")))),
        "get",
        "/v1/events/{event_id}/dts/{dt_id}/sales",
        200,
    )
    .await?;
    a.call(
        sl(http.get(api.url(&format!("/v1/sellers/{seller_id}/ledger")))),
        "get",
        "/v1/sellers/{seller_id}/ledger",
        200,
    )
    .await?;
    a.call(
        sl(http.put(api.url(&format!("/v1/sellers/{seller_id}/plan"))))
            .header("idempotency-key", "plan")
            .json(&json!({"plan": "vip"})),
        "put",
        "/v1/sellers/{seller_id}/plan",
        200,
    )
    .await?;
    a.call(
        sl(http.post(api.url(&format!("{dt_url}/cancel"))))
            .header("idempotency-key", "off")
            .json(&json!({"reason": "walk"})),
        "post",
        "/v1/events/{event_id}/dts/{dt_id}/cancel",
        200,
    )
    .await?;

    phase("every body against its schema; every success answer seen");
    let bodies = s.dir.path().join("bodies.json");
    std::fs::write(&bodies, serde_json::to_vec(&a.seen)?)?;
    openapi_examples(Some(&bodies));
    Ok(())
}

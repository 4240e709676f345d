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

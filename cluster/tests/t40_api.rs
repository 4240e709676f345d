//! The HTTP API process in front of a real 3-node cluster: what every route shares.

mod common;

use common::*;
use ticketd_testkit::cluster::{NodeOpts, TestCluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_serves_its_openapi_document_request_ids_metrics_and_problem_json() -> anyhow::Result<()>
{
    let c = TestCluster::start(&ticketd_bin(), 3, NodeOpts::default()).await?;
    let dir = tempfile::tempdir()?;
    let api = ApiProcess::start(&c, dir.path()).await?;

    phase("/openapi.json is the committed document, OpenAPI 3.1");
    let served: serde_json::Value = api
        .http
        .get(api.url("/openapi.json"))
        .send()
        .await?
        .json()
        .await?;
    let committed: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/openapi.json"
    ))?)?;
    assert_eq!(served, committed);
    assert_eq!(served["openapi"], "3.1.0");

    phase("every response carries a request id; a caller's own is kept");
    let r = api.http.get(api.url("/healthz")).send().await?;
    assert!(r.headers().contains_key("x-request-id"));
    let r = api
        .http
        .get(api.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await?;
    assert_eq!(r.headers()["x-request-id"], "abc-123");

    phase("unknown routes and oversized bodies are refused; metrics count by route");
    let r = api.http.get(api.url("/v1/nothing-here")).send().await?;
    assert_eq!(r.status(), 404);
    let big = vec![b'x'; 256 * 1024];
    // Its own client: the server may close a connection whose request body it refused unread,
    // and a pooled connection reused after that fails to send.
    let r = reqwest::Client::new()
        .post(api.url("/healthz"))
        .body(big)
        .send()
        .await?;
    assert!(
        r.status() == 413 || r.status() == 405,
        "status {}",
        r.status()
    );
    let m = api.http.get(&api.metrics_url).send().await?.text().await?;
    assert!(m.contains("ticketd_api_request_seconds"), "{m}");
    assert!(m.contains("route=\"/healthz\""));

    phase("/metrics is on its own listener: absent from the public port");
    let r = api.http.get(api.url("/metrics")).send().await?;
    assert_eq!(r.status(), 404, "the public port serves no metrics");
    let body = r.text().await?;
    assert!(
        !body.contains("ticketd_"),
        "no metric leaks on the public port: {body}"
    );
    Ok(())
}

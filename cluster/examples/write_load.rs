//! A closed-loop write load against a running cluster, for quick measurements of the replicated
//! core (the full benchmark suite is `scripts/bench/run.sh`).
//!
//!     cargo run --release -p ticketd-cluster --example write_load -- ENDPOINTS CLIENTS SECONDS CERTS_DIR
//!
//! CERTS_DIR holds the cluster's `ca.pem` and an api certificate `api-dev.pem` with its key, as
//! `ticketd certs dev` makes them.
//! Prints writes/s and latency percentiles; read `ticketd_raft_entries_per_fsync` from a node's
//! `/metrics` for the group-commit figure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ticketd_raft::client::{ClusterClient, RetryPolicy};
use ticketd_store::Command;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        anyhow::bail!("usage: write_load ENDPOINTS CLIENTS SECONDS CERTS_DIR");
    }
    let endpoints: Vec<String> = args[1].split(',').map(str::to_string).collect();
    let clients: usize = args[2].parse()?;
    let seconds: u64 = args[3].parse()?;
    let certs = std::path::Path::new(&args[4]);
    let transport = ticketd_raft::tls::Transport::load(&ticketd_raft::tls::TlsFiles {
        ca: certs.join("ca.pem"),
        cert: certs.join("api-dev.pem"),
        key: certs.join("api-dev-key.pem"),
    })?;
    let client = Arc::new(ClusterClient::new(
        endpoints,
        RetryPolicy::default(),
        transport,
    ));
    let run = format!("{}", std::process::id());
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let client = client.clone();
        let run = run.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut i = 0u64;
            while Instant::now() < deadline {
                let id = format!("load-{run}-{c}-{i}");
                let cmd = Command::CreateVenue {
                    venue_id: id.clone(),
                    name: id.clone(),
                    city: "Load".into(),
                };
                let started = Instant::now();
                match client.write("load", &id, &cmd).await {
                    Ok(_) => lat.push(started.elapsed()),
                    Err(_) => errors += 1,
                }
                i += 1;
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        all.extend(l);
        errors += e;
    }
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
    };
    println!(
        "clients={clients} seconds={seconds} ok={} errors={errors} writes_per_s={:.0} p50={:?} p99={:?} max={:?}",
        all.len(),
        all.len() as f64 / seconds as f64,
        pct(0.50).unwrap_or_default(),
        pct(0.99).unwrap_or_default(),
        all.last().copied().unwrap_or_default()
    );
    Ok(())
}

//! `ticketctl` against a real cluster: output formats and exit codes, with the operator's
//! certificate and without.

mod common;

use std::ffi::OsString;
use std::process::Command;
use std::time::Duration;

use common::*;
use ticketd_raft::identity::Identity;
use ticketd_testkit::cluster::{NodeOpts, TestCluster};

/// Runs ticketctl with `tls` flags (and environment) and `args`.
fn ctl_as(
    tls: &[OsString],
    env: &[(&str, OsString)],
    endpoints: &[String],
    args: &[&str],
) -> (i32, String, String) {
    ctl_with(tls, env, endpoints, (2000, 8000), args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticketctl_reports_status_moves_leadership_and_exits_with_distinct_codes(
) -> anyhow::Result<()> {
    let c = TestCluster::start(&ticketd_bin(), 3, NodeOpts::default()).await?;
    let eps = c.endpoints();
    let admin = c.tls_args(&Identity::Admin("dev".into()));
    let ctl = |endpoints: &[String], args: &[&str]| ctl_as(&admin, &[], endpoints, args);
    c.client().write("t30", "k", &create_venue("v")).await?;
    // A write commits on a majority; health below asks every node, so wait until all three
    // know the leader (a node that does not is rightly reported unhealthy).
    let leader = c.wait_leader(Duration::from_secs(10)).await?;

    phase("endpoint status as JSON names exactly one leader");
    let (code, out, err) = ctl(&eps, &["endpoint", "status", "-w", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out)?;
    let rows = v.as_array().expect("array");
    assert_eq!(rows.len(), 3);
    assert_eq!(rows.iter().filter(|r| r["is_leader"] == true).count(), 1);

    phase("endpoint status as a table, etcd's columns");
    let (code, out, _) = ctl(&eps, &["endpoint", "status"]);
    assert_eq!(code, 0);
    for col in ["ENDPOINT", "IS LEADER", "RAFT TERM", "RAFT APPLIED INDEX"] {
        assert!(out.contains(col), "missing column {col}:\n{out}");
    }

    phase("member list, health");
    let (code, out, _) = ctl(&eps, &["member", "list", "-w", "json"]);
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out)?
            .as_array()
            .map(|a| a.len()),
        Some(3)
    );
    let (code, out, _) = ctl(&eps, &["endpoint", "health"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches("is healthy").count(), 3);

    phase("leader transfer");
    let to = (1..=3).find(|id| *id != leader).expect("a follower");
    let (code, _, err) = ctl(&eps, &["leader", "transfer", &to.to_string()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(c.wait_leader(Duration::from_secs(10)).await?, to);

    phase("snapshot trigger and metrics");
    let (code, out, err) = ctl(&eps[..1], &["snapshot", "trigger"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("snapshot at log index"));
    let (code, out, _) = ctl(&eps[..1], &["metrics"]);
    assert_eq!(code, 0);
    for m in [
        "ticketd_raft_term",
        "ticketd_raft_fsync_seconds",
        "ticketd_raft_entries_per_fsync",
        "ticketd_snapshots_built_total",
    ] {
        assert!(out.contains(m), "metrics lack {m}");
    }

    phase("exit codes: usage 2, unreachable 3, rejected 4");
    let (code, _, _) = ctl(&eps, &["member", "frobnicate"]);
    assert_eq!(code, 2);
    let (code, _, _) = ctl(&eps, &["cluster", "init", "--members", "not-a-member"]);
    assert_eq!(code, 2);
    let (code, _, err) = ctl(&["127.0.0.1:1".to_string()], &["endpoint", "status"]);
    assert_eq!(code, 3, "{err}");
    let (code, _, err) = ctl(&eps, &["leader", "transfer", "99"]);
    assert_eq!(code, 4, "{err}");

    phase("the same certificate through TICKETCTL_CACERT, TICKETCTL_CERT, TICKETCTL_KEY");
    let f = c.tls_files(&Identity::Admin("dev".into()));
    let env = [
        ("TICKETCTL_CACERT", f.ca.clone().into_os_string()),
        ("TICKETCTL_CERT", f.cert.clone().into_os_string()),
        ("TICKETCTL_KEY", f.key.clone().into_os_string()),
    ];
    let (code, out, err) = ctl_as(&[], &env, &eps, &["member", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("voter"), "{out}");

    phase("without the admin certificate: no TLS at all 2, no certificate 8, an api one 8");
    let (code, _, err) = ctl_as(&[], &[], &eps, &["endpoint", "status"]);
    assert_eq!(code, 2, "no TLS material is a usage error: {err}");
    assert!(err.contains("--cacert"), "{err}");
    let ca_only: Vec<OsString> = vec!["--cacert".into(), f.ca.clone().into()];
    let (code, _, err) = ctl_as(&ca_only, &[], &eps, &["member", "list"]);
    assert_eq!(code, 8, "{err}");
    assert!(err.contains("client certificate"), "{err}");
    let api = c.tls_args(&Identity::Api("dev".into()));
    let (code, _, err) = ctl_as(&api, &[], &eps, &["leader", "transfer", "1"]);
    assert_eq!(code, 8, "{err}");
    assert!(
        err.contains("PermissionDenied") || err.contains("may not call"),
        "{err}"
    );
    let (code, _, err) = ctl_as(&api, &[], &eps, &["endpoint", "status"]);
    assert_eq!(code, 8, "{err}");
    assert_eq!(
        c.wait_leader(Duration::from_secs(10)).await?,
        to,
        "nothing moved"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_takes_config_from_file_env_and_flags_stops_on_sigterm_and_recovers(
) -> anyhow::Result<()> {
    use ticketd_raft::client::{ClusterClient, Consistency, RetryPolicy};
    let dir = tempfile::tempdir()?;
    let free_addr = ticketd_testkit::cluster::free_addr;
    let addr = free_addr()?;
    let metrics = free_addr()?;
    let cfg = dir.path().join("node.toml");
    let certs = dir.path().join("certs");
    ticketd_testkit::cluster::make_certs(
        &ticketd_bin(),
        &[
            "dev",
            "--dir",
            certs.to_str().expect("utf-8 path"),
            "--nodes",
            "1",
        ],
    )?;
    let node = ticketd_testkit::cluster::tls_files(&certs, &Identity::Node(1));
    // The file names a wrong listen address and id; the environment and the flag override them.
    // The CA and certificate come from the file, the key from the environment.
    std::fs::write(
        &cfg,
        format!(
            "id = 9\ndata_dir = {:?}\nlisten = \"127.0.0.1:1\"\nmetrics_listen = {metrics:?}\nlog_format = \"json\"\ncacert = {:?}\ncert = {:?}\n",
            dir.path().join("data"),
            node.ca,
            node.cert,
        ),
    )?;
    let spawn = || {
        Command::new(ticketd_bin())
            .args(["node", "--config"])
            .arg(&cfg)
            .args(["--listen", &addr])
            .env("TICKETD_ID", "1")
            .env("TICKETD_KEY", &node.key)
            .stderr(std::fs::File::create(dir.path().join("node.log")).expect("log file"))
            .spawn()
    };

    phase("start from the file, env and flags; init a one-node cluster; write");
    let mut child = spawn()?;
    let load = |id: Identity| {
        ticketd_raft::tls::Transport::load(&ticketd_testkit::cluster::tls_files(&certs, &id))
    };
    let client = ClusterClient::new(
        vec![addr.clone()],
        RetryPolicy::default(),
        load(Identity::Api("dev".into()))?,
    );
    let admin = ClusterClient::new(
        vec![addr.clone()],
        RetryPolicy::default(),
        load(Identity::Admin("dev".into()))?,
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while admin
        .init(
            &addr,
            vec![ticketd_raft::pb::Member {
                id: 1,
                addr: addr.clone(),
            }],
        )
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "node never accepted init"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = admin.status(&addr).await?;
    assert_eq!(status.id, 1, "TICKETD_ID overrides the file");
    assert_eq!(
        status.metrics_addr, metrics,
        "the file's metrics address is used"
    );
    let w = client.write("t30", "cfg", &create_venue("cfg")).await?;

    phase("SIGTERM: a clean exit");
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        assert!(std::time::Instant::now() < deadline, "node ignored SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "exit status {exit}");
    let log = std::fs::read_to_string(dir.path().join("node.log"))?;
    assert!(
        log.lines()
            .any(|l| l.starts_with('{') && l.contains("node stopped")),
        "JSON logs:\n{log}"
    );

    phase("restart from its own disk: the write is there");
    let mut child = spawn()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let r = loop {
        match client
            .read(&get_venue("cfg"), Consistency::Linearizable)
            .await
        {
            Ok(r) => break r,
            Err(e) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no read after restart: {e}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(
        venue(&r.result).expect("venue").created_index,
        w.reply.index
    );
    child.kill()?;
    child.wait()?;
    Ok(())
}

//! `ticketctl`: the operator's command line for a ticketd cluster, shaped like etcdctl.
//!
//! Exit codes: 0 success, 2 usage error (bad flags, unusable TLS files), 3 cluster
//! unreachable, 4 request rejected, 5 server error, 6 outcome unknown, 7 replicas differ
//! (`endpoint hashkv`), 8 not authorized (no client certificate, or one whose identity may not
//! do this: operations take an `admin` certificate).
#![cfg_attr(not(test), deny(clippy::too_many_lines))]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use comfy_table::Table;
use serde_json::json;
use ticketd_raft::client::{AdminOp, ClientError, ClusterClient, RetryPolicy};
use ticketd_raft::pb;

#[derive(Parser)]
#[command(name = "ticketctl", version, about = "Operate a ticketd cluster")]
struct Cli {
    /// Comma-separated gRPC endpoints of the cluster's nodes.
    #[arg(
        long,
        global = true,
        env = "TICKETCTL_ENDPOINTS",
        value_delimiter = ',',
        default_value = "127.0.0.1:7001"
    )]
    endpoints: Vec<String>,
    /// Output format.
    #[arg(
        short = 'w',
        long = "write-out",
        global = true,
        value_enum,
        default_value = "table"
    )]
    write_out: Output,
    /// Deadline of one request to one node, in ms.
    #[arg(long, global = true, default_value_t = 3000)]
    command_timeout_ms: u64,
    /// Deadline of a whole command across retries, in ms.
    #[arg(long, global = true, default_value_t = 15000)]
    total_timeout_ms: u64,
    /// The cluster's CA certificate(s), PEM: nodes must present certificates it signed.
    #[arg(long, global = true, env = "TICKETCTL_CACERT")]
    cacert: Option<std::path::PathBuf>,
    /// The operator's certificate (role admin: `ticketd certs create-client --role admin`).
    #[arg(long, global = true, env = "TICKETCTL_CERT")]
    cert: Option<std::path::PathBuf>,
    /// Its private key, PEM (mode 0600).
    #[arg(long, global = true, env = "TICKETCTL_KEY")]
    key: Option<std::path::PathBuf>,
    /// Talk to a cluster that runs without TLS.
    #[arg(long, global = true)]
    insecure: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Output {
    Table,
    Json,
}

#[derive(Subcommand)]
enum Cmd {
    /// Cluster-wide operations.
    #[command(subcommand)]
    Cluster(ClusterCmd),
    /// Membership.
    #[command(subcommand)]
    Member(MemberCmd),
    /// Per-endpoint status and health.
    #[command(subcommand)]
    Endpoint(EndpointCmd),
    /// Leadership.
    #[command(subcommand)]
    Leader(LeaderCmd),
    /// Snapshots.
    #[command(subcommand)]
    Snapshot(SnapshotCmd),
    /// Print each endpoint's Prometheus metrics.
    Metrics,
    /// Run the leader's payment reconciler and notification dispatcher once, now, and print
    /// what they did (the leader must run the background worker: `ticketd node --payments`).
    Reconcile,
}

#[derive(Subcommand)]
enum ClusterCmd {
    /// Initialize a new cluster with its first voters: `--members 1=127.0.0.1:7001,2=...`.
    Init {
        /// `id=host:port` pairs.
        #[arg(long, value_delimiter = ',', required = true)]
        members: Vec<String>,
    },
    /// The cluster version and each member's and learner's binary version, as the leader asks
    /// them now. With `--raise`, raise the cluster version (refused unless every member and
    /// learner answers with a binary that supports it); it is never lowered.
    Version {
        /// Raise the cluster version.
        #[arg(long)]
        raise: bool,
        /// The version to raise to (default: the leader's binary version).
        #[arg(long, requires = "raise")]
        to: Option<u32>,
    },
}

#[derive(Subcommand)]
enum MemberCmd {
    /// List members as the leader sees them.
    List,
    /// Add a non-voting member that starts receiving the log.
    AddLearner {
        /// Node id (never reused).
        id: u64,
        /// Its gRPC address.
        addr: String,
    },
    /// Make a learner a voter.
    Promote {
        /// Node id.
        id: u64,
    },
    /// Remove a member.
    Remove {
        /// Node id.
        id: u64,
    },
}

#[derive(Subcommand)]
enum EndpointCmd {
    /// Raft status of each endpoint.
    Status,
    /// Whether each endpoint answers and knows a leader.
    Health,
    /// Each endpoint's digest of its state at one index: the leader proposes a digest entry
    /// and every replica digests its state as of it. Exits 7 when two digests differ, 5 when
    /// an endpoint has none within the wait.
    Hashkv {
        /// How long to wait for every endpoint's digest, ms.
        #[arg(long, default_value_t = 30_000)]
        wait_ms: u64,
    },
}

#[derive(Subcommand)]
enum LeaderCmd {
    /// Hand leadership to a voter.
    Transfer {
        /// Target node id.
        to: u64,
    },
}

#[derive(Subcommand)]
enum SnapshotCmd {
    /// Build a snapshot on each endpoint now.
    Trigger,
}

enum Failure {
    Client(ClientError),
    Usage(String),
    /// Replicas answered with different digests of one index.
    Diverged(String),
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Failure::Client(e)
    }
}

fn main() -> ExitCode {
    // rustls's crypto provider for the whole process (ring): reqwest and lettre take none of
    // their own.
    ticketd_raft::tls::install_provider();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::from(5);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => {
            eprintln!("Error: {m}");
            ExitCode::from(2)
        }
        Err(Failure::Diverged(m)) => {
            eprintln!("Error: {m}");
            ExitCode::from(7)
        }
        Err(Failure::Client(e)) => {
            eprintln!("Error: {e}");
            ExitCode::from(match e {
                ClientError::Unreachable(_) => 3,
                ClientError::Rejected(_) => 4,
                ClientError::Server(_) => 5,
                ClientError::Unknown(_) => 6,
                ClientError::Denied(_) => 8,
            })
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    if cli.endpoints.is_empty() {
        return Err(Failure::Usage("no endpoints given".into()));
    }
    let policy = RetryPolicy {
        attempt_timeout: Duration::from_millis(cli.command_timeout_ms),
        total_deadline: Duration::from_millis(cli.total_timeout_ms),
        ..RetryPolicy::default()
    };
    let tls = ticketd_cluster::tls::TlsPaths {
        cacert: cli.cacert.clone(),
        cert: cli.cert.clone(),
        key: cli.key.clone(),
        insecure: cli.insecure,
    };
    let transport = tls
        .transport("ticketctl", ticketd_cluster::tls::Presence::Any)
        .map_err(|e| Failure::Usage(format!("{e:#}")))?;
    let client = ClusterClient::new(cli.endpoints.clone(), policy, transport);
    let out = cli.write_out;
    match cli.cmd {
        Cmd::Cluster(ClusterCmd::Init { members }) => {
            let msg = client
                .init(&cli.endpoints[0], parse_members(&members)?)
                .await?;
            print_msg(out, &msg);
        }
        Cmd::Cluster(ClusterCmd::Version { raise, to }) => {
            let s = client.cluster_version(raise, to.unwrap_or(0)).await?;
            cluster_version(out, &s);
        }
        Cmd::Member(MemberCmd::List) => member_list(out, &leader_status(&client).await?),
        Cmd::Member(MemberCmd::AddLearner { id, addr }) => print_msg(
            out,
            &client
                .admin_on_leader(AdminOp::AddLearner { id, addr })
                .await?,
        ),
        Cmd::Member(MemberCmd::Promote { id }) => {
            print_msg(out, &client.admin_on_leader(AdminOp::Promote(id)).await?)
        }
        Cmd::Member(MemberCmd::Remove { id }) => {
            print_msg(out, &client.admin_on_leader(AdminOp::Remove(id)).await?)
        }
        Cmd::Leader(LeaderCmd::Transfer { to }) => print_msg(
            out,
            &client.admin_on_leader(AdminOp::TransferLeader(to)).await?,
        ),
        Cmd::Snapshot(SnapshotCmd::Trigger) => {
            for endpoint in &cli.endpoints {
                let msg = client.trigger_snapshot(endpoint).await?;
                print_msg(out, &format!("{endpoint}: {msg}"));
            }
        }
        Cmd::Reconcile => {
            let report = client.admin_on_leader(AdminOp::Reconcile).await?;
            reconcile_report(out, &report);
        }
        Cmd::Endpoint(EndpointCmd::Status) => endpoint_status(&client, out).await?,
        Cmd::Endpoint(EndpointCmd::Health) => endpoint_health(&client, out).await?,
        Cmd::Endpoint(EndpointCmd::Hashkv { wait_ms }) => {
            endpoint_hashkv(&client, out, Duration::from_millis(wait_ms)).await?
        }
        Cmd::Metrics => {
            for endpoint in &cli.endpoints {
                let s = client.status(endpoint).await?;
                let body = http_get(&s.metrics_addr, "/metrics").map_err(|e| {
                    ClientError::Unreachable(format!(
                        "metrics of {endpoint} at {}: {e}",
                        s.metrics_addr
                    ))
                })?;
                println!("# endpoint {endpoint}\n{body}");
            }
        }
    }
    Ok(())
}

/// `cluster init`'s members, `id=host:port` each.
fn parse_members(members: &[String]) -> Result<Vec<pb::Member>, Failure> {
    let mut parsed = Vec::new();
    for member in members {
        let (id, addr) = member
            .split_once('=')
            .ok_or_else(|| Failure::Usage(format!("member {member:?} is not id=host:port")))?;
        let id: u64 = id
            .parse()
            .map_err(|_| Failure::Usage(format!("bad node id in {member:?}")))?;
        parsed.push(pb::Member {
            id,
            addr: addr.to_string(),
        });
    }
    Ok(parsed)
}

/// Prints `member list`: the members as the leader's status gives them.
fn member_list(out: Output, status: &pb::StatusReply) {
    if out == Output::Json {
        let members: Vec<_> = status
            .members
            .iter()
            .map(|m| json!({"id": m.id, "addr": m.addr, "voter": m.voter}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&members).unwrap_or_default()
        );
    } else {
        let mut table = Table::new();
        table.set_header(["ID", "ADDRESS", "ROLE", "IS LEADER"]);
        for m in &status.members {
            let role = if m.voter { "voter" } else { "learner" };
            table.add_row([
                m.id.to_string(),
                m.addr.clone(),
                role.into(),
                (m.id == status.leader_id).to_string(),
            ]);
        }
        println!("{table}");
    }
}

/// Prints the reconcile report: JSON as is, or a table of its counts.
fn reconcile_report(out: Output, report: &str) {
    let v: serde_json::Value = match serde_json::from_str(report) {
        Ok(v) if out == Output::Table => v,
        _ => {
            println!("{report}");
            return;
        }
    };
    let mut t = Table::new();
    t.set_header(["PART", "WHAT", "COUNT"]);
    for part in ["reconcile", "dispatch"] {
        if let Some(obj) = v[part].as_object() {
            for (k, n) in obj {
                if let Some(n) = n.as_u64() {
                    t.add_row([part.to_string(), k.clone(), n.to_string()]);
                }
            }
        }
    }
    println!("leader: node {}\n{t}", v["node"]);
    for part in ["reconcile", "dispatch"] {
        for what in ["anomalies", "errors"] {
            for e in v[part][what].as_array().into_iter().flatten() {
                println!("{part} {what}: {}", e.as_str().unwrap_or_default());
            }
        }
    }
}

fn cluster_version(out: Output, s: &pb::ClusterVersionStatus) {
    if out == Output::Json {
        let nodes: Vec<_> = s
            .nodes
            .iter()
            .map(|n| {
                json!({
                    "id": n.id, "addr": n.addr, "voter": n.voter,
                    "binary_version": (n.binary_version != 0).then_some(n.binary_version),
                    "error": (!n.error.is_empty()).then_some(&n.error),
                })
            })
            .collect();
        let v = json!({
            "cluster_version": s.cluster_version,
            "supported": s.supported,
            "nodes": nodes,
            "message": (!s.message.is_empty()).then_some(&s.message),
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return;
    }
    if !s.message.is_empty() {
        println!("{}", s.message);
    }
    println!(
        "cluster version {}; every node supports up to {}",
        s.cluster_version, s.supported
    );
    let mut t = Table::new();
    t.set_header(["ID", "ADDRESS", "ROLE", "BINARY VERSION", "ERROR"]);
    for n in &s.nodes {
        t.add_row([
            n.id.to_string(),
            n.addr.clone(),
            if n.voter { "voter" } else { "learner" }.into(),
            match n.binary_version {
                0 => String::new(),
                v => v.to_string(),
            },
            n.error.clone(),
        ]);
    }
    println!("{t}");
}

fn print_msg(out: Output, msg: &str) {
    match out {
        Output::Json => println!("{}", json!({ "ok": msg })),
        Output::Table => println!("{msg}"),
    }
}

async fn leader_status(client: &ClusterClient) -> Result<pb::StatusReply, ClientError> {
    let mut last = ClientError::Unreachable("no endpoint answered".into());
    for endpoint in client.endpoints() {
        match client.status(endpoint).await {
            Ok(s) if s.is_leader => return Ok(s),
            Ok(s) if s.has_leader => {
                if let Some(l) = s.members.iter().find(|m| m.id == s.leader_id) {
                    if let Ok(ls) = client.status(&l.addr).await {
                        return Ok(ls);
                    }
                }
                last = ClientError::Unreachable(format!("leader {} not reachable", s.leader_id));
            }
            Ok(_) => last = ClientError::Unreachable(format!("{endpoint} knows no leader")),
            Err(e) => last = e,
        }
    }
    Err(last)
}

async fn endpoint_status(client: &ClusterClient, out: Output) -> Result<(), Failure> {
    let mut rows = Vec::new();
    let mut failed = None;
    for endpoint in client.endpoints() {
        match client.status(endpoint).await {
            Ok(s) => rows.push((endpoint.clone(), Some(s), String::new())),
            Err(e) => {
                rows.push((endpoint.clone(), None, e.to_string()));
                failed = Some(e);
            }
        }
    }
    if out == Output::Json {
        let v: Vec<_> = rows
            .iter()
            .map(|(endpoint, s, err)| match s {
                Some(s) => json!({
                    "endpoint": endpoint, "id": s.id, "version": s.version, "db_size_bytes": s.db_size_bytes,
                    "is_leader": s.is_leader, "is_learner": s.is_learner, "raft_term": s.raft_term,
                    "raft_index": s.raft_index, "committed_index": s.committed_index,
                    "applied_index": s.applied_index, "leader_id": s.has_leader.then_some(s.leader_id),
                    "state": s.state, "snapshot_index": s.snapshot_index, "purged_index": s.purged_index,
                    "binary_version": s.binary_version.max(1), "cluster_version": s.cluster_version.max(1),
                    "errors": s.errors,
                }),
                None => json!({ "endpoint": endpoint, "errors": [err] }),
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        let mut t = Table::new();
        t.set_header([
            "ENDPOINT",
            "ID",
            "VERSION",
            "BINARY VERSION",
            "CLUSTER VERSION",
            "DB SIZE",
            "IS LEADER",
            "IS LEARNER",
            "RAFT TERM",
            "RAFT INDEX",
            "RAFT APPLIED INDEX",
            "ERRORS",
        ]);
        for (endpoint, s, err) in &rows {
            match s {
                Some(s) => t.add_row([
                    endpoint.clone(),
                    s.id.to_string(),
                    s.version.clone(),
                    s.binary_version.max(1).to_string(),
                    s.cluster_version.max(1).to_string(),
                    format!("{} kB", s.db_size_bytes / 1024),
                    s.is_leader.to_string(),
                    s.is_learner.to_string(),
                    s.raft_term.to_string(),
                    s.raft_index.to_string(),
                    s.applied_index.to_string(),
                    s.errors.join("; "),
                ]),
                None => t.add_row([
                    endpoint.clone(),
                    "".into(),
                    "".into(),
                    "".into(),
                    "".into(),
                    "".into(),
                    "".into(),
                    "".into(),
                    "".into(),
                    "".into(),
                    "".into(),
                    err.clone(),
                ]),
            };
        }
        println!("{t}");
    }
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

async fn endpoint_health(client: &ClusterClient, out: Output) -> Result<(), Failure> {
    let mut failed = None;
    let mut rows = Vec::new();
    for endpoint in client.endpoints() {
        let started = std::time::Instant::now();
        let (healthy, error) = match client.status(endpoint).await {
            Ok(s) if s.has_leader && s.errors.is_empty() => (true, String::new()),
            Ok(s) if !s.has_leader => (false, "no leader known".to_string()),
            Ok(s) => (false, s.errors.join("; ")),
            Err(e) => {
                let msg = e.to_string();
                failed = Some(e);
                (false, msg)
            }
        };
        if !healthy && failed.is_none() {
            failed = Some(ClientError::Unreachable(format!(
                "{endpoint} is unhealthy: {error}"
            )));
        }
        rows.push((endpoint.clone(), healthy, started.elapsed(), error));
    }
    if out == Output::Json {
        let v: Vec<_> = rows
            .iter()
            .map(|(endpoint, h, took, err)| json!({"endpoint": endpoint, "health": h, "took_ms": took.as_millis() as u64, "error": err}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        for (endpoint, h, took, err) in &rows {
            if *h {
                println!("{endpoint} is healthy: took = {took:?}");
            } else {
                println!("{endpoint} is unhealthy: took = {took:?}, error: {err}");
            }
        }
    }
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

async fn endpoint_hashkv(
    client: &ClusterClient,
    out: Output,
    wait: Duration,
) -> Result<(), Failure> {
    let (index, answers) = client.hashkv(wait).await?;
    let state_name = |s: &pb::DigestStatus| match pb::DigestState::try_from(s.state) {
        Ok(pb::DigestState::DigestComputed) => "computed",
        Ok(pb::DigestState::DigestPending) => "pending",
        _ => "unknown",
    };
    if out == Output::Json {
        let v: Vec<_> = answers
            .iter()
            .map(|(endpoint, a)| match a {
                Ok(s) => json!({"endpoint": endpoint, "id": s.node_id, "index": index,
                                "state": state_name(s), "digest": s.digest,
                                "diverged_at": (s.diverged_at > 0).then_some(s.diverged_at)}),
                Err(e) => json!({"endpoint": endpoint, "index": index, "error": e.to_string()}),
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        let mut t = Table::new();
        t.set_header(["ENDPOINT", "ID", "INDEX", "STATE", "DIGEST"]);
        for (endpoint, a) in &answers {
            match a {
                Ok(s) => t.add_row([
                    endpoint.clone(),
                    s.node_id.to_string(),
                    index.to_string(),
                    state_name(s).to_string(),
                    s.digest.clone(),
                ]),
                Err(e) => t.add_row([
                    endpoint.clone(),
                    String::new(),
                    index.to_string(),
                    "error".into(),
                    e.to_string(),
                ]),
            };
        }
        println!("{t}");
    }
    let mut digests = std::collections::BTreeMap::new();
    for (endpoint, a) in &answers {
        match a {
            Ok(s) if s.state == pb::DigestState::DigestComputed as i32 => {
                digests
                    .entry(s.digest.clone())
                    .or_insert_with(Vec::new)
                    .push(endpoint.clone());
            }
            Ok(s) => {
                return Err(ClientError::Server(format!(
                    "{endpoint} has no digest of index {index} ({})",
                    state_name(s)
                ))
                .into())
            }
            Err(e) => return Err(ClientError::Server(format!("{endpoint}: {e}")).into()),
        }
    }
    if digests.len() > 1 {
        let groups: Vec<String> = digests
            .iter()
            .map(|(d, eps)| format!("{} on {}", &d[..d.len().min(16)], eps.join(", ")))
            .collect();
        return Err(Failure::Diverged(format!(
            "replicas differ at index {index}: {}",
            groups.join("; ")
        )));
    }
    Ok(())
}

/// A minimal HTTP/1.0 GET on loopback, bounded in time and size.
fn http_get(addr: &str, path: &str) -> std::io::Result<String> {
    let sock: std::net::SocketAddr = addr
        .parse()
        .map_err(|_| std::io::Error::other("bad metrics address"))?;
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut body = String::new();
    s.take(16 << 20).read_to_string(&mut body)?;
    match body.split_once("\r\n\r\n") {
        Some((head, rest)) if head.starts_with("HTTP/1.") && head.contains(" 200 ") => {
            Ok(rest.to_string())
        }
        _ => Err(std::io::Error::other("unexpected HTTP answer")),
    }
}

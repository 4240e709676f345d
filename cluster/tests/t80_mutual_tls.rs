//! Only the cluster's own parties speak to a node: mutual TLS and the authorization matrix
//! against real node processes. A caller without a certificate is refused on every method of
//! every node; an `api` certificate cannot administer or speak Raft; an `admin` one cannot
//! write (a forged ConfirmPurchase goes nowhere); a node outside the membership cannot vote or
//! append, nor a member in another's name, while a new learner still gets its snapshot; a
//! certificate of another CA is refused both ways; answers to nodes and operators carry no
//! password hash or code secret; an oversized declared snapshot is refused before anything is
//! written.

mod common;
mod money;

use std::path::Path;
use std::time::Duration;

use common::*;
use money::*;
use ticketd_http::auth::Role as ApiRole;
use ticketd_raft::authz::MATRIX;
use ticketd_raft::channels::{lazy_channel, Channels};
use ticketd_raft::client::{ClientError, ClusterClient, Consistency, RetryPolicy};
use ticketd_raft::identity::Identity;
use ticketd_raft::pb;
use ticketd_raft::tls::{Credentials, TlsFiles, Transport};
use ticketd_raft::TypeConfig;
use ticketd_store::command::OrderView;
use ticketd_store::{Command, Query, QueryResult};
use ticketd_testkit::cluster::{free_addr, make_certs, Launch, NodeOpts, Placement, TestCluster};
use tonic::transport::Channel;
use tonic::Code;

/// Calls `path` on `ch` with an empty request (never one that would change anything for a
/// caller the node lets through: the tests send these only where they must be refused, and
/// to read).
async fn call(ch: Channel, path: &str) -> Result<(), tonic::Status> {
    use pb::admin_client::AdminClient;
    use pb::client_client::ClientClient;
    use pb::raft_client::RaftClient;
    let blob = pb::Blob::default;
    let fut = async {
        let method = path.rsplit('/').next().unwrap_or_default();
        let service = path.split('/').nth(1).unwrap_or_default();
        match (service, method) {
            ("ticketd.v1.Raft", "Vote") => RaftClient::new(ch).vote(blob()).await.map(drop),
            ("ticketd.v1.Raft", "PreVote") => RaftClient::new(ch).pre_vote(blob()).await.map(drop),
            ("ticketd.v1.Raft", "AppendEntries") => {
                RaftClient::new(ch).append_entries(blob()).await.map(drop)
            }
            ("ticketd.v1.Raft", "StreamAppend") => RaftClient::new(ch)
                .stream_append(futures::stream::iter(vec![blob()]))
                .await
                .map(drop),
            ("ticketd.v1.Raft", "Snapshot") => RaftClient::new(ch)
                .snapshot(futures::stream::iter(vec![pb::SnapshotChunk::default()]))
                .await
                .map(drop),
            ("ticketd.v1.Raft", "TransferLeader") => {
                RaftClient::new(ch).transfer_leader(blob()).await.map(drop)
            }
            ("ticketd.v1.Raft", "NodeVersion") => RaftClient::new(ch)
                .node_version(pb::Empty {})
                .await
                .map(drop),
            ("ticketd.v1.Client", "Write") => ClientClient::new(ch)
                .write(pb::WriteRequest::default())
                .await
                .map(drop),
            ("ticketd.v1.Client", "WriteBatch") => ClientClient::new(ch)
                .write_batch(pb::WriteBatchRequest::default())
                .await
                .map(drop),
            ("ticketd.v1.Client", "Read") => ClientClient::new(ch)
                .read(pb::ReadRequest::default())
                .await
                .map(drop),
            ("ticketd.v1.Client", "ReadIndex") => ClientClient::new(ch)
                .read_index(pb::ReadIndexRequest {})
                .await
                .map(drop),
            ("ticketd.v1.Admin", "Init") => AdminClient::new(ch)
                .init(pb::InitRequest::default())
                .await
                .map(drop),
            ("ticketd.v1.Admin", "AddLearner") => AdminClient::new(ch)
                .add_learner(pb::AddLearnerRequest::default())
                .await
                .map(drop),
            ("ticketd.v1.Admin", "Promote") => AdminClient::new(ch)
                .promote(pb::PromoteRequest { id: 0 })
                .await
                .map(drop),
            ("ticketd.v1.Admin", "Remove") => AdminClient::new(ch)
                .remove(pb::RemoveRequest { id: 0 })
                .await
                .map(drop),
            ("ticketd.v1.Admin", "TransferLeader") => AdminClient::new(ch)
                .transfer_leader(pb::TransferLeaderRequest { to: 0 })
                .await
                .map(drop),
            ("ticketd.v1.Admin", "TriggerSnapshot") => AdminClient::new(ch)
                .trigger_snapshot(pb::Empty {})
                .await
                .map(drop),
            ("ticketd.v1.Admin", "Status") => {
                AdminClient::new(ch).status(pb::Empty {}).await.map(drop)
            }
            ("ticketd.v1.Admin", "Reconcile") => {
                AdminClient::new(ch).reconcile(pb::Empty {}).await.map(drop)
            }
            ("ticketd.v1.Admin", "ProposeDigest") => AdminClient::new(ch)
                .propose_digest(pb::Empty {})
                .await
                .map(drop),
            ("ticketd.v1.Admin", "Digest") => AdminClient::new(ch)
                .digest(pb::DigestRequest::default())
                .await
                .map(drop),
            // Reads only: `raise` is not set.
            ("ticketd.v1.Admin", "ClusterVersion") => AdminClient::new(ch)
                .cluster_version(pb::ClusterVersionRequest::default())
                .await
                .map(drop),
            _ => panic!("no call for {path}"),
        }
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("test bound")))
}

/// A channel to `addr` over `transport`, any node expected.
fn channel(addr: &str, transport: &Transport) -> Channel {
    lazy_channel(addr, transport, None).expect("channel")
}

/// Node `id`'s Prometheus text.
async fn node_metrics(c: &TestCluster, id: u64) -> anyhow::Result<String> {
    let addr = c
        .nodes()
        .find(|n| n.id == id)
        .expect("node")
        .metrics_addr
        .clone();
    ticketd_raft::tls::install_provider(); // reqwest takes the process's ring provider
    Ok(reqwest::get(format!("http://{addr}/metrics"))
        .await?
        .text()
        .await?)
}

/// The value of the first sample of `metric` whose labels contain every one of `labels`.
fn sample(text: &str, metric: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(metric) && labels.iter().all(|x| l.contains(x)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn transport(c: &TestCluster, id: &Identity) -> Transport {
    Transport::load(&c.tls_files(id)).expect("load credentials")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_without_a_certificate_is_refused_on_every_method_of_every_node(
) -> anyhow::Result<()> {
    let c = TestCluster::start(&ticketd_bin(), 3, NodeOpts::default()).await?;
    let ca_only = Transport::Tls(Credentials::load_ca_only(&c.certs_dir().join("ca.pem"))?);

    phase("TLS without a client certificate: UNAUTHENTICATED, on each method of the matrix");
    for node in c.nodes() {
        let ch = channel(&node.addr, &ca_only);
        for (path, _) in MATRIX {
            let e = call(ch.clone(), path).await.expect_err(path);
            assert_eq!(
                e.code(),
                Code::Unauthenticated,
                "{path} on {}: {e}",
                node.addr
            );
            assert!(
                e.message()
                    .contains("client certificate signed by the cluster's CA"),
                "{path}: {e}"
            );
        }
    }
    let m = node_metrics(&c, 1).await?;
    let refused = sample(
        &m,
        "ticketd_grpc_refused_total",
        &["reason=\"no_certificate\""],
    );
    assert!(refused >= MATRIX.len() as f64, "counted: {refused}\n{m}");

    phase("plain text on a TLS port: no answer at all, the handshake counted");
    let before = sample(&m, "ticketd_tls_handshake_failures_total", &[]);
    for node in c.nodes() {
        let plain = channel(&node.addr, &Transport::Insecure);
        let e = call(plain, "/ticketd.v1.Admin/Status")
            .await
            .expect_err("plain text is not served");
        assert!(
            matches!(
                e.code(),
                Code::Unavailable | Code::Unknown | Code::Internal | Code::Cancelled
            ),
            "{e}"
        );
    }
    let after = sample(
        &node_metrics(&c, 1).await?,
        "ticketd_tls_handshake_failures_total",
        &[],
    );
    assert!(after > before, "handshake failures {before} -> {after}");

    phase("the cluster itself goes on");
    c.client()
        .write("t80", "still-up", &create_venue("still-up"))
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_writes_and_reads_but_neither_administers_nor_speaks_raft_and_admin_cannot_write(
) -> anyhow::Result<()> {
    let c = TestCluster::start(&ticketd_bin(), 3, NodeOpts::default()).await?;
    let api = c.api_transport();
    let leader = c.wait_leader(Duration::from_secs(10)).await?;

    phase("api: every Raft and Admin method and ReadIndex are PERMISSION_DENIED");
    let ch = channel(&c.addr(leader), &api);
    for (path, _) in MATRIX {
        let is_api_method = *path == "/ticketd.v1.Client/Write"
            || *path == "/ticketd.v1.Client/WriteBatch"
            || *path == "/ticketd.v1.Client/Read";
        if is_api_method {
            continue;
        }
        let e = call(ch.clone(), path).await.expect_err(path);
        assert_eq!(e.code(), Code::PermissionDenied, "{path}: {e}");
        assert!(e.message().contains("ticketd://api/dev"), "{path}: {e}");
    }
    phase("api: writes and reads");
    let w = c
        .client()
        .write("t80", "api-write", &create_venue("api-write"))
        .await?;
    let r = c
        .client()
        .read(&get_venue("api-write"), Consistency::Linearizable)
        .await?;
    assert_eq!(
        venue(&r.result).expect("written").created_index,
        w.reply.index
    );

    phase("admin: a forged ConfirmPurchase is refused, nothing applied");
    let forged = Command::ConfirmPurchase {
        hold_id: "h-forged".into(),
        order_id: "o-forged".into(),
        payment_ref: "pi_made_up".into(),
        amount_minor: 1,
        currency: "EUR".into(),
        secret_seed: vec![7; 32],
    };
    for id in c.running() {
        let admin = c.admin_client_for(&[c.addr(id)]);
        let e = admin
            .write("t80-admin", "forged", &forged)
            .await
            .expect_err("an operator does not write");
        assert!(matches!(e, ClientError::Denied(_)), "{e}");
        assert!(e.to_string().contains("ticketd://admin/dev"), "{e}");
    }
    let e = call(
        channel(&c.addr(leader), &c.admin_transport()),
        "/ticketd.v1.Client/WriteBatch",
    )
    .await
    .expect_err("no batch either");
    assert_eq!(e.code(), Code::PermissionDenied, "{e}");
    let order = c
        .client()
        .read(
            &Query::GetOrder {
                order_id: "o-forged".into(),
            },
            Consistency::Linearizable,
        )
        .await?;
    assert!(
        matches!(order.result, QueryResult::Order(None)),
        "{:?}",
        order.result
    );
    let m = node_metrics(&c, leader).await?;
    assert!(
        sample(
            &m,
            "ticketd_grpc_refused_total",
            &["method=\"/ticketd.v1.Client/Write\"", "reason=\"role\""]
        ) >= 1.0,
        "{m}"
    );

    phase("admin: reads and status work");
    c.admin_client()
        .read(&get_venue("api-write"), Consistency::Linearizable)
        .await?;
    c.status(leader).await?;
    Ok(())
}

/// A Raft RPC in the name of node `from`, over `transport`, to `addr`.
async fn vote_as(addr: &str, transport: &Transport, from: u64) -> Result<(), tonic::Status> {
    use openraft::alias::VoteOf;
    use openraft::raft::VoteRequest;
    let rpc = VoteRequest::<TypeConfig>::new(VoteOf::<TypeConfig>::new(1_000, from), None);
    let payload = ticketd_raft::codec::encode(&rpc).expect("encode");
    pb::raft_client::RaftClient::new(channel(addr, transport))
        .vote(pb::Blob { payload, format: 1 })
        .await
        .map(drop)
}

async fn append_as(addr: &str, transport: &Transport, from: u64) -> Result<(), tonic::Status> {
    use openraft::alias::VoteOf;
    use openraft::raft::AppendEntriesRequest;
    let rpc = AppendEntriesRequest::<TypeConfig> {
        vote: VoteOf::<TypeConfig>::new(1_000, from),
        prev_log_id: None,
        entries: vec![],
        leader_commit: None,
    };
    let payload = ticketd_raft::codec::encode(&rpc).expect("encode");
    pb::raft_client::RaftClient::new(channel(addr, transport))
        .append_entries(pb::Blob { payload, format: 1 })
        .await
        .map(drop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_outside_the_membership_cannot_vote_or_append_while_a_new_learner_gets_its_snapshot(
) -> anyhow::Result<()> {
    let opts = NodeOpts {
        logs_kept_after_snapshot: 0,
        snapshot_every_entries: 100_000,
        ..NodeOpts::default()
    };
    let mut c = TestCluster::start(&ticketd_bin(), 3, opts).await?;
    let leader = c.wait_leader(Duration::from_secs(10)).await?;
    let term_before = c.status(leader).await?.raft_term;

    phase("node 9, certified by the cluster's CA but no member: refused");
    let certs = c.certs_dir();
    make_certs(
        &ticketd_bin(),
        &[
            "create-node",
            "--dir",
            certs.to_str().expect("utf-8"),
            "--id",
            "9",
        ],
    )?;
    let node9 = transport(&c, &Identity::Node(9));
    for id in 1..=3 {
        let addr = c.addr(id);
        for e in [
            vote_as(&addr, &node9, 9).await.expect_err("no vote"),
            append_as(&addr, &node9, 9).await.expect_err("no append"),
        ] {
            assert_eq!(e.code(), Code::PermissionDenied, "{e}");
            assert!(e.message().contains("node 9 is not a member"), "{e}");
        }
        let e = call(channel(&addr, &node9), "/ticketd.v1.Raft/StreamAppend")
            .await
            .expect_err("no stream");
        assert_eq!(e.code(), Code::PermissionDenied, "{e}");
    }

    phase("a member in another member's name: refused");
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let other = (1..=3)
        .find(|id| *id != leader && *id != follower)
        .expect("another");
    let as_follower = transport(&c, &Identity::Node(follower));
    for e in [
        vote_as(&c.addr(leader), &as_follower, other)
            .await
            .expect_err("forged vote"),
        append_as(&c.addr(other), &as_follower, leader)
            .await
            .expect_err("forged append"),
    ] {
        assert_eq!(e.code(), Code::PermissionDenied, "{e}");
        assert!(e.message().contains("in the name of"), "{e}");
    }
    assert_eq!(
        c.wait_leader(Duration::from_secs(10)).await?,
        leader,
        "no refused message moved leadership"
    );
    assert_eq!(c.status(leader).await?.raft_term, term_before);

    phase("write, snapshot and purge everywhere; node 4 joins and is fed a snapshot");
    let client = c.client();
    let mut last = 0;
    for i in 0..50 {
        last = client
            .write("t80", &format!("k{i}"), &create_venue(&format!("v{i}")))
            .await?
            .log_index;
    }
    let admin = c.admin_client();
    for id in 1..=3 {
        c.wait_applied(id, last, Duration::from_secs(10)).await?;
        admin.trigger_snapshot(&c.addr(id)).await?;
    }
    c.wait_status(leader, "log purged", Duration::from_secs(20), |s| {
        s.purged_index >= last
    })
    .await?;
    c.add_node(4)?;
    admin
        .admin_on_leader(ticketd_raft::client::AdminOp::AddLearner {
            id: 4,
            addr: c.addr(4),
        })
        .await?;
    let s4 = c.wait_applied(4, last, Duration::from_secs(30)).await?;
    assert!(s4.is_learner && s4.snapshot_index >= last, "{s4:?}");

    phase("node 9 is still refused by the learner, which now knows the membership");
    let e = vote_as(&c.addr(4), &node9, 9).await.expect_err("no vote");
    assert_eq!(e.code(), Code::PermissionDenied, "{e}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_of_another_ca_are_refused_both_ways_and_nodes_are_checked_by_id(
) -> anyhow::Result<()> {
    let c = TestCluster::start(&ticketd_bin(), 3, NodeOpts::default()).await?;
    let other = tempfile::tempdir()?;
    make_certs(
        &ticketd_bin(),
        &[
            "dev",
            "--dir",
            other.path().to_str().expect("utf-8"),
            "--nodes",
            "1",
        ],
    )?;
    let foreign = |ca: &Path| TlsFiles {
        ca: ca.to_path_buf(),
        cert: other.path().join("admin-dev.pem"),
        key: other.path().join("admin-dev-key.pem"),
    };

    phase("a client of another CA does not accept the nodes");
    let t = Transport::load(&foreign(&other.path().join("ca.pem")))?;
    let e = call(channel(&c.addr(1), &t), "/ticketd.v1.Admin/Status")
        .await
        .expect_err("unknown issuer");
    assert!(matches!(e.code(), Code::Unavailable | Code::Unknown), "{e}");

    phase("the nodes do not accept a client certificate of another CA");
    let both = other.path().join("both.pem");
    let mut pem = std::fs::read(c.certs_dir().join("ca.pem"))?;
    pem.extend(std::fs::read(other.path().join("ca.pem"))?);
    std::fs::write(&both, pem)?;
    let t = Transport::load(&foreign(&both))?;
    let before = sample(
        &node_metrics(&c, 1).await?,
        "ticketd_tls_handshake_failures_total",
        &[],
    );
    let e = call(channel(&c.addr(1), &t), "/ticketd.v1.Admin/Status")
        .await
        .expect_err("refused at the handshake");
    assert!(
        matches!(
            e.code(),
            Code::Unavailable | Code::Unknown | Code::Internal | Code::Cancelled
        ),
        "{e}"
    );
    let after = sample(
        &node_metrics(&c, 1).await?,
        "ticketd_tls_handshake_failures_total",
        &[],
    );
    assert!(after > before, "handshake failures {before} -> {after}");

    phase("a client that dials node 2 at node 1's address refuses node 1's certificate");
    let channels = Channels::new(c.admin_transport());
    let wrong = pb::admin_client::AdminClient::new(channels.get_node(&c.addr(1), 2)?)
        .status(pb::Empty {})
        .await
        .expect_err("node 1 is not node 2");
    assert!(
        matches!(wrong.code(), Code::Unavailable | Code::Unknown),
        "{wrong}"
    );
    let right = pb::admin_client::AdminClient::new(channels.get_node(&c.addr(1), 1)?)
        .status(pb::Empty {})
        .await?;
    assert_eq!(right.into_inner().id, 1);

    phase("a node refuses to start with another node's certificate");
    let f = c.tls_files(&Identity::Node(2));
    let out = std::process::Command::new(ticketd_bin())
        .args(["node", "--id", "1", "--data-dir"])
        .arg(other.path().join("data"))
        .args(["--listen", &free_addr()?, "--metrics-listen", &free_addr()?])
        .arg("--cacert")
        .arg(&f.ca)
        .arg("--cert")
        .arg(&f.cert)
        .arg("--key")
        .arg(&f.key)
        .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("certificate names ticketd://node/2"), "{err}");

    phase("nor without TLS unless told so explicitly");
    let out = std::process::Command::new(ticketd_bin())
        .args(["node", "--id", "1", "--data-dir"])
        .arg(other.path().join("data"))
        .args(["--listen", &free_addr()?, "--metrics-listen", &free_addr()?])
        .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no TLS material"), "{err}");
    Ok(())
}

/// The ticket secrets and account hashes in a read's answer, as JSON (to look for them
/// whatever the shape).
fn answer_json(r: &QueryResult) -> String {
    serde_json::to_string(r).expect("answers serialize")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_to_nodes_and_operators_carry_no_password_hash_and_no_code_secret(
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (pay_addr, _paysim) = start_paysim().await?;
    let c = TestCluster::start(&ticketd_bin(), 3, NodeOpts::default()).await?;
    let client = c.client();
    let api =
        ApiProcess::start_with(&c, &c.endpoints(), dir.path(), &["--payments", &pay_addr]).await?;
    let dt = "dt-secrets";
    catalogue(&client, "seller-secrets", dt, now_ms() + 86_400_000).await?;
    let hash = ticketd_http::auth::hash_password_seeded("t80-password", &[9; 32])
        .map_err(|p| anyhow::anyhow!("{p:?}"))?;
    let hash = hash.as_str();
    let w = client
        .write(
            "t80",
            "register-buyer",
            &Command::RegisterUser {
                user_id: "u-secrets".into(),
                email: "secrets@example.org".into(),
                password_hash: hash.into(),
                role: ticketd_store::types::Role::User,
                profile: Default::default(),
                phone: String::new(),
            },
        )
        .await?;
    assert!(
        matches!(w.reply.outcome, ticketd_store::Outcome::Done(_)),
        "{:?}",
        w.reply
    );

    phase("a purchase through the API issues tickets with code secrets");
    let tok = token("u-secrets", ApiRole::User);
    let (hold_id, total) = hold(&api, &tok, dt, "h-secrets", &[1, 2]).await?;
    let (s, v) = buy(&api, &tok, dt, "b-secrets", &hold_id, total, "pm_card_visa").await;
    assert_eq!(s, 201, "{v}");
    let order_id = v["order_id"].as_str().expect("the order's id").to_string();
    let orders = client
        .read(
            &Query::UserOrders {
                user_id: "u-secrets".into(),
                limit: 10,
            },
            Consistency::Linearizable,
        )
        .await?;
    let QueryResult::Orders(views) = &orders.result else {
        panic!("{:?}", orders.result)
    };
    let view: &OrderView = views.first().expect("an order");
    assert_eq!(view.order.order_id, order_id);
    let ticket = view.tickets.first().expect("tickets").clone();
    assert_ne!(ticket.secret, [0; 32], "the api sees the code secret");
    let secret_hex: String = ticket.secret.iter().map(|b| format!("{b:02x}")).collect();
    let secret_json = serde_json::to_string(&ticket.secret)?;

    let queries = [
        Query::AccountByEmail {
            email: "secrets@example.org".into(),
        },
        Query::GetAccount {
            user_id: "u-secrets".into(),
        },
        Query::GetTicket {
            ticket_id: ticket.ticket_id.clone(),
        },
        Query::GetOrder {
            order_id: view.order.order_id.clone(),
        },
        Query::UserOrders {
            user_id: "u-secrets".into(),
            limit: 10,
        },
    ];

    phase("the api identity reads them");
    let api_answers: Vec<String> = {
        let mut out = Vec::new();
        for q in &queries {
            out.push(answer_json(
                &client.read(q, Consistency::Linearizable).await?.result,
            ));
        }
        out
    };
    assert!(api_answers[0].contains(hash), "{}", api_answers[0]);
    assert!(api_answers[2].contains(&secret_json), "{}", api_answers[2]);

    phase("a node's and an operator's answers to the same reads carry neither");
    let node1 = transport(&c, &Identity::Node(1));
    let reader = |t: Transport| ClusterClient::new(c.endpoints(), RetryPolicy::default(), t);
    for (who, r) in [("node", reader(node1)), ("admin", c.admin_client())] {
        for (q, api_answer) in queries.iter().zip(&api_answers) {
            for consistency in [Consistency::Linearizable, Consistency::Local] {
                let answer = answer_json(&r.read(q, consistency).await?.result);
                assert!(!answer.contains(hash), "{who} {q:?}: {answer}");
                assert!(!answer.contains(&secret_json), "{who} {q:?}: {answer}");
                assert!(!answer.contains(&secret_hex), "{who} {q:?}: {answer}");
                assert!(
                    answer.len() <= api_answer.len(),
                    "{who} {q:?} is the api's answer less its secrets"
                );
            }
        }
        match r.read(&queries[0], Consistency::Linearizable).await?.result {
            QueryResult::Account(Some(a)) => {
                assert_eq!(a.password_hash, ticketd_raft::redact::REDACTED, "{who}")
            }
            other => panic!("{who}: {other:?}"),
        }
        match r.read(&queries[2], Consistency::Linearizable).await?.result {
            QueryResult::Ticket(Some(t)) => {
                assert_eq!(t.secret, [0; 32], "{who}");
                assert_eq!(t.ticket_id, ticket.ticket_id, "{who}: the rest is there");
            }
            other => panic!("{who}: {other:?}"),
        }
    }

    phase("the API signs in with the hash it alone reads");
    let r = api
        .http
        .post(api.url("/v1/sessions"))
        .header("idempotency-key", "t80-login")
        .json(&serde_json::json!({"email": "secrets@example.org", "password": "t80-password"}))
        .send()
        .await?;
    assert!(r.status().is_success(), "{}", r.text().await?);
    Ok(())
}

/// Streams a snapshot to `addr` as the node of `transport` (in its name, `from`): the meta,
/// the declared size, then `data` in one chunk.
async fn send_snapshot(
    addr: &str,
    transport: &Transport,
    from: u64,
    size_bytes: Option<u64>,
    data: Vec<u8>,
) -> Result<(), tonic::Status> {
    use openraft::alias::{SnapshotMetaOf, VoteOf};
    let vote = VoteOf::<TypeConfig>::new(1, from);
    let meta: SnapshotMetaOf<TypeConfig> = openraft::storage::SnapshotMeta {
        last_log_id: None,
        last_membership: Default::default(),
    };
    let meta = ticketd_raft::codec::encode(&(vote, meta)).expect("encode");
    let chunks = vec![
        pb::SnapshotChunk {
            item: Some(pb::snapshot_chunk::Item::Meta(meta)),
            size_bytes,
            format: 1,
        },
        pb::SnapshotChunk {
            item: Some(pb::snapshot_chunk::Item::Data(data)),
            size_bytes: None,
            format: 1,
        },
    ];
    let mut client = pb::raft_client::RaftClient::new(channel(addr, transport));
    let req = client.snapshot(futures::stream::iter(chunks));
    tokio::time::timeout(Duration::from_secs(20), req)
        .await
        .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("test bound")))
        .map(drop)
}

/// Bytes free for an unprivileged writer where `dir` is.
fn free_bytes(dir: &Path) -> u64 {
    let out = std::process::Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .expect("df");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .expect("df's answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_past_the_cap_or_the_free_disk_is_refused_before_a_byte_is_written(
) -> anyhow::Result<()> {
    // Node 1 takes snapshots of at most 1 MiB; node 2 of any size the disk has room for.
    let c = TestCluster::start_placed(&ticketd_bin(), 3, NodeOpts::default(), &|id| {
        let cap = if id == 1 { 1 << 20 } else { u64::MAX / 4 };
        Ok(Placement {
            addr: free_addr()?,
            metrics_addr: free_addr()?,
            launch: Launch {
                prefix: vec![],
                env: vec![("TICKETD_SNAPSHOT_RECV_MAX_BYTES".into(), cap.to_string())],
            },
        })
    })
    .await?;
    let as3 = transport(&c, &Identity::Node(3));
    let snapshot_dir = |id: u64| c.dir().join(format!("node{id}")).join("snapshots");
    let parts = |id: u64| -> usize {
        std::fs::read_dir(snapshot_dir(id))
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().starts_with("recv-"))
                    .count()
            })
            .unwrap_or(0)
    };

    phase("past the cap: RESOURCE_EXHAUSTED");
    let e = send_snapshot(&c.addr(1), &as3, 3, Some(2 << 20), vec![0; 16])
        .await
        .expect_err("past the cap");
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
    assert!(e.message().contains("cap"), "{e}");
    assert_eq!(parts(1), 0);

    phase("past the free disk (twice over): RESOURCE_EXHAUSTED");
    let free = free_bytes(&snapshot_dir(2));
    let e = send_snapshot(&c.addr(2), &as3, 3, Some(free), vec![0; 16])
        .await
        .expect_err("past the disk");
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
    assert!(e.message().contains("free"), "{e}");
    assert_eq!(parts(2), 0);

    phase("no declared size, or more bytes than declared: refused");
    let e = send_snapshot(&c.addr(1), &as3, 3, None, vec![0; 16])
        .await
        .expect_err("undeclared");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
    let e = send_snapshot(&c.addr(1), &as3, 3, Some(8), vec![0; 16])
        .await
        .expect_err("longer than declared");
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    assert!(e.message().contains("declared size"), "{e}");
    assert_eq!(parts(1), 0, "the partial file is gone");

    let m = node_metrics(&c, 1).await?;
    assert!(
        sample(&m, "ticketd_snapshots_refused_total", &[]) >= 1.0,
        "{m}"
    );

    phase("the cluster is unharmed");
    let leader = c.wait_leader(Duration::from_secs(10)).await?;
    c.client()
        .write("t80", "after-snapshots", &create_venue("after-snapshots"))
        .await?;
    c.wait_status(leader, "healthy", Duration::from_secs(5), |s| {
        s.errors.is_empty()
    })
    .await?;
    Ok(())
}

/// A learner fed a snapshot older than the leader that feeds it (the snapshot's membership
/// names neither) still takes that leader's appends: it is joining, and learns the membership
/// with both from them. (A chaos membership run left such a learner refusing its leader for
/// good.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_whose_snapshot_predates_its_leader_catches_up() -> anyhow::Result<()> {
    let opts = NodeOpts {
        logs_kept_after_snapshot: 0,
        snapshot_every_entries: 100_000,
        ..NodeOpts::default()
    };
    let mut c = TestCluster::start(&ticketd_bin(), 3, opts).await?;
    let client = c.client();
    let admin = c.admin_client();

    phase("a snapshot of membership {1, 2, 3} everywhere, the log purged");
    let mut last = 0;
    for i in 0..20 {
        last = client
            .write(
                "t80-join",
                &format!("a{i}"),
                &create_venue(&format!("va{i}")),
            )
            .await?
            .log_index;
    }
    for id in 1..=3 {
        c.wait_applied(id, last, Duration::from_secs(10)).await?;
        admin.trigger_snapshot(&c.addr(id)).await?;
    }

    phase("node 4 joins (fed that snapshot) and leads");
    c.add_node(4)?;
    admin
        .admin_on_leader(ticketd_raft::client::AdminOp::AddLearner {
            id: 4,
            addr: c.addr(4),
        })
        .await?;
    admin
        .admin_on_leader(ticketd_raft::client::AdminOp::Promote(4))
        .await?;
    admin
        .admin_on_leader(ticketd_raft::client::AdminOp::TransferLeader(4))
        .await?;
    c.wait_status(4, "node 4 leads", Duration::from_secs(20), |s| s.is_leader)
        .await?;
    let s4 = c.status(4).await?;
    assert!(
        s4.snapshot_index >= last,
        "node 4's snapshot predates it: {s4:?}"
    );

    phase("node 5 joins through leader 4, fed the same snapshot, and catches up");
    for i in 0..10 {
        last = client
            .write(
                "t80-join",
                &format!("b{i}"),
                &create_venue(&format!("vb{i}")),
            )
            .await?
            .log_index;
    }
    c.add_node(5)?;
    admin
        .admin_on_leader(ticketd_raft::client::AdminOp::AddLearner {
            id: 5,
            addr: c.addr(5),
        })
        .await?;
    let s5 = c.wait_applied(5, last, Duration::from_secs(30)).await?;
    assert!(s5.is_learner, "{s5:?}");
    Ok(())
}

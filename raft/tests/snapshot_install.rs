//! Snapshot install checks before it replaces: a snapshot whose checksum, meta, column
//! families, encoding or invariants are wrong is refused, and the node keeps the state, the
//! applied index and the files it had.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::alias::SnapshotMetaOf;
use openraft::storage::RaftStateMachine;
use openraft::testing::log_id;
use ticketd_raft::snapshot::{self, SnapshotFile, SnapshotWriter};
use ticketd_raft::state_machine::StateMachine;
use ticketd_raft::TypeConfig;
use ticketd_store::{Command, Machine, MemBackend, Query, QueryResult, Request, WriteSet};

fn meta(index: u64) -> SnapshotMetaOf<TypeConfig> {
    SnapshotMetaOf::<TypeConfig> {
        last_log_id: Some(log_id::<TypeConfig>(1, 1, index)),
        last_membership: Default::default(),
    }
}

/// The persisted records of a machine that created `venues` venues.
fn records(venues: usize) -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
    let backend = MemBackend::new();
    let mut m = Machine::open(&backend).unwrap();
    for (i, v) in (1u64..).zip(0..venues) {
        let req = Request {
            client_id: "c".into(),
            idempotency_key: format!("k{v}"),
            stamped_at_ms: 1_700_000_000_000,
            command: Command::CreateVenue {
                venue_id: format!("v{v}"),
                name: "Hall".into(),
                city: "Oslo".into(),
            },
        };
        m.apply(i, &req, &mut WriteSet::new());
    }
    let mut out = Vec::new();
    m.visit_persisted(&mut |cf, k, v| out.push((cf, k.to_vec(), v.to_vec())));
    out
}

fn write_file(
    dir: &Path,
    name: &str,
    meta: &SnapshotMetaOf<TypeConfig>,
    records: &[(&str, Vec<u8>, Vec<u8>)],
) -> PathBuf {
    let mut w = SnapshotWriter::create(dir.join(format!("{name}.part")), meta).unwrap();
    for (cf, k, v) in records {
        w.record(cf, k, v).unwrap();
    }
    let path = dir.join(format!("{name}.incoming"));
    w.finish(&path).unwrap();
    path
}

fn digest(sm: &StateMachine) -> String {
    match sm.query(&Query::Digest).0 {
        QueryResult::Digest(d) => d,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn bad_snapshots_are_refused_and_leave_the_node_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(ticketd_raft::open_db(&dir.path().join("db")).unwrap());
    let snaps = dir.path().join("snapshots");
    let mut sm = StateMachine::open(db.clone(), snaps.clone()).unwrap();
    let incoming = tempfile::tempdir().unwrap();

    // A good snapshot at index 10 installs.
    let good = records(3);
    let path = write_file(incoming.path(), "good", &meta(10), &good);
    sm.install_snapshot(&meta(10), SnapshotFile { path })
        .await
        .unwrap();
    let (before, files) = (digest(&sm), snapshot::list(&snaps).unwrap());
    assert_eq!(sm.applied_index(), 10);

    let newer = meta(20);
    let mut broken_invariant = records(5);
    // An order whose tickets and payment do not exist.
    let order = ticketd_store::types::Order {
        order_id: "o1".into(),
        user_id: "u1".into(),
        event_id: "e1".into(),
        dt_id: "d1".into(),
        hold_id: "h1".into(),
        payment_ref: "pi-1".into(),
        ticket_ids: vec!["o1-1".into()],
        subtotal_minor: 100,
        fee_minor: 0,
        total_minor: 100,
        refunded_minor: 0,
        currency: "EUR".into(),
        status: ticketd_store::types::OrderStatus::Confirmed,
        created_at_ms: 0,
        created_index: 1,
    };
    broken_invariant.push((
        "sm_orders",
        b"o1".to_vec(),
        postcard::to_stdvec(&order).unwrap(),
    ));
    let mut undecodable = records(5);
    undecodable.push(("sm_venues", b"v9".to_vec(), vec![0xff; 7]));
    let mut unknown_cf = records(5);
    unknown_cf.push(("sm_from_the_future", b"k".to_vec(), b"v".to_vec()));
    let cases: Vec<(&str, PathBuf, SnapshotMetaOf<TypeConfig>)> = vec![
        (
            "invariant",
            write_file(incoming.path(), "inv", &newer, &broken_invariant),
            newer.clone(),
        ),
        (
            "encoding",
            write_file(incoming.path(), "enc", &newer, &undecodable),
            newer.clone(),
        ),
        (
            "column family",
            write_file(incoming.path(), "cf", &newer, &unknown_cf),
            newer.clone(),
        ),
        (
            "meta",
            write_file(incoming.path(), "meta", &meta(30), &records(5)),
            newer.clone(),
        ),
        (
            "checksum",
            {
                let p = write_file(incoming.path(), "sum", &newer, &records(5));
                let mut bytes = std::fs::read(&p).unwrap();
                let mid = bytes.len() / 2;
                bytes[mid] ^= 0x10;
                std::fs::write(&p, bytes).unwrap();
                p
            },
            newer.clone(),
        ),
    ];
    for (what, path, m) in cases {
        let err = sm
            .install_snapshot(&m, SnapshotFile { path })
            .await
            .expect_err(what);
        eprintln!("{what}: refused: {err}");
        assert_eq!(digest(&sm), before, "{what}: the state is unchanged");
        assert_eq!(
            sm.applied_index(),
            10,
            "{what}: the applied index is unchanged"
        );
        assert_eq!(
            snapshot::list(&snaps).unwrap(),
            files,
            "{what}: no snapshot kept"
        );
    }
    // What is on disk is the state as it was: a restart opens it.
    drop(sm);
    let reopened = StateMachine::open(db, snaps).unwrap();
    assert_eq!(digest(&reopened), before);
    assert_eq!(reopened.applied_index(), 10);
}

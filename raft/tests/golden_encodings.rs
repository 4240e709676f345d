//! Golden files of the encodings a node persists and sends: log entries as the log store keeps
//! them, a snapshot file as it is built, streamed and installed, and Raft and client messages.
//! Every file here was written by a binary of its version and must keep decoding, to the same
//! values, in every later binary: a rolling upgrade meets all of them (a node's own log, a
//! peer's snapshot, an older peer's messages).
//!
//! `TICKETD_GOLDEN_WRITE=N` writes the files of version `N` instead of reading them (once, when
//! version `N` is made); files of a released version are never rewritten.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use openraft::alias::{EntryOf, SnapshotMetaOf, StoredMembershipOf, VoteOf};
use openraft::entry::RaftEntry;
use openraft::raft::{AppendEntriesRequest, VoteRequest};
use openraft::testing::log_id;
use openraft::Membership;
use prost::Message as _;
use ticketd_raft::codec::{decode, encode};
use ticketd_raft::snapshot::{self, SnapshotWriter};
use ticketd_raft::{pb, version, NodeAddr, Proposal, TypeConfig};
use ticketd_store::types::GeoPoint;
use ticketd_store::{Command, Machine, MemBackend, Query, QueryResult, Request, WriteSet};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn writing(version: u32) -> bool {
    std::env::var("TICKETD_GOLDEN_WRITE").is_ok_and(|v| v == version.to_string())
}

/// The golden file `name` of version 1: written when asked to, read otherwise.
fn golden(name: &str, current: &[u8]) -> Vec<u8> {
    golden_of(1, name, current)
}

/// The golden file `name` of version `version`: written when asked to, read otherwise.
fn golden_of(version: u32, name: &str, current: &[u8]) -> Vec<u8> {
    let path = dir().join(format!("v{version}")).join(name);
    if writing(version) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, current).unwrap();
    }
    std::fs::read(&path).unwrap_or_else(|e| panic!("golden file {}: {e}", path.display()))
}

fn request(key: &str, command: Command) -> Request {
    Request {
        client_id: "golden".into(),
        idempotency_key: key.into(),
        stamped_at_ms: 1_767_225_600_000,
        command,
    }
}

fn members() -> Membership<u64, NodeAddr> {
    let nodes: BTreeMap<u64, NodeAddr> = (1..=4)
        .map(|id| {
            (
                id,
                NodeAddr {
                    addr: format!("127.0.0.1:{}", 7000 + id),
                },
            )
        })
        .collect();
    Membership::new(vec![BTreeSet::from([1, 2, 3])], nodes).unwrap()
}

/// Representative entries: normal entries of several commands (one a batch), a membership
/// change with a learner, a blank entry.
fn entries() -> Vec<(&'static str, EntryOf<TypeConfig>)> {
    let normal = |index, reqs| {
        EntryOf::<TypeConfig>::new_normal(log_id::<TypeConfig>(2, 1, index), Proposal::new(reqs))
    };
    vec![
        (
            "entry-blank.json",
            EntryOf::<TypeConfig>::new_blank(log_id::<TypeConfig>(2, 1, 10)),
        ),
        (
            "entry-membership.json",
            EntryOf::<TypeConfig>::new_membership(log_id::<TypeConfig>(2, 1, 11), members()),
        ),
        (
            "entry-create-venue.json",
            normal(
                12,
                vec![request(
                    "k1",
                    Command::CreateVenue {
                        venue_id: "v1".into(),
                        name: "Hall".into(),
                        city: "Oslo".into(),
                    },
                )],
            ),
        ),
        (
            "entry-hold-seats.json",
            normal(
                13,
                vec![request(
                    "k2",
                    Command::HoldSeats {
                        hold_id: "h1".into(),
                        dt_id: "d1".into(),
                        user_id: "u1".into(),
                        seats: vec![0, 1, 7],
                        ga: vec![ticketd_store::command::GaPick {
                            area_id: "pit".into(),
                            quantity: 2,
                        }],
                        hold_ttl_ms: Some(60_000),
                    },
                )],
            ),
        ),
        (
            "entry-batch.json",
            normal(
                14,
                vec![
                    request(
                        "k3",
                        Command::ExpireHolds {
                            up_to_ms: 1_767_225_600_000,
                        },
                    ),
                    request("k4", Command::DigestState {}),
                    request(
                        "k5",
                        Command::CheckDigest {
                            index: 9,
                            digest: "ab".repeat(32),
                        },
                    ),
                    request(
                        "k6",
                        Command::SetVenueLayout {
                            venue_id: "v1".into(),
                            address: "Street 1".into(),
                            geo: GeoPoint {
                                lat_e6: 59_913_868,
                                lon_e6: 10_752_245,
                            },
                            seating_map: Default::default(),
                        },
                    ),
                ],
            ),
        ),
    ]
}

#[test]
fn log_entries_of_version_1_decode_to_their_values() {
    for (name, entry) in entries() {
        let bytes = golden(name, &encode(&entry).unwrap());
        let back: EntryOf<TypeConfig> =
            decode(&bytes).unwrap_or_else(|e| panic!("{name} no longer decodes: {e}"));
        assert_eq!(back, entry, "{name}");
        assert_eq!(
            encode(&entry).unwrap(),
            bytes,
            "{name}: a cluster at version 1 writes what binaries before versions wrote"
        );
    }
}

/// A normal entry's JSON with its payload replaced by `payload`.
fn entry_json(payload: &str) -> String {
    format!(
        r#"{{"log_id":{{"leader_id":{{"term":2,"node_id":1}},"index":30}},"payload":{{"Normal":{payload}}}}}"#
    )
}

#[test]
fn a_versioned_entry_is_read_up_to_this_binarys_version_and_refused_past_it() {
    let req =
        r#"{"client_id":"c","idempotency_key":"k","stamped_at_ms":1,"command":{"DigestState":{}}}"#;
    let v1: EntryOf<TypeConfig> =
        decode(entry_json(&format!(r#"{{"v":1,"requests":[{req}]}}"#)).as_bytes()).unwrap();
    let bare: EntryOf<TypeConfig> = decode(entry_json(&format!("[{req}]")).as_bytes()).unwrap();
    assert_eq!(v1, bare, "version 1 marked or not");

    let past = version::ENTRY_FORMAT_MAX + 1;
    let e = decode::<EntryOf<TypeConfig>>(
        entry_json(&format!(r#"{{"v":{past},"requests":[{{"no":"idea"}}]}}"#)).as_bytes(),
    )
    .unwrap_err()
    .to_string();
    assert!(version::is_too_new(&e), "{e}");
    assert!(e.contains(&format!("version {past}")), "{e}");

    // What a leader writes at each cluster version reads back, the version kept.
    let reqs = vec![request("k1", Command::DigestState {})];
    for format in 1..=version::ENTRY_FORMAT_MAX {
        let entry = EntryOf::<TypeConfig>::new_normal(
            log_id::<TypeConfig>(2, 1, 31),
            Proposal::with_format(reqs.clone(), format),
        );
        let bytes = encode(&entry).unwrap();
        let marked = String::from_utf8_lossy(&bytes).contains(r#""v":"#);
        assert_eq!(marked, format > 1, "{}", String::from_utf8_lossy(&bytes));
        assert_eq!(decode::<EntryOf<TypeConfig>>(&bytes).unwrap(), entry);
    }
}

fn machine_records() -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
    let backend = MemBackend::new();
    let mut m = Machine::open(&backend).unwrap();
    let cmds = [
        Command::CreateVenue {
            venue_id: "v1".into(),
            name: "Hall".into(),
            city: "Oslo".into(),
        },
        Command::CreateSeller {
            seller_id: "s1".into(),
            name: "Shows".into(),
            fee_bps: 250,
            plan: ticketd_store::types::SellerPlan::Standard,
        },
    ];
    for (i, c) in (1u64..).zip(cmds) {
        m.apply(i, &request(&format!("s{i}"), c), &mut WriteSet::new());
    }
    let mut out = Vec::new();
    m.visit_persisted(&mut |cf, k, v| out.push((cf, k.to_vec(), v.to_vec())));
    out
}

fn snapshot_meta() -> SnapshotMetaOf<TypeConfig> {
    SnapshotMetaOf::<TypeConfig> {
        last_log_id: Some(log_id::<TypeConfig>(2, 1, 20)),
        last_membership: StoredMembershipOf::<TypeConfig>::new(
            Some(log_id::<TypeConfig>(2, 1, 11)),
            members(),
        ),
    }
}

#[test]
fn a_snapshot_of_version_1_installs_with_its_state() {
    let tmp = tempfile::tempdir().unwrap();
    let built = tmp.path().join("built.snap");
    let mut w = SnapshotWriter::create(tmp.path().join("w.part"), &snapshot_meta()).unwrap();
    let records = machine_records();
    for (cf, k, v) in &records {
        w.record(cf, k, v).unwrap();
    }
    w.finish(&built).unwrap();
    let bytes = golden("snapshot.snap", &std::fs::read(&built).unwrap());
    assert_eq!(
        std::fs::read(&built).unwrap(),
        bytes,
        "a cluster at version 1 writes snapshot files as binaries before versions did"
    );
    let path = tmp.path().join("golden.snap");
    std::fs::write(&path, bytes).unwrap();

    assert_eq!(snapshot::read_meta(&path).unwrap(), snapshot_meta());
    let mut n = 0;
    snapshot::read_all(&path, |_, _, _| {
        n += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(n, records.len());
    let (_, machine) =
        ticketd_raft::state_machine::stage_snapshot(&snapshot_meta(), &path).unwrap();
    match machine.query(&Query::GetVenue {
        venue_id: "v1".into(),
    }) {
        QueryResult::Venue(Some(v)) => assert_eq!(v.name, "Hall"),
        other => panic!("{other:?}"),
    }
    match machine.query(&Query::GetSeller {
        seller_id: "s1".into(),
    }) {
        QueryResult::Seller(Some(s)) => assert_eq!(s.fee_bps, 250),
        other => panic!("{other:?}"),
    }
}

#[test]
fn raft_and_client_messages_of_version_1_decode_to_their_values() {
    let vote = VoteRequest::<TypeConfig> {
        vote: VoteOf::<TypeConfig>::new(3, 2),
        last_log_id: Some(log_id::<TypeConfig>(2, 1, 14)),
        leadership_transfer: false,
    };
    let bytes = golden("rpc-vote.json", &encode(&vote).unwrap());
    let back: VoteRequest<TypeConfig> = decode(&bytes).unwrap();
    assert_eq!(back.vote, vote.vote);
    assert_eq!(back.last_log_id, vote.last_log_id);

    let append = AppendEntriesRequest::<TypeConfig> {
        vote: VoteOf::<TypeConfig>::new_committed(2, 1),
        prev_log_id: Some(log_id::<TypeConfig>(2, 1, 11)),
        entries: entries().into_iter().skip(2).map(|(_, e)| e).collect(),
        leader_commit: Some(log_id::<TypeConfig>(2, 1, 11)),
    };
    let bytes = golden("rpc-append-entries.json", &encode(&append).unwrap());
    let back: AppendEntriesRequest<TypeConfig> = decode(&bytes).unwrap();
    assert_eq!(back.vote, append.vote);
    assert_eq!(back.prev_log_id, append.prev_log_id);
    assert_eq!(back.entries, append.entries);
    assert_eq!(back.leader_commit, append.leader_commit);

    let chunk_meta = (VoteOf::<TypeConfig>::new_committed(2, 1), snapshot_meta());
    let bytes = golden("rpc-snapshot-meta.json", &encode(&chunk_meta).unwrap());
    let back: (VoteOf<TypeConfig>, SnapshotMetaOf<TypeConfig>) = decode(&bytes).unwrap();
    assert_eq!(back, chunk_meta);

    let command = Command::ReleaseHold {
        hold_id: "h1".into(),
        user_id: "u1".into(),
    };
    let write = pb::WriteRequest {
        client_id: "golden".into(),
        idempotency_key: "k7".into(),
        command_json: serde_json::to_vec(&command).unwrap(),
        forwarded: false,
        ..Default::default()
    };
    let bytes = golden("rpc-write-request.pb", &write.encode_to_vec());
    let back = pb::WriteRequest::decode(bytes.as_slice()).unwrap();
    assert_eq!(back.idempotency_key, "k7");
    assert_eq!(back.format, 0, "version 1 messages carry no format");
    let back_command: Command = serde_json::from_slice(&back.command_json).unwrap();
    assert_eq!(back_command, command);
}

/// A format 2 snapshot file of `records` whose header lists `column_families`.
fn snapshot_v2(dir: &Path, column_families: &str, records: &[(&str, Vec<u8>, Vec<u8>)]) -> PathBuf {
    use sha2::Digest;
    let header = format!(
        r#"{{"meta":{},"column_families":{column_families}}}"#,
        String::from_utf8(encode(&snapshot_meta()).unwrap()).unwrap()
    );
    let mut b = b"TKTSNAP2".to_vec();
    b.extend_from_slice(&(header.len() as u32).to_be_bytes());
    b.extend_from_slice(header.as_bytes());
    for (cf, k, v) in records {
        b.push(1);
        b.push(cf.len() as u8);
        b.extend_from_slice(cf.as_bytes());
        b.extend_from_slice(&(k.len() as u32).to_be_bytes());
        b.extend_from_slice(k);
        b.extend_from_slice(&(v.len() as u32).to_be_bytes());
        b.extend_from_slice(v);
    }
    b.push(0);
    let digest = sha2::Sha256::digest(&b);
    b.extend_from_slice(&digest);
    let path = dir.join(format!("v2-{}.snap", b.len()));
    std::fs::write(&path, b).unwrap();
    path
}

#[test]
fn snapshot_format_2_names_each_column_family_and_its_version() {
    let tmp = tempfile::tempdir().unwrap();
    let records = machine_records();
    let path = tmp.path().join("v2.snap");
    let mut w = SnapshotWriter::create_at(tmp.path().join("w.part"), &snapshot_meta(), 2).unwrap();
    for (cf, k, v) in &records {
        w.record(cf, k, v).unwrap();
    }
    w.finish(&path).unwrap();
    assert!(std::fs::read(&path).unwrap().starts_with(b"TKTSNAP2"));
    let (_, machine) =
        ticketd_raft::state_machine::stage_snapshot(&snapshot_meta(), &path).unwrap();
    assert!(matches!(
        machine.query(&Query::GetVenue {
            venue_id: "v1".into()
        }),
        QueryResult::Venue(Some(_))
    ));

    let all: Vec<String> = ticketd_store::COLUMN_FAMILIES
        .iter()
        .map(|cf| format!(r#""{cf}":1"#))
        .collect();
    let listed = format!("{{{}}}", all.join(","));
    let ok = snapshot_v2(tmp.path(), &listed, &records);
    assert!(snapshot::read_all(&ok, |_, _, _| Ok(())).is_ok());

    let refusal = |path: &Path| {
        snapshot::read_all(path, |_, _, _| Ok(()))
            .unwrap_err()
            .to_string()
    };
    let unknown = snapshot_v2(
        tmp.path(),
        &format!("{{{},\"sm_waiting_lists\":1}}", all.join(",")),
        &records,
    );
    let e = refusal(&unknown);
    assert!(
        e.contains("sm_waiting_lists") && e.contains("does not know"),
        "{e}"
    );

    let newer = snapshot_v2(
        tmp.path(),
        &listed.replace(r#""sm_holds":1"#, r#""sm_holds":2"#),
        &records,
    );
    let e = refusal(&newer);
    assert!(version::is_too_new(&e) && e.contains("sm_holds"), "{e}");

    let unlisted = snapshot_v2(tmp.path(), r#"{"sm_venues":1}"#, &records);
    let e = refusal(&unlisted);
    assert!(e.contains("does not list"), "{e}");

    let mut format_9 = std::fs::read(&ok).unwrap();
    format_9[7] = b'9';
    let path_9 = tmp.path().join("v9.snap");
    std::fs::write(&path_9, format_9).unwrap();
    let e = refusal(&path_9);
    assert!(version::is_too_new(&e) && e.contains("version 9"), "{e}");
}

/// Version 2's commands (the reconciler's cursor, settled payments, a failed delivery) in a
/// log entry, as a cluster at version 2 writes it (entry encoding 1).
fn entry_v2() -> EntryOf<TypeConfig> {
    let reqs = vec![
        request(
            "w1",
            Command::AdvanceCursor {
                name: "payments".into(),
                created_ms: 1_767_225_600_000,
                intent_id: "pi_00000042".into(),
                unsettled: vec!["pi_00000040".into()],
            },
        ),
        request(
            "w2",
            Command::PaymentsSettled {
                payment_refs: vec!["pi_00000007".into(), "pi_00000008".into()],
            },
        ),
        request(
            "w3",
            Command::NotificationFailed {
                notification_id: "n-12-1".into(),
                park_after: 8,
                error: "SMTP: 451 try later".into(),
            },
        ),
    ];
    EntryOf::<TypeConfig>::new_normal(
        log_id::<TypeConfig>(3, 1, 40),
        Proposal::with_format(reqs, version::entry_format(2)),
    )
}

#[test]
fn log_entries_of_version_2_decode_to_their_values() {
    let entry = entry_v2();
    let bytes = golden_of(2, "entry-worker-commands.json", &encode(&entry).unwrap());
    let back: EntryOf<TypeConfig> = decode(&bytes).expect("version 2's entry decodes");
    assert_eq!(back, entry);
    assert_eq!(encode(&entry).unwrap(), bytes);
}

/// A state at cluster version 2 with a cursor and an unfinished payment.
fn machine_records_v2() -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
    let backend = MemBackend::new();
    let mut m = Machine::open(&backend).unwrap();
    let cmds = [
        Command::SetClusterVersion { version: 2 },
        Command::CreateVenue {
            venue_id: "v1".into(),
            name: "Hall".into(),
            city: "Oslo".into(),
        },
        Command::AdvanceCursor {
            name: "payments".into(),
            created_ms: 1_767_225_600_000,
            intent_id: "pi_00000042".into(),
            unsettled: vec!["pi_00000040".into()],
        },
    ];
    for (i, c) in (1u64..).zip(cmds) {
        let reply = m.apply(i, &request(&format!("s{i}"), c), &mut WriteSet::new());
        assert!(
            matches!(reply.outcome, ticketd_store::Outcome::Done(_)),
            "{reply:?}"
        );
    }
    let mut out = Vec::new();
    m.visit_persisted(&mut |cf, k, v| out.push((cf, k.to_vec(), v.to_vec())));
    out
}

#[test]
fn a_snapshot_of_version_2_installs_with_its_cursor_and_unfinished_payments() {
    let tmp = tempfile::tempdir().unwrap();
    let built = tmp.path().join("built.snap");
    let format = version::snapshot_format(2);
    let mut w =
        SnapshotWriter::create_at(tmp.path().join("w.part"), &snapshot_meta(), format).unwrap();
    let records = machine_records_v2();
    assert!(records.iter().any(|(cf, _, _)| *cf == "sm_cursors"));
    assert!(records.iter().any(|(cf, _, _)| *cf == "sm_unfinished"));
    for (cf, k, v) in &records {
        w.record(cf, k, v).unwrap();
    }
    w.finish(&built).unwrap();
    let bytes = golden_of(2, "snapshot.snap", &std::fs::read(&built).unwrap());
    assert_eq!(std::fs::read(&built).unwrap(), bytes);
    let path = tmp.path().join("golden.snap");
    std::fs::write(&path, bytes).unwrap();
    let (_, machine) =
        ticketd_raft::state_machine::stage_snapshot(&snapshot_meta(), &path).unwrap();
    assert_eq!(machine.cluster_version(), 2);
    match machine.query(&Query::ReconcileCursor {
        name: "payments".into(),
    }) {
        QueryResult::Cursor(Some(c)) => assert_eq!(c.intent_id, "pi_00000042"),
        other => panic!("{other:?}"),
    }
    match machine.query(&Query::UnfinishedPayments {
        after: None,
        limit: 10,
    }) {
        QueryResult::Unfinished(u) => {
            assert_eq!(u.len(), 1);
            assert_eq!(u[0].0, "pi_00000040");
        }
        other => panic!("{other:?}"),
    }
}

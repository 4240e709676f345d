//! The cluster version in the replicated state: raised by `SetClusterVersion`, never lowered,
//! persisted (and so in snapshots), and a command of a later version rejected until the
//! cluster is at it.

use ticketd_store::version::{BINARY_VERSION, LEGACY};
use ticketd_store::{Command, Done, Machine, MemBackend, Outcome, Rejection, Request, WriteSet};

fn req(key: &str, command: Command) -> Request {
    Request {
        client_id: "ops".into(),
        idempotency_key: key.into(),
        stamped_at_ms: 1_767_225_600_000,
        command,
    }
}

fn apply(m: &mut Machine, b: &MemBackend, index: u64, r: Request) -> Outcome {
    let mut ws = WriteSet::new();
    let reply = m.apply(index, &r, &mut ws);
    ticketd_store::Backend::write(b, &ws).unwrap();
    reply.outcome
}

#[test]
fn the_cluster_version_rises_persists_and_never_falls() {
    let b = MemBackend::new();
    let mut m = Machine::open(&b).unwrap();
    assert_eq!(m.cluster_version(), LEGACY);
    let digest_at_1 = m.digest();
    assert_eq!(
        apply(
            &mut m,
            &b,
            1,
            req("a", Command::SetClusterVersion { version: 1 })
        ),
        Outcome::Done(Done::ClusterVersionSet { version: 1 })
    );
    let mut persisted = Vec::new();
    m.visit_persisted(&mut |cf, k, _| persisted.push((cf, k.to_vec())));
    assert!(
        !persisted.iter().any(|(_, k)| k == b"cluster_version"),
        "version 1 is persisted as binaries without versions persisted it"
    );
    assert_ne!(m.digest(), digest_at_1, "the remembered outcome is state");

    let top = BINARY_VERSION;
    let set = |version| Command::SetClusterVersion { version };
    assert_eq!(
        apply(&mut m, &b, 2, req("b", set(top))),
        Outcome::Done(Done::ClusterVersionSet { version: top })
    );
    assert_eq!(m.cluster_version(), top);
    let reopened = Machine::open(&b).unwrap();
    assert_eq!(reopened.cluster_version(), top, "persisted");
    assert_eq!(reopened.digest(), m.digest());

    // A state past this binary's version is not loaded at all.
    assert_eq!(
        apply(&mut m, &b, 3, req("b3", set(3))),
        Outcome::Done(Done::ClusterVersionSet { version: 3 })
    );
    match Machine::open(&b) {
        Err(e @ ticketd_store::StoreError::VersionTooNew { version: 3 }) => {
            assert!(
                e.to_string().contains("newer than this binary knows"),
                "{e}"
            )
        }
        other => panic!("{:?}", other.map(|m| m.cluster_version())),
    }

    match apply(
        &mut m,
        &b,
        3,
        req("c", Command::SetClusterVersion { version: 2 }),
    ) {
        Outcome::Rejected { code, detail } => {
            assert_eq!(code, Rejection::InvalidState);
            assert!(detail.contains("never lowered"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    match apply(
        &mut m,
        &b,
        4,
        req("d", Command::SetClusterVersion { version: u32::MAX }),
    ) {
        Outcome::Rejected { code, .. } => assert_eq!(code, Rejection::InvalidArgument),
        other => panic!("{other:?}"),
    }
    assert_eq!(m.cluster_version(), 3);
    const { assert!(BINARY_VERSION >= LEGACY) };
}

#[test]
fn every_command_of_this_binary_needs_at_most_its_version() {
    let cmd = Command::SetClusterVersion { version: 2 };
    assert_eq!(cmd.required_version(), LEGACY);
    assert!(cmd.required_version() <= BINARY_VERSION);
}

#[cfg(feature = "next-version")]
#[test]
fn the_next_versions_command_is_rejected_until_the_cluster_is_at_it() {
    let b = MemBackend::new();
    let mut m = Machine::open(&b).unwrap();
    let echo = || Command::Echo {
        text: "hello".into(),
    };
    assert_eq!(echo().required_version(), 3);
    match apply(&mut m, &b, 1, req("e1", echo())) {
        Outcome::Rejected { code, detail } => {
            assert_eq!(code, Rejection::InvalidState);
            assert!(detail.contains("needs cluster version 3"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    apply(
        &mut m,
        &b,
        2,
        req("v3", Command::SetClusterVersion { version: 3 }),
    );
    assert_eq!(
        apply(&mut m, &b, 3, req("e2", echo())),
        Outcome::Done(Done::Echoed {
            text: "hello".into()
        })
    );
}

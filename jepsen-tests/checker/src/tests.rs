//! The checkers against small register histories, each broken in one way.

use ticketd_store::command::{Done, Venue};
use ticketd_store::{Command, Outcome, Query, QueryResult, Rejection};

use crate::check;
use crate::history::{read_pos, write_pos, Call, Cons, History, Line, Ret};
use crate::report::Report;

struct B {
    lines: Vec<Line>,
    op: u64,
}

fn cv(id: &str, name: &str) -> Command {
    Command::CreateVenue {
        venue_id: id.into(),
        name: name.into(),
        city: "c".into(),
    }
}
fn venue(id: &str, name: &str, idx: u64) -> Option<Venue> {
    Some(Venue {
        venue_id: id.into(),
        name: name.into(),
        city: "c".into(),
        created_index: idx,
    })
}
fn done(id: &str) -> Outcome {
    Outcome::Done(Done::VenueCreated {
        venue_id: id.into(),
    })
}
fn exists() -> Outcome {
    Outcome::Rejected {
        code: Rejection::AlreadyExists,
        detail: "x".into(),
    }
}

impl B {
    fn new() -> Self {
        B {
            lines: Vec::new(),
            op: 0,
        }
    }
    fn invoke(&mut self, t: u64, call: Call) -> u64 {
        self.op += 1;
        self.lines.push(Line::Invoke {
            time_ns: t,
            process: self.op,
            op: self.op,
            f: call.f().into(),
            call,
        });
        self.op
    }
    /// An `ok` line; `index` (and a write's effect index) are log indexes of one-request
    /// entries, turned into positions here.
    fn ok(&mut self, t: u64, op: u64, call: Call, ret: Ret, index: u64) {
        let (ret, index) = match ret {
            Ret::Write {
                outcome,
                effect_index,
                replayed,
            } => (
                Ret::Write {
                    outcome,
                    effect_index: write_pos(effect_index, 0),
                    replayed,
                },
                write_pos(index, 0),
            ),
            r @ Ret::Read { .. } => (r, read_pos(index)),
        };
        self.lines.push(Line::Ok {
            time_ns: t,
            process: op,
            op,
            f: call.f().into(),
            call,
            ret,
            index,
        });
    }
    fn write(&mut self, t0: u64, t1: u64, key: &str, cmd: Command, out: Outcome, idx: u64) {
        let call = Call::Write {
            client_id: "c".into(),
            key: key.into(),
            command: cmd,
            via: None,
        };
        let op = self.invoke(t0, call.clone());
        self.ok(
            t1,
            op,
            call,
            Ret::Write {
                outcome: out,
                effect_index: idx,
                replayed: false,
            },
            idx,
        );
    }
    fn write_unknown(&mut self, t0: u64, key: &str, cmd: Command) {
        let call = Call::Write {
            client_id: "c".into(),
            key: key.into(),
            command: cmd,
            via: None,
        };
        let op = self.invoke(t0, call.clone());
        self.lines.push(Line::Info {
            time_ns: t0 + 5,
            process: op,
            op,
            f: "write".into(),
            call,
            error: "timeout".into(),
        });
    }
    fn write_failed(&mut self, t0: u64, key: &str, cmd: Command) {
        let call = Call::Write {
            client_id: "c".into(),
            key: key.into(),
            command: cmd,
            via: None,
        };
        let op = self.invoke(t0, call.clone());
        self.lines.push(Line::Fail {
            time_ns: t0 + 5,
            process: op,
            op,
            f: "write".into(),
            call,
            error: "no leader".into(),
        });
    }
    fn read(&mut self, t0: u64, t1: u64, id: &str, v: Option<Venue>, idx: u64, fin: bool) {
        let call = Call::Read {
            query: Query::GetVenue {
                venue_id: id.into(),
            },
            consistency: Cons::Linearizable,
            node: None,
            final_read: fin,
        };
        let op = self.invoke(t0, call.clone());
        self.ok(
            t1,
            op,
            call,
            Ret::Read {
                result: QueryResult::Venue(v),
            },
            idx,
        );
    }
    fn check(self) -> Report {
        check(&History::from_lines(self.lines).unwrap())
    }
}

fn kinds(r: &Report) -> Vec<String> {
    r.anomalies.iter().map(|a| a.kind.clone()).collect()
}

#[test]
fn a_clean_history_has_no_anomaly() {
    let mut b = B::new();
    b.write(0, 10, "k1", cv("v1", "a"), done("v1"), 3);
    b.write(1, 12, "k2", cv("v1", "b"), exists(), 4);
    b.read(2, 5, "v1", None, 2, false);
    b.write_unknown(13, "k3", cv("v2", "c"));
    b.read(20, 21, "v1", venue("v1", "a", 3), 4, true);
    b.read(20, 21, "v2", venue("v2", "c", 6), 6, true);
    let r = b.check();
    assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
    assert_eq!(
        r.settled_applied, 1,
        "the unknown write was settled as applied"
    );
}

#[test]
fn lost_acknowledged_write_is_caught() {
    let mut b = B::new();
    b.write(0, 10, "k1", cv("v1", "a"), done("v1"), 3);
    b.read(20, 21, "v1", None, 9, true);
    let r = b.check();
    assert!(
        kinds(&r).contains(&"acknowledged-write-lost".into()),
        "{r:?}"
    );
}

#[test]
fn stale_read_at_an_index_is_caught_by_replay() {
    let mut b = B::new();
    b.write(0, 10, "k1", cv("v1", "a"), done("v1"), 3);
    // A local read claims index 5 but misses the write at 3.
    let call = Call::Read {
        query: Query::GetVenue {
            venue_id: "v1".into(),
        },
        consistency: Cons::Local,
        node: Some(2),
        final_read: false,
    };
    let op = b.invoke(11, call.clone());
    b.ok(
        12,
        op,
        call,
        Ret::Read {
            result: QueryResult::Venue(None),
        },
        5,
    );
    b.read(20, 21, "v1", venue("v1", "a", 3), 9, true);
    let r = b.check();
    assert!(
        kinds(&r).contains(&"read-differs-from-model".into()),
        "{r:?}"
    );
}

#[test]
fn double_create_is_caught_by_replay_and_wgl() {
    let mut b = B::new();
    b.write(0, 10, "k1", cv("v1", "a"), done("v1"), 3);
    b.write(1, 10, "k2", cv("v1", "b"), done("v1"), 4);
    b.read(20, 21, "v1", venue("v1", "a", 3), 9, true);
    let k = kinds(&b.check());
    assert!(k.contains(&"write-answer-differs".into()), "{k:?}");
    assert!(k.contains(&"not-linearizable".into()), "{k:?}");
}

#[test]
fn real_time_order_violation_is_caught() {
    let mut b = B::new();
    b.write(0, 10, "k1", cv("v1", "a"), done("v1"), 7);
    // Invoked after k1 completed, yet committed before it.
    b.write(11, 12, "k2", cv("v2", "b"), done("v2"), 5);
    b.read(20, 21, "v1", venue("v1", "a", 7), 9, true);
    b.read(20, 21, "v2", venue("v2", "b", 5), 9, true);
    let r = b.check();
    assert!(kinds(&r).contains(&"real-time-order".into()), "{r:?}");
}

#[test]
fn stale_linearizable_read_breaks_real_time_order() {
    let mut b = B::new();
    b.write(0, 10, "k1", cv("v1", "a"), done("v1"), 7);
    b.read(11, 12, "v1", None, 6, false);
    b.read(20, 21, "v1", venue("v1", "a", 7), 9, true);
    let k = kinds(&b.check());
    assert!(k.contains(&"real-time-order".into()), "{k:?}");
    assert!(k.contains(&"not-linearizable".into()), "{k:?}");
}

#[test]
fn failed_write_that_took_effect_is_caught() {
    let mut b = B::new();
    b.write_failed(0, "k1", cv("v1", "a"));
    b.read(20, 21, "v1", venue("v1", "a", 3), 9, true);
    assert!(kinds(&b.check()).contains(&"failed-write-took-effect".into()));
}

#[test]
fn one_key_two_answers_is_caught() {
    let mut b = B::new();
    b.write(0, 10, "k1", cv("v1", "a"), done("v1"), 3);
    let call = Call::Write {
        client_id: "c".into(),
        key: "k1".into(),
        command: cv("v1", "a"),
        via: None,
    };
    let op = b.invoke(11, call.clone());
    // The resubmission was applied again instead of replayed.
    b.ok(
        12,
        op,
        call,
        Ret::Write {
            outcome: exists(),
            effect_index: 8,
            replayed: false,
        },
        8,
    );
    b.read(20, 21, "v1", venue("v1", "a", 3), 9, true);
    assert!(kinds(&b.check()).contains(&"idempotency-key-two-answers".into()));
}

#[test]
fn an_internal_retry_replaying_its_own_first_attempt_is_that_ops_effect() {
    let mut b = B::new();
    let call = Call::Write {
        client_id: "c".into(),
        key: "k1".into(),
        command: cv("v1", "a"),
        via: None,
    };
    let op = b.invoke(0, call.clone());
    b.ok(
        10,
        op,
        call,
        Ret::Write {
            outcome: done("v1"),
            effect_index: 3,
            replayed: true,
        },
        5,
    );
    b.write(11, 12, "k2", cv("v1", "b"), exists(), 6);
    b.read(13, 14, "v1", venue("v1", "a", 3), 6, false);
    b.read(20, 21, "v1", venue("v1", "a", 3), 9, true);
    let r = b.check();
    assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
}

#[test]
fn phantom_value_is_caught() {
    let mut b = B::new();
    b.read(20, 21, "v1", venue("v1", "zzz", 3), 9, true);
    assert!(kinds(&b.check()).contains(&"phantom-write".into()));
}

#[test]
fn diverging_replicas_are_caught() {
    let mut lines = Vec::new();
    for (op, (node, d)) in [(1u64, "aa"), (2, "bb")].into_iter().enumerate() {
        let call = Call::Read {
            query: Query::Digest,
            consistency: Cons::Local,
            node: Some(op as u64 + 1),
            final_read: true,
        };
        let _ = node;
        lines.push(Line::Invoke {
            time_ns: 0,
            process: op as u64,
            op: op as u64,
            f: "read".into(),
            call: call.clone(),
        });
        lines.push(Line::Ok {
            time_ns: 1,
            process: op as u64,
            op: op as u64,
            f: "read".into(),
            call,
            ret: Ret::Read {
                result: QueryResult::Digest(d.into()),
            },
            index: 10,
        });
    }
    let r = check(&History::from_lines(lines).unwrap());
    assert!(kinds(&r).contains(&"replicas-diverge".into()));
}

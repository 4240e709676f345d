//! The checkers of a history.
//!
//! 1. **Replay** (`replay`): every write whose effect is known (an `ok` answer, or an unknown
//!    write settled by the final reads) is applied to the single-threaded [`Model`] in log-index
//!    order; every answer the cluster gave (write outcomes, and every read at the applied index
//!    it was served at, local reads included) must equal the model's. Then **real-time order**
//!    (`realtime`): if A completed before B was invoked, B's log position is after A's.
//! 2. **Per-object linearizability** (`wgl`): each venue id's ops through the WGL search.
//! 3. **Invariants** (`invariants`): every acknowledged write is present after healing, a failed
//!    write never takes effect, one idempotency key has one answer and one object, replicas that
//!    applied the same index have the same state digest.
//!
//! Unknown (`info`) ops are never treated as failed: the final reads decide whether they took
//! effect.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use ticketd_store::command::Venue;
use ticketd_store::{Command, Outcome, Query, QueryResult, Rejection};

use crate::history::{Call, Cons, History, Op, OpType, Ret};
use crate::model::{same_outcome, Model};
use crate::wgl::{self, SetOnce, SetOnceOp, Timed, Verdict};

/// One violation found.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Anomaly {
    /// The checker that found it.
    pub checker: String,
    /// Short kind.
    pub kind: String,
    /// Details: op ids, indexes, values.
    pub detail: String,
}

/// What the checkers found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Violations (0 is the goal).
    pub anomalies: Vec<Anomaly>,
    /// Objects whose linearizability search ran out of budget.
    pub inconclusive: Vec<String>,
    /// Ops by type.
    pub ok: usize,
    /// Ops that definitely failed.
    pub fail: usize,
    /// Ops with unknown outcome.
    pub info: usize,
    /// Unknown writes the final reads showed applied.
    pub settled_applied: usize,
    /// Writes replayed against the model.
    pub replayed_writes: usize,
    /// Reads compared with the model.
    pub checked_reads: usize,
    /// Objects checked for linearizability.
    pub wgl_objects: usize,
    /// Write ops of commands the checkers do not model (not checked).
    pub unmodelled_writes: usize,
}

impl Report {
    fn push(&mut self, checker: &'static str, kind: &str, detail: String) {
        self.anomalies.push(Anomaly {
            checker: checker.to_string(),
            kind: kind.to_string(),
            detail,
        });
    }
}

/// Runs every checker.
pub fn check(h: &History) -> Report {
    let mut r = Report::default();
    for o in &h.ops {
        match o.typ {
            OpType::Ok => r.ok += 1,
            OpType::Fail => r.fail += 1,
            OpType::Info => r.info += 1,
        }
    }
    replay(h, &mut r);
    realtime(h, &mut r);
    per_object_linearizability(h, &mut r, 2_000_000);
    digests(h, &mut r);
    r
}

/// A write as the client meant it: every op with the same (client, key) is one logical write.
struct Logical<'a> {
    client_id: &'a str,
    key: &'a str,
    command: &'a Command,
    ops: Vec<&'a Op>,
}

/// The venues the final reads saw (the latest final read per venue id).
fn final_venues(h: &History) -> BTreeMap<String, Option<Venue>> {
    let mut out = BTreeMap::new();
    for o in &h.ops {
        if let (
            Call::Read {
                query: Query::GetVenue { venue_id },
                final_read: true,
                ..
            },
            Some(Ret::Read {
                result: QueryResult::Venue(v),
            }),
        ) = (&o.call, &o.ret)
        {
            out.insert(venue_id.clone(), v.clone());
        }
    }
    out
}

fn write_parts(o: &Op) -> Option<(&str, &str, &Command)> {
    match &o.call {
        Call::Write {
            client_id,
            key,
            command,
            ..
        } => Some((client_id, key, command)),
        _ => None,
    }
}

/// The venue id and name a `CreateVenue` creates; `None` for other commands.
fn created_venue(c: &Command) -> Option<(&str, &str)> {
    match c {
        Command::CreateVenue { venue_id, name, .. } => Some((venue_id, name)),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Model replay by log index, with settling of unknown writes and the write invariants.
pub fn replay(h: &History, r: &mut Report) {
    let finals = final_venues(h);
    // Group ops into logical writes.
    let mut logical: BTreeMap<(&str, &str), Logical> = BTreeMap::new();
    for o in &h.ops {
        if let Some((client_id, key, command)) = write_parts(o) {
            let l = logical.entry((client_id, key)).or_insert(Logical {
                client_id,
                key,
                command,
                ops: Vec::new(),
            });
            if l.command != command {
                // The workload reuses a key only with its command; a different one is the
                // workload's own mistake, but still checked by the model (IDEMPOTENCY_KEY_REUSED).
                continue;
            }
            l.ops.push(o);
        }
    }
    // Which logical write created each final venue (names are unique per logical write).
    let mut by_name: HashMap<(&str, &str), Vec<(&str, &str)>> = HashMap::new();
    for (k, l) in &logical {
        if let Some((venue_id, name)) = created_venue(l.command) {
            by_name.entry((venue_id, name)).or_default().push(*k);
        }
    }
    for (venue_id, v) in &finals {
        if let Some(v) = v {
            match by_name.get(&(venue_id.as_str(), v.name.as_str())) {
                None => r.push(
                    "invariants",
                    "phantom-write",
                    format!("final read of {venue_id} shows {v:?}, written by no op"),
                ),
                Some(ks) if ks.len() > 1 => r.push(
                    "invariants",
                    "ambiguous-workload",
                    format!("{venue_id}: name {} used by several keys {ks:?}", v.name),
                ),
                _ => {}
            }
        }
    }

    // The settled effect of each logical write: (effect index, outcome) when known.
    let mut events: Vec<(u64, &Logical, Option<Outcome>)> = Vec::new();
    for l in logical.values() {
        let Some((venue_id, name)) = created_venue(l.command) else {
            r.unmodelled_writes += l.ops.len();
            continue;
        };
        let fin = finals.get(venue_id);
        let created_here = matches!(fin, Some(Some(v)) if v.name == name);
        let mut answer: Option<(u64, Outcome, u64)> = None;
        for o in &l.ops {
            if let (
                Some(Ret::Write {
                    outcome,
                    effect_index,
                    replayed,
                }),
                Some(log_index),
            ) = (&o.ret, o.index)
            {
                if *replayed && log_index <= *effect_index
                    || !*replayed && log_index != *effect_index
                {
                    r.push(
                        "invariants",
                        "bad-write-index",
                        format!(
                            "op {}: log index {log_index}, effect index {effect_index}, replayed {replayed}",
                            o.op
                        ),
                    );
                }
                match &answer {
                    None => answer = Some((*effect_index, outcome.clone(), o.op)),
                    Some((i, out, first_op)) => {
                        if *i != *effect_index || !same_outcome(out, outcome) {
                            r.push(
                                "invariants",
                                "idempotency-key-two-answers",
                                format!(
                                    "key {}/{}: op {first_op} got {out:?} at {i}, op {} got {outcome:?} at {effect_index}",
                                    l.client_id, l.key, o.op
                                ),
                            );
                        }
                    }
                }
            }
        }
        let all_failed = !l.ops.is_empty() && l.ops.iter().all(|o| o.typ == OpType::Fail);
        match (&answer, created_here) {
            (Some((i, Outcome::Done(_), op)), true) => {
                let v = fin.and_then(|v| v.as_ref()).expect("created_here");
                if v.created_index != *i {
                    r.push(
                        "invariants",
                        "acknowledged-write-moved",
                        format!(
                            "op {op} acknowledged {venue_id} at index {i}; final state has it from index {}",
                            v.created_index
                        ),
                    );
                }
            }
            (Some((i, Outcome::Done(_), op)), false) => {
                if fin.is_some() {
                    r.push(
                        "invariants",
                        "acknowledged-write-lost",
                        format!(
                            "op {op} acknowledged {venue_id} ({name}) at index {i}; final read: {:?}",
                            fin.and_then(|v| v.as_ref())
                        ),
                    );
                } else {
                    r.push(
                        "invariants",
                        "no-final-read",
                        format!("acknowledged {venue_id} was never read back"),
                    );
                }
            }
            (Some((i, out @ Outcome::Rejected { .. }, op)), true) => r.push(
                "invariants",
                "rejected-write-took-effect",
                format!("op {op} was answered {out:?} at {i}, yet {venue_id} holds its value"),
            ),
            (None, true) if all_failed => r.push(
                "invariants",
                "failed-write-took-effect",
                format!(
                    "ops {:?} failed, yet {venue_id} holds {name}",
                    l.ops.iter().map(|o| o.op).collect::<Vec<_>>()
                ),
            ),
            _ => {}
        }
        match (answer, created_here) {
            (Some((i, out, _)), _) => events.push((i, l, Some(out))),
            (None, true) => {
                let v = fin.and_then(|v| v.as_ref()).expect("created_here");
                r.settled_applied += 1;
                events.push((v.created_index, l, None));
            }
            // Unknown and not visible: not applied, or applied as a rejection (no state change).
            (None, false) => {}
        }
    }
    events.sort_by_key(|(i, _, _)| *i);
    for w in events.windows(2) {
        if w[0].0 == w[1].0 {
            r.push(
                "replay",
                "two-writes-one-index",
                format!(
                    "keys {}/{} and {}/{} both claim index {}",
                    w[0].1.client_id, w[0].1.key, w[1].1.client_id, w[1].1.key, w[0].0
                ),
            );
        }
    }

    // Reads by the index they were served at.
    let mut reads: Vec<(u64, &Op)> = h
        .ops
        .iter()
        .filter(|o| o.typ == OpType::Ok && matches!(o.call, Call::Read { .. }))
        .filter_map(|o| o.index.map(|i| (i, o)))
        .collect();
    reads.sort_by_key(|(i, o)| (*i, o.op));

    let mut model = Model::default();
    let mut ev = events.iter().peekable();
    let mut apply_upto = |model: &mut Model, upto: u64, r: &mut Report| {
        while let Some((i, l, observed)) = ev.next_if(|(i, _, _)| *i <= upto) {
            r.replayed_writes += 1;
            let Some(m) = model.apply(*i, l.client_id, l.key, l.command) else {
                continue;
            };
            let ok = match observed {
                Some(out) => same_outcome(&m.outcome, out) && !m.replayed,
                None => matches!(m.outcome, Outcome::Done(_)) && !m.replayed,
            };
            if !ok {
                r.push(
                    "replay",
                    "write-answer-differs",
                    format!(
                        "key {}/{} at index {i}: cluster {:?}, model {:?}",
                        l.client_id,
                        l.key,
                        observed
                            .as_ref()
                            .map(|o| format!("{o:?}"))
                            .unwrap_or_else(|| "applied (settled by final read)".into()),
                        m
                    ),
                );
            }
        }
    };
    for (i, o) in &reads {
        apply_upto(&mut model, *i, r);
        let (Call::Read { query, .. }, Some(Ret::Read { result })) = (&o.call, &o.ret) else {
            continue;
        };
        if let Some(expected) = model.query(query) {
            r.checked_reads += 1;
            if &expected != result {
                r.push(
                    "replay",
                    "read-differs-from-model",
                    format!(
                        "op {} (process {}) read {query:?} at applied index {i}: got {result:?}, model {expected:?}",
                        o.op, o.process
                    ),
                );
            }
        }
    }
    apply_upto(&mut model, u64::MAX, r);
}

/// The log position of an `ok` op for the real-time check, and whether it is a write.
fn position(o: &Op) -> Option<(u64, bool)> {
    if o.typ != OpType::Ok {
        return None;
    }
    let i = o.index?;
    match &o.call {
        Call::Write { .. } => Some((i, true)),
        Call::Read { .. } => Some((i, false)),
    }
}

/// Real-time order: A completed before B was invoked implies pos(A) <= pos(B), strictly when B
/// is a write. Local reads may be stale: they are never B, only A.
pub fn realtime(h: &History, r: &mut Report) {
    // Ops as A, by completion time.
    let mut done: Vec<(u64, u64, u64)> = h
        .ops
        .iter()
        .filter_map(|o| Some((o.complete_ns?, position(o)?.0, o.op)))
        .collect();
    done.sort();
    let mut bs: Vec<&Op> = h
        .ops
        .iter()
        .filter(|o| position(o).is_some())
        .filter(|o| {
            !matches!(
                o.call,
                Call::Read {
                    consistency: Cons::Local,
                    ..
                }
            )
        })
        .collect();
    bs.sort_by_key(|o| o.invoke_ns);
    let mut k = 0;
    let mut max: Option<(u64, u64)> = None; // (position, op)
    let mut reported = 0;
    for b in bs {
        while k < done.len() && done[k].0 < b.invoke_ns {
            if max.is_none_or(|(p, _)| done[k].1 > p) {
                max = Some((done[k].1, done[k].2));
            }
            k += 1;
        }
        let (pos, is_write) = position(b).expect("filtered");
        if let Some((p, a)) = max {
            let bad = if is_write { pos <= p } else { pos < p };
            if bad && reported < 20 {
                reported += 1;
                r.push(
                    "realtime",
                    "real-time-order",
                    format!(
                        "op {a} completed at position {p} before op {} ({}) was invoked, which got position {pos}",
                        b.op,
                        b.call.f()
                    ),
                );
            }
        }
    }
}

/// The WGL check of every venue id's ops (linearizable reads, non-replayed writes).
pub fn per_object_linearizability(h: &History, r: &mut Report, max_steps: u64) {
    let mut per: BTreeMap<&str, Vec<Timed<SetOnceOp>>> = BTreeMap::new();
    // Keys already invoked: a later op with the same key is a resubmission.
    let mut seen_keys: std::collections::HashSet<(&str, &str)> = Default::default();
    for o in &h.ops {
        let first_of_key = match write_parts(o) {
            Some((c, k, _)) => seen_keys.insert((c, k)),
            None => false,
        };
        if o.typ == OpType::Fail {
            continue;
        }
        let ret = if o.typ == OpType::Ok {
            o.complete_ns
        } else {
            None
        };
        match (&o.call, &o.ret) {
            (
                Call::Write {
                    command: Command::CreateVenue { venue_id, name, .. },
                    ..
                },
                ret_val,
            ) => {
                let answer = match ret_val {
                    None => None,
                    // A replay answers from memory, not from the state. When the op is the
                    // key's first, the remembered outcome is its own earlier attempt's (the
                    // client library retried internally): it is this op's answer.
                    Some(Ret::Write {
                        outcome, replayed, ..
                    }) if !*replayed || first_of_key => match outcome {
                        Outcome::Done(_) => Some(true),
                        Outcome::Rejected {
                            code: Rejection::AlreadyExists,
                            ..
                        } => Some(false),
                        // Other rejections change nothing and answer nothing about the state.
                        Outcome::Rejected { .. } => continue,
                    },
                    // A resubmission's replay: left to the replay check.
                    Some(_) => continue,
                };
                per.entry(venue_id).or_default().push(Timed {
                    call: o.invoke_ns,
                    ret: if answer.is_some() { ret } else { None },
                    op: SetOnceOp::Create(name.clone(), answer),
                });
            }
            (
                Call::Read {
                    query: Query::GetVenue { venue_id },
                    consistency: Cons::Linearizable,
                    ..
                },
                Some(Ret::Read {
                    result: QueryResult::Venue(v),
                }),
            ) => per.entry(venue_id).or_default().push(Timed {
                call: o.invoke_ns,
                ret,
                op: SetOnceOp::Read(v.as_ref().map(|v| v.name.clone())),
            }),
            _ => {}
        }
    }
    for (id, ops) in per {
        r.wgl_objects += 1;
        match wgl::check(&SetOnce, &ops, max_steps) {
            Verdict::Linearizable => {}
            Verdict::Inconclusive => r.inconclusive.push(id.to_string()),
            Verdict::NotLinearizable { deepest } => r.push(
                "wgl",
                "not-linearizable",
                format!(
                    "venue {id}: {} ops, no linearization (deepest prefix {} ops); ops: {:?}",
                    ops.len(),
                    deepest.len(),
                    ops.iter()
                        .map(|t| (t.call, t.ret, &t.op))
                        .take(40)
                        .collect::<Vec<_>>()
                ),
            ),
        }
    }
}

/// Replicas that applied the same index hold the same state: final digest reads agree per index.
pub fn digests(h: &History, r: &mut Report) {
    let mut seen: BTreeMap<u64, (String, u64)> = BTreeMap::new();
    for o in &h.ops {
        if let (
            Call::Read {
                query: Query::Digest,
                node,
                ..
            },
            Some(Ret::Read {
                result: QueryResult::Digest(d),
            }),
            Some(i),
        ) = (&o.call, &o.ret, o.index)
        {
            match seen.get(&i) {
                None => {
                    seen.insert(i, (d.clone(), node.unwrap_or(0)));
                }
                Some((d0, n0)) if d0 != d => r.push(
                    "invariants",
                    "replicas-diverge",
                    format!(
                        "at applied index {i}: node {n0} digest {d0}, node {} digest {d}",
                        node.unwrap_or(0)
                    ),
                ),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Line;
    use ticketd_store::command::Done;

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
        fn ok(&mut self, t: u64, op: u64, call: Call, ret: Ret, index: u64) {
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
}

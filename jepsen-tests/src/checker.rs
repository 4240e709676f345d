//! The checkers of a history.
//!
//! 1. **Replay** (`replay`): every write whose effect is known (an `ok` answer, or an unknown
//!    write settled by the final reads) is applied to the single-threaded [`Model`] in log-index
//!    order; every answer the cluster gave (write outcomes, and every read at the applied index
//!    it was served at, local reads included) must equal the model's. Then **real-time order**
//!    (`realtime`): if A completed before B was invoked, B's log position is after A's.
//! 2. **Per-object linearizability** (`wgl`): each venue id's ops through the WGL search, and
//!    each reserved seat's ops ([`seats`]: free, held by a hold, sold to an order).
//! 3. **Invariants** (`invariants`): every acknowledged write is present after healing, a failed
//!    write never takes effect, one idempotency key has one answer and one object, replicas that
//!    applied the same index have the same state digest.
//!
//! Unknown (`info`) ops are never treated as failed: the final reads decide whether they took
//! effect.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use ticketd_store::command::{Done, SeatMapView, Venue};
use ticketd_store::types::{
    Hold, HoldStatus, OrderStatus, ScanVerdict, SeatRef, Ticket, TicketStatus,
};
use ticketd_store::{Command, Outcome, Query, QueryResult, Rejection};

use crate::history::{
    entry_of, write_pos, Call, Cons, FaultStatus, History, Line, Op, OpType, Ret,
};
use crate::model::{
    normalize_result, revealed_log_time, same_outcome, Model, ModelReply, Now, Scope,
};
use crate::wgl::{self, SetOnce, SetOnceOp, Timed, Verdict};

pub mod seats;

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
    /// Seats checked for linearizability, each on its own ([`seats`]).
    pub wgl_seats: usize,
    /// Ops of those seats' histories (an op on several seats counts once per seat).
    pub wgl_seat_ops: usize,
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

    /// Records the WGL verdict on one object's ops; `object` names it ("venue v1").
    fn wgl_verdict<O: std::fmt::Debug>(
        &mut self,
        checker: &'static str,
        object: String,
        ops: &[Timed<O>],
        verdict: Verdict,
    ) {
        match verdict {
            Verdict::Linearizable => {}
            Verdict::Inconclusive => self.inconclusive.push(object),
            Verdict::NotLinearizable { deepest } => self.push(
                checker,
                "not-linearizable",
                format!(
                    "{object}: {} ops, no linearization (deepest prefix {} ops); ops: {:?}",
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
    sale_invariants(h, &mut r);
    realtime(h, &mut r);
    per_object_linearizability(h, &mut r, 2_000_000);
    seats::per_seat_linearizability(h, &mut r, 500_000);
    digests(h, &mut r);
    r
}

/// A write as the client meant it: every op with the same (client, key) is one logical write.
struct Logical<'a> {
    client_id: &'a str,
    key: &'a str,
    command: &'a Command,
    ops: Vec<&'a Op>,
    /// The settled answer: (effect index, outcome, op), from the first answered op.
    answer: Option<(u64, Outcome, u64)>,
}

/// Groups the history's writes by (client, key) and checks that one key got one answer.
fn logical_writes<'a>(h: &'a History, r: &mut Report) -> BTreeMap<(&'a str, &'a str), Logical<'a>> {
    let mut logical: BTreeMap<(&str, &str), Logical> = BTreeMap::new();
    for o in &h.ops {
        if let Some((client_id, key, command)) = write_parts(o) {
            let l = logical.entry((client_id, key)).or_insert(Logical {
                client_id,
                key,
                command,
                ops: Vec::new(),
                answer: None,
            });
            if l.command != command {
                // The workload reuses a key only with its command; a different one is the
                // workload's own mistake, but still checked by the model (IDEMPOTENCY_KEY_REUSED).
                continue;
            }
            l.ops.push(o);
        }
    }
    for l in logical.values_mut() {
        for o in &l.ops {
            let (
                Some(Ret::Write {
                    outcome,
                    effect_index,
                    replayed,
                }),
                Some(log_index),
            ) = (&o.ret, o.index)
            else {
                continue;
            };
            if *replayed && log_index <= *effect_index || !*replayed && log_index != *effect_index {
                r.push(
                    "invariants",
                    "bad-write-index",
                    format!(
                        "op {}: log index {log_index}, effect index {effect_index}, replayed {replayed}",
                        o.op
                    ),
                );
            }
            match &l.answer {
                None => l.answer = Some((*effect_index, outcome.clone(), o.op)),
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
    logical
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
        _ => None,
    }
}

/// What the replay knows of log time (the leader's stamp, made monotone by `apply`), by log
/// index: exact values that answers reveal, and upper bounds from the harness's wall clock.
struct Clock {
    /// (index, largest exact log time at or before it).
    lo: Vec<(u64, i64)>,
    /// (index, smallest bound at or after it).
    hi: Vec<(u64, i64)>,
}

impl Clock {
    /// The windows in which a node ran with its clock ahead: (from ms, to ms, skew ms), times
    /// since the history's start. A window opens at the fault event before the skew's start
    /// (the node restarts under the skewed clock before the start is recorded) and closes at
    /// its stop (recorded once the node runs on the true clock again), or never.
    fn skew_windows(h: &History) -> Vec<(i64, i64, i64)> {
        let mut out = Vec::new();
        let mut open: BTreeMap<u64, (i64, i64)> = BTreeMap::new();
        let mut prev = 0i64;
        for e in &h.events {
            let Line::Fault {
                time_ns,
                fault,
                phase,
                status,
                detail,
                nodes,
            } = e
            else {
                continue;
            };
            let t = (*time_ns / 1_000_000) as i64;
            if fault == "clock-skew" && *status != FaultStatus::Skipped {
                if phase == "start" {
                    // "node 2 +300s, node 3 -45s"; a node without a readable shift counts as
                    // the most a clock-skew fault shifts (15 minutes).
                    for n in nodes {
                        let skew = detail
                            .split(", ")
                            .find_map(|p| {
                                let mut w = p.split(' ');
                                (w.next() == Some("node") && w.next() == Some(&n.to_string()))
                                    .then(|| w.next())
                                    .flatten()
                                    .and_then(|x| x.trim_end_matches('s').parse::<i64>().ok())
                            })
                            .unwrap_or(900);
                        if skew > 0 {
                            open.insert(*n, (prev, skew * 1000));
                        }
                    }
                } else {
                    for n in nodes {
                        if let Some((from, skew)) = open.remove(n) {
                            out.push((from, t, skew));
                        }
                    }
                }
            }
            prev = t;
        }
        out.extend(
            open.into_values()
                .map(|(from, skew)| (from, i64::MAX, skew)),
        );
        out
    }

    fn new(h: &History, logical: &BTreeMap<(&str, &str), Logical>, r: &mut Report) -> Self {
        let mut exact: BTreeMap<u64, i64> = BTreeMap::new();
        for l in logical.values() {
            if let Some((i, out, _)) = &l.answer {
                if let Some(t) = revealed_log_time(out) {
                    exact.insert(*i, t);
                }
            }
        }
        // Log time never goes backwards.
        let mut prev: Option<(u64, i64)> = None;
        for (i, t) in &exact {
            if let Some((pi, pt)) = prev {
                if *t < pt {
                    r.push(
                        "invariants",
                        "log-time-backwards",
                        format!("log time {pt} at index {pi}, {t} at index {i}"),
                    );
                }
            }
            prev = Some((*i, *t));
        }
        let mut lo = Vec::new();
        let mut m = i64::MIN;
        for (i, t) in &exact {
            m = m.max(*t);
            lo.push((*i, m));
        }
        // An entry at or before index j was stamped before anything at j was answered, by a
        // clock at most `skew` ahead of the harness's (nodes share the host's clock).
        let mut bound: BTreeMap<u64, i64> = exact.clone();
        let start = h
            .config
            .as_ref()
            .and_then(|c| c.get("start_unix_ms"))
            .and_then(|v| v.as_i64());
        if let Some(start) = start {
            let windows = Self::skew_windows(h);
            for o in &h.ops {
                if let (OpType::Ok, Some(i), Some(c)) = (o.typ, o.index, o.complete_ns) {
                    // Stamped no later than `c`, by a clock at most its window's skew ahead.
                    let c = (c / 1_000_000) as i64;
                    let ahead = windows
                        .iter()
                        .filter(|(from, _, _)| *from <= c)
                        .map(|(_, to, skew)| (*to).min(c) + skew)
                        .max()
                        .unwrap_or(c)
                        .max(c);
                    let b = start + ahead + 2_000;
                    let e = bound.entry(i).or_insert(b);
                    *e = (*e).min(b);
                }
            }
        }
        let mut hi = Vec::new();
        let mut m = i64::MAX;
        for (i, t) in bound.iter().rev() {
            m = m.min(*t);
            hi.push((*i, m));
        }
        hi.reverse();
        Clock { lo, hi }
    }

    /// Bounds on the log time after applying index `i`: (lo, hi).
    fn at(&self, i: u64) -> (i64, i64) {
        let lo = match self.lo.partition_point(|(x, _)| *x <= i) {
            0 => i64::MIN,
            k => self.lo[k - 1].1,
        };
        let k = self.hi.partition_point(|(x, _)| *x < i);
        let hi = self.hi.get(k).map_or(i64::MAX, |(_, t)| *t);
        (lo, hi)
    }

    /// The exact log time of index `i`, when an answer revealed it.
    fn exact(&self, i: u64) -> Option<i64> {
        let (lo, hi) = self.at(i);
        (lo == hi).then_some(lo)
    }
}

/// One possible state of the model: which holds have expired depends on log times the history
/// does not reveal exactly, so the replay may carry a few candidates and drops those an answer
/// contradicts.
#[derive(Clone)]
struct Hyp {
    m: Model,
    /// Log time is at least this (learned from choices made).
    lo: i64,
}

/// At most this many candidate states are kept; more is reported as inconclusive.
const HYPOTHESES_MAX: usize = 16;

/// Every way the holds an op in `scope` depends on may have expired by an entry whose log time
/// lies in `[lo, hi]`. A hold expires once log time reaches its effective expiry, so the
/// expired holds are a prefix of the live ones by expiry; holds outside the scope cannot change
/// the op's answer, and deciding them later (at a later, no earlier, log time) loses nothing.
fn branch(hyps: Vec<Hyp>, lo: i64, hi: i64, scope: &Scope) -> Vec<Hyp> {
    let mut out: Vec<Hyp> = Vec::new();
    for mut h in hyps {
        h.lo = h.lo.max(lo);
        h.m.expire_through(h.lo);
        for e in h.m.expiries_between(h.lo, hi, scope) {
            let mut g = h.clone();
            g.m.expire_through(e);
            g.lo = e;
            out.push(g);
        }
        out.push(h);
    }
    dedup(out)
}

/// Merges equal states, keeping the weaker time bound.
fn dedup(hyps: Vec<Hyp>) -> Vec<Hyp> {
    let mut out: Vec<Hyp> = Vec::new();
    for h in hyps {
        match out.iter_mut().find(|o| o.m == h.m) {
            Some(o) => o.lo = o.lo.min(h.lo),
            None => out.push(h),
        }
    }
    out
}

/// Model replay by log index, with settling of unknown writes and the write invariants.
pub fn replay(h: &History, r: &mut Report) {
    let finals = final_venues(h);
    let logical = logical_writes(h, r);
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
    let mut unsettled = 0;
    for l in logical.values() {
        if !Model::models(l.command) {
            r.unmodelled_writes += l.ops.len();
            continue;
        }
        let all_failed = !l.ops.is_empty() && l.ops.iter().all(|o| o.typ == OpType::Fail);
        let Some((venue_id, name)) = created_venue(l.command) else {
            match &l.answer {
                Some((i, out, _)) => events.push((*i, l, Some(out.clone()))),
                None if !all_failed => unsettled += 1,
                None => {}
            }
            continue;
        };
        let fin = finals.get(venue_id);
        let created_here = matches!(fin, Some(Some(v)) if v.name == name);
        match (&l.answer, created_here) {
            (Some((i, Outcome::Done(_), op)), true) => {
                let v = fin.and_then(|v| v.as_ref()).expect("created_here");
                if v.created_index != entry_of(*i) {
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
        match (&l.answer, created_here) {
            (Some((i, out, _)), _) => events.push((*i, l, Some(out.clone()))),
            (None, true) => {
                let v = fin.and_then(|v| v.as_ref()).expect("created_here");
                r.settled_applied += 1;
                // Its place in the entry is unknown: first (an acknowledged request of the same
                // entry that it preceded has a later place).
                events.push((write_pos(v.created_index, 0), l, None));
            }
            // Unknown and not visible: not applied, or applied as a rejection (no state change).
            (None, false) => {}
        }
    }
    // A write of unknown fate (other than a venue's, which the final reads settle) leaves the
    // model without a state to compare with: the sale is then not replayed, only checked by the
    // invariants.
    let sale_replayed = unsettled == 0;
    if !sale_replayed {
        r.inconclusive.push(format!(
            "replay: {unsettled} writes of unknown fate; seat-sale answers not replayed"
        ));
        events.retain(|(_, l, _)| created_venue(l.command).is_some());
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
        .filter(|o| o.typ == OpType::Ok)
        .filter(|o| match &o.call {
            Call::Read { query, .. } => {
                sale_replayed || matches!(query, Query::GetVenue { .. } | Query::Digest)
            }
            _ => false,
        })
        .filter_map(|o| o.index.map(|i| (i, o)))
        .collect();
    reads.sort_by_key(|(i, o)| (*i, o.op));

    let clock = Clock::new(h, &logical, r);
    let mut hyps = vec![Hyp {
        m: Model::default(),
        lo: i64::MIN,
    }];
    // Where the replay stopped: past this many candidate states it cannot tell which one the
    // cluster is in, and comparing with an arbitrary one would report false anomalies.
    let mut gave_up: Option<u64> = None;
    let mut ev = events.iter().peekable();
    let mut apply_upto = |hyps: &mut Vec<Hyp>, upto: u64, r: &mut Report| -> Option<u64> {
        while let Some((i, l, observed)) = ev.next_if(|(i, _, _)| *i <= upto) {
            r.replayed_writes += 1;
            let (lo, hi) = clock.at(*i);
            let now = Now {
                exact: clock.exact(*i),
                lo,
            };
            let candidates = branch(std::mem::take(hyps), lo, hi, &Scope::of_command(l.command));
            let mut kept = Vec::new();
            let mut first: Option<ModelReply> = None;
            for mut c in candidates.iter().cloned() {
                let Some(m) = c.m.apply(
                    *i,
                    Now {
                        exact: now.exact,
                        lo: now.lo.max(c.lo),
                    },
                    l.client_id,
                    l.key,
                    l.command,
                    observed.as_ref(),
                ) else {
                    continue;
                };
                let ok = match observed {
                    Some(out) => same_outcome(&m.outcome, out) && !m.replayed,
                    None => matches!(m.outcome, Outcome::Done(_)) && !m.replayed,
                };
                first.get_or_insert(m);
                if ok {
                    kept.push(c);
                }
            }
            if kept.is_empty() {
                if let Some(m) = first {
                    r.push(
                        "replay",
                        "write-answer-differs",
                        format!(
                            "key {}/{} ({:?}) at index {i}: cluster {}, model {:?}",
                            l.client_id,
                            l.key,
                            l.command,
                            observed
                                .as_ref()
                                .map(|o| format!("{o:?}"))
                                .unwrap_or_else(|| "applied (settled by final read)".into()),
                            m
                        ),
                    );
                }
                // Go on from the first candidate as the cluster answered, as far as the model
                // can: the state it reached.
                let mut c = candidates
                    .into_iter()
                    .next()
                    .expect("one candidate at least");
                c.m.apply(*i, now, l.client_id, l.key, l.command, observed.as_ref());
                kept.push(c);
            }
            *hyps = dedup(kept);
            if hyps.len() > HYPOTHESES_MAX {
                return Some(*i);
            }
        }
        None
    };
    for (i, o) in &reads {
        gave_up = apply_upto(&mut hyps, *i, r);
        if gave_up.is_some() {
            break;
        }
        let (Call::Read { query, .. }, Some(Ret::Read { result })) = (&o.call, &o.ret) else {
            continue;
        };
        if hyps[0].m.query(query).is_none() {
            continue;
        }
        let (lo, hi) = clock.at(*i);
        let candidates = branch(std::mem::take(&mut hyps), lo, hi, &Scope::of_query(query));
        let got = normalize_result(result);
        let (matching, other): (Vec<Hyp>, Vec<Hyp>) = candidates
            .into_iter()
            .partition(|c| c.m.query(query).map(|q| normalize_result(&q)).as_ref() == Some(&got));
        r.checked_reads += 1;
        if matching.is_empty() {
            let expected = other[0].m.query(query);
            r.push(
                "replay",
                "read-differs-from-model",
                format!(
                    "op {} (process {}) read {query:?} at applied index {i}: got {result:?}, model {expected:?}",
                    o.op, o.process
                ),
            );
            hyps = other;
        } else {
            hyps = matching;
        }
        if hyps.len() > HYPOTHESES_MAX {
            gave_up = Some(*i);
            break;
        }
    }
    if gave_up.is_none() {
        gave_up = apply_upto(&mut hyps, u64::MAX, r);
    }
    if let Some(i) = gave_up {
        r.inconclusive.push(format!(
            "replay: stopped at index {i}: more than {HYPOTHESES_MAX} states fit what the history says of log time and hold expiry"
        ));
    }
}

/// The latest final read of each query, by the query's debug form.
fn final_reads(h: &History) -> BTreeMap<String, (&Query, &QueryResult)> {
    let mut out = BTreeMap::new();
    for o in &h.ops {
        if let (
            Call::Read {
                query,
                final_read: true,
                ..
            },
            Some(Ret::Read { result }),
        ) = (&o.call, &o.ret)
        {
            out.insert(format!("{query:?}"), (query, result));
        }
    }
    out
}

/// The seat-sale invariants, from answers and final reads (no model).
///
/// - **one object per idempotency key**: no hold or order id is created by two keys, no hold
///   is purchased twice;
/// - **no seat sold twice**: in log-index order of the answers, a seat is sold again only after
///   the order that had it was canceled; after healing, no seat has two valid or used tickets
///   and no GA area more than its capacity;
/// - **conservation per tier**: every seat map read adds up (available + held + sold =
///   capacity, and the per-seat states and GA counts agree with the tier counts); after
///   healing, sold = the tier's valid and used tickets and held = the tier's places in live
///   holds;
/// - **acknowledged objects present after healing**: every acknowledged hold, order (at the
///   index it was acknowledged at, with its tickets), ticket, cancel and admission;
/// - **a ticket admitted at most once**: by the answers, and by each ticket's scan record.
pub fn sale_invariants(h: &History, r: &mut Report) {
    let mut scratch = Report::default();
    let logical = logical_writes(h, &mut scratch);
    let finals = final_reads(h);
    // (hold) -> (dt, seats, key, index) of the placing answer.
    type Placed<'a> = (&'a str, Vec<SeatRef>, (&'a str, &'a str), u64);
    let mut holds: BTreeMap<&str, Placed> = BTreeMap::new();
    // (order) -> (hold, tickets, key, index).
    type Purchase<'a> = (&'a str, Vec<String>, (&'a str, &'a str), u64);
    let mut orders: BTreeMap<&str, Purchase> = BTreeMap::new();
    let mut cancels: BTreeMap<&str, u64> = BTreeMap::new();
    // (ticket) -> index of the answered refund.
    let mut refunds: BTreeMap<&str, u64> = BTreeMap::new();
    // (dt) -> index of the answered call-off.
    let mut dt_cancels: BTreeMap<&str, u64> = BTreeMap::new();
    // (ticket) -> the (key, index) of every admitting answer.
    type Admits<'a> = Vec<((&'a str, &'a str), u64)>;
    let mut admits: BTreeMap<&str, Admits> = BTreeMap::new();
    // Every answered write counts: an answer says it took effect at its index, so it is
    // present after healing whoever was told.
    for (k, l) in &logical {
        let Some((i, Outcome::Done(d), _)) = &l.answer else {
            continue;
        };
        match (l.command, d) {
            (
                Command::HoldSeats { dt_id, .. } | Command::HoldBestAvailable { dt_id, .. },
                Done::HoldPlaced { hold_id, seats, .. },
            ) => {
                if let Some((_, _, k0, i0)) = holds.get(hold_id.as_str()) {
                    r.push(
                        "invariants",
                        "object-created-twice",
                        format!(
                            "hold {hold_id} placed by key {k0:?} at {i0} and by key {k:?} at {i}"
                        ),
                    );
                }
                holds.insert(hold_id, (dt_id, seats.clone(), *k, *i));
            }
            (
                Command::ConfirmPurchase { hold_id, .. },
                Done::PurchaseConfirmed {
                    order_id,
                    ticket_ids,
                    ..
                },
            ) => {
                if let Some((_, _, k0, i0)) = orders.get(order_id.as_str()) {
                    r.push(
                        "invariants",
                        "object-created-twice",
                        format!("order {order_id} confirmed by key {k0:?} at {i0} and by key {k:?} at {i}"),
                    );
                }
                if let Some((o, _)) = orders.iter().find(|(_, p)| p.0 == hold_id.as_str()) {
                    r.push(
                        "invariants",
                        "hold-purchased-twice",
                        format!("hold {hold_id} became order {o} and order {order_id}"),
                    );
                }
                orders.insert(order_id, (hold_id, ticket_ids.clone(), *k, *i));
            }
            (Command::CancelOrder { order_id, .. }, Done::OrderCanceled { .. }) => {
                cancels.insert(order_id, *i);
            }
            (Command::RefundTicket { ticket_id, .. }, Done::TicketRefunded { .. }) => {
                refunds.insert(ticket_id, *i);
            }
            (Command::CancelDt { dt_id, .. }, Done::DtCanceled { .. }) => {
                dt_cancels.insert(dt_id, *i);
            }
            (
                Command::Scan { ticket_id, .. },
                Done::Scanned {
                    verdict: ScanVerdict::Admitted,
                    ..
                },
            ) => admits.entry(ticket_id).or_default().push((*k, *i)),
            _ => {}
        }
    }

    // A ticket admitted at most once, by the answers.
    for (t, a) in &admits {
        if a.len() > 1 {
            r.push(
                "invariants",
                "ticket-admitted-twice",
                format!("ticket {t} admitted by {a:?}"),
            );
        }
    }

    // No seat sold twice, in log-index order: sales (confirmations) and returns (an order
    // canceled, a ticket refunded, a dt called off).
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    enum Ev<'a> {
        Sale(&'a str),
        Cancel(&'a str),
        Refund(&'a str),
        CallOff(&'a str),
    }
    let mut timeline: Vec<(u64, Ev)> = Vec::new();
    for (o, (_, _, _, i)) in &orders {
        timeline.push((*i, Ev::Sale(o)));
    }
    for (o, i) in &cancels {
        timeline.push((*i, Ev::Cancel(o)));
    }
    for (t, i) in &refunds {
        timeline.push((*i, Ev::Refund(t)));
    }
    for (d, i) in &dt_cancels {
        timeline.push((*i, Ev::CallOff(d)));
    }
    timeline.sort();
    // The seat a ticket `{order}-{k}` is for: the k-th seat of the order's hold.
    let seat_of_ticket = |t: &str| -> Option<(&str, &str, u32)> {
        let (o, k) = t.rsplit_once('-')?;
        let k: usize = k.parse().ok()?;
        let (o, (hold, ..)) = orders.get_key_value(o)?;
        let (dt, seats, ..) = holds.get(hold)?;
        match seats.get(k.checked_sub(1)?)? {
            SeatRef::Seat(s) => Some((*o, *dt, *s)),
            SeatRef::Ga(_) => None,
        }
    };
    let mut owner: BTreeMap<(&str, u32), &str> = BTreeMap::new();
    for (i, ev) in timeline {
        let o = match ev {
            Ev::Sale(o) | Ev::Cancel(o) => o,
            Ev::Refund(t) => {
                if let Some((o, dt, s)) = seat_of_ticket(t) {
                    if owner.get(&(dt, s)) == Some(&o) {
                        owner.remove(&(dt, s));
                    }
                }
                continue;
            }
            Ev::CallOff(d) => {
                owner.retain(|(dt, _), _| *dt != d);
                continue;
            }
        };
        let sale = matches!(ev, Ev::Sale(_));
        let Some((hold, ..)) = orders.get(o) else {
            continue;
        };
        let Some((dt, seats, ..)) = holds.get(hold) else {
            continue;
        };
        for s in seats {
            let SeatRef::Seat(s) = s else { continue };
            if sale {
                if let Some(prev) = owner.insert((dt, *s), o) {
                    r.push(
                        "invariants",
                        "seat-sold-twice",
                        format!("{dt} seat {s}: sold to order {prev}, then to order {o} at index {i} without a cancel between"),
                    );
                }
            } else if owner.get(&(*dt, *s)) == Some(&o) {
                owner.remove(&(*dt, *s));
            }
        }
    }

    // Every seat map read adds up.
    for o in &h.ops {
        if let Some(Ret::Read {
            result: QueryResult::SeatMap(Some(m)),
        }) = &o.ret
        {
            if let Some(e) = seat_map_conservation(m) {
                r.push(
                    "invariants",
                    "conservation",
                    format!(
                        "op {} read of {} at index {:?}: {e}",
                        o.op, m.dt_id, o.index
                    ),
                );
            }
        }
    }

    // After healing.
    let mut final_tickets: Vec<&Ticket> = Vec::new();
    let mut final_live: Vec<&Hold> = Vec::new();
    let mut unread = 0;
    for (q, res) in finals.values() {
        match (q, res) {
            (Query::GetTicket { .. }, QueryResult::Ticket(Some(t))) => final_tickets.push(t),
            (Query::GetHold { .. }, QueryResult::Hold(Some(hd)))
                if hd.status == HoldStatus::Live =>
            {
                final_live.push(hd)
            }
            _ => {}
        }
    }
    let final_of = |q: &Query| finals.get(&format!("{q:?}")).map(|x| x.1);
    for (hold, (_, _, _, i)) in &holds {
        match final_of(&Query::GetHold {
            hold_id: hold.to_string(),
        }) {
            Some(QueryResult::Hold(Some(_))) => {}
            Some(QueryResult::Hold(None)) => r.push(
                "invariants",
                "acknowledged-hold-lost",
                format!("hold {hold} acknowledged at index {i}; after healing it does not exist"),
            ),
            Some(_) => {}
            None => unread += 1,
        }
    }
    for (order, (_, tickets, _, i)) in &orders {
        match final_of(&Query::GetOrder {
            order_id: order.to_string(),
        }) {
            Some(QueryResult::Order(Some(v))) => {
                if v.order.created_index != entry_of(*i) || &v.order.ticket_ids != tickets {
                    r.push(
                        "invariants",
                        "acknowledged-order-moved",
                        format!(
                            "order {order} confirmed at index {i} with tickets {tickets:?}; after healing it is from index {} with {:?}",
                            v.order.created_index, v.order.ticket_ids
                        ),
                    );
                }
                if let Some(ci) = cancels.get(order) {
                    if v.order.status != OrderStatus::Canceled {
                        r.push(
                            "invariants",
                            "acknowledged-cancel-lost",
                            format!("order {order} cancel acknowledged at index {ci}; after healing it is {:?}", v.order.status),
                        );
                    }
                }
            }
            Some(QueryResult::Order(None)) => r.push(
                "invariants",
                "acknowledged-order-lost",
                format!("order {order} confirmed at index {i}; after healing it does not exist"),
            ),
            Some(_) => {}
            None => unread += 1,
        }
        for t in tickets {
            match final_of(&Query::GetTicket {
                ticket_id: t.clone(),
            }) {
                Some(QueryResult::Ticket(Some(_))) => {}
                Some(QueryResult::Ticket(None)) => r.push(
                    "invariants",
                    "acknowledged-ticket-lost",
                    format!("ticket {t} of order {order} (index {i}) does not exist after healing"),
                ),
                Some(_) => {}
                None => unread += 1,
            }
        }
    }
    // A ticket as the final reads show it.
    let final_ticket = |t: &str| match final_of(&Query::GetTicket {
        ticket_id: t.to_string(),
    }) {
        Some(QueryResult::Ticket(Some(tk))) => Some(tk),
        _ => None,
    };
    for (t, a) in &admits {
        if let Some(tk) = final_ticket(t) {
            if !matches!(tk.status, TicketStatus::Used { .. }) {
                r.push(
                    "invariants",
                    "acknowledged-admission-lost",
                    format!(
                        "ticket {t} admitted at {a:?}; after healing it is {:?}",
                        tk.status
                    ),
                );
            }
        }
    }
    // An answered refund stays a refund; a called-off dt keeps no valid ticket and no live hold.
    for (t, i) in &refunds {
        if let Some(tk) = final_ticket(t) {
            if !matches!(tk.status, TicketStatus::Refunded { .. }) {
                r.push(
                    "invariants",
                    "acknowledged-refund-lost",
                    format!(
                        "ticket {t} refund acknowledged at {i}; after healing it is {:?}",
                        tk.status
                    ),
                );
            }
        }
    }
    for (d, i) in &dt_cancels {
        for t in final_tickets.iter().filter(|t| t.dt_id == *d) {
            if t.status == TicketStatus::Valid {
                r.push(
                    "invariants",
                    "valid-ticket-after-call-off",
                    format!(
                        "{d} called off at {i}; after healing ticket {} is still valid",
                        t.ticket_id
                    ),
                );
            }
        }
        for hd in final_live.iter().filter(|hd| hd.dt_id == *d) {
            r.push(
                "invariants",
                "live-hold-after-call-off",
                format!(
                    "{d} called off at {i}; after healing hold {} is live",
                    hd.hold_id
                ),
            );
        }
    }
    // Money owed back: an order's refunded amount is the price and fee of its tickets canceled
    // or refunded, no more, no less.
    for (q, res) in finals.values() {
        let (Query::GetOrder { order_id }, QueryResult::Order(Some(v))) = (q, res) else {
            continue;
        };
        let owed: i64 = v
            .tickets
            .iter()
            .filter(|t| {
                matches!(
                    t.status,
                    TicketStatus::Canceled { .. } | TicketStatus::Refunded { .. }
                )
            })
            .map(|t| t.price_minor + t.fee_minor)
            .sum();
        if v.order.refunded_minor != owed {
            r.push(
                "invariants",
                "refund-ledger-differs",
                format!(
                    "order {order_id}: refunded {} after healing, its canceled and refunded tickets come to {owed}",
                    v.order.refunded_minor
                ),
            );
        }
    }
    // A ticket admitted at most once, by its own scan record.
    for t in &final_tickets {
        let n = t
            .scans
            .iter()
            .filter(|s| s.verdict == ScanVerdict::Admitted)
            .count();
        if n > 1 {
            r.push(
                "invariants",
                "ticket-admitted-twice",
                format!("ticket {}: {n} admitting scans in its record", t.ticket_id),
            );
        }
    }
    // No seat with two valid or used tickets; no GA area over capacity.
    let mut seat_tickets: BTreeMap<(&str, SeatRef), Vec<&str>> = BTreeMap::new();
    for t in &final_tickets {
        if matches!(t.status, TicketStatus::Valid | TicketStatus::Used { .. }) {
            seat_tickets
                .entry((&t.dt_id, t.seat))
                .or_default()
                .push(&t.ticket_id);
        }
    }
    for ((dt, seat), ts) in &seat_tickets {
        let cap = match seat {
            SeatRef::Seat(_) => 1,
            SeatRef::Ga(a) => match final_of(&Query::SeatMap {
                dt_id: dt.to_string(),
            }) {
                Some(QueryResult::SeatMap(Some(m))) => {
                    m.ga.get(*a as usize).map_or(u32::MAX, |g| g.capacity) as usize
                }
                _ => usize::MAX,
            },
        };
        if ts.len() > cap {
            r.push(
                "invariants",
                "seat-sold-twice",
                format!("after healing {dt} {seat:?} has {} valid or used tickets (capacity {cap}): {ts:?}", ts.len()),
            );
        }
    }
    // Final seat maps agree with the final tickets and live holds, per tier.
    if unread == 0 {
        for (q, res) in finals.values() {
            let (Query::SeatMap { dt_id }, QueryResult::SeatMap(Some(m))) = (q, res) else {
                continue;
            };
            for t in &m.tiers {
                let sold = final_tickets
                    .iter()
                    .filter(|x| &x.dt_id == dt_id && x.tier_id == t.tier_id)
                    .filter(|x| matches!(x.status, TicketStatus::Valid | TicketStatus::Used { .. }))
                    .count() as u32;
                let tier_index = m.tiers.iter().position(|x| x.tier_id == t.tier_id);
                let held = final_live
                    .iter()
                    .filter(|x| &x.dt_id == dt_id)
                    .flat_map(|x| &x.items)
                    .filter(|it| Some(it.tier as usize) == tier_index)
                    .count() as u32;
                if t.sold != sold || t.held != held {
                    r.push(
                        "invariants",
                        "conservation",
                        format!(
                            "after healing {dt_id} tier {}: seat map says held {} sold {}, live holds have {held}, valid and used tickets {sold}",
                            t.tier_id, t.held, t.sold
                        ),
                    );
                }
            }
        }
    } else {
        r.inconclusive.push(format!(
            "sale: {unread} objects not read back after healing; final per-tier totals not compared"
        ));
    }
}

/// Why a seat map does not add up, if it does not.
pub fn seat_map_conservation(m: &SeatMapView) -> Option<String> {
    let seat_state =
        |s: usize| (m.seat_states.get(s / 4).copied().unwrap_or(0) >> (2 * (s % 4))) & 3;
    for (k, t) in m.tiers.iter().enumerate() {
        if t.available + t.held + t.sold != t.capacity {
            return Some(format!(
                "tier {}: available {} + held {} + sold {} != capacity {}",
                t.tier_id, t.available, t.held, t.sold, t.capacity
            ));
        }
        // Per-seat states of the tier's seats.
        let (mut free, mut busy, mut seats) = (0u32, 0u32, 0u32);
        for (first, len, tier) in &m.seat_tiers {
            if *tier as usize != k {
                continue;
            }
            for s in *first..first + len {
                seats += 1;
                match seat_state(s as usize) {
                    0 => free += 1,
                    1 | 2 => busy += 1,
                    _ => {
                        return Some(format!(
                            "tier {}: seat {s} is marked not for sale",
                            t.tier_id
                        ))
                    }
                }
            }
        }
        let (mut ga_cap, mut ga_free) = (0u32, 0u32);
        for g in &m.ga {
            if g.tier_id.as_deref() == Some(t.tier_id.as_str()) {
                ga_cap += g.capacity;
                ga_free += g.available;
            }
        }
        if seats + ga_cap != t.capacity
            || free + ga_free != t.available
            || busy + (ga_cap - ga_free.min(ga_cap)) != t.held + t.sold
        {
            return Some(format!(
                "tier {}: counts (capacity {}, available {}, held {}, sold {}) disagree with its seats ({seats} seats, {free} free, {busy} held or sold) and GA places ({ga_cap}, {ga_free} free)",
                t.tier_id, t.capacity, t.available, t.held, t.sold
            ));
        }
    }
    None
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
        let verdict = wgl::check(&SetOnce, &ops, max_steps);
        r.wgl_verdict("wgl", format!("venue {id}"), &ops, verdict);
    }
}

/// Replicas that applied the same index hold the same state: final digest reads agree per index.
pub fn digests(h: &History, r: &mut Report) {
    let mut seen: BTreeMap<u64, (String, u64)> = BTreeMap::new();
    // A replica that gave no digest after healing cannot be shown equal.
    for o in &h.ops {
        if let Call::Read {
            query: Query::Digest,
            node,
            final_read: true,
            ..
        } = &o.call
        {
            if o.typ != OpType::Ok {
                r.push(
                    "invariants",
                    "replica-digests-missing",
                    format!(
                        "after healing, no digest from node {}: {}",
                        node.map_or("(none)".to_string(), |n| n.to_string()),
                        o.error.as_deref().unwrap_or("unanswered")
                    ),
                );
            }
        }
    }
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
    use crate::history::{read_pos, Line};
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

    /// Seat-sale histories as a correct cluster would produce them (the real state machine
    /// answers every op), to be broken by the tests.
    mod sale {
        use super::*;
        use crate::workload::{dt_id, sale_setup, SETUP_CLIENT};
        use ticketd_store::command::GaPick;
        use ticketd_store::{Machine, Request, WriteSet};

        pub(super) struct Real {
            pub m: Machine,
            pub index: u64,
            pub t: u64,
            pub now_ms: i64,
            pub lines: Vec<Line>,
            pub op: u64,
        }

        impl Real {
            /// A machine with the sale's setup (1 dt, 1 client) applied and recorded.
            pub fn new() -> Self {
                let mut r = Real {
                    m: Machine::default(),
                    index: 0,
                    t: 0,
                    now_ms: 1_000_000,
                    lines: vec![Line::Meta {
                        time_ns: 0,
                        seed: 1,
                        config: serde_json::json!({ "start_unix_ms": 1_000_000 }),
                    }],
                    op: 0,
                };
                for (key, cmd) in sale_setup(1, 1) {
                    r.write_as(SETUP_CLIENT, &key, cmd);
                }
                r
            }

            fn tick(&mut self) -> u64 {
                self.t += 1_000_000;
                self.now_ms = self.now_ms.max(1_000_000 + (self.t / 1_000_000) as i64);
                self.t
            }

            pub fn write_as(&mut self, client: &str, key: &str, cmd: Command) -> Outcome {
                self.index += 1;
                let t0 = self.tick();
                let reply = self.m.apply(
                    self.index,
                    &Request {
                        client_id: client.into(),
                        idempotency_key: key.into(),
                        stamped_at_ms: self.now_ms,
                        command: cmd.clone(),
                    },
                    &mut WriteSet::new(),
                );
                let call = Call::Write {
                    client_id: client.into(),
                    key: key.into(),
                    command: cmd,
                    via: None,
                };
                self.op += 1;
                self.lines.push(Line::Invoke {
                    time_ns: t0,
                    process: 0,
                    op: self.op,
                    f: "write".into(),
                    call: call.clone(),
                });
                let t1 = self.tick();
                self.lines.push(Line::Ok {
                    time_ns: t1,
                    process: 0,
                    op: self.op,
                    f: "write".into(),
                    call,
                    ret: Ret::from_reply(&reply),
                    index: write_pos(self.index, 0),
                });
                reply.outcome
            }

            pub fn write(&mut self, key: &str, cmd: Command) -> Outcome {
                self.write_as("c", key, cmd)
            }

            pub fn read(&mut self, query: Query, final_read: bool) -> QueryResult {
                let result = self.m.query(&query);
                let call = Call::Read {
                    query,
                    consistency: Cons::Linearizable,
                    node: None,
                    final_read,
                };
                let t0 = self.tick();
                self.op += 1;
                self.lines.push(Line::Invoke {
                    time_ns: t0,
                    process: 0,
                    op: self.op,
                    f: "read".into(),
                    call: call.clone(),
                });
                let t1 = self.tick();
                self.lines.push(Line::Ok {
                    time_ns: t1,
                    process: 0,
                    op: self.op,
                    f: "read".into(),
                    call,
                    ret: Ret::Read {
                        result: result.clone(),
                    },
                    index: read_pos(self.index),
                });
                result
            }

            /// The final reads the runner makes.
            pub fn finish(&mut self) {
                let lines = self.lines.clone();
                for q in crate::workload::final_queries(&lines) {
                    self.read(q, true);
                }
            }

            pub fn check(&self) -> Report {
                check(&History::from_lines(self.lines.clone()).unwrap())
            }
        }

        pub(super) fn hold(id: &str, seats: &[u32]) -> Command {
            Command::HoldSeats {
                hold_id: id.into(),
                dt_id: dt_id(0),
                user_id: "u0-0".into(),
                seats: seats.to_vec(),
                ga: Vec::new(),
                hold_ttl_ms: None,
            }
        }

        pub(super) fn hold_ga(id: &str, n: u32) -> Command {
            Command::HoldSeats {
                hold_id: id.into(),
                dt_id: dt_id(0),
                user_id: "u0-1".into(),
                seats: Vec::new(),
                ga: vec![GaPick {
                    area_id: "floor".into(),
                    quantity: n,
                }],
                hold_ttl_ms: None,
            }
        }

        /// Holds, pays and confirms; returns the ticket ids.
        pub(super) fn buy(r: &mut Real, n: &str, hold_cmd: Command) -> Vec<String> {
            let (user, hold_id) = match &hold_cmd {
                Command::HoldSeats {
                    user_id, hold_id, ..
                }
                | Command::HoldBestAvailable {
                    user_id, hold_id, ..
                } => (user_id.clone(), hold_id.clone()),
                _ => unreachable!("a hold"),
            };
            let out = r.write(&format!("kh{n}"), hold_cmd);
            let Outcome::Done(Done::HoldPlaced { total_minor, .. }) = out else {
                panic!("hold refused: {out:?}")
            };
            r.write(
                &format!("kp{n}"),
                Command::StartPayment {
                    hold_id: hold_id.clone(),
                    user_id: user,
                    payment_ref: format!("p{n}"),
                    amount_minor: total_minor,
                    currency: "EUR".into(),
                },
            );
            let Outcome::Done(Done::PurchaseConfirmed { ticket_ids, .. }) = r.write(
                &format!("kc{n}"),
                Command::ConfirmPurchase {
                    hold_id,
                    order_id: format!("o{n}"),
                    payment_ref: format!("p{n}"),
                    amount_minor: total_minor,
                    currency: "EUR".into(),
                    secret_seed: vec![7; 16],
                },
            ) else {
                panic!("purchase refused")
            };
            ticket_ids
        }

        pub(super) fn scan(r: &mut Real, key: &str, ticket: &str, gate: &str) -> Outcome {
            r.write(
                key,
                Command::Scan {
                    ticket_id: ticket.into(),
                    dt_id: dt_id(0),
                    gate: gate.into(),
                },
            )
        }

        /// A sale with contention, a release, purchases, cancels (one refused: a ticket was
        /// used), scans at two gates (one of a canceled ticket), a seat sold again after its
        /// order was canceled.
        pub(super) fn clean() -> Real {
            let mut r = Real::new();
            let t1 = buy(&mut r, "1", hold("h1", &[0, 1]));
            r.read(Query::SeatMap { dt_id: dt_id(0) }, false);
            // Contention on seat 1: refused.
            r.write("kcont", hold("hx", &[1, 2]));
            r.write("kh2", hold("h2", &[2]));
            r.write(
                "kr2",
                Command::ReleaseHold {
                    hold_id: "h2".into(),
                    user_id: "u0-0".into(),
                },
            );
            let t3 = buy(&mut r, "3", hold_ga("h3", 2));
            scan(&mut r, "ks1", &t1[0], "g1");
            scan(&mut r, "ks2", &t1[0], "g2");
            let cancel = |r: &mut Real, key: &str, order: &str, user: &str| {
                r.write(
                    key,
                    Command::CancelOrder {
                        order_id: order.into(),
                        user_id: user.into(),
                        reason: "x".into(),
                    },
                )
            };
            cancel(&mut r, "kq1", "o1", "u0-0");
            cancel(&mut r, "kq3", "o3", "u0-1");
            scan(&mut r, "ks3", &t3[0], "g1");
            buy(&mut r, "5", hold("h5", &[9]));
            cancel(&mut r, "kq5", "o5", "u0-0");
            // Seat 9 is free again and sold to someone else.
            buy(&mut r, "4", hold("h4", &[9]));
            r.read(
                Query::GetOrder {
                    order_id: "o1".into(),
                },
                false,
            );
            r
        }
        /// [`clean`], then the money and message paths: a ticket refunded (and refused a second
        /// time), notifications marked sent (one twice, one unknown), the dt called off with four
        /// open orders (one partly refunded, one with a used ticket), a void reminder refused, a
        /// hold and a scan after.
        pub(super) fn clean_with_call_off() -> Real {
            let mut r = clean();
            let t6 = buy(&mut r, "6", hold("h6", &[10, 11]));
            let e6 = r.index;
            let refund = |r: &mut Real, key: &str, t: &str| {
                r.write(
                    key,
                    Command::RefundTicket {
                        ticket_id: t.into(),
                        user_id: "u0-0".into(),
                    },
                )
            };
            refund(&mut r, "kf6", &t6[0]);
            refund(&mut r, "kf6b", &t6[0]);
            let sent = |r: &mut Real, key: &str, id: String| {
                r.write(
                    key,
                    Command::MarkNotificationSent {
                        notification_id: id,
                        channel: "email".into(),
                    },
                )
            };
            sent(&mut r, "kn1", format!("n-{e6}-1"));
            sent(&mut r, "kn1b", format!("n-{e6}-1"));
            sent(&mut r, "kn9", "n-999999-1".into());
            let t7 = buy(&mut r, "7", hold("h7", &[12]));
            let e7 = r.index;
            r.write("kh8", hold("h8", &[13]));
            let out = r.write(
                "kcd",
                Command::CancelDt {
                    dt_id: dt_id(0),
                    reason: "called off".into(),
                },
            );
            assert!(
                matches!(
                    out,
                    Outcome::Done(Done::DtCanceled {
                        holds_released: 1,
                        orders_canceled: 4,
                        ..
                    })
                ),
                "{out:?}"
            );
            let e_cd = r.index;
            // The call-off cancels o1 (one ticket used), o4, o6 and o7 in id order, each with a
            // cancellation and a refund notice: o6's refund notice is the sixth; o7's reminder is
            // void.
            sent(&mut r, "kn2", format!("n-{e_cd}-6"));
            sent(&mut r, "kn3", format!("n-{e7}-3"));
            r.write("kh9", hold("h9", &[20]));
            scan(&mut r, "ks7", &t7[0], "g1");
            r.read(
                Query::GetOrder {
                    order_id: "o6".into(),
                },
                false,
            );
            r.read(Query::SeatMap { dt_id: dt_id(0) }, false);
            r
        }
    }

    use crate::workload::dt_id;
    use sale::{buy, clean, clean_with_call_off, hold, scan, Real};

    fn has(r: &Report, kind: &str) -> bool {
        r.anomalies.iter().any(|a| a.kind == kind)
    }

    /// Replaces the answer of the write with key `key`.
    fn set_outcome(lines: &mut [Line], key: &str, f: impl Fn(&mut Outcome)) {
        for l in lines {
            if let Line::Ok {
                call: Call::Write { key: k, .. },
                ret: Ret::Write { outcome, .. },
                ..
            } = l
            {
                if k == key {
                    f(outcome);
                }
            }
        }
    }

    /// Replaces the answer of every final read of `query`.
    fn set_final(lines: &mut [Line], query: &Query, result: QueryResult) {
        for l in lines {
            if let Line::Ok {
                call:
                    Call::Read {
                        query: q,
                        final_read: true,
                        ..
                    },
                ret: Ret::Read { result: res },
                ..
            } = l
            {
                if q == query {
                    *res = result.clone();
                }
            }
        }
    }

    #[test]
    fn a_clean_sale_has_no_anomaly_and_is_replayed() {
        let mut r = clean();
        r.finish();
        let rep = r.check();
        assert!(rep.anomalies.is_empty(), "{:#?}", rep.anomalies);
        assert!(rep.inconclusive.is_empty(), "{:?}", rep.inconclusive);
        assert!(rep.replayed_writes > 20, "{rep:?}");
        assert!(rep.checked_reads > 5, "{rep:?}");
        assert_eq!(rep.unmodelled_writes, 0);
    }

    #[test]
    fn a_clean_call_off_with_refunds_and_notifications_is_replayed() {
        let mut r = clean_with_call_off();
        r.finish();
        let rep = r.check();
        assert!(rep.anomalies.is_empty(), "{:#?}", rep.anomalies);
        assert!(rep.inconclusive.is_empty(), "{:?}", rep.inconclusive);
        assert_eq!(rep.unmodelled_writes, 0);
        let answers: Vec<String> = r
            .lines
            .iter()
            .filter_map(|l| match l {
                Line::Ok {
                    call: Call::Write { key, .. },
                    ret: Ret::Write { outcome, .. },
                    ..
                } => Some(format!("{key}: {outcome:?}")),
                _ => None,
            })
            .collect();
        let of = |k: &str| {
            answers
                .iter()
                .find(|a| a.starts_with(&format!("{k}: ")))
                .cloned()
                .unwrap_or_default()
        };
        assert!(of("kf6").contains("TicketRefunded"), "{answers:#?}");
        assert!(of("kf6b").contains("TicketNotRefundable"), "{answers:#?}");
        assert!(of("kn1").contains("NotificationSent"), "{answers:#?}");
        assert!(of("kn1b").contains("NotificationSent"), "{answers:#?}");
        assert!(of("kn9").contains("NotFound"), "{answers:#?}");
        assert!(of("kn2").contains("NotificationSent"), "{answers:#?}");
        assert!(of("kn3").contains("InvalidState"), "{answers:#?}");
        assert!(of("kh9").contains("DtCanceled"), "{answers:#?}");
    }

    #[test]
    fn a_notification_numbered_otherwise_is_caught_by_replay() {
        // A replica that numbered the call-off's notices in another order answers the mark of
        // a void reminder as sent.
        let mut r = clean_with_call_off();
        r.finish();
        let mut lines = r.lines.clone();
        set_outcome(&mut lines, "kn3", |o| {
            *o = Outcome::Done(Done::NotificationSent {
                notification_id: "x".into(),
            })
        });
        let rep = check(&History::from_lines(lines).unwrap());
        assert!(has(&rep, "write-answer-differs"), "{:#?}", rep.anomalies);
    }

    #[test]
    fn a_lost_refund_a_valid_ticket_after_a_call_off_and_a_wrong_ledger_are_caught() {
        let mut r = clean_with_call_off();
        r.finish();
        let mut lines = r.lines.clone();
        // o6's first ticket: refunded, then shown valid; o7's: called off, then shown valid.
        for t in ["o6-1", "o7-1"] {
            let q = Query::GetTicket {
                ticket_id: t.into(),
            };
            let QueryResult::Ticket(Some(mut tk)) = r.m.query(&q) else {
                panic!("ticket {t}")
            };
            tk.status = TicketStatus::Valid;
            set_final(&mut lines, &q, QueryResult::Ticket(Some(tk)));
        }
        let q = Query::GetOrder {
            order_id: "o6".into(),
        };
        let QueryResult::Order(Some(mut v)) = r.m.query(&q) else {
            panic!("order")
        };
        v.order.refunded_minor += 1;
        set_final(&mut lines, &q, QueryResult::Order(Some(v)));
        let rep = check(&History::from_lines(lines).unwrap());
        for kind in [
            "acknowledged-refund-lost",
            "valid-ticket-after-call-off",
            "refund-ledger-differs",
        ] {
            assert!(has(&rep, kind), "{kind}: {:#?}", rep.anomalies);
        }
    }

    #[test]
    fn a_replica_without_a_digest_after_healing_is_caught() {
        let mut r = clean();
        r.finish();
        let mut lines = r.lines.clone();
        let call = Call::Read {
            query: Query::Digest,
            consistency: Cons::Local,
            node: Some(2),
            final_read: true,
        };
        lines.push(Line::Invoke {
            time_ns: 1,
            process: 9,
            op: 999_999,
            f: "read".into(),
            call: call.clone(),
        });
        lines.push(Line::Fail {
            time_ns: 2,
            process: 9,
            op: 999_999,
            f: "read".into(),
            call,
            error: "digest of entry 40: unreachable".into(),
        });
        let rep = check(&History::from_lines(lines).unwrap());
        assert!(has(&rep, "replica-digests-missing"), "{:#?}", rep.anomalies);
    }

    #[test]
    fn a_seat_sold_twice_is_caught() {
        let mut r = Real::new();
        buy(&mut r, "1", hold("h1", &[3]));
        // The cluster placed a second hold on the sold seat and sold it again: its answers
        // come from a machine that never saw the first sale.
        let mut r2 = Real::new();
        let setup = r2.lines.len();
        (r2.index, r2.t, r2.now_ms, r2.op) = (r.index, r.t, r.now_ms, r.op);
        buy(&mut r2, "2", hold("h2", &[3]));
        let mut lines = r.lines.clone();
        lines.extend(r2.lines.into_iter().skip(setup));
        let rep = check(&History::from_lines(lines).unwrap());
        assert!(has(&rep, "seat-sold-twice"), "{:#?}", rep.anomalies);
        assert!(has(&rep, "write-answer-differs"), "{:#?}", rep.anomalies);
    }

    #[test]
    fn two_valid_tickets_on_one_seat_after_healing_are_caught() {
        let mut r = clean();
        r.finish();
        let mut lines = r.lines.clone();
        // o5's canceled ticket on seat 9 valid again next to o4's.
        let q = Query::GetTicket {
            ticket_id: "o5-1".into(),
        };
        let QueryResult::Ticket(Some(mut t)) = r.m.query(&q) else {
            panic!("ticket")
        };
        t.status = TicketStatus::Valid;
        set_final(&mut lines, &q, QueryResult::Ticket(Some(t)));
        let rep = check(&History::from_lines(lines).unwrap());
        assert!(has(&rep, "seat-sold-twice"), "{:#?}", rep.anomalies);
    }

    #[test]
    fn a_seat_map_that_does_not_add_up_is_caught() {
        let mut r = clean();
        r.finish();
        let mut lines = r.lines.clone();
        for l in &mut lines {
            if let Line::Ok {
                ret:
                    Ret::Read {
                        result: QueryResult::SeatMap(Some(m)),
                    },
                ..
            } = l
            {
                m.tiers[0].held += 1;
            }
        }
        let rep = check(&History::from_lines(lines).unwrap());
        assert!(has(&rep, "conservation"), "{:#?}", rep.anomalies);
    }

    #[test]
    fn final_totals_that_disagree_with_tickets_are_caught() {
        let mut r = clean();
        r.finish();
        let mut lines = r.lines.clone();
        let q = Query::SeatMap {
            dt_id: crate::workload::dt_id(0),
        };
        let QueryResult::SeatMap(Some(mut m)) = r.m.query(&q) else {
            panic!("seat map")
        };
        // One more sold and one less available: adds up, but no ticket is behind it.
        m.tiers[1].sold += 1;
        m.tiers[1].available -= 1;
        let st = &mut m.seat_states[(crate::workload::SECTION_A / 4) as usize];
        *st = (*st & !3) | 2;
        set_final(&mut lines, &q, QueryResult::SeatMap(Some(m)));
        let rep = check(&History::from_lines(lines).unwrap());
        assert!(has(&rep, "conservation"), "{:#?}", rep.anomalies);
    }

    #[test]
    fn an_acknowledged_order_lost_after_healing_is_caught() {
        let mut r = clean();
        r.finish();
        let mut lines = r.lines.clone();
        set_final(
            &mut lines,
            &Query::GetOrder {
                order_id: "o4".into(),
            },
            QueryResult::Order(None),
        );
        set_final(
            &mut lines,
            &Query::GetTicket {
                ticket_id: "o4-1".into(),
            },
            QueryResult::Ticket(None),
        );
        let rep = check(&History::from_lines(lines).unwrap());
        assert!(has(&rep, "acknowledged-order-lost"), "{:#?}", rep.anomalies);
        assert!(
            has(&rep, "acknowledged-ticket-lost"),
            "{:#?}",
            rep.anomalies
        );
    }

    #[test]
    fn an_acknowledged_cancel_or_admission_lost_after_healing_is_caught() {
        let mut r = clean();
        r.finish();
        let mut lines = r.lines.clone();
        let q = Query::GetOrder {
            order_id: "o3".into(),
        };
        let QueryResult::Order(Some(mut v)) = r.m.query(&q) else {
            panic!("order")
        };
        v.order.status = OrderStatus::Confirmed;
        set_final(&mut lines, &q, QueryResult::Order(Some(v)));
        let q = Query::GetTicket {
            ticket_id: "o1-1".into(),
        };
        let QueryResult::Ticket(Some(mut t)) = r.m.query(&q) else {
            panic!("ticket")
        };
        t.status = TicketStatus::Valid;
        set_final(&mut lines, &q, QueryResult::Ticket(Some(t)));
        let rep = check(&History::from_lines(lines).unwrap());
        assert!(
            has(&rep, "acknowledged-cancel-lost"),
            "{:#?}",
            rep.anomalies
        );
        assert!(
            has(&rep, "acknowledged-admission-lost"),
            "{:#?}",
            rep.anomalies
        );
    }

    #[test]
    fn one_object_from_two_keys_is_caught() {
        let mut r = clean();
        // A second key's hold answered with h4's id.
        r.write("kdup", hold("h6", &[30]));
        r.finish();
        let mut lines = r.lines.clone();
        set_outcome(&mut lines, "kdup", |o| {
            if let Outcome::Done(Done::HoldPlaced { hold_id, .. }) = o {
                *hold_id = "h4".into();
            }
        });
        let rep = check(&History::from_lines(lines).unwrap());
        assert!(has(&rep, "object-created-twice"), "{:#?}", rep.anomalies);
    }

    #[test]
    fn a_ticket_admitted_twice_is_caught() {
        let mut r = clean();
        r.finish();
        let mut lines = r.lines.clone();
        // The second gate was let in too.
        set_outcome(&mut lines, "ks2", |o| {
            if let Outcome::Done(Done::Scanned { verdict, .. }) = o {
                *verdict = ScanVerdict::Admitted;
            }
        });
        let rep = check(&History::from_lines(lines).unwrap());
        assert!(has(&rep, "ticket-admitted-twice"), "{:#?}", rep.anomalies);
        assert!(has(&rep, "write-answer-differs"), "{:#?}", rep.anomalies);
        // And by the ticket's own record.
        let mut r = clean();
        r.finish();
        let mut lines = r.lines.clone();
        let q = Query::GetTicket {
            ticket_id: "o1-1".into(),
        };
        let QueryResult::Ticket(Some(mut t)) = r.m.query(&q) else {
            panic!("ticket")
        };
        for s in &mut t.scans {
            s.verdict = ScanVerdict::Admitted;
        }
        set_final(&mut lines, &q, QueryResult::Ticket(Some(t)));
        let rep = check(&History::from_lines(lines).unwrap());
        assert!(has(&rep, "ticket-admitted-twice"), "{:#?}", rep.anomalies);
    }

    #[test]
    fn a_stale_seat_map_is_caught_by_replay() {
        let mut r = Real::new();
        r.write("kh1", hold("h1", &[5]));
        let q = Query::SeatMap { dt_id: dt_id(0) };
        r.read(q.clone(), false);
        let mut lines = r.lines.clone();
        // The read claims the hold's index but shows seat 5 free.
        if let Some(Line::Ok {
            ret: Ret::Read {
                result: QueryResult::SeatMap(Some(m)),
            },
            ..
        }) = lines.last_mut()
        {
            m.seat_states[1] &= !(3 << 2);
            m.tiers[0].held -= 1;
            m.tiers[0].available += 1;
        }
        let rep = check(&History::from_lines(lines).unwrap());
        assert!(has(&rep, "read-differs-from-model"), "{:#?}", rep.anomalies);
    }

    #[test]
    fn holds_expire_when_log_time_passes_them_and_not_before() {
        use ticketd_store::limits::HOLD_TTL_MS;
        // A hold lapses; later log time (a skewed leader) lets another user take the seat.
        let mut r = Real::new();
        r.write("kh1", hold("h1", &[6]));
        r.now_ms += HOLD_TTL_MS + 5_000;
        let out = r.write("kh2", hold("h2", &[6]));
        assert!(matches!(out, Outcome::Done(_)), "{out:?}");
        r.write(
            "kr1",
            Command::ReleaseHold {
                hold_id: "h1".into(),
                user_id: "u0-0".into(),
            },
        );
        // The skew that let log time run ahead of the harness's clock.
        r.lines.push(Line::Fault {
            time_ns: r.t,
            fault: "clock-skew".into(),
            phase: "start".into(),
            nodes: vec![1],
            status: FaultStatus::Installed,
            detail: "node 1 +900s".into(),
        });
        r.finish();
        let rep = r.check();
        assert!(rep.anomalies.is_empty(), "{:#?}", rep.anomalies);

        // A second hold on the seat answered 5 s (of log time, which its own answer reveals)
        // before the first could lapse: caught, skew or not.
        let mut r = Real::new();
        r.write("kh1", hold("h1", &[6]));
        r.now_ms += HOLD_TTL_MS - 5_000;
        r.write("kh2", hold("h2", &[7]));
        r.lines.push(Line::Fault {
            time_ns: r.t,
            fault: "clock-skew".into(),
            phase: "start".into(),
            nodes: vec![1],
            status: FaultStatus::Installed,
            detail: "node 1 +900s".into(),
        });
        r.finish();
        let mut lines = r.lines.clone();
        for l in &mut lines {
            match l {
                Line::Ok {
                    call: Call::Write { key, command, .. },
                    ret: Ret::Write { outcome, .. },
                    ..
                } if key == "kh2" => {
                    *command = hold("h2", &[6]);
                    if let Outcome::Done(Done::HoldPlaced { seats, .. }) = outcome {
                        *seats = vec![SeatRef::Seat(6)];
                    }
                }
                Line::Invoke {
                    call: Call::Write { key, command, .. },
                    ..
                } if key == "kh2" => *command = hold("h2", &[6]),
                _ => {}
            }
        }
        let rep = check(&History::from_lines(lines).unwrap());
        assert!(has(&rep, "write-answer-differs"), "{:#?}", rep.anomalies);
    }

    #[test]
    fn an_expiry_no_answer_dates_is_decided_by_the_reads_within_the_clock_bounds() {
        use ticketd_store::limits::HOLD_TTL_MS;
        // Log time jumps past the hold's expiry at a write whose answer reveals no time (a
        // scan); a seat map then shows the seat free again.
        let run = |skewed: bool| {
            let mut r = Real::new();
            r.write("kh1", hold("h1", &[6]));
            r.now_ms += HOLD_TTL_MS + 5_000;
            scan(&mut r, "ks", "no-such-ticket", "g1");
            r.read(Query::SeatMap { dt_id: dt_id(0) }, false);
            if skewed {
                r.lines.push(Line::Fault {
                    time_ns: r.t,
                    fault: "clock-skew".into(),
                    phase: "start".into(),
                    nodes: vec![1],
                    status: FaultStatus::Installed,
                    detail: "node 1 +700s, node 2 -30s".into(),
                });
            }
            r.finish();
            r.check()
        };
        // A node's clock was 700 s ahead: log time may have passed the expiry.
        let rep = run(true);
        assert!(rep.anomalies.is_empty(), "{:#?}", rep.anomalies);
        // No clock was ahead of the harness's: log time cannot have run 10 minutes ahead, and
        // the seat map is wrong.
        let rep = run(false);
        assert!(has(&rep, "read-differs-from-model"), "{:#?}", rep.anomalies);
    }
}

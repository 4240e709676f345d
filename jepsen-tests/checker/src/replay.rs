//! Model replay by log index, with settling of unknown writes and the write invariants.

use std::collections::HashMap;

use ticketd_store::{Outcome, Query};

use crate::clock::Clock;
use crate::history::{entry_of, write_pos, Call, History, Op, OpType, Ret};
use crate::logical::{created_venue, final_venues, logical_writes, Logical};
use crate::model::{normalize_result, same_outcome, Model, ModelReply, Now, Scope};
use crate::report::Report;

/// One possible state of the model: which holds have expired depends on log times the history
/// does not reveal exactly, so the replay may carry a few candidates and drops those an answer
/// contradicts.
#[derive(Clone)]
pub(crate) struct Hyp {
    m: Model,
    /// Log time is at least this (learned from choices made).
    lo: i64,
}

/// At most this many candidate states are kept; more is reported as inconclusive.
pub(crate) const HYPOTHESES_MAX: usize = 16;

/// Every way the holds an op in `scope` depends on may have expired by an entry whose log time
/// lies in `[lo, hi]`. A hold expires once log time reaches its effective expiry, so the
/// expired holds are a prefix of the live ones by expiry; holds outside the scope cannot change
/// the op's answer, and deciding them later (at a later, no earlier, log time) loses nothing.
pub(crate) fn branch(hyps: Vec<Hyp>, lo: i64, hi: i64, scope: &Scope) -> Vec<Hyp> {
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
pub(crate) fn dedup(hyps: Vec<Hyp>) -> Vec<Hyp> {
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

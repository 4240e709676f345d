//! What the replay knows of log time, by log index.

use std::collections::BTreeMap;

use crate::history::{FaultStatus, History, Line, OpType};
use crate::logical::Logical;
use crate::model::revealed_log_time;
use crate::report::Report;

/// What the replay knows of log time (the leader's stamp, made monotone by `apply`), by log
/// index: exact values that answers reveal, and upper bounds from the harness's wall clock.
pub(crate) struct Clock {
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
    pub(crate) fn skew_windows(h: &History) -> Vec<(i64, i64, i64)> {
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

    pub(crate) fn new(
        h: &History,
        logical: &BTreeMap<(&str, &str), Logical>,
        r: &mut Report,
    ) -> Self {
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
    pub(crate) fn at(&self, i: u64) -> (i64, i64) {
        let lo = match self.lo.partition_point(|(x, _)| *x <= i) {
            0 => i64::MIN,
            k => self.lo[k - 1].1,
        };
        let k = self.hi.partition_point(|(x, _)| *x < i);
        let hi = self.hi.get(k).map_or(i64::MAX, |(_, t)| *t);
        (lo, hi)
    }

    /// The exact log time of index `i`, when an answer revealed it.
    pub(crate) fn exact(&self, i: u64) -> Option<i64> {
        let (lo, hi) = self.at(i);
        (lo == hi).then_some(lo)
    }
}

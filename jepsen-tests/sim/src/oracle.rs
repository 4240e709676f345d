//! The invariants checked while a simulation runs.

use std::collections::BTreeMap;
use std::fmt::Debug;

/// The invariants checked while a simulation runs, fed by every node's log (each entry it
/// appends) and state machine (each entry it applies).
///
/// ticketd runs openraft with its default leader ids, `(term, node)`: a term may see several
/// leaders one after another, so "one leader per term" is not the invariant; an entry is named
/// by its log id (leader id and index) instead.
#[derive(Debug, Default)]
pub struct Oracle {
    /// (term, leader, index) -> payload of every entry appended anywhere.
    logged: BTreeMap<(u64, u64, u64), String>,
    /// index -> (term, leader, payload) of the entry first applied there anywhere.
    applied: BTreeMap<u64, (u64, u64, String)>,
    /// What broke, in the order seen.
    pub violations: Vec<String>,
}

impl Oracle {
    /// Log matching: one log id names one entry. A leader never proposes two entries at one
    /// index in its leadership, so every node that appends `(term, leader, index)` appends the
    /// same payload.
    pub fn appended(&mut self, node: u64, index: u64, term: u64, leader: u64, payload: String) {
        match self.logged.get(&(term, leader, index)) {
            Some(p) if *p != payload => self.violations.push(format!(
                "log matching: node {node} appended {payload} as log id (term {term}, leader {leader}, index {index}), which another append named {p}"
            )),
            Some(_) => {}
            None => {
                self.logged.insert((term, leader, index), payload);
            }
        }
    }

    /// State machine safety: no two nodes apply different entries at one index.
    pub fn applied(&mut self, node: u64, index: u64, term: u64, leader: u64, payload: String) {
        match self.applied.get(&index) {
            Some((t, l, w)) if (*t, *l, w) != (term, leader, &payload) => {
                let v = format!(
                    "state machine safety: node {node} applied {payload} (term {term}, leader {leader}) at index {index}, another node applied {w} (term {t}, leader {l})"
                );
                self.violations.push(v);
            }
            Some(_) => {}
            None => {
                self.applied.insert(index, (term, leader, payload));
            }
        }
    }
}

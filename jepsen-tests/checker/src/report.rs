//! What the checkers found: anomalies, counts, and what they could not decide.

use serde::{Deserialize, Serialize};

use crate::wgl::{Timed, Verdict};

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
    pub(crate) fn push(&mut self, checker: &'static str, kind: &str, detail: String) {
        self.anomalies.push(Anomaly {
            checker: checker.to_string(),
            kind: kind.to_string(),
            detail,
        });
    }

    /// Records the WGL verdict on one object's ops; `object` names it ("venue v1").
    pub(crate) fn wgl_verdict<O: std::fmt::Debug>(
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

//! A Wing–Gong–Lowe linearizability checker (the algorithm of Porcupine and Knossos' `wgl`),
//! for one object's bounded history at a time.
//!
//! Ops whose outcome is unknown have no return event: they may be linearized anywhere after
//! their invocation, or not at all. The search succeeds once every op with a known answer is
//! linearized. The cache of (linearized set, state) pairs keeps the search polynomial in
//! practice; a step budget bounds it, and a search that runs out says so (`Inconclusive`).

use std::collections::HashSet;
use std::hash::Hash;

/// A sequential specification.
pub trait Spec {
    /// The object's state.
    type State: Clone + Eq + Hash;
    /// An op with its answer (or none, when unknown).
    type Op;
    /// The initial state.
    fn init(&self) -> Self::State;
    /// The state after `op` at `state`, or `None` when its answer is impossible there.
    fn step(&self, state: &Self::State, op: &Self::Op) -> Option<Self::State>;
}

/// One op of the history.
#[derive(Debug, Clone)]
pub struct Timed<O> {
    /// Invocation time.
    pub call: u64,
    /// Completion time; `None` for unknown outcomes.
    pub ret: Option<u64>,
    /// The op.
    pub op: O,
}

/// The verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A linearization exists.
    Linearizable,
    /// None exists; the op indexes of the longest linearized prefix found, for the report.
    NotLinearizable {
        /// Ops of the deepest partial linearization.
        deepest: Vec<usize>,
    },
    /// The step budget ran out.
    Inconclusive,
}

#[derive(Clone, Copy)]
struct Entry {
    op: usize,
    is_call: bool,
    prev: usize,
    next: usize,
    /// For a call: index of its return entry (if any).
    ret: Option<usize>,
}

const NIL: usize = usize::MAX;

/// Checks `history` against `spec` within `max_steps` search steps.
pub fn check<S: Spec>(spec: &S, history: &[Timed<S::Op>], max_steps: u64) -> Verdict {
    let n = history.len();
    if n == 0 {
        return Verdict::Linearizable;
    }
    // Events sorted by time; at equal times calls come first (the permissive reading).
    let mut evs: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * n);
    for (i, t) in history.iter().enumerate() {
        evs.push((t.call, true, i));
        if let Some(r) = t.ret {
            evs.push((r.max(t.call), false, i));
        }
    }
    evs.sort_by_key(|(t, is_call, i)| (*t, !*is_call, *i));
    // Entry 0 is the head sentinel.
    let mut e: Vec<Entry> = Vec::with_capacity(evs.len() + 1);
    e.push(Entry {
        op: NIL,
        is_call: false,
        prev: NIL,
        next: NIL,
        ret: None,
    });
    let mut call_entry = vec![NIL; n];
    for (k, (_, is_call, op)) in evs.iter().enumerate() {
        let idx = k + 1;
        e.push(Entry {
            op: *op,
            is_call: *is_call,
            prev: idx - 1,
            next: if k + 1 < evs.len() { idx + 1 } else { NIL },
            ret: None,
        });
        if *is_call {
            call_entry[*op] = idx;
        } else {
            let c = call_entry[*op];
            e[c].ret = Some(idx);
        }
    }
    e[0].next = 1;

    fn unlink(e: &mut [Entry], i: usize) {
        let (p, nx) = (e[i].prev, e[i].next);
        e[p].next = nx;
        if nx != NIL {
            e[nx].prev = p;
        }
    }
    fn relink(e: &mut [Entry], i: usize) {
        let (p, nx) = (e[i].prev, e[i].next);
        e[p].next = i;
        if nx != NIL {
            e[nx].prev = i;
        }
    }

    let words = n.div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut remaining_returns = history.iter().filter(|t| t.ret.is_some()).count();
    let mut cache: HashSet<(Vec<u64>, S::State)> = HashSet::new();
    let mut stack: Vec<(usize, S::State)> = Vec::new();
    let mut deepest: Vec<usize> = Vec::new();
    let mut state = spec.init();
    let mut entry = e[0].next;
    let mut steps = 0u64;

    while remaining_returns > 0 {
        steps += 1;
        if steps > max_steps {
            return Verdict::Inconclusive;
        }
        if entry == NIL {
            // Only unknown calls are left after the cursor but some return is still pending:
            // cannot happen (a pending return lies after its call), treat as a dead end.
            match stack.pop() {
                None => return Verdict::NotLinearizable { deepest },
                Some((c, s)) => {
                    state = s;
                    let op = e[c].op;
                    linearized[op / 64] &= !(1 << (op % 64));
                    if let Some(r) = e[c].ret {
                        relink(&mut e, r);
                        remaining_returns += 1;
                    }
                    relink(&mut e, c);
                    entry = e[c].next;
                    continue;
                }
            }
        }
        let cur = e[entry];
        if cur.is_call {
            if let Some(next_state) = spec.step(&state, &history[cur.op].op) {
                let mut lin = linearized.clone();
                lin[cur.op / 64] |= 1 << (cur.op % 64);
                if cache.insert((lin.clone(), next_state.clone())) {
                    stack.push((entry, state));
                    state = next_state;
                    linearized = lin;
                    unlink(&mut e, entry);
                    if let Some(r) = cur.ret {
                        unlink(&mut e, r);
                        remaining_returns -= 1;
                    }
                    if stack.len() > deepest.len() {
                        deepest = stack.iter().map(|(c, _)| e[*c].op).collect();
                    }
                    entry = e[0].next;
                    continue;
                }
            }
            entry = cur.next;
        } else {
            // A return of an op not yet linearized: backtrack.
            match stack.pop() {
                None => return Verdict::NotLinearizable { deepest },
                Some((c, s)) => {
                    state = s;
                    let op = e[c].op;
                    linearized[op / 64] &= !(1 << (op % 64));
                    if let Some(r) = e[c].ret {
                        relink(&mut e, r);
                        remaining_returns += 1;
                    }
                    relink(&mut e, c);
                    entry = e[c].next;
                }
            }
        }
    }
    Verdict::Linearizable
}

/// A set-once register: the model of one venue id (`CreateVenue` creates it once; reads see
/// it or nothing).
pub struct SetOnce;

/// An op on a set-once register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetOnceOp {
    /// Create with a value; `Some(true)`: created, `Some(false)`: already existed,
    /// `None`: unknown outcome.
    Create(String, Option<bool>),
    /// Read: the value seen.
    Read(Option<String>),
}

impl Spec for SetOnce {
    type State = Option<String>;
    type Op = SetOnceOp;
    fn init(&self) -> Self::State {
        None
    }
    fn step(&self, s: &Self::State, op: &SetOnceOp) -> Option<Self::State> {
        match (op, s) {
            (SetOnceOp::Create(v, Some(true) | None), None) => Some(Some(v.clone())),
            (SetOnceOp::Create(_, Some(true)), Some(_)) => None,
            (SetOnceOp::Create(_, Some(false)), None) => None,
            (SetOnceOp::Create(_, Some(false) | None), Some(_)) => Some(s.clone()),
            (SetOnceOp::Read(v), s) => (v == s).then(|| s.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(call: u64, ret: Option<u64>, op: SetOnceOp) -> Timed<SetOnceOp> {
        Timed { call, ret, op }
    }
    fn create(v: &str, r: Option<bool>) -> SetOnceOp {
        SetOnceOp::Create(v.into(), r)
    }
    fn read(v: Option<&str>) -> SetOnceOp {
        SetOnceOp::Read(v.map(str::to_string))
    }

    #[test]
    fn concurrent_creates_and_reads_linearize() {
        let h = vec![
            t(0, Some(10), create("a", Some(true))),
            t(1, Some(9), create("b", Some(false))),
            t(2, Some(3), read(None)),
            t(5, Some(12), read(Some("a"))),
        ];
        assert_eq!(check(&SetOnce, &h, 10_000), Verdict::Linearizable);
    }

    #[test]
    fn stale_read_after_acknowledged_create_is_caught() {
        let h = vec![
            t(0, Some(10), create("a", Some(true))),
            t(11, Some(12), read(None)),
        ];
        assert!(matches!(
            check(&SetOnce, &h, 10_000),
            Verdict::NotLinearizable { .. }
        ));
    }

    #[test]
    fn two_successful_creates_are_caught() {
        let h = vec![
            t(0, Some(10), create("a", Some(true))),
            t(1, Some(10), create("b", Some(true))),
        ];
        assert!(matches!(
            check(&SetOnce, &h, 10_000),
            Verdict::NotLinearizable { .. }
        ));
    }

    #[test]
    fn read_of_a_value_nobody_wrote_is_caught() {
        let h = vec![
            t(0, Some(10), create("a", None)),
            t(20, Some(21), read(Some("b"))),
        ];
        assert!(matches!(
            check(&SetOnce, &h, 10_000),
            Verdict::NotLinearizable { .. }
        ));
    }

    #[test]
    fn unknown_create_may_take_effect_late_or_never() {
        // Took effect after its caller gave up.
        let late = vec![
            t(0, None, create("a", None)),
            t(6, Some(7), read(None)),
            t(8, Some(9), read(Some("a"))),
        ];
        assert_eq!(check(&SetOnce, &late, 10_000), Verdict::Linearizable);
        // Never took effect: not treated as failed, not forced either.
        let never = vec![t(0, None, create("a", None)), t(6, Some(7), read(None))];
        assert_eq!(check(&SetOnce, &never, 10_000), Verdict::Linearizable);
    }

    #[test]
    fn value_flipping_back_is_caught() {
        let h = vec![
            t(0, None, create("a", None)),
            t(1, Some(2), read(Some("a"))),
            t(3, Some(4), read(None)),
        ];
        assert!(matches!(
            check(&SetOnce, &h, 10_000),
            Verdict::NotLinearizable { .. }
        ));
    }
}

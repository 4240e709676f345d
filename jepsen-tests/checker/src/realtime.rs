//! Real-time order: a completed op is never ordered after one invoked later.

use crate::history::{Call, Cons, History, Op, OpType};
use crate::report::Report;

/// The log position of an `ok` op for the real-time check, and whether it is a write.
pub(crate) fn position(o: &Op) -> Option<(u64, bool)> {
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

//! Replicas that applied the same index hold the same state.

use std::collections::BTreeMap;

use ticketd_store::{Query, QueryResult};

use crate::history::{Call, History, OpType, Ret};
use crate::report::Report;

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

//! The WGL check of every venue id's ops: a set-once register per venue.

use std::collections::BTreeMap;

use ticketd_store::{Command, Outcome, Query, QueryResult, Rejection};

use crate::history::{Call, Cons, History, OpType, Ret};
use crate::logical::write_parts;
use crate::report::Report;
use crate::wgl::{self, SetOnce, SetOnceOp, Timed};

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

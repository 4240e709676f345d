//! Logical writes: every op with the same (client, key) is one write as the client meant it.

use std::collections::BTreeMap;

use ticketd_store::command::Venue;
use ticketd_store::{Command, Outcome, Query, QueryResult};

use crate::history::{Call, History, Op, Ret};
use crate::model::same_outcome;
use crate::report::Report;

/// A write as the client meant it: every op with the same (client, key) is one logical write.
pub(crate) struct Logical<'a> {
    pub(crate) client_id: &'a str,
    pub(crate) key: &'a str,
    pub(crate) command: &'a Command,
    pub(crate) ops: Vec<&'a Op>,
    /// The settled answer: (effect index, outcome, op), from the first answered op.
    pub(crate) answer: Option<(u64, Outcome, u64)>,
}

/// Groups the history's writes by (client, key) and checks that one key got one answer.
pub(crate) fn logical_writes<'a>(
    h: &'a History,
    r: &mut Report,
) -> BTreeMap<(&'a str, &'a str), Logical<'a>> {
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
pub(crate) fn final_venues(h: &History) -> BTreeMap<String, Option<Venue>> {
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

pub(crate) fn write_parts(o: &Op) -> Option<(&str, &str, &Command)> {
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
pub(crate) fn created_venue(c: &Command) -> Option<(&str, &str)> {
    match c {
        Command::CreateVenue { venue_id, name, .. } => Some((venue_id, name)),
        _ => None,
    }
}

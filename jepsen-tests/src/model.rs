//! A single-threaded model of the ticket domain, written independently of `store::Machine`:
//! the replay checker applies every settled write to it in log-index order and compares every
//! answer the cluster gave with the model's.

use std::collections::BTreeMap;

use ticketd_store::command::Done;
use ticketd_store::command::Venue;
use ticketd_store::{Command, Outcome, Query, QueryResult, Rejection};

/// The model's state.
#[derive(Debug, Default, Clone)]
pub struct Model {
    venues: BTreeMap<String, Venue>,
    /// (client, key) -> (command, first index, first outcome).
    idem: BTreeMap<(String, String), (Command, u64, Outcome)>,
}

/// What the model answers to a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelReply {
    /// Outcome.
    pub outcome: Outcome,
    /// Index of the first application of the key.
    pub effect_index: u64,
    /// The outcome is the remembered one.
    pub replayed: bool,
}

/// Outcomes compare by result and rejection code, not by human-readable detail.
pub fn same_outcome(a: &Outcome, b: &Outcome) -> bool {
    match (a, b) {
        (Outcome::Done(x), Outcome::Done(y)) => x == y,
        (Outcome::Rejected { code: x, .. }, Outcome::Rejected { code: y, .. }) => x == y,
        _ => false,
    }
}

fn reject(code: Rejection) -> Outcome {
    Outcome::Rejected {
        code,
        detail: String::new(),
    }
}

impl Model {
    /// Applies a write at log `index`; `None` when the command is not modelled. The idempotency
    /// window (24 h of log time) is not modelled: a chaos run is far shorter, so a key is always
    /// remembered.
    pub fn apply(
        &mut self,
        index: u64,
        client_id: &str,
        key: &str,
        cmd: &Command,
    ) -> Option<ModelReply> {
        let k = (client_id.to_string(), key.to_string());
        if let Some((prev_cmd, first, outcome)) = self.idem.get(&k) {
            if prev_cmd != cmd {
                return Some(ModelReply {
                    outcome: reject(Rejection::IdempotencyKeyReused),
                    effect_index: index,
                    replayed: false,
                });
            }
            return Some(ModelReply {
                outcome: outcome.clone(),
                effect_index: *first,
                replayed: true,
            });
        }
        let outcome = self.execute(index, cmd)?;
        self.idem.insert(k, (cmd.clone(), index, outcome.clone()));
        Some(ModelReply {
            outcome,
            effect_index: index,
            replayed: false,
        })
    }

    /// `None` for commands the model does not know (yet).
    fn execute(&mut self, index: u64, cmd: &Command) -> Option<Outcome> {
        Some(match cmd {
            Command::CreateVenue {
                venue_id,
                name,
                city,
            } => {
                if venue_id.is_empty() || name.is_empty() {
                    return Some(reject(Rejection::InvalidArgument));
                }
                if self.venues.contains_key(venue_id) {
                    return Some(reject(Rejection::AlreadyExists));
                }
                self.venues.insert(
                    venue_id.clone(),
                    Venue {
                        venue_id: venue_id.clone(),
                        name: name.clone(),
                        city: city.clone(),
                        created_index: index,
                    },
                );
                Outcome::Done(Done::VenueCreated {
                    venue_id: venue_id.clone(),
                })
            }
            #[allow(unreachable_patterns)]
            _ => return None,
        })
    }

    /// Answers a query; `None` for queries the model does not know (the digest).
    pub fn query(&self, q: &Query) -> Option<QueryResult> {
        match q {
            Query::GetVenue { venue_id } => {
                Some(QueryResult::Venue(self.venues.get(venue_id).cloned()))
            }
            Query::Digest => None,
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }
}

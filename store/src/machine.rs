//! The deterministic state machine: `apply(state, request, index) -> reply`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::backend::{Backend, StoreError, WriteSet};
use crate::command::{Command, Done, Outcome, Query, QueryResult, Rejection, Request, Venue};

/// Column family of venues, keyed by venue id.
const CF_VENUES: &str = "sm_venues";
/// Column family of remembered outcomes, keyed by `client_id \0 idempotency_key`.
const CF_IDEMPOTENCY: &str = "sm_idempotency";
/// Column family of small machine-wide values (log time).
const CF_STATE: &str = "sm_state";

/// Every column family the state machine persists into; the Raft runtime opens them and
/// includes them in snapshots.
pub const COLUMN_FAMILIES: &[&str] = &[CF_VENUES, CF_IDEMPOTENCY, CF_STATE];

/// How long, in log time, the outcome of an idempotency key is remembered.
pub const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

/// The reply to one applied request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// What happened.
    pub outcome: Outcome,
    /// Log index at which the command was first applied (earlier than the current entry's index
    /// when this is a replay of a remembered outcome).
    pub index: u64,
    /// True when the key had been seen and this is the remembered first outcome.
    pub replayed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Remembered {
    command_digest: [u8; 32],
    index: u64,
    applied_at_ms: i64,
    outcome: Outcome,
}

/// The ticket domain's state, held in memory and written through to a [`Backend`].
#[derive(Debug, Default)]
pub struct Machine {
    venues: BTreeMap<String, Venue>,
    idempotency: BTreeMap<(String, String), Remembered>,
    log_time_ms: i64,
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    postcard::to_stdvec(v).expect("in-memory types always encode")
}

fn decode<'a, T: Deserialize<'a>>(cf: &str, bytes: &'a [u8]) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        cf: cf.to_string(),
        detail: e.to_string(),
    })
}

fn idem_key(client_id: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(client_id.len() + key.len() + 1);
    k.extend_from_slice(client_id.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

impl Machine {
    /// Loads the state persisted in `backend`.
    pub fn open(backend: &dyn Backend) -> Result<Self, StoreError> {
        let mut m = Machine::default();
        backend.scan(CF_VENUES, &mut |_, v| {
            let venue: Venue = decode(CF_VENUES, v)?;
            m.venues.insert(venue.venue_id.clone(), venue);
            Ok(())
        })?;
        backend.scan(CF_IDEMPOTENCY, &mut |k, v| {
            let mut parts = k.splitn(2, |b| *b == 0);
            let client = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
            let key = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
            m.idempotency
                .insert((client, key), decode(CF_IDEMPOTENCY, v)?);
            Ok(())
        })?;
        if let Some(t) = backend.get(CF_STATE, b"log_time_ms")? {
            m.log_time_ms = decode(CF_STATE, &t)?;
        }
        Ok(m)
    }

    /// Applies one committed request at log `index`, recording its writes in `ws`.
    pub fn apply(&mut self, index: u64, req: &Request, ws: &mut WriteSet) -> Reply {
        if req.stamped_at_ms > self.log_time_ms {
            self.log_time_ms = req.stamped_at_ms;
            ws.put(CF_STATE, b"log_time_ms".to_vec(), encode(&self.log_time_ms));
        }
        let now = self.log_time_ms;
        let digest: [u8; 32] = Sha256::digest(encode(&req.command)).into();
        let key = (req.client_id.clone(), req.idempotency_key.clone());
        if let Some(prev) = self.idempotency.get(&key) {
            if now - prev.applied_at_ms <= IDEMPOTENCY_WINDOW_MS {
                if prev.command_digest != digest {
                    return Reply {
                        outcome: Outcome::Rejected {
                            code: Rejection::IdempotencyKeyReused,
                            detail: "idempotency key used before with a different command".into(),
                        },
                        index,
                        replayed: false,
                    };
                }
                return Reply {
                    outcome: prev.outcome.clone(),
                    index: prev.index,
                    replayed: true,
                };
            }
        }
        let outcome = self.execute(index, &req.command, ws);
        let remembered = Remembered {
            command_digest: digest,
            index,
            applied_at_ms: now,
            outcome: outcome.clone(),
        };
        ws.put(
            CF_IDEMPOTENCY,
            idem_key(&key.0, &key.1),
            encode(&remembered),
        );
        self.idempotency.insert(key, remembered);
        Reply {
            outcome,
            index,
            replayed: false,
        }
    }

    fn execute(&mut self, index: u64, cmd: &Command, ws: &mut WriteSet) -> Outcome {
        match cmd {
            Command::CreateVenue {
                venue_id,
                name,
                city,
            } => {
                if venue_id.is_empty() || name.is_empty() {
                    return Outcome::Rejected {
                        code: Rejection::InvalidArgument,
                        detail: "venue id and name are required".into(),
                    };
                }
                if self.venues.contains_key(venue_id) {
                    return Outcome::Rejected {
                        code: Rejection::AlreadyExists,
                        detail: format!("venue {venue_id} exists"),
                    };
                }
                let venue = Venue {
                    venue_id: venue_id.clone(),
                    name: name.clone(),
                    city: city.clone(),
                    created_index: index,
                };
                ws.put(CF_VENUES, venue_id.as_bytes().to_vec(), encode(&venue));
                self.venues.insert(venue_id.clone(), venue);
                Outcome::Done(Done::VenueCreated {
                    venue_id: venue_id.clone(),
                })
            }
        }
    }

    /// Answers a read from the applied state.
    pub fn query(&self, q: &Query) -> QueryResult {
        match q {
            Query::GetVenue { venue_id } => QueryResult::Venue(self.venues.get(venue_id).cloned()),
            Query::Digest => QueryResult::Digest(self.digest()),
        }
    }

    /// Hex SHA-256 over the state in a canonical order.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        for v in self.venues.values() {
            h.update(encode(v));
        }
        for ((c, k), r) in &self.idempotency {
            h.update(idem_key(c, k));
            h.update(encode(r));
        }
        h.update(self.log_time_ms.to_be_bytes());
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MemBackend;

    fn req(key: &str, venue: &str) -> Request {
        Request {
            client_id: "c1".into(),
            idempotency_key: key.into(),
            stamped_at_ms: 1_000,
            command: Command::CreateVenue {
                venue_id: venue.into(),
                name: "Arena".into(),
                city: "Oslo".into(),
            },
        }
    }

    #[test]
    fn duplicate_key_replays_first_outcome_and_survives_reload() {
        let backend = MemBackend::new();
        let mut m = Machine::open(&backend).unwrap();
        let mut ws = WriteSet::new();
        let first = m.apply(1, &req("k1", "v1"), &mut ws);
        backend.write(&ws).unwrap();
        assert!(matches!(first.outcome, Outcome::Done(_)));

        let mut m = Machine::open(&backend).unwrap();
        let mut ws = WriteSet::new();
        let again = m.apply(2, &req("k1", "v1"), &mut ws);
        assert!(again.replayed);
        assert_eq!(again.index, 1);
        assert_eq!(again.outcome, first.outcome);

        let reused = m.apply(3, &req("k1", "v2"), &mut ws);
        assert!(matches!(
            reused.outcome,
            Outcome::Rejected {
                code: Rejection::IdempotencyKeyReused,
                ..
            }
        ));
    }
}

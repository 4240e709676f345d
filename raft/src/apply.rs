//! The state-machine adapter every runner of ticketd's Raft shares: committed entries applied
//! to the ticket domain ([`Machine`]) over a [`Backend`], with the applied log id and
//! membership written in the same atomic write as the state they describe.
//!
//! The node runs it over RocksDB ([`ticketd_store::RocksBackend`], in `state_machine`), the
//! deterministic simulation (`jepsen-tests/sim`) over the in-memory backend, with its own Raft
//! types (a seeded runtime): what they apply, decode and reply is this one code. What stays
//! theirs is where snapshots live (files on disk; a value in memory) and what runs beside
//! apply (the node's digests of its state, its metrics).
//!
//! Architecture invariant: a state opened by [`Applier::open`] is one the adapter wrote, or a
//! snapshot staged to look the same ([`Applier::meta_writes`]): the state, its applied log id
//! and its membership always agree.

use std::io;
use std::marker::PhantomData;

use openraft::alias::{
    DefaultEntryOf, EntryPayloadOf, LogIdOf, SnapshotMetaOf, StoredMembershipOf,
};
use openraft::entry::RaftEntry;
use openraft::storage::{ApplyResponder, EntryResponder};
use openraft::{EntryPayload, RaftTypeConfig};
use ticketd_store::machine::Reply;
use ticketd_store::{Backend, Machine, Query, QueryResult, WriteSet};

use crate::codec::{decode, encode};
use crate::version::{self, BINARY_VERSION};
use crate::{Proposal, CF_SM_META};

/// The key of the applied log id in [`CF_SM_META`].
pub(crate) const KEY_APPLIED: &[u8] = b"applied";
/// The key of the applied membership in [`CF_SM_META`].
pub(crate) const KEY_MEMBERSHIP: &[u8] = b"membership";

fn io_error(error: impl std::fmt::Display) -> io::Error {
    io::Error::other(error.to_string())
}

/// What has been applied: the last log id and the membership in force.
#[derive(Debug, Clone)]
pub struct AppliedState<C: RaftTypeConfig> {
    /// The last applied log id.
    pub last_applied: Option<LogIdOf<C>>,
    /// The last applied membership.
    pub membership: StoredMembershipOf<C>,
}

impl<C: RaftTypeConfig> Default for AppliedState<C> {
    fn default() -> Self {
        Self {
            last_applied: None,
            membership: Default::default(),
        }
    }
}

impl<C: RaftTypeConfig> AppliedState<C> {
    /// The applied state a snapshot with this meta brings.
    pub fn of_snapshot(meta: &SnapshotMetaOf<C>) -> Self {
        Self {
            last_applied: meta.last_log_id.clone(),
            membership: meta.last_membership.clone(),
        }
    }

    /// The last applied log index (0 before anything was applied).
    pub fn index(&self) -> u64 {
        self.last_applied
            .as_ref()
            .map(|log_id| log_id.index)
            .unwrap_or(0)
    }
}

/// What one call of [`Applier::apply`] produced, for the caller to deliver.
pub struct Applied<C: RaftTypeConfig> {
    /// The replies, one list per entry that has a waiting client, to send once the writes are
    /// made.
    pub responses: Vec<(ApplyResponder<C>, Vec<Reply>)>,
    /// The leader's digests announced by `CheckDigest` commands: (index, digest).
    pub leader_digests: Vec<(u64, String)>,
    /// Entries applied.
    pub entries: u64,
    /// Client requests applied.
    pub requests: u64,
}

/// The ticket domain over a backend, as a Raft state machine sees it.
pub struct Applier<C: RaftTypeConfig, B: Backend> {
    backend: B,
    machine: Machine,
    applied: AppliedState<C>,
    types: PhantomData<C>,
}

impl<C, B> Applier<C, B>
where
    C: RaftTypeConfig<
        D = Proposal,
        R = Vec<Reply>,
        Payload = EntryPayloadOf<C>,
        Entry = DefaultEntryOf<C>,
    >,
    B: Backend,
{
    /// Opens the state persisted in `backend`: the machine (every invariant checked) and what
    /// it reflects. A state past this binary's version stops the node, as it cannot be
    /// applied to correctly.
    pub fn open(backend: B) -> io::Result<Self> {
        let machine = match Machine::open(&backend) {
            Ok(machine) => machine,
            Err(error @ ticketd_store::StoreError::VersionTooNew { .. }) => {
                let why = format!("this node's state: {error}");
                version::halt(why.clone());
                return Err(io_error(why));
            }
            Err(error) => return Err(io_error(error)),
        };
        let last_applied = backend
            .get(CF_SM_META, KEY_APPLIED)
            .map_err(io_error)?
            .map(|bytes| decode(&bytes))
            .transpose()?;
        let membership = backend
            .get(CF_SM_META, KEY_MEMBERSHIP)
            .map_err(io_error)?
            .map(|bytes| decode(&bytes))
            .transpose()?
            .unwrap_or_default();
        Ok(Self {
            backend,
            machine,
            applied: AppliedState {
                last_applied,
                membership,
            },
            types: PhantomData,
        })
    }

    /// Adds to `writes` what records `last` as applied, with `membership` when it changed.
    /// A snapshot staged into a fresh backend gets these too, so it opens as it was taken.
    pub fn meta_writes(
        writes: &mut WriteSet,
        last: &LogIdOf<C>,
        membership: Option<&StoredMembershipOf<C>>,
    ) -> io::Result<()> {
        writes.put(CF_SM_META, KEY_APPLIED, encode(last)?);
        if let Some(membership) = membership {
            writes.put(CF_SM_META, KEY_MEMBERSHIP, encode(membership)?);
        }
        Ok(())
    }

    /// The backend the state is persisted in.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The machine as of the applied state.
    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    /// What has been applied.
    pub fn applied(&self) -> &AppliedState<C> {
        &self.applied
    }

    /// Answers a query from the applied state, with the applied index it reflects.
    pub fn query(&self, query: &Query) -> (QueryResult, u64) {
        (self.machine.query(query), self.applied.index())
    }

    /// Takes a state installed from a snapshot (already written where `backend` reads).
    pub fn replace(&mut self, backend: B, machine: Machine, applied: AppliedState<C>) {
        self.backend = backend;
        self.machine = machine;
        self.applied = applied;
    }

    /// Takes a machine installed from a snapshot into the same backend.
    pub fn replace_machine(&mut self, machine: Machine, applied: AppliedState<C>) {
        self.machine = machine;
        self.applied = applied;
    }

    /// Applies committed entries in order. Their writes, the applied log id and a new
    /// membership go to the backend in one atomic write (no fsync: the log entries are durable
    /// already, so after a crash the state is some applied prefix and the rest is re-applied
    /// from the log). An entry that asks for a digest of the state (`DigestState`) has what is
    /// applied up to it written first, then `at_digest` runs with its index, before the next
    /// entry's writes.
    ///
    /// An entry that needs a version past this binary's stops the node before anything of
    /// the call is applied.
    pub fn apply(
        &mut self,
        received: Vec<EntryResponder<C>>,
        mut at_digest: impl FnMut(u64),
    ) -> io::Result<Applied<C>> {
        if let Some(why) = unsupported_entry(&received) {
            version::halt(why.clone());
            return Err(io::Error::new(io::ErrorKind::Unsupported, why));
        }
        let mut out = Applied {
            responses: Vec::new(),
            leader_digests: Vec::new(),
            entries: received.len() as u64,
            requests: 0,
        };
        let mut writes = WriteSet::new();
        let mut last_applied = None;
        let mut last_membership = None;
        for (entry, responder) in received {
            let log_id = entry.log_id();
            let mut digest_here = false;
            let reply = match &entry.payload {
                EntryPayload::Blank => Vec::new(),
                EntryPayload::Normal(proposal) => {
                    out.requests += proposal.0.len() as u64;
                    let replies = self
                        .machine
                        .apply_batch(log_id.index, &proposal.0, &mut writes);
                    digest_here = digest_commands(&proposal.0, &replies, &mut out.leader_digests);
                    replies
                }
                EntryPayload::Membership(membership) => {
                    last_membership = Some(StoredMembershipOf::<C>::new(
                        Some(log_id.clone()),
                        membership.clone(),
                    ));
                    Vec::new()
                }
            };
            let index = log_id.index;
            last_applied = Some(log_id.clone());
            if digest_here {
                self.write_applied(&mut writes, log_id, last_membership.take())?;
                at_digest(index);
            }
            if let Some(responder) = responder {
                out.responses.push((responder, reply));
            }
        }
        if let Some(last) = last_applied {
            self.write_applied(&mut writes, last, last_membership)?;
        }
        Ok(out)
    }

    /// Writes `writes`, the applied log id and a new membership in one atomic write, and makes
    /// them the applied state.
    fn write_applied(
        &mut self,
        writes: &mut WriteSet,
        last: LogIdOf<C>,
        membership: Option<StoredMembershipOf<C>>,
    ) -> io::Result<()> {
        Self::meta_writes(writes, &last, membership.as_ref())?;
        self.backend.write(writes).map_err(io_error)?;
        *writes = WriteSet::new();
        self.applied.last_applied = Some(last);
        if let Some(membership) = membership {
            self.applied.membership = membership;
        }
        Ok(())
    }
}

/// Whether the requests of one entry ask for a digest of the state as of that entry (a
/// `DigestState` applied for the first time); the leader's digests they announce
/// (`CheckDigest`) are added to `leader_digests`.
fn digest_commands(
    requests: &[ticketd_store::Request],
    replies: &[Reply],
    leader_digests: &mut Vec<(u64, String)>,
) -> bool {
    let mut digest_here = false;
    for (request, reply) in requests.iter().zip(replies) {
        if reply.replayed || !matches!(reply.outcome, ticketd_store::Outcome::Done(_)) {
            continue;
        }
        match &request.command {
            ticketd_store::Command::DigestState {} => digest_here = true,
            ticketd_store::Command::CheckDigest { index, digest } => {
                leader_digests.push((*index, digest.clone()));
            }
            _ => {}
        }
    }
    digest_here
}

/// Why this binary cannot apply one of `entries` (the first such), if it cannot: an entry that
/// needs a version past this binary's is never applied, nor anything of its batch.
fn unsupported_entry<C>(entries: &[EntryResponder<C>]) -> Option<String>
where
    C: RaftTypeConfig<Payload = EntryPayloadOf<C>, Entry = DefaultEntryOf<C>, D = Proposal>,
{
    entries.iter().find_map(|(entry, _)| {
        let EntryPayload::Normal(proposal) = &entry.payload else {
            return None;
        };
        let needs = proposal
            .0
            .iter()
            .map(ticketd_store::version::needed_version)
            .max()?;
        (needs > BINARY_VERSION).then(|| {
            format!(
                "log entry {} needs version {needs}, {} (binary version {BINARY_VERSION}); \
                 nothing of it is applied: upgrade this node's binary",
                entry.log_id().index,
                version::NEWER_THAN_BINARY
            )
        })
    })
}

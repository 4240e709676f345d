//! ticketd's Raft types on the simulation's seeded runtime.

use std::io;

use ticketd_raft::{NodeAddr, Proposal};
use ticketd_store::machine::Reply;

use crate::simrt::SimRt;

openraft::declare_raft_types!(
    /// ticketd's Raft types on a seeded runtime.
    pub SimTypes:
        D = Proposal,
        R = Vec<Reply>,
        Node = NodeAddr,
        AsyncRuntime = SimRt,
);

pub(crate) fn io_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

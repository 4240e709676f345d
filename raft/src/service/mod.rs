//! The gRPC services of a node: Raft (between nodes), Client (writes and reads), Admin. Each
//! service in its own file; what they share in `context`.

mod admin;
mod client;
mod context;
mod raft;

pub use admin::AdminService;
pub use client::{ClientService, VERSION_NOT_ACTIVE};
pub use context::{
    NodeContext, ReconcileHook, ADMIN_CLIENT_ID, RECONCILE_DEADLINE, SERVER_OP_DEADLINE,
    SNAPSHOT_DISK_FACTOR, SNAPSHOT_DISK_HEADROOM_BYTES, SNAPSHOT_RECV_MAX_BYTES,
};
pub use raft::{snapshot_fits, RaftService};

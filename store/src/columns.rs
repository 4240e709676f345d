//! Where the state machine's entities are persisted: one column family per table, and the keys
//! of its scalars in `sm_state`.

/// Column family names. "sm_meta" belongs to the Raft runtime.
pub(crate) mod column_family {
    pub const VENUES: &str = "sm_venues";
    pub const LAYOUTS: &str = "sm_venue_layouts";
    pub const SELLERS: &str = "sm_sellers";
    pub const EVENTS: &str = "sm_events";
    pub const DTS: &str = "sm_dts";
    pub const USERS: &str = "sm_users";
    pub const ACCOUNTS: &str = "sm_accounts";
    pub const HOLDS: &str = "sm_holds";
    pub const PAYMENTS: &str = "sm_payments";
    pub const ORDERS: &str = "sm_orders";
    pub const TICKETS: &str = "sm_tickets";
    pub const OUTBOX: &str = "sm_outbox";
    pub const IDEMPOTENCY: &str = "sm_idempotency";
    pub const STATE: &str = "sm_state";
    /// Version 2: the reconciler's cursors, by name.
    pub const CURSORS: &str = "sm_cursors";
    /// Version 2: payments started and not yet seen settled, by payment ref.
    pub const UNFINISHED: &str = "sm_unfinished";
    /// Version 2: failed deliveries of pending notifications, by notification id.
    pub const RETRIES: &str = "sm_retries";
}

/// Every column family the state machine persists into; the Raft runtime opens them and
/// includes them in snapshots.
pub const COLUMN_FAMILIES: &[&str] = &[
    column_family::VENUES,
    column_family::LAYOUTS,
    column_family::SELLERS,
    column_family::EVENTS,
    column_family::DTS,
    column_family::USERS,
    column_family::ACCOUNTS,
    column_family::HOLDS,
    column_family::PAYMENTS,
    column_family::ORDERS,
    column_family::TICKETS,
    column_family::OUTBOX,
    column_family::IDEMPOTENCY,
    column_family::STATE,
    column_family::CURSORS,
    column_family::UNFINISHED,
    column_family::RETRIES,
];

/// The column families version 2 introduced: empty (so absent from snapshots and digests)
/// until the cluster is at version 2, since only commands of version 2 write them.
pub(crate) const SINCE_VERSION_2: &[&str] = &[
    column_family::CURSORS,
    column_family::UNFINISHED,
    column_family::RETRIES,
];

pub(crate) const KEY_LOG_TIME: &[u8] = b"log_time_ms";
/// The cluster version, in `sm_state`; absent until a `SetClusterVersion` raised it past
/// [`crate::version::LEGACY`], so a state of version 1 is persisted (and digested) as binaries
/// that knew no versions persisted it.
pub(crate) const KEY_CLUSTER_VERSION: &[u8] = b"cluster_version";

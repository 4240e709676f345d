//! openraft's storage conformance suite against the RocksDB log store and state machine.

use std::sync::Arc;

use openraft::testing::log::{StoreBuilder, Suite};
use openraft::type_config::TypeConfigExt;
use openraft::StorageError;
use tempfile::TempDir;
use ticketd_raft::log_store::LogStore;
use ticketd_raft::state_machine::StateMachine;
use ticketd_raft::TypeConfig;

struct RocksBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for RocksBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<TypeConfig>> {
        let err = |e: &dyn std::fmt::Display| {
            StorageError::read(TypeConfig::err_from_error(&std::io::Error::other(
                e.to_string(),
            )))
        };
        let dir = TempDir::new().map_err(|e| err(&e))?;
        let db = Arc::new(ticketd_raft::open_db(&dir.path().join("db")).map_err(|e| err(&e))?);
        let log = LogStore::new(db.clone()).map_err(|e| err(&e))?;
        let sm = StateMachine::open(db, dir.path().join("snapshots")).map_err(|e| err(&e))?;
        Ok((dir, log, sm))
    }
}

#[test]
fn rocksdb_stores_pass_openraft_storage_suite() {
    TypeConfig::run(async {
        Suite::test_all(RocksBuilder).await.expect("storage suite");
    });
}

//! Shared bits of the integration tests: the binary under test and small domain helpers.
#![allow(dead_code)]

use std::path::PathBuf;

use ticketd_store::command::Venue;
use ticketd_store::{Command, Query, QueryResult};

/// The `ticketd` binary cargo built for these tests.
pub fn ticketd_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ticketd"))
}

/// The `ticketctl` binary cargo built for these tests.
pub fn ticketctl_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ticketctl"))
}

/// A venue-creating command, the simplest write of the domain.
pub fn create_venue(id: &str) -> Command {
    Command::CreateVenue {
        venue_id: id.to_string(),
        name: format!("Venue {id}"),
        city: "Oslo".into(),
    }
}

/// The query that reads a venue back.
pub fn get_venue(id: &str) -> Query {
    Query::GetVenue {
        venue_id: id.to_string(),
    }
}

/// The venue in a query result, if any.
pub fn venue(r: &QueryResult) -> Option<Venue> {
    match r {
        QueryResult::Venue(v) => v.clone(),
        other => panic!("expected a venue result, got {other:?}"),
    }
}

/// Logs test phases to stderr (shown for failing tests).
pub fn phase(msg: &str) {
    eprintln!("=== {msg}");
}

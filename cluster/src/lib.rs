//! Configuration and process plumbing shared by the `ticketd` and `ticketctl` binaries.

pub mod certs;
pub mod config;
pub mod demo;
pub mod https;
pub mod process;
pub mod telemetry;
pub mod tls;
pub mod worker;

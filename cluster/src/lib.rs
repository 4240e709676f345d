//! Configuration and process plumbing shared by the `ticketd` and `ticketctl` binaries, and the
//! leader's jobs (`worker`, wired from `ticketd_money` and `ticketd_notify`).
#![cfg_attr(not(test), deny(clippy::too_many_lines))]

pub mod certs;
pub mod config;
pub mod demo;
pub mod jobs;
pub mod process;
pub mod telemetry;
pub mod tls;
pub mod worker;

//! The test-cluster helper and (as it grows) the chaos harness of ticketd.
//!
//! Every integration and chaos test starts real `ticketd node` processes through
//! [`cluster::TestCluster`], on loopback ports, each with its own data directory, and drives them
//! with the same client library operators and the HTTP API use.

pub mod cluster;

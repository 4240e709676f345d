//! Money: the payment provider's client, and the one rule that keeps money and tickets
//! together, for the buyer's purchase and the leader's reconciler alike.
//!
//! [`decide::decide`] is that rule, a pure function of the provider's intent, the store's
//! payment and the hold; its decision table is its unit test. [`saga`] runs a buyer's purchase
//! (called by the HTTP API), [`reconciler`] heals the gaps a crash leaves between the provider
//! and the store (run by the leader); both act only as `decide` says.
//!
//! Architecture invariants: this crate serves no HTTP and links neither RocksDB nor openraft; the
//! fault hook ([`fault`]) exists only with the `failpoints` feature, which no shipped build
//! turns on.
#![cfg_attr(not(test), deny(clippy::too_many_lines))]

pub mod decide;
#[cfg(feature = "failpoints")]
pub mod fault;
pub mod outbound;
pub mod provider;
pub mod reconciler;
pub mod refund;
pub mod saga;
pub mod store;

//! Code generated from `proto/ticketd.proto`.
#![allow(missing_docs, clippy::all)]

tonic::include_proto!("ticketd.v1");

//! Code generated from `proto/ticketd.proto`.
#![allow(missing_docs, clippy::all, clippy::too_many_lines)]

tonic::include_proto!("ticketd.v1");

//! The generated gRPC code for `kafka_pdp.v1`, clients and servers both.

#![allow(clippy::doc_overindented_list_items, clippy::doc_lazy_continuation)]

tonic::include_proto!("kafka_pdp.v1");

/// The encoded file descriptor set of the contract, served by reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/kafka_pdp_descriptor.bin"));

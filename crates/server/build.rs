//! Compiles the gRPC contract with `protox`, so a build needs no system `protoc`.
//!
//! Besides the Rust code it writes the encoded file descriptor set to
//! `$OUT_DIR/kafka_pdp_descriptor.bin`, which the server hands to
//! tonic-reflection so that `grpcurl` can list and call the services.

use std::{env, path::PathBuf};

use prost::Message;

const PROTO_ROOT: &str = "../../proto";
const PROTO_FILE: &str = "kafka_pdp/v1/pdp.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    println!("cargo:rerun-if-changed={PROTO_ROOT}/{PROTO_FILE}");

    let descriptors = protox::compile([PROTO_FILE], [PROTO_ROOT])?;
    std::fs::write(
        out_dir.join("kafka_pdp_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}

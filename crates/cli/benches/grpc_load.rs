//! gRPC load generator and memory benchmark (written next).
fn main() {}

//! The `kafka-pdp` binary: parses arguments, sets up tracing, dispatches.
fn main() {}

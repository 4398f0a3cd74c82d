//! Decision latency benchmark (being written).
fn main() {}

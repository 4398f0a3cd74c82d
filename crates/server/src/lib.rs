//! The gRPC services of the policy decision point: TLS, caching, reload, wiring.

//! Kafka on Cedar: the request model, the policy store and index, and decisions.
//!
//! A Kafka authorization question becomes a Cedar request:
//!
//! | Kafka | Cedar |
//! | --- | --- |
//! | principal `User:alice` | `Kafka::Principal::"User:alice"`, parents: its roles and groups |
//! | operation `Read` | `Kafka::Action::"Read"`; Describe is in Read, Write, Delete and Alter |
//! | topic `phi.labs.results` | `Kafka::Topic::"phi.labs.results"`, parents: every prefix named by a policy |
//! | connection and request | `context`: client address, listener, protocol, client id, API, time |
//!
//! [`PolicySnapshot`] is an immutable, validated policy set with a scope
//! index; the server swaps it atomically on reload. This crate does no I/O
//! besides reading a policy directory, and logs nothing: it returns
//! decisions, reasons and errors, and the caller decides what to record.

mod decide;
mod entities;
pub mod error;
mod index;
pub mod model;
mod store;
pub mod testing;

pub use decide::{ByTypeDecision, Decision, EvalError, Explanation};
pub use error::{LoadError, LoadProblem, RequestError};
pub use model::{
    parse_client_address, Action, Operation, PatternType, Principal, RequestContext, ResourceType,
    CLUSTER_NAME, MAX_NAME_LEN, MAX_TOPIC_NAME_LEN,
};
pub use store::{
    PolicyEffect, PolicyInfo, PolicySnapshot, SourceFile, BINDINGS_FILE, LINKS_FILE,
    POLICY_EXTENSION, SCHEMA_FILE,
};

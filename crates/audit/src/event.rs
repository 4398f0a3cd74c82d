//! The decision event: what one audit record says about one authorization
//! decision, in schema version [`SCHEMA_VERSION`].
//!
//! The event is metadata only. It names who asked, for what, on which
//! resource, from where, and which policies decided; it never carries message
//! payloads, record keys, headers, credentials or tokens. Resource names
//! (topic, group, transactional id) are recorded because an access review
//! needs them; they are metadata about where data lives, and a deployment
//! must not put PHI into resource names (a topic called after a patient, say).
//! `SCHEMA.md` beside this crate documents every field.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Version of the `data` payload. Bumped on any change a reader could notice;
/// fields are only ever added within a version.
pub const SCHEMA_VERSION: u32 = 1;

/// One authorization decision, as it is recorded.
///
/// `time` travels in the CloudEvents envelope (`time` attribute), not in the
/// `data` payload, so it is skipped here and filled in by the reader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionEvent {
    /// When the decision was made (for folded shim-cache records: when the
    /// shim reported them; see [`DecidedBy::ShimCache`]).
    #[serde(skip)]
    pub time: Timestamp,
    /// Always [`SCHEMA_VERSION`] when written by this crate.
    pub schema: u32,
    pub decision: Decision,
    pub principal: Principal,
    /// Kafka's operation name as in Cedar action ids: `Read`, `Write`,
    /// `Create`, `Delete`, `Alter`, `Describe`, `ClusterAction`,
    /// `DescribeConfigs`, `AlterConfigs`, `IdempotentWrite`, `CreateTokens`,
    /// `DescribeTokens`, `TwoPhaseCommit`.
    pub operation: String,
    pub resource: Resource,
    pub client: Client,
    /// Kafka listener name, e.g. `SASL_SSL`.
    pub listener: String,
    pub security_protocol: String,
    pub request: RequestInfo,
    /// The broker that asked, as the caller sent it (0 when a tool leaves it unset).
    pub broker_id: i32,
    pub policy: PolicyRef,
    pub decided_by: DecidedBy,
    /// Kafka's `Action.logIfAllowed`: the broker would log this ALLOW.
    pub log_if_allowed: bool,
    /// Kafka's `Action.logIfDenied`: the broker would log this DENY.
    pub log_if_denied: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Decision {
    Allow,
    Deny,
}

/// A Kafka principal such as `User:alice`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
}

/// The resource a decision was about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    /// Kafka's resource type: `Topic`, `Group`, `Cluster`,
    /// `TransactionalId`, `DelegationToken` or `User`.
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub pattern: PatternType,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PatternType {
    Literal,
    Prefixed,
}

/// Where the request came from, as the broker saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    /// IP address without port; empty when unknown.
    pub address: String,
    /// Kafka `client.id`, as sent by the client (not authenticated).
    pub id: String,
}

/// The Kafka request that needed the decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestInfo {
    /// Kafka `ApiKeys` name, e.g. `PRODUCE`; empty for admin-tool checks.
    pub api: String,
    pub api_version: i32,
    pub correlation_id: i32,
}

/// The policy set and the policies behind the decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRef {
    /// Content hash of the policy set the decision was made under.
    pub version: String,
    /// Ids of the determining policies: the satisfied forbids of a DENY, the
    /// satisfied permits of an ALLOW; empty for a default deny.
    pub determining: Vec<String>,
    /// Ids of policies whose evaluation failed (Cedar skips them).
    pub errored: Vec<String>,
}

/// Who answered the broker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "kebab-case")]
pub enum DecidedBy {
    /// The PDP evaluated the policies for this request.
    Pdp,
    /// The shim answered from its cache; `count` identical decisions between
    /// `first_time` and `last_time` are folded into this one record.
    ShimCache {
        count: u64,
        first_time: Timestamp,
        last_time: Timestamp,
    },
    /// The shim allowed a principal of the broker's `super.users` without
    /// asking the PDP; folded as [`DecidedBy::ShimCache`] is.
    ShimSuperUser {
        count: u64,
        first_time: Timestamp,
        last_time: Timestamp,
    },
}

impl DecisionEvent {
    /// The CloudEvents `subject`: `Type:name` of the resource, so that a SIEM
    /// can filter on it without opening `data`.
    pub fn subject(&self) -> String {
        format!("{}:{}", self.resource.kind, self.resource.name)
    }

    /// The principal as Kafka prints it: `User:alice`.
    pub fn principal_string(&self) -> String {
        format!("{}:{}", self.principal.kind, self.principal.name)
    }
}

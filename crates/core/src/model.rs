//! The Kafka side of a decision: operations, resource types, principals and
//! request context, validated once when they are built.
//!
//! Every constructor here checks its input and returns a [`RequestError`]
//! naming the bad value; a built [`RequestContext`] or [`Action`] is therefore
//! always well-formed, and deciding on it never fails on input.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::error::RequestError;

/// Kafka's topic name limit (`Topic.MAX_NAME_LENGTH`).
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Limit for every other name and context string (principal type and name,
/// group, transactional id, listener, client id, ...). Kafka itself has no
/// fixed limit for these; 1,024 bytes is far above any real value and keeps
/// one request's cost bounded.
pub const MAX_NAME_LEN: usize = 1024;

/// The id of Kafka's single cluster resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// A Kafka `AclOperation`, without `ANY`, `ALL` and `UNKNOWN`: a request
/// always names one concrete operation. Each is a Cedar action
/// `Kafka::Action::"<name>"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
    CreateTokens,
    DescribeTokens,
    TwoPhaseCommit,
}

impl Operation {
    /// Every operation, in Kafka's order.
    pub const ALL: [Operation; 13] = [
        Operation::Read,
        Operation::Write,
        Operation::Create,
        Operation::Delete,
        Operation::Alter,
        Operation::Describe,
        Operation::ClusterAction,
        Operation::DescribeConfigs,
        Operation::AlterConfigs,
        Operation::IdempotentWrite,
        Operation::CreateTokens,
        Operation::DescribeTokens,
        Operation::TwoPhaseCommit,
    ];

    /// The Cedar action id, such as `Read` or `ClusterAction`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Read => "Read",
            Operation::Write => "Write",
            Operation::Create => "Create",
            Operation::Delete => "Delete",
            Operation::Alter => "Alter",
            Operation::Describe => "Describe",
            Operation::ClusterAction => "ClusterAction",
            Operation::DescribeConfigs => "DescribeConfigs",
            Operation::AlterConfigs => "AlterConfigs",
            Operation::IdempotentWrite => "IdempotentWrite",
            Operation::CreateTokens => "CreateTokens",
            Operation::DescribeTokens => "DescribeTokens",
            Operation::TwoPhaseCommit => "TwoPhaseCommit",
        }
    }

    /// Position in [`Operation::ALL`], used as a bit index.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl FromStr for Operation {
    type Err = RequestError;

    /// Accepts the Cedar name (`ClusterAction`) and Kafka's enum name
    /// (`CLUSTER_ACTION`), in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = normalize(s);
        Operation::ALL
            .into_iter()
            .find(|op| normalize(op.as_str()) == wanted)
            .ok_or_else(|| RequestError::UnknownOperation(truncate(s)))
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Kafka `ResourceType`, without `ANY` and `UNKNOWN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceType {
    Topic,
    Group,
    Cluster,
    TransactionalId,
    DelegationToken,
    User,
}

impl ResourceType {
    /// Every resource type.
    pub const ALL: [ResourceType; 6] = [
        ResourceType::Topic,
        ResourceType::Group,
        ResourceType::Cluster,
        ResourceType::TransactionalId,
        ResourceType::DelegationToken,
        ResourceType::User,
    ];

    /// The Cedar entity type without namespace, such as `Topic`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Topic => "Topic",
            ResourceType::Group => "Group",
            ResourceType::Cluster => "Cluster",
            ResourceType::TransactionalId => "TransactionalId",
            ResourceType::DelegationToken => "DelegationToken",
            ResourceType::User => "User",
        }
    }

    /// The Cedar prefix entity type without namespace (`TopicPrefix`), if
    /// names of this type can be granted by prefix.
    pub fn prefix_type(self) -> Option<&'static str> {
        match self {
            ResourceType::Topic => Some("TopicPrefix"),
            ResourceType::Group => Some("GroupPrefix"),
            ResourceType::Cluster => None,
            ResourceType::TransactionalId => Some("TransactionalIdPrefix"),
            ResourceType::DelegationToken => Some("DelegationTokenPrefix"),
            ResourceType::User => Some("UserPrefix"),
        }
    }

    /// The longest name a resource of this type may have.
    pub fn max_name_len(self) -> usize {
        match self {
            ResourceType::Topic => MAX_TOPIC_NAME_LEN,
            _ => MAX_NAME_LEN,
        }
    }

    /// The operations Kafka defines on this resource type (and the schema's
    /// `appliesTo` allows). Any other operation is denied with an error.
    pub fn operations(self) -> &'static [Operation] {
        use Operation::*;
        match self {
            ResourceType::Topic => &[
                Read,
                Write,
                Create,
                Delete,
                Alter,
                Describe,
                DescribeConfigs,
                AlterConfigs,
            ],
            ResourceType::Group => &[Read, Delete, Describe, DescribeConfigs, AlterConfigs],
            ResourceType::Cluster => &[
                Create,
                Alter,
                Describe,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
            ],
            ResourceType::TransactionalId => &[Write, Describe, TwoPhaseCommit],
            ResourceType::DelegationToken => &[Describe],
            ResourceType::User => &[CreateTokens, DescribeTokens],
        }
    }

    /// Whether Kafka defines `op` on this resource type.
    pub fn supports(self, op: Operation) -> bool {
        self.operations().contains(&op)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl FromStr for ResourceType {
    type Err = RequestError;

    /// Accepts `TransactionalId` and `TRANSACTIONAL_ID`, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = normalize(s);
        ResourceType::ALL
            .into_iter()
            .find(|rt| normalize(rt.as_str()) == wanted)
            .ok_or_else(|| RequestError::UnknownResourceType(truncate(s)))
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a request names its resource. Kafka's `authorize` always asks about a
/// literal name; a prefixed question ("everything under `phi.`") comes from
/// tools.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PatternType {
    /// The name of one resource.
    #[default]
    Literal,
    /// Every resource whose name starts with the given one.
    Prefixed,
}

impl FromStr for PatternType {
    type Err = RequestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match normalize(s).as_str() {
            "literal" => Ok(PatternType::Literal),
            "prefixed" => Ok(PatternType::Prefixed),
            _ => Err(RequestError::UnknownPatternType(truncate(s))),
        }
    }
}

/// A Kafka principal such as `User:alice`. Its Cedar entity is
/// `Kafka::Principal::"User:alice"`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Principal {
    principal_type: String,
    name: String,
    // INVARIANT: `uid_id == format!("{principal_type}:{name}")`.
    uid_id: String,
}

impl Principal {
    /// Checks and builds a principal. The type must be non-empty and free of
    /// `:` (the entity id is `type:name`); the name must be non-empty; both
    /// at most [`MAX_NAME_LEN`] bytes.
    pub fn new(
        principal_type: impl Into<String>,
        name: impl Into<String>,
    ) -> Result<Self, RequestError> {
        let principal_type = principal_type.into();
        let name = name.into();
        check_len("principal type", &principal_type, MAX_NAME_LEN)?;
        check_len("principal name", &name, MAX_NAME_LEN)?;
        if principal_type.is_empty() {
            return Err(RequestError::EmptyPrincipal("type"));
        }
        if name.is_empty() {
            return Err(RequestError::EmptyPrincipal("name"));
        }
        if principal_type.contains(':') {
            return Err(RequestError::InvalidPrincipalType(truncate(
                &principal_type,
            )));
        }
        let uid_id = format!("{principal_type}:{name}");
        Ok(Principal {
            principal_type,
            name,
            uid_id,
        })
    }

    /// The principal type, usually `User`.
    pub fn principal_type(&self) -> &str {
        &self.principal_type
    }

    /// The principal name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Cedar entity id, `type:name`.
    pub fn entity_id(&self) -> &str {
        &self.uid_id
    }
}

impl FromStr for Principal {
    type Err = RequestError;

    /// Parses Kafka's `type:name` form, such as `User:alice`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some((principal_type, name)) => Principal::new(principal_type, name),
            None => Err(RequestError::InvalidPrincipal(truncate(s))),
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uid_id)
    }
}

/// Everything about a Kafka request that is the same for all its actions.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestContext {
    principal: Principal,
    client_address: IpAddr,
    listener: String,
    security_protocol: String,
    client_id: String,
    request_api: String,
}

impl RequestContext {
    /// Checks and builds a request context. Strings are limited to
    /// [`MAX_NAME_LEN`] bytes; they may be empty (Kafka sends an empty client
    /// id when the client set none).
    pub fn new(
        principal: Principal,
        client_address: IpAddr,
        listener: impl Into<String>,
        security_protocol: impl Into<String>,
        client_id: impl Into<String>,
        request_api: impl Into<String>,
    ) -> Result<Self, RequestError> {
        let ctx = RequestContext {
            principal,
            client_address,
            listener: listener.into(),
            security_protocol: security_protocol.into(),
            client_id: client_id.into(),
            request_api: request_api.into(),
        };
        check_len("listener", &ctx.listener, MAX_NAME_LEN)?;
        check_len("security protocol", &ctx.security_protocol, MAX_NAME_LEN)?;
        check_len("client id", &ctx.client_id, MAX_NAME_LEN)?;
        check_len("request api", &ctx.request_api, MAX_NAME_LEN)?;
        Ok(ctx)
    }

    /// A context with only a principal and an address, the other fields
    /// empty: for tests, tools and what-if questions.
    pub fn for_principal(principal: Principal, client_address: IpAddr) -> Self {
        RequestContext {
            principal,
            client_address,
            listener: String::new(),
            security_protocol: String::new(),
            client_id: String::new(),
            request_api: String::new(),
        }
    }

    /// The Kafka principal the request is authenticated as.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The client's address (`context.client_address`).
    pub fn client_address(&self) -> IpAddr {
        self.client_address
    }

    /// The broker listener name (`context.listener`).
    pub fn listener(&self) -> &str {
        &self.listener
    }

    /// The listener's security protocol (`context.security_protocol`).
    pub fn security_protocol(&self) -> &str {
        &self.security_protocol
    }

    /// The client id the client sent (`context.client_id`).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The Kafka API of the request, e.g. `FETCH` (`context.request_api`).
    pub fn request_api(&self) -> &str {
        &self.request_api
    }
}

/// Parses a client address (IPv4 or IPv6, without port).
pub fn parse_client_address(s: &str) -> Result<IpAddr, RequestError> {
    IpAddr::from_str(s.trim()).map_err(|_| RequestError::InvalidAddress(truncate(s)))
}

/// One (operation, resource) pair of a Kafka request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Action {
    operation: Operation,
    resource_type: ResourceType,
    resource_name: String,
    pattern_type: PatternType,
}

impl Action {
    /// Checks and builds an action. The name must be non-empty and at most
    /// [`ResourceType::max_name_len`] bytes. An operation Kafka does not
    /// define on the resource type is accepted here and denied when decided.
    pub fn new(
        operation: Operation,
        resource_type: ResourceType,
        resource_name: impl Into<String>,
        pattern_type: PatternType,
    ) -> Result<Self, RequestError> {
        let resource_name = resource_name.into();
        check_len(
            "resource name",
            &resource_name,
            resource_type.max_name_len(),
        )?;
        if resource_name.is_empty() {
            return Err(RequestError::EmptyResourceName);
        }
        Ok(Action {
            operation,
            resource_type,
            resource_name,
            pattern_type,
        })
    }

    /// A literal action, the form Kafka's `authorize` sends.
    pub fn literal(
        operation: Operation,
        resource_type: ResourceType,
        resource_name: impl Into<String>,
    ) -> Result<Self, RequestError> {
        Action::new(
            operation,
            resource_type,
            resource_name,
            PatternType::Literal,
        )
    }

    /// The operation asked for.
    pub fn operation(&self) -> Operation {
        self.operation
    }

    /// The type of the resource.
    pub fn resource_type(&self) -> ResourceType {
        self.resource_type
    }

    /// The resource name (or prefix, for a prefixed pattern).
    pub fn resource_name(&self) -> &str {
        &self.resource_name
    }

    /// Whether the name is literal or a prefix.
    pub fn pattern_type(&self) -> PatternType {
        self.pattern_type
    }
}

fn check_len(what: &'static str, value: &str, max: usize) -> Result<(), RequestError> {
    if value.len() > max {
        return Err(RequestError::TooLong {
            what,
            len: value.len(),
            max,
        });
    }
    Ok(())
}

/// Lowercase without `_` and `-`, so `CLUSTER_ACTION` matches `ClusterAction`.
fn normalize(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// User input echoed in an error is cut to a readable length.
fn truncate(s: &str) -> String {
    const SHOWN: usize = 64;
    match s.char_indices().nth(SHOWN) {
        Some((at, _)) => format!("{}...", &s[..at]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_parse_in_cedar_and_kafka_spelling() {
        assert_eq!(
            "ClusterAction".parse::<Operation>().unwrap(),
            Operation::ClusterAction
        );
        assert_eq!(
            "CLUSTER_ACTION".parse::<Operation>().unwrap(),
            Operation::ClusterAction
        );
        assert_eq!("read".parse::<Operation>().unwrap(), Operation::Read);
        for op in Operation::ALL {
            assert_eq!(op.as_str().parse::<Operation>().unwrap(), op);
        }
    }

    #[test]
    fn unknown_names_are_named_in_the_error() {
        let err = "Fly".parse::<Operation>().unwrap_err();
        assert_eq!(err.to_string(), "unknown operation `Fly`");
        let err = "Table".parse::<ResourceType>().unwrap_err();
        assert_eq!(err.to_string(), "unknown resource type `Table`");
    }

    #[test]
    fn resource_types_parse_in_both_spellings() {
        assert_eq!(
            "TRANSACTIONAL_ID".parse::<ResourceType>().unwrap(),
            ResourceType::TransactionalId
        );
        assert_eq!(
            "topic".parse::<ResourceType>().unwrap(),
            ResourceType::Topic
        );
    }

    #[test]
    fn principals_are_checked() {
        let p: Principal = "User:alice".parse().unwrap();
        assert_eq!(p.entity_id(), "User:alice");
        assert!(matches!(
            Principal::new("User", ""),
            Err(RequestError::EmptyPrincipal(_))
        ));
        assert!(matches!(
            Principal::new("", "x"),
            Err(RequestError::EmptyPrincipal(_))
        ));
        assert!("alice".parse::<Principal>().is_err());
        let long = "a".repeat(MAX_NAME_LEN + 1);
        assert!(matches!(
            Principal::new("User", long),
            Err(RequestError::TooLong { .. })
        ));
        // Only the first `:` separates; the name may hold more.
        let p: Principal = "User:CN=a:b".parse().unwrap();
        assert_eq!(p.name(), "CN=a:b");
    }

    #[test]
    fn topic_names_stop_at_kafkas_limit() {
        let ok = "t".repeat(MAX_TOPIC_NAME_LEN);
        assert!(Action::literal(Operation::Read, ResourceType::Topic, ok).is_ok());
        let long = "t".repeat(MAX_TOPIC_NAME_LEN + 1);
        let err = Action::literal(Operation::Read, ResourceType::Topic, long).unwrap_err();
        assert_eq!(
            err.to_string(),
            "resource name is 250 bytes long; the limit is 249"
        );
        let group = "g".repeat(MAX_TOPIC_NAME_LEN + 1);
        assert!(Action::literal(Operation::Read, ResourceType::Group, group).is_ok());
        assert!(Action::literal(Operation::Read, ResourceType::Topic, "").is_err());
    }

    #[test]
    fn addresses_are_checked() {
        assert!(parse_client_address("10.0.0.1").is_ok());
        assert!(parse_client_address("::1").is_ok());
        let err = parse_client_address("10.0.0.300").unwrap_err();
        assert_eq!(err.to_string(), "invalid client address `10.0.0.300`");
    }

    #[test]
    fn every_operation_applies_to_some_resource_type() {
        for op in Operation::ALL {
            assert!(ResourceType::ALL.iter().any(|rt| rt.supports(op)), "{op}");
        }
        assert!(!ResourceType::Cluster.supports(Operation::Read));
    }
}

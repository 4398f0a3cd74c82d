//! The decision record's JSON, written by hand.
//!
//! Every decision the PDP answers is serialized once, on the decision path,
//! so this is the audit trail's largest CPU cost per record. Writing the
//! constant keys as literal bytes and copying strings that need no escaping
//! as they are takes a fraction of the time serde's generic serializer
//! needs; a string that does need escaping goes through `serde_json`, so
//! the bytes are the same either way. The test below checks the output
//! against `serde_json`'s serialization of the same structures, and the
//! exhaustive destructuring of [`DecisionEvent`] makes a new field a
//! compile error here rather than a field silently missing from the trail.

use std::io::Write;

use jiff::Timestamp;

use crate::event::{DecidedBy, Decision, DecisionEvent, PatternType, PolicyRef};
use crate::record::{DECISION_SCHEMA, DECISION_TYPE};

/// Appends the record envelope of `event` to `out`, up to but not including
/// the closing brace (the chain fields follow it).
pub(crate) fn write_envelope(source: &str, event: &DecisionEvent, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"specversion\":\"1.0\",\"source\":");
    string(source, out);
    out.extend_from_slice(b",\"type\":\"");
    out.extend_from_slice(DECISION_TYPE.as_bytes());
    out.extend_from_slice(b"\",\"time\":");
    time(&event.time, out);
    out.extend_from_slice(b",\"subject\":");
    subject(&event.resource.kind, &event.resource.name, out);
    out.extend_from_slice(b",\"datacontenttype\":\"application/json\",\"dataschema\":\"");
    out.extend_from_slice(DECISION_SCHEMA.as_bytes());
    out.extend_from_slice(b"\",\"data\":");
    data(event, out);
}

/// The `data` payload, in the field order of [`DecisionEvent`].
fn data(event: &DecisionEvent, out: &mut Vec<u8>) {
    // Exhaustive on purpose: a field added to the event must be added here.
    let DecisionEvent {
        time: _, // in the envelope
        schema,
        decision,
        principal,
        operation,
        resource,
        client,
        listener,
        security_protocol,
        request,
        broker_id,
        policy,
        decided_by,
        log_if_allowed,
        log_if_denied,
    } = event;
    out.extend_from_slice(b"{\"schema\":");
    number(*schema, out);
    out.extend_from_slice(match decision {
        Decision::Allow => b",\"decision\":\"ALLOW\"".as_slice(),
        Decision::Deny => b",\"decision\":\"DENY\"".as_slice(),
    });
    out.extend_from_slice(b",\"principal\":{\"type\":");
    string(&principal.kind, out);
    out.extend_from_slice(b",\"name\":");
    string(&principal.name, out);
    out.extend_from_slice(b"},\"operation\":");
    string(operation, out);
    out.extend_from_slice(b",\"resource\":{\"type\":");
    string(&resource.kind, out);
    out.extend_from_slice(b",\"name\":");
    string(&resource.name, out);
    out.extend_from_slice(match resource.pattern {
        PatternType::Literal => b",\"pattern\":\"LITERAL\"}".as_slice(),
        PatternType::Prefixed => b",\"pattern\":\"PREFIXED\"}".as_slice(),
    });
    out.extend_from_slice(b",\"client\":{\"address\":");
    string(&client.address, out);
    out.extend_from_slice(b",\"id\":");
    string(&client.id, out);
    out.extend_from_slice(b"},\"listener\":");
    string(listener, out);
    out.extend_from_slice(b",\"security_protocol\":");
    string(security_protocol, out);
    out.extend_from_slice(b",\"request\":{\"api\":");
    string(&request.api, out);
    out.extend_from_slice(b",\"api_version\":");
    number(request.api_version, out);
    out.extend_from_slice(b",\"correlation_id\":");
    number(request.correlation_id, out);
    out.extend_from_slice(b"},\"broker_id\":");
    number(*broker_id, out);
    out.extend_from_slice(b",\"policy\":");
    policy_ref(policy, out);
    out.extend_from_slice(b",\"decided_by\":");
    decided(decided_by, out);
    out.extend_from_slice(b",\"log_if_allowed\":");
    boolean(*log_if_allowed, out);
    out.extend_from_slice(b",\"log_if_denied\":");
    boolean(*log_if_denied, out);
    out.push(b'}');
}

fn policy_ref(policy: &PolicyRef, out: &mut Vec<u8>) {
    let PolicyRef {
        version,
        determining,
        errored,
    } = policy;
    out.extend_from_slice(b"{\"version\":");
    string(version, out);
    out.extend_from_slice(b",\"determining\":");
    strings(determining, out);
    out.extend_from_slice(b",\"errored\":");
    strings(errored, out);
    out.push(b'}');
}

fn decided(by: &DecidedBy, out: &mut Vec<u8>) {
    let (by, count, first_time, last_time) = match by {
        DecidedBy::Pdp => return out.extend_from_slice(b"{\"by\":\"pdp\"}"),
        DecidedBy::ShimCache {
            count,
            first_time,
            last_time,
        } => (b"shim-cache".as_slice(), count, first_time, last_time),
        DecidedBy::ShimSuperUser {
            count,
            first_time,
            last_time,
        } => (b"shim-super-user".as_slice(), count, first_time, last_time),
    };
    out.extend_from_slice(b"{\"by\":\"");
    out.extend_from_slice(by);
    out.extend_from_slice(b"\",\"count\":");
    number(*count, out);
    out.extend_from_slice(b",\"first_time\":");
    time(first_time, out);
    out.extend_from_slice(b",\"last_time\":");
    time(last_time, out);
    out.push(b'}');
}

fn strings(values: &[String], out: &mut Vec<u8>) {
    out.push(b'[');
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(value, out);
    }
    out.push(b']');
}

/// `"kind:name"`, as one JSON string.
fn subject(kind: &str, name: &str, out: &mut Vec<u8>) {
    if plain(kind) && plain(name) {
        out.push(b'"');
        out.extend_from_slice(kind.as_bytes());
        out.push(b':');
        out.extend_from_slice(name.as_bytes());
        out.push(b'"');
    } else {
        string(&format!("{kind}:{name}"), out);
    }
}

/// A JSON string: copied as is when nothing in it needs escaping.
fn string(value: &str, out: &mut Vec<u8>) {
    if plain(value) {
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    } else {
        // INVARIANT: serializing a string into a Vec cannot fail.
        serde_json::to_writer(&mut *out, value).expect("serializing a string");
    }
}

/// True when JSON needs no escape in `value`: no `"`, `\` or control
/// character (the bytes `serde_json` escapes; it leaves the rest of UTF-8).
fn plain(value: &str) -> bool {
    value.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\')
}

fn time(value: &Timestamp, out: &mut Vec<u8>) {
    // INVARIANT: writing into a Vec cannot fail; RFC 3339 needs no escaping.
    write!(out, "\"{value}\"").expect("writing into a Vec");
}

fn number(value: impl std::fmt::Display, out: &mut Vec<u8>) {
    // INVARIANT: writing into a Vec cannot fail.
    write!(out, "{value}").expect("writing into a Vec");
}

fn boolean(value: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(if value { b"true" } else { b"false" });
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::*;
    use crate::event::*;

    /// The envelope as `serde_json` writes it: the reference.
    #[derive(Serialize)]
    struct Reference<'a> {
        specversion: &'static str,
        source: &'a str,
        #[serde(rename = "type")]
        kind: &'static str,
        time: Timestamp,
        subject: String,
        datacontenttype: &'static str,
        dataschema: &'static str,
        data: &'a DecisionEvent,
    }

    fn reference(source: &str, event: &DecisionEvent) -> Vec<u8> {
        let envelope = Reference {
            specversion: "1.0",
            source,
            kind: DECISION_TYPE,
            time: event.time,
            subject: event.subject(),
            datacontenttype: "application/json",
            dataschema: DECISION_SCHEMA,
            data: event,
        };
        let mut bytes = serde_json::to_vec(&envelope).unwrap();
        bytes.pop();
        bytes
    }

    fn event(text: &str, decided_by: DecidedBy) -> DecisionEvent {
        DecisionEvent {
            time: "2026-01-02T03:04:05.123456789Z".parse().unwrap(),
            schema: SCHEMA_VERSION,
            decision: Decision::Deny,
            principal: Principal {
                kind: "User".into(),
                name: text.into(),
            },
            operation: "Read".into(),
            resource: Resource {
                kind: "Topic".into(),
                name: format!("payments.{text}"),
                pattern: PatternType::Prefixed,
            },
            client: Client {
                address: "10.0.0.7".into(),
                id: text.into(),
            },
            listener: "SASL_SSL".into(),
            security_protocol: "SASL_SSL".into(),
            request: RequestInfo {
                api: "FETCH".into(),
                api_version: -1,
                correlation_id: i32::MIN,
            },
            broker_id: 3,
            policy: PolicyRef {
                version: "v1".into(),
                determining: vec!["a".into(), text.into()],
                errored: vec![],
            },
            decided_by,
            log_if_allowed: true,
            log_if_denied: false,
        }
    }

    #[test]
    fn the_bytes_equal_serde_json_for_plain_and_escaped_strings() {
        let folded = DecidedBy::ShimCache {
            count: 7,
            first_time: Timestamp::from_second(1_780_000_000).unwrap(),
            last_time: "2026-06-01T00:00:00.5Z".parse().unwrap(),
        };
        let texts = [
            "alice",
            "",
            "quote\"back\\slash",
            "tab\tnew\nline\u{1}",
            "ünï€😀",
            "\u{7f}",
        ];
        let super_user = DecidedBy::ShimSuperUser {
            count: 3,
            first_time: Timestamp::from_second(1_780_000_000).unwrap(),
            last_time: Timestamp::from_second(1_780_000_001).unwrap(),
        };
        for text in texts {
            for by in [DecidedBy::Pdp, folded.clone(), super_user.clone()] {
                let event = event(text, by);
                let mut ours = Vec::new();
                write_envelope("pdp \"a\"", &event, &mut ours);
                assert_eq!(
                    String::from_utf8(ours).unwrap(),
                    String::from_utf8(reference("pdp \"a\"", &event)).unwrap()
                );
            }
        }
    }
}

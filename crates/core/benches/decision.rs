//! Decision latency at 10, 1,000, 10,000 and 100,000 policies: the indexed
//! `decide` against plain Cedar over the whole set (`decide_whole_set`).
//!
//! Run:
//!
//! ```text
//! cargo bench -p kafka-pdp-core --bench decision
//! ```
//!
//! `KAFKA_PDP_BENCH_SIZES=10,1000` limits the sizes (for a quick run).
//! After the measurements it prints a table with the figures and the ratios
//! indexed(N)/indexed(10) and whole(N)/indexed(N), both measured in this
//! run, and the resident memory after loading each set.
//!
//! The sets are shaped like a large deployment: per-service grants through
//! template links (a producer or consumer template linked to one service
//! and one topic prefix), per-service static policies, role policies over
//! domain prefixes, and forbids guarding PHI prefixes. The request is one
//! fixed, allowed consumer read.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use criterion::Criterion;
use kafka_pdp_core::{Action, Operation, PolicySnapshot, RequestContext, ResourceType, SourceFile};

const SCHEMA: &str = include_str!("../../../policies/schema.cedarschema");
const SIZES: [usize; 4] = [10, 1_000, 10_000, 100_000];
const GROUP: &str = "decision";

/// Roles and domains are few, services many: like a real cluster.
const ROLES: usize = 20;

const TEMPLATES: &str = r#"
@id("producer")
permit (principal in ?principal, action in [Kafka::Action::"Write"], resource in ?resource);

@id("consumer")
permit (principal in ?principal, action in [Kafka::Action::"Read"], resource in ?resource);
"#;

/// A policy set of exactly `n` policies (static and linked) and its
/// bindings.
fn policy_set(n: usize) -> Vec<SourceFile> {
    let services = n.max(10) / 2;
    let mut statics = String::from(TEMPLATES);
    let mut links = Vec::new();
    let mut count = 0;
    let mut i = 0;
    while count < n {
        let svc = i % services;
        let role = i % ROLES;
        match i % 10 {
            // Per-service grants by template link.
            0..=3 => {
                let template = if i % 2 == 0 { "consumer" } else { "producer" };
                links.push(format!(
                    "{{\"template_id\": \"{template}\", \"link_id\": \"link-{i}\", \"args\": \
                     {{\"?principal\": \"Kafka::Principal::\\\"User:svc-{svc}\\\"\", \
                     \"?resource\": \"Kafka::TopicPrefix::\\\"team-{svc}.\\\"\"}}}}"
                ));
            }
            // Per-service literal grants.
            4..=6 => {
                let _ = write!(
                    statics,
                    "@id(\"svc-{i}\")\npermit (principal == Kafka::Principal::\"User:svc-{svc}\", \
                     action in [Kafka::Action::\"Read\"], resource == Kafka::Topic::\"team-{svc}.t{i}\");\n"
                );
            }
            // Role policies over domain prefixes.
            7 | 8 => {
                let _ = write!(
                    statics,
                    "@id(\"role-{i}\")\npermit (principal in Kafka::Role::\"role-{role}\", \
                     action in [Kafka::Action::\"Read\", Kafka::Action::\"DescribeConfigs\"], \
                     resource in Kafka::TopicPrefix::\"dom-{role}.{i}.\");\n"
                );
            }
            // Forbids guarding PHI prefixes, some with a condition.
            _ => {
                let _ = write!(
                    statics,
                    "@id(\"guard-{i}\")\nforbid (principal in Kafka::Role::\"role-{role}\", \
                     action == Kafka::Action::\"Write\", resource in Kafka::TopicPrefix::\"phi.{i}.\")\n\
                     when {{ context.security_protocol != \"SASL_SSL\" }};\n"
                );
            }
        }
        count += 1;
        i += 1;
    }
    let mut bindings = Vec::new();
    for r in 0..ROLES {
        bindings.push(format!(
            "{{\"uid\": {{\"type\": \"Kafka::Role\", \"id\": \"role-{r}\"}}, \"attrs\": {{}}, \"parents\": []}}"
        ));
    }
    for s in 0..services {
        let roles: Vec<String> = [s % ROLES, (s + 7) % ROLES]
            .iter()
            .map(|r| format!("{{\"type\": \"Kafka::Role\", \"id\": \"role-{r}\"}}"))
            .collect();
        bindings.push(format!(
            "{{\"uid\": {{\"type\": \"Kafka::Principal\", \"id\": \"User:svc-{s}\"}}, \
             \"attrs\": {{\"principal_type\": \"User\", \"name\": \"svc-{s}\"}}, \
             \"parents\": [{}]}}",
            roles.join(", ")
        ));
    }
    vec![
        SourceFile::new("schema.cedarschema", SCHEMA),
        SourceFile::new("generated.cedar", statics),
        SourceFile::new("links.json", format!("[{}]", links.join(",\n"))),
        SourceFile::new(
            "bindings.entities.json",
            format!("[{}]", bindings.join(",\n")),
        ),
    ]
}

/// The fixed request: service 0 reads a topic of its own prefix.
fn request() -> (RequestContext, Action) {
    let principal = "User:svc-0".parse().unwrap();
    let address = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7));
    let ctx = RequestContext::new(principal, address, "CLIENT", "SASL_SSL", "svc-0", "FETCH")
        .expect("a valid context");
    let action = Action::literal(Operation::Read, ResourceType::Topic, "team-0.orders")
        .expect("a valid action");
    (ctx, action)
}

fn rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn sizes() -> Vec<usize> {
    match std::env::var("KAFKA_PDP_BENCH_SIZES") {
        Ok(list) => list
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect(),
        Err(_) => SIZES.to_vec(),
    }
}

struct Loaded {
    load: Duration,
    rss_mib: Option<f64>,
}

fn main() {
    let output = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../criterion");
    let mut criterion = Criterion::default()
        .output_directory(&output)
        .configure_from_args();
    let (ctx, action) = request();
    let now = SystemTime::now();
    let mut loaded = BTreeMap::new();
    for n in sizes() {
        let started = Instant::now();
        let snapshot =
            PolicySnapshot::from_sources(policy_set(n)).unwrap_or_else(|e| panic!("{e}"));
        let load = started.elapsed();
        assert_eq!(snapshot.policy_count(), n);
        let indexed = snapshot.decide(&ctx, &action, now);
        let whole = snapshot.decide_whole_set(&ctx, &action, now);
        assert!(indexed.allowed, "the benchmark request must be allowed");
        assert_eq!(indexed, whole, "the index changed the decision");
        loaded.insert(
            n,
            Loaded {
                load,
                rss_mib: rss_mib(),
            },
        );

        let mut group = criterion.benchmark_group(GROUP);
        group.bench_function(format!("indexed_{n}"), |b| {
            b.iter(|| black_box(snapshot.decide(black_box(&ctx), black_box(&action), now)))
        });
        if n >= 10_000 {
            // Plain Cedar takes milliseconds per decision here: few samples.
            group.sample_size(10);
            group.measurement_time(Duration::from_secs(if n >= 100_000 { 8 } else { 4 }));
        }
        group.bench_function(format!("whole_{n}"), |b| {
            b.iter(|| {
                black_box(snapshot.decide_whole_set(black_box(&ctx), black_box(&action), now))
            })
        });
        group.finish();
        drop(snapshot);
    }
    criterion.final_summary();
    print_table(&output, &loaded);
}

/// Criterion's mean estimate, in nanoseconds.
fn mean_ns(output: &std::path::Path, id: &str) -> Option<f64> {
    let path = output.join(GROUP).join(id).join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json.pointer("/mean/point_estimate")?.as_f64()
}

fn print_table(output: &std::path::Path, loaded: &BTreeMap<usize, Loaded>) {
    let base = mean_ns(output, "indexed_10");
    println!();
    println!("decision latency (mean), indexed vs whole set, same run");
    println!(
        "{:>8} {:>12} {:>12} {:>16} {:>14} {:>9} {:>9}",
        "policies", "indexed", "whole set", "indexed/idx(10)", "whole/indexed", "load", "rss"
    );
    for (n, l) in loaded {
        let indexed = mean_ns(output, &format!("indexed_{n}"));
        let whole = mean_ns(output, &format!("whole_{n}"));
        let show = |ns: Option<f64>| ns.map_or("-".to_owned(), |ns| format!("{:.2} us", ns / 1e3));
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => format!("{:.2}x", a / b),
            _ => "-".to_owned(),
        };
        println!(
            "{:>8} {:>12} {:>12} {:>16} {:>14} {:>8.1}s {:>6.0} MiB",
            n,
            show(indexed),
            show(whole),
            ratio(indexed, base),
            ratio(whole, indexed),
            l.load.as_secs_f64(),
            l.rss_mib.unwrap_or(f64::NAN),
        );
    }
    println!("targets: indexed(100000)/indexed(10) <= 1.5x; whole/indexed at 10000 >= 100x");
    println!("rss: resident memory of this process after loading the set (the largest set so far)");
}

//! What the alert rules add to each decision, against an uncached decision
//! by the core measured in the same run.
//!
//! ```text
//! cargo bench -p kafka-pdp-server --bench alert_cost             # 1 s per case
//! cargo bench -p kafka-pdp-server --bench alert_cost -- --quick  # 0.2 s per case
//! ```
//!
//! The baseline is `PolicySnapshot::decide` of one action over the default
//! policies (no gRPC, no cache, no audit): the cheapest whole decision. Each
//! case then times one `Alerts::observe` call on one thread, and prints
//! nanoseconds per call and its share of the baseline.

use std::{
    hint::black_box,
    net::{IpAddr, Ipv4Addr},
    path::Path,
    time::{Duration, Instant, SystemTime},
};

use kafka_pdp_core::{Action, Operation, PolicySnapshot, Principal, RequestContext, ResourceType};
use kafka_pdp_server::alerts::{AlertConfig, Alerts};

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let budget = Duration::from_millis(if quick { 200 } else { 1000 });
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let snapshot = PolicySnapshot::load_dir(&policies).expect("the default policies load");

    let reader: Principal = "User:lab-results-consumer".parse().unwrap();
    let address = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7));
    let ctx = RequestContext::new(
        reader.clone(),
        address,
        "SASL_SSL",
        "SASL_SSL",
        "c",
        "FETCH",
    )
    .expect("a valid context");
    let phi_read = Action::literal(Operation::Read, ResourceType::Topic, "phi.labs.results")
        .expect("a valid action");
    let other_read =
        Action::literal(Operation::Read, ResourceType::Topic, "public.metrics").unwrap();
    let principals: Vec<Principal> = (0..1000)
        .map(|i| format!("User:svc-{i}").parse().unwrap())
        .collect();

    let baseline = per_call(budget, |_| {
        black_box(snapshot.decide(&ctx, &phi_read, SystemTime::now()));
    });
    // Thresholds out of reach, so the cases time counting, not logging.
    let alerts = Alerts::new(AlertConfig {
        denials_threshold: u64::MAX,
        phi_min_reads: u64::MAX,
        ..AlertConfig::default()
    });
    let cases: [Case; 4] = [
        (
            "allow, not PHI",
            Box::new(|_| alerts.observe(&reader, &other_read, true, 1)),
        ),
        (
            "allowed PHI read",
            Box::new(|_| alerts.observe(&reader, &phi_read, true, 1)),
        ),
        (
            "deny, one principal",
            Box::new(|_| alerts.observe(&reader, &other_read, false, 1)),
        ),
        (
            "deny, 1,000 principals",
            Box::new(|i| alerts.observe(&principals[i % 1000], &other_read, false, 1)),
        ),
    ];

    println!("decision by the core (baseline): {baseline:>8.1} ns");
    for (name, case) in &cases {
        let ns = per_call(budget, case);
        let share = 100.0 * ns / baseline;
        println!("observe, {name:<24} {ns:>8.1} ns  = {share:>5.2}% of a decision");
    }
}

/// A named call, given the iteration number.
type Case<'a> = (&'static str, Box<dyn Fn(usize) + 'a>);

/// Nanoseconds per call of `f`, run for about `budget`.
fn per_call(budget: Duration, f: impl Fn(usize)) -> f64 {
    for i in 0..1000 {
        f(i);
    }
    let start = Instant::now();
    let mut calls = 0;
    while start.elapsed() < budget {
        for _ in 0..1000 {
            f(calls);
            calls += 1;
        }
    }
    start.elapsed().as_nanos() as f64 / calls as f64
}

//! gRPC load generator and memory benchmark for the real `kafka-pdp` binary.
//!
//! ```text
//! cargo bench -p kafka-pdp --bench grpc_load              # full run (~2 minutes)
//! cargo bench -p kafka-pdp --bench grpc_load -- --quick   # 1 s per mode, 10,000 policies
//! cargo bench -p kafka-pdp --bench grpc_load -- --skip-memory      # or --skip-throughput
//! ```
//!
//! Throughput: starts `kafka-pdp serve --plaintext` on loopback (bench
//! profile, so optimized) with the default policies and drives it with
//! concurrent callers sending `Authorize` batches of 20 actions, varied over
//! principals and topics so that the uncached path really evaluates. Three
//! modes run in the same process one after the other: the gRPC health
//! `Check` (a bare tonic unary, the baseline), `Authorize` with `--no-cache`,
//! and `Authorize` with the cache. It prints calls/s, decisions/s, p50 and
//! p99 per call, and the ratios between the modes.
//!
//! Memory: writes a policy directory with 100,000 policies, starts the PDP
//! on it, decides for a while and prints VmRSS and VmHWM from
//! `/proc/<pid>/status` against the same figures for the default policies.
//! Then it replaces the policy file with a changed 100,000-policy set while
//! a caller keeps deciding, waits for the watch stream to report the new
//! version, and prints the peak RSS, the reload time and whether any
//! decision failed meanwhile.
//!
//! The load generator shares the machine's cores with the server; on a
//! 2-core machine the figures are what the server achieves with half the
//! CPU going to its clients. The server logs at `warn` here: at `info`
//! every DENY is a log line, which costs throughput (see the report).

use std::{
    fmt::Write as _,
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
        Arc,
    },
    time::{Duration, Instant},
};

use kafka_pdp_server::{
    client::Connect,
    proto::{
        authorizer_client::AuthorizerClient, Action, AuthorizeRequest, Decision, Operation,
        Principal, RequestContext, ResourceType, WatchPolicyVersionRequest,
    },
};
use tonic::transport::Channel;
use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};

const BIN: &str = env!("CARGO_BIN_EXE_kafka-pdp");
const BATCH: usize = 20;
const CONNECTIONS: usize = 4;
const CALLERS: usize = 32;
/// Distinct batches the callers cycle through: 2,000 x 20 = 40,000 keys,
/// well inside the cache's default bound of 100,000.
const DISTINCT_BATCHES: usize = 2_000;

/// Principals of the default bindings, and one with no bindings at all.
const PRINCIPALS: [&str; 8] = [
    "lab-results-consumer",
    "lab-results-producer",
    "clinical-dashboard",
    "platform-ops-bot",
    "compliance-audit-reader",
    "labs-data-steward",
    "metrics-exporter",
    "unbound-app",
];
const OPERATIONS: [Operation; 4] = [
    Operation::Read,
    Operation::Write,
    Operation::Describe,
    Operation::AlterConfigs,
];
const PREFIXES: [&str; 4] = ["phi.labs.", "phi.imaging.", "metrics.", "public."];

struct Options {
    run_for: Duration,
    memory_policies: usize,
    throughput: bool,
    memory: bool,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let options = Options {
        run_for: Duration::from_secs(if quick { 1 } else { 5 }),
        memory_policies: if quick { 10_000 } else { 100_000 },
        throughput: !args.iter().any(|a| a == "--skip-throughput"),
        memory: !args.iter().any(|a| a == "--skip-memory"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if options.throughput {
        runtime.block_on(throughput(&options));
    }
    if options.memory {
        runtime.block_on(memory(&options));
    }
}

// === throughput ===

async fn throughput(options: &Options) {
    println!(
        "gRPC throughput: {CALLERS} callers over {CONNECTIONS} connections, {} s per mode, \
         batches of {BATCH} actions, {DISTINCT_BATCHES} distinct batches",
        options.run_for.as_secs()
    );
    let cached_server = Pdp::start(&[]);
    let health = run_mode(&cached_server, options.run_for, Mode::Health).await;
    let cached = run_mode(&cached_server, options.run_for, Mode::Authorize).await;
    drop(cached_server);
    let uncached_server = Pdp::start(&["--no-cache"]);
    let uncached = run_mode(&uncached_server, options.run_for, Mode::Authorize).await;
    drop(uncached_server);

    println!(
        "{:<30} {:>10} {:>13} {:>10} {:>10} {:>7} {:>14}",
        "mode", "calls/s", "decisions/s", "p50", "p99", "srv-cpu", "per srv-core/s"
    );
    health.print("health Check (baseline)");
    uncached.print("Authorize, --no-cache");
    cached.print("Authorize, cache on");
    println!(
        "ratios: uncached decisions/s per baseline call/s {:.2}; cache on / off decisions/s {:.2}; \
         p50 uncached batch / baseline {:.2}; p99 uncached batch / baseline {:.2}",
        uncached.decisions_per_s() / health.calls_per_s(),
        cached.decisions_per_s() / uncached.decisions_per_s(),
        uncached.p50.as_secs_f64() / health.p50.as_secs_f64(),
        uncached.p99.as_secs_f64() / health.p99.as_secs_f64(),
    );
    println!(
        "target: 150000 uncached decisions/s; measured {:.0} ({:.0}% of target) with the \
         callers on the same cores; {:.0} per second of server CPU, so {:.0} with 2 cores \
         to the server",
        uncached.decisions_per_s(),
        100.0 * uncached.decisions_per_s() / 150_000.0,
        uncached.per_server_core_s(uncached.decisions),
        2.0 * uncached.per_server_core_s(uncached.decisions),
    );
    let failed = health.failures + uncached.failures + cached.failures;
    println!("failed calls: {failed}");
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Health,
    Authorize,
}

struct Figures {
    calls: u64,
    decisions: u64,
    failures: u64,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
    /// CPU time the server process used during the run.
    server_cpu: Duration,
}

impl Figures {
    fn calls_per_s(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }

    fn decisions_per_s(&self) -> f64 {
        self.decisions as f64 / self.elapsed.as_secs_f64()
    }

    /// Calls or decisions per second of server CPU: what the server would
    /// do with one core to itself.
    fn per_server_core_s(&self, n: u64) -> f64 {
        n as f64 / self.server_cpu.as_secs_f64().max(1e-9)
    }

    fn print(&self, name: &str) {
        let work = if self.decisions > 0 {
            self.decisions
        } else {
            self.calls
        };
        println!(
            "{name:<30} {:>10.0} {:>13.0} {:>8}us {:>8}us {:>7.2} {:>14.0}",
            self.calls_per_s(),
            self.decisions_per_s(),
            self.p50.as_micros(),
            self.p99.as_micros(),
            self.server_cpu.as_secs_f64() / self.elapsed.as_secs_f64(),
            self.per_server_core_s(work),
        );
    }
}

async fn run_mode(pdp: &Pdp, run_for: Duration, mode: Mode) -> Figures {
    let batches = Arc::new(batches());
    let mut channels = Vec::new();
    for _ in 0..CONNECTIONS {
        channels.push(pdp.channel().await);
    }
    // Warm up connections (and, with the cache on, nothing: keys are cycled).
    let deadline = Instant::now() + run_for;
    let started = Instant::now();
    let cpu_before = cpu_time(pdp.pid());
    let mut tasks = Vec::new();
    for caller in 0..CALLERS {
        let channel = channels[caller % CONNECTIONS].clone();
        let batches = batches.clone();
        tasks.push(tokio::spawn(async move {
            call_until(channel, mode, batches, caller, deadline).await
        }));
    }
    let mut latencies = Vec::new();
    let (mut calls, mut decisions, mut failures) = (0, 0, 0);
    for task in tasks {
        let caller = task.await.expect("caller task");
        calls += caller.latencies.len() as u64;
        decisions += caller.decisions;
        failures += caller.failures;
        latencies.extend(caller.latencies);
    }
    let elapsed = started.elapsed();
    let server_cpu = cpu_time(pdp.pid()).saturating_sub(cpu_before);
    latencies.sort_unstable();
    Figures {
        calls,
        decisions,
        failures,
        elapsed,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        server_cpu,
    }
}

/// User plus system CPU time of a process, from `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at field 3.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let total = ticks(11) + ticks(12);
    Duration::from_secs_f64(total as f64 / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

struct CallerFigures {
    latencies: Vec<Duration>,
    decisions: u64,
    failures: u64,
}

async fn call_until(
    channel: Channel,
    mode: Mode,
    batches: Arc<Vec<AuthorizeRequest>>,
    caller: usize,
    deadline: Instant,
) -> CallerFigures {
    let mut authorizer = AuthorizerClient::new(channel.clone());
    let mut health = HealthClient::new(channel);
    let mut figures = CallerFigures {
        latencies: Vec::with_capacity(100_000),
        decisions: 0,
        failures: 0,
    };
    // Callers start at different places of the cycle.
    let mut next = caller * (DISTINCT_BATCHES / CALLERS);
    while Instant::now() < deadline {
        let start = Instant::now();
        let ok = match mode {
            Mode::Health => health.check(HealthCheckRequest::default()).await.is_ok(),
            Mode::Authorize => {
                let request = batches[next % batches.len()].clone();
                next += 1;
                match authorizer.authorize(request).await {
                    Ok(response) => {
                        figures.decisions += response.get_ref().results.len() as u64;
                        true
                    }
                    Err(_) => false,
                }
            }
        };
        figures.latencies.push(start.elapsed());
        if !ok {
            figures.failures += 1;
        }
    }
    figures
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let at = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[at]
}

/// Batches of 20 actions, each for one principal, over many topic names.
fn batches() -> Vec<AuthorizeRequest> {
    (0..DISTINCT_BATCHES)
        .map(|b| {
            let principal = PRINCIPALS[b % PRINCIPALS.len()];
            let actions = (0..BATCH)
                .map(|a| {
                    let n = b * BATCH + a;
                    let prefix = PREFIXES[n % PREFIXES.len()];
                    Action {
                        operation: OPERATIONS[(n / 7) % OPERATIONS.len()] as i32,
                        resource_type: ResourceType::Topic as i32,
                        resource_name: format!("{prefix}topic-{}", n % 5_000),
                        ..Default::default()
                    }
                })
                .collect();
            AuthorizeRequest {
                context: Some(context(principal, b)),
                actions,
            }
        })
        .collect()
}

fn context(principal: &str, n: usize) -> RequestContext {
    RequestContext {
        principal: Some(Principal {
            r#type: "User".into(),
            name: principal.into(),
        }),
        client_address: format!("10.0.{}.{}", n / 250 % 250, n % 250 + 1),
        listener: "SASL_SSL".into(),
        security_protocol: "SASL_SSL".into(),
        client_id: format!("client-{}", n % 16),
        request_api: "FETCH".into(),
        ..Default::default()
    }
}

// === memory ===

async fn memory(options: &Options) {
    let count = options.memory_policies;
    println!();
    println!("memory: {count} policies");
    let baseline = Pdp::start(&[]);
    drive(&baseline, Duration::from_secs(1)).await;
    let base = Rss::of(baseline.pid());
    drop(baseline);

    let dir = tempfile::tempdir().expect("tempdir");
    write_policy_dir(dir.path(), count, "a");
    let loading = Instant::now();
    let pdp = Pdp::start(&["--policy-dir", dir.path().to_str().expect("utf-8 path")]);
    let load_time = loading.elapsed();
    drive(&pdp, Duration::from_secs(2)).await;
    let loaded = Rss::of(pdp.pid());
    println!(
        "default policies:   VmRSS {:>7.1} MiB, VmHWM {:>7.1} MiB (baseline)",
        base.rss_mib, base.hwm_mib
    );
    println!(
        "{count} policies: VmRSS {:>7.1} MiB, VmHWM {:>7.1} MiB, started in {:.1} s; \
         RSS ratio to baseline {:.1}",
        loaded.rss_mib,
        loaded.hwm_mib,
        load_time.as_secs_f64(),
        loaded.rss_mib / base.rss_mib
    );

    // Reload a changed set while a caller keeps deciding.
    let mut authorizer = AuthorizerClient::new(pdp.channel().await);
    let mut versions = authorizer
        .watch_policy_version(WatchPolicyVersionRequest {})
        .await
        .expect("watch")
        .into_inner();
    let first = versions.message().await.expect("watch").expect("version");
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let caller = tokio::spawn(decide_during_reload(
        pdp.channel().await,
        stop.clone(),
        counts.clone(),
    ));
    let reload_started = Instant::now();
    write_policy_dir(dir.path(), count, "b");
    let second = versions
        .message()
        .await
        .expect("watch")
        .expect("new version");
    let reload_time = reload_started.elapsed();
    // Keep deciding briefly under the new set before stopping.
    drive(&pdp, Duration::from_millis(500)).await;
    stop.store(true, Relaxed);
    let checked = caller.await.expect("caller");
    let after = Rss::of(pdp.pid());
    // The old set is freed off the request path once its last call is done;
    // watch the resident size settle for a few seconds.
    let settle_start = Instant::now();
    let mut settled = after.rss_mib;
    while settle_start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        settled = settled.min(Rss::of(pdp.pid()).rss_mib);
    }
    let (decided, failed) = (counts.0.load(Relaxed), counts.1.load(Relaxed));
    println!(
        "reload of a changed {count}-policy set: new version after {:.1} s \
         ({} -> {}); peak VmHWM {:.1} MiB, VmRSS after {:.1} MiB",
        reload_time.as_secs_f64(),
        &first.version[..12],
        &second.version[..12],
        after.hwm_mib,
        after.rss_mib
    );
    println!(
        "decisions during the reload: {decided} calls answered, {failed} failed, \
         versions seen: {checked}"
    );
    println!(
        "VmRSS 5 s after the swap (the old set freed): {settled:.1} MiB, \
         ratio to the first load {:.2}",
        settled / loaded.rss_mib
    );
    println!(
        "target: RSS < 1024 MiB at {count} policies; peak {:.1} MiB ({})",
        after.hwm_mib,
        if after.hwm_mib < 1024.0 {
            "met"
        } else {
            "MISSED"
        }
    );
}

/// One caller asking the same question until stopped; counts answers and
/// failures; returns the versions it saw.
async fn decide_during_reload(
    channel: Channel,
    stop: Arc<AtomicBool>,
    counts: Arc<(AtomicU64, AtomicU64)>,
) -> String {
    let mut client = AuthorizerClient::new(channel);
    let mut seen: Vec<String> = Vec::new();
    let request = AuthorizeRequest {
        context: Some(context("app-7", 7)),
        actions: vec![Action {
            operation: Operation::Read as i32,
            resource_type: ResourceType::Topic as i32,
            resource_name: "team-7.events".into(),
            ..Default::default()
        }],
    };
    while !stop.load(Relaxed) {
        match client.authorize(request.clone()).await {
            Ok(response) => {
                let response = response.into_inner();
                let allowed = response.results[0].decision == Decision::Allow as i32;
                // Both generated sets grant app-7 this read.
                if allowed {
                    counts.0.fetch_add(1, Relaxed);
                } else {
                    counts.1.fetch_add(1, Relaxed);
                }
                let short = response.policy_version[..12].to_owned();
                if !seen.contains(&short) {
                    seen.push(short);
                }
            }
            Err(_) => {
                counts.1.fetch_add(1, Relaxed);
            }
        }
    }
    seen.join(" -> ")
}

/// Some load, so that RSS includes what serving costs.
async fn drive(pdp: &Pdp, how_long: Duration) {
    let _ = run_mode(pdp, how_long, Mode::Authorize).await;
}

/// Policies per generated file. A real set is split by team or domain; the
/// split also keeps the core's per-file source location search (which grows
/// with the square of a file's policy count) from dominating the load time.
const POLICIES_PER_FILE: usize = 1_000;

/// A policy directory with `count` policies: per-application grants on
/// prefixes, a third of them via roles, with one forbid per hundred.
/// `generation` changes every policy's text, so a reload builds a new set.
fn write_policy_dir(dir: &Path, count: usize, generation: &str) {
    let first = !dir.join("schema.cedarschema").exists();
    if first {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
        std::fs::copy(
            root.join("schema.cedarschema"),
            dir.join("schema.cedarschema"),
        )
        .expect("schema");
        std::fs::write(dir.join("bindings.entities.json"), bindings(count)).expect("bindings");
    }
    // Every file is written aside first and then renamed, so the watcher
    // (which ignores `.tmp` files) sees the whole change in one short burst.
    let files: Vec<_> = (0..count.div_ceil(POLICIES_PER_FILE))
        .map(|f| {
            let name = format!("generated-{f:03}.cedar");
            let tmp = dir.join(format!("{name}.tmp"));
            let from = f * POLICIES_PER_FILE;
            let to = count.min(from + POLICIES_PER_FILE);
            std::fs::write(&tmp, policies(from..to, generation)).expect("policies");
            (tmp, dir.join(name))
        })
        .collect();
    for (tmp, name) in files {
        std::fs::rename(tmp, name).expect("rename");
    }
}

fn policies(range: std::ops::Range<usize>, generation: &str) -> String {
    let mut text = String::with_capacity(range.len() * 200);
    for i in range {
        let principal = if i % 3 == 0 {
            format!("Kafka::Role::\"role-{}\"", i / 3)
        } else {
            format!("Kafka::Principal::\"User:app-{i}\"")
        };
        let (effect, op) = if i % 100 == 99 {
            ("forbid", "Write")
        } else {
            ("permit", "Read")
        };
        let _ = writeln!(
            text,
            "@id(\"{generation}-{i}\")\n{effect} (principal in {principal}, \
             action in [Kafka::Action::\"{op}\"], resource in Kafka::TopicPrefix::\"team-{i}.\");"
        );
    }
    text
}

/// The first thousand roles get a member each, so role policies are reachable.
fn bindings(count: usize) -> String {
    let members: Vec<String> = (0..count.min(3_000))
        .step_by(3)
        .map(|i| {
            format!(
                "{{\"uid\":{{\"type\":\"Kafka::Principal\",\"id\":\"User:member-{i}\"}},\
                 \"attrs\":{{\"principal_type\":\"User\",\"name\":\"member-{i}\"}},\
                 \"parents\":[{{\"type\":\"Kafka::Role\",\"id\":\"role-{}\"}}]}}",
                i / 3
            )
        })
        .collect();
    format!("[{}]", members.join(","))
}

struct Rss {
    rss_mib: f64,
    hwm_mib: f64,
}

impl Rss {
    fn of(pid: u32) -> Rss {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        Rss {
            rss_mib: kib("VmRSS:") / 1024.0,
            hwm_mib: kib("VmHWM:") / 1024.0,
        }
    }
}

// === the server process ===

struct Pdp {
    child: Child,
    addr: String,
}

impl Pdp {
    fn start(args: &[&str]) -> Pdp {
        let mut child = Command::new(BIN)
            .args(["serve", "--plaintext", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start kafka-pdp");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read stdout");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Pdp { child, addr }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn channel(&self) -> Channel {
        let connect = Connect {
            server: self.addr.clone(),
            plaintext: true,
            ca: None,
            identity: None,
        };
        connect.channel().await.expect("connect")
    }
}

impl Drop for Pdp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

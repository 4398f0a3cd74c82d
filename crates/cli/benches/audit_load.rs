//! Decision throughput of the real `kafka-pdp` binary with the audit trail
//! off and on, measured in the same run.
//!
//! ```text
//! cargo bench -p kafka-pdp --bench audit_load              # 10 s per mode
//! cargo bench -p kafka-pdp --bench audit_load -- --quick   # 2 s per mode
//! ```
//!
//! Each mode starts `kafka-pdp serve --plaintext` on loopback with the
//! default policies (with `--audit-dir` and `--audit-key` in a temporary
//! directory when the trail is on) and drives it with concurrent callers
//! sending `Authorize` batches of 20 actions. With the trail on, every call
//! waits for its 20 records to be written and `fdatasync`ed (group commit)
//! before it is answered. The audit directory is under `AUDIT_BENCH_DIR` if
//! set, else the system temp directory: put it on the disk the PDP will use.
//! The load generator shares the machine's cores with the server.
//!
//! Two figures help read the ratios. The closed loop of 32 callers makes
//! throughput with the trail on depend on how long an `fdatasync` takes, so
//! the run measures it on the audit directory's disk before and after the
//! modes (median of a few 4 KiB append + `fdatasync`). And the server's own
//! CPU time per decision (Linux `/proc`; all its threads) shows what the trail
//! costs in CPU, which the load generator's share of the cores does not blur.

use std::{
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
        authorizer_client::AuthorizerClient, Action, AuthorizeRequest, Operation, Principal,
        RequestContext, ResourceType,
    },
};

const BIN: &str = env!("CARGO_BIN_EXE_kafka-pdp");
const BATCH: usize = 20;
const CONNECTIONS: usize = 4;
const CALLERS: usize = 32;

const PRINCIPALS: [&str; 4] = [
    "lab-results-consumer",
    "lab-results-producer",
    "platform-ops-bot",
    "unbound-app",
];
const OPERATIONS: [Operation; 3] = [Operation::Read, Operation::Write, Operation::Describe];

struct Mode {
    name: &'static str,
    audit: bool,
    cache: bool,
}

const MODES: [Mode; 4] = [
    Mode {
        name: "no cache, audit off",
        audit: false,
        cache: false,
    },
    Mode {
        name: "no cache, audit on",
        audit: true,
        cache: false,
    },
    Mode {
        name: "cache, audit off",
        audit: false,
        cache: true,
    },
    Mode {
        name: "cache, audit on",
        audit: true,
        cache: true,
    },
];

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let duration = Duration::from_secs(if quick { 2 } else { 10 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let base = std::env::var_os("AUDIT_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let scratch = tempfile::tempdir_in(base).expect("temp dir");
    let key = scratch.path().join("audit.key");
    keygen(&key);

    let sync_before = sync_latency(scratch.path());
    let mut rates = Vec::new();
    let mut cpu = Vec::new();
    for (i, mode) in MODES.iter().enumerate() {
        let audit_dir = scratch.path().join(format!("log-{i}"));
        let server = PdpProcess::start(mode, &audit_dir, &key);
        let cpu_before = server.cpu_time();
        let (rate, decisions) = rt.block_on(drive(&server.addr, duration));
        let per_decision = match (cpu_before, server.cpu_time()) {
            (Some(before), Some(after)) => Some((after - before) / decisions as f64),
            _ => None,
        };
        if mode.audit {
            let commits = server.metric("kafka_pdp_audit_group_commits_total");
            let records = count_records(&audit_dir);
            let per_commit = commits.map_or(String::new(), |c| {
                format!(", {:.0} a group commit", records as f64 / c)
            });
            println!("  ({records} records in the trail{per_commit})");
        }
        let cpu_text = per_decision.map_or(String::new(), |s| {
            format!("  server CPU {:.2} µs/decision", s * 1e6)
        });
        println!("{:<24} {:>12.0} decisions/s{cpu_text}", mode.name, rate);
        rates.push(rate);
        cpu.push(per_decision);
    }
    let sync_after = sync_latency(scratch.path());
    println!();
    println!(
        "fdatasync of a 4 KiB append on the audit disk: {:.2} ms before, {:.2} ms after",
        sync_before.as_secs_f64() * 1e3,
        sync_after.as_secs_f64() * 1e3
    );
    println!("decision throughput with the audit trail on / off, same run:");
    println!("  no cache: {:.3}x", rates[1] / rates[0]);
    println!("  cache:    {:.3}x", rates[3] / rates[2]);
    if let [Some(a), Some(b), Some(c), Some(d)] = cpu[..] {
        println!("server CPU per decision with the trail on / off, same run:");
        println!("  no cache: {:.3}x", b / a);
        println!("  cache:    {:.3}x", d / c);
    }
}

/// The median time of a 4 KiB append and `fdatasync` to a file in `dir`.
fn sync_latency(dir: &Path) -> Duration {
    use std::io::Write;
    const ROUNDS: usize = 21;
    let path = dir.join("sync-probe");
    let mut file = std::fs::File::create(&path).expect("create the sync probe");
    let block = [b'x'; 4096];
    let mut took: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            file.write_all(&block).expect("write the sync probe");
            file.sync_data().expect("sync the sync probe");
            start.elapsed()
        })
        .collect();
    let _ = std::fs::remove_file(&path);
    took.sort();
    took[ROUNDS / 2]
}

fn keygen(key: &Path) {
    let status = Command::new(BIN)
        .args(["audit", "keygen", "--out"])
        .arg(key)
        .stdout(Stdio::null())
        .status()
        .expect("run keygen");
    assert!(status.success(), "keygen failed");
}

fn count_records(dir: &Path) -> usize {
    let out = Command::new(BIN)
        .args(["audit", "verify"])
        .arg(dir)
        .output()
        .expect("run verify");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the trail does not verify:\n{text}");
    text.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// A `kafka-pdp serve` child, killed on drop.
struct PdpProcess {
    child: Child,
    addr: String,
    metrics: String,
}

impl PdpProcess {
    fn start(mode: &Mode, audit_dir: &Path, key: &Path) -> PdpProcess {
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--plaintext", "--listen", "127.0.0.1:0"])
            .args(["--metrics-listen", "127.0.0.1:0"])
            // The workload's denials are what the repeated-denials alert watches for:
            // its WARN lines (one per principal and cooldown) would bury the figures.
            .env("RUST_LOG", "warn,kafka_pdp::alert=error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if !mode.cache {
            command.arg("--no-cache");
        }
        if mode.audit {
            command
                .arg("--audit-dir")
                .arg(audit_dir)
                .arg("--audit-key")
                .arg(key);
        }
        let mut child = command.spawn().expect("start kafka-pdp");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = |prefix: &str| {
            let mut line = String::new();
            stdout.read_line(&mut line).expect("read stdout");
            line.trim()
                .strip_prefix(prefix)
                .unwrap_or_else(|| panic!("expected {prefix:?}, got {line:?}"))
                .to_owned()
        };
        let addr = line("listening on ");
        let metrics = line("metrics on ");
        PdpProcess {
            child,
            addr,
            metrics,
        }
    }

    /// The value of an unlabelled sample on the server's metrics endpoint.
    fn metric(&self, name: &str) -> Option<f64> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&self.metrics).ok()?;
        let request = "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        stream.write_all(request.as_bytes()).ok()?;
        let mut body = String::new();
        stream.read_to_string(&mut body).ok()?;
        let prefix = format!("{name} ");
        body.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
    }
}

impl PdpProcess {
    /// CPU seconds (user + system, all threads) the server has used so far,
    /// from `/proc/<pid>/stat`; `None` where there is no such file.
    fn cpu_time(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        // The command name (field 2) may hold spaces; count from after it.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        Some((utime + stime) / clock_ticks()?)
    }
}

/// Clock ticks per second of `/proc` times (`getconf CLK_TCK`).
fn clock_ticks() -> Option<f64> {
    let out = Command::new("getconf").arg("CLK_TCK").output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

impl Drop for PdpProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Decisions per second over `duration`, with [`CALLERS`] callers, and the
/// number of decisions answered (including those of calls still in flight
/// when the time was up, which the server's CPU time also covers).
async fn drive(addr: &str, duration: Duration) -> (f64, u64) {
    let connect = Connect {
        server: addr.to_owned(),
        plaintext: true,
        ca: None,
        identity: None,
    };
    let mut channels = Vec::new();
    for _ in 0..CONNECTIONS {
        channels.push(connect.channel().await.expect("connect"));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let decided = Arc::new(AtomicU64::new(0));
    let mut callers = Vec::new();
    for caller in 0..CALLERS {
        let mut client = AuthorizerClient::new(channels[caller % CONNECTIONS].clone());
        let (stop, decided) = (stop.clone(), decided.clone());
        callers.push(tokio::spawn(async move {
            let mut n = caller;
            while !stop.load(Relaxed) {
                let response = client.authorize(request(n)).await.expect("authorize");
                decided.fetch_add(response.into_inner().results.len() as u64, Relaxed);
                n += CALLERS;
            }
        }));
    }
    let start = Instant::now();
    tokio::time::sleep(duration).await;
    stop.store(true, Relaxed);
    let took = start.elapsed();
    let total = decided.load(Relaxed);
    for caller in callers {
        caller.await.expect("caller");
    }
    (total as f64 / took.as_secs_f64(), decided.load(Relaxed))
}

/// The `n`th request: principals, operations and topics vary with `n`, so
/// the cache sees a few thousand distinct keys.
fn request(n: usize) -> AuthorizeRequest {
    let principal = PRINCIPALS[n % PRINCIPALS.len()];
    AuthorizeRequest {
        context: Some(RequestContext {
            principal: Some(Principal {
                r#type: "User".into(),
                name: principal.into(),
            }),
            client_address: "10.0.0.7".into(),
            listener: "SASL_SSL".into(),
            security_protocol: "SASL_SSL".into(),
            client_id: "bench".into(),
            request_api: "PRODUCE".into(),
            correlation_id: n as i32,
            broker_id: 1,
            ..Default::default()
        }),
        actions: (0..BATCH)
            .map(|i| Action {
                operation: OPERATIONS[(n + i) % OPERATIONS.len()] as i32,
                resource_type: ResourceType::Topic as i32,
                resource_name: format!("phi.labs.results-{}", (n * 7 + i) % 100),
                log_if_allowed: false,
                log_if_denied: true,
                ..Default::default()
            })
            .collect(),
    }
}

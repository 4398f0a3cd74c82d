//! `kafka-pdp audit`: verify, query and follow the audit trail; make its key.

use std::{
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::Context;
use kafka_pdp_audit::{self as audit, checkpoint, AuditRecord, Decision, Filter, Timestamp};

use super::{EXIT_ERROR, EXIT_OK};

mod subscribe;

/// How often `audit tail --follow` looks for new records.
pub const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Records `audit tail` prints when `-n` is not given.
pub const DEFAULT_TAIL_RECORDS: usize = 10;

/// Read and check the audit trail that `serve --audit-dir` writes.
#[derive(clap::Args, Debug)]
#[command(after_help = super::EXIT_CODES)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    Verify(VerifyArgs),
    Tail(TailArgs),
    Query(QueryArgs),
    Keygen(KeygenArgs),
    Subscribe(subscribe::SubscribeArgs),
}

/// Check a log: name every edited, deleted, reordered or truncated record
/// and every bad checkpoint signature. Exit 0 when intact, 1 otherwise.
#[derive(clap::Args, Debug)]
struct VerifyArgs {
    /// The audit log directory.
    dir: PathBuf,

    /// Public key (SPKI PEM or 64 hex digits) the checkpoints must be signed
    /// with; keep it away from the PDP host. Repeat it for every key the log
    /// was signed with across key rotations. Default: none, and signatures
    /// are not checked (the output says so).
    #[arg(long, value_name = "FILE")]
    public_key: Vec<PathBuf>,
}

/// Print the newest records, and with `--follow` every new one.
#[derive(clap::Args, Debug)]
struct TailArgs {
    /// The audit log directory.
    dir: PathBuf,

    /// How many of the newest records to print.
    #[arg(short = 'n', long, default_value_t = DEFAULT_TAIL_RECORDS)]
    records: usize,

    /// Keep printing records as they are written, across rotations (polls
    /// every 200 ms), until interrupted.
    #[arg(short, long)]
    follow: bool,

    /// One JSON object per record instead of one line for people.
    #[arg(long)]
    json: bool,
}

/// Print the records that match every given filter, oldest first.
#[derive(clap::Args, Debug)]
struct QueryArgs {
    /// The audit log directory.
    dir: PathBuf,

    /// `User:alice`, or `alice` for any principal type.
    #[arg(long)]
    principal: Option<String>,

    /// `Topic:payments.eu`, `payments.eu` for any type, or a prefix ending in
    /// `*` (`Topic:phi.*`).
    #[arg(long)]
    resource: Option<String>,

    #[arg(long, value_enum)]
    decision: Option<DecisionArg>,

    /// Records at or after this RFC 3339 time (`2026-12-03T10:00:00Z`).
    #[arg(long, value_parser = parse_time)]
    since: Option<Timestamp>,

    /// Records before this RFC 3339 time.
    #[arg(long, value_parser = parse_time)]
    until: Option<Timestamp>,

    /// One JSON object per record instead of one line for people.
    #[arg(long)]
    json: bool,
}

/// Make an Ed25519 key pair for `serve --audit-key`: `OUT` (private, mode
/// 600) and `OUT.pub` (for auditors). Same as `openssl genpkey -algorithm
/// ed25519 -out OUT` and `openssl pkey -in OUT -pubout -out OUT.pub`.
#[derive(clap::Args, Debug)]
struct KeygenArgs {
    /// Where to write the private key; refuses to overwrite.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum DecisionArg {
    Allow,
    Deny,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Verify(args) => verify(args),
        Command::Tail(args) => tail(args),
        Command::Query(args) => query(args),
        Command::Keygen(args) => keygen(args),
        Command::Subscribe(args) => subscribe::run(args),
    }
}

fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let keys = args
        .public_key
        .iter()
        .map(|path| checkpoint::load_verifying_key(path))
        .collect::<Result<Vec<_>, _>>()?;
    let trusted = (!keys.is_empty()).then_some(keys.as_slice());
    let report = audit::verify(&args.dir, trusted)?;
    let mut out = io::stdout().lock();
    let range = match (report.first_seq, report.last_seq) {
        (Some(first), Some(last)) => format!("records {first}..={last}"),
        _ => "no records".to_owned(),
    };
    writeln!(
        out,
        "{}: {} records ({range}) in {} segments, {} checkpoints",
        args.dir.display(),
        report.records,
        report.segments,
        report.checkpoints
    )?;
    for note in &report.notes {
        writeln!(out, "note: {note}")?;
    }
    for finding in &report.findings {
        writeln!(out, "{finding}")?;
    }
    if report.is_intact() {
        writeln!(out, "intact")?;
        return Ok(ExitCode::from(EXIT_OK));
    }
    writeln!(out, "DAMAGED: {} findings", report.findings.len())?;
    Ok(ExitCode::from(EXIT_ERROR))
}

fn tail(args: TailArgs) -> anyhow::Result<ExitCode> {
    // Take the follow position first: a record written meanwhile shows up in
    // both reads and is printed once, by sequence number.
    let mut follower = args
        .follow
        .then(|| audit::Follower::from_end(&args.dir))
        .transpose()?;
    let mut printed = 0;
    for record in audit::last_records(&args.dir, args.records, Filter::default())? {
        print_record(&record, args.json)?;
        printed = record.seq;
    }
    let Some(follower) = &mut follower else {
        return Ok(ExitCode::from(EXIT_OK));
    };
    loop {
        for record in follower.poll()? {
            if record.seq > printed {
                print_record(&record, args.json)?;
                printed = record.seq;
            }
        }
        std::thread::sleep(FOLLOW_POLL);
    }
}

fn query(args: QueryArgs) -> anyhow::Result<ExitCode> {
    let filter = Filter {
        principal: args.principal,
        resource: args.resource,
        decision: args.decision.map(|d| match d {
            DecisionArg::Allow => Decision::Allow,
            DecisionArg::Deny => Decision::Deny,
        }),
        since: args.since,
        until: args.until,
    };
    for record in audit::query(&args.dir, filter)? {
        print_record(&record?, args.json)?;
    }
    Ok(ExitCode::from(EXIT_OK))
}

fn print_record(record: &AuditRecord, json: bool) -> io::Result<()> {
    let mut out = io::stdout().lock();
    if json {
        writeln!(out, "{}", record.to_json())?;
    } else {
        writeln!(out, "{record}")?;
    }
    out.flush()
}

fn keygen(args: KeygenArgs) -> anyhow::Result<ExitCode> {
    let public_path = PathBuf::from(format!("{}.pub", args.out.display()));
    let (private, public) = checkpoint::generate_key_pem()?;
    write_new(&args.out, private.as_bytes(), 0o600)?;
    write_new(&public_path, public.as_bytes(), 0o644)?;
    println!(
        "wrote {} (private: give it to `serve --audit-key`, keep it secret) and {} \
         (public: give it to auditors for `audit verify --public-key`)",
        args.out.display(),
        public_path.display()
    );
    Ok(ExitCode::from(EXIT_OK))
}

/// Creates `path` with `mode`; never replaces an existing file.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create `{}`", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write `{}`", path.display()))
}

fn parse_time(text: &str) -> Result<Timestamp, String> {
    text.parse()
        .map_err(|e| format!("`{text}` is not an RFC 3339 time like 2026-12-03T10:00:00Z: {e}"))
}

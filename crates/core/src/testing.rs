//! Policy test cases, kept next to the policies in `tests/*.json`.
//!
//! A test file holds named cases; each asks one question and states the
//! expected answer:
//!
//! ```json
//! { "cases": [ {
//!     "name": "lab producer writes lab results",
//!     "principal": "User:lab-results-producer",
//!     "operation": "Write",
//!     "resource_type": "Topic",
//!     "resource": "phi.labs.results",
//!     "context": { "client_address": "10.1.2.3", "security_protocol": "SASL_SSL" },
//!     "now": "2026-01-01T00:00:00Z",
//!     "expect": "allow",
//!     "determining": ["producer-lab-results"]
//! } ] }
//! ```
//!
//! The principal's roles come from the policy directory's bindings, as in
//! production. `context` fields and `now` are optional (defaults:
//! `127.0.0.1`, empty strings, [`DEFAULT_NOW`]); `determining`, when
//! present, must equal the determining policy ids exactly (in any order);
//! `errors`, when present, lists the ids of the policies expected to fail
//! to evaluate (default: none may fail).

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::error::{lowercase_first, LoadError};
use crate::model::{parse_client_address, Action, PatternType, Principal, RequestContext};
use crate::store::PolicySnapshot;

/// The request time of a case that names none.
pub const DEFAULT_NOW: &str = "2026-01-01T00:00:00Z";

/// The folder of test cases inside a policy directory.
pub const TESTS_DIR: &str = "tests";

/// One test file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    #[serde(default)]
    pub description: Option<String>,
    pub cases: Vec<TestCase>,
}

/// One named question with its expected answer.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    pub name: String,
    /// `type:name`, such as `User:lab-results-producer`.
    pub principal: String,
    pub operation: String,
    pub resource_type: String,
    pub resource: String,
    #[serde(default)]
    pub pattern_type: Option<String>,
    #[serde(default)]
    pub context: CaseContext,
    /// RFC 3339 UTC time, `YYYY-MM-DDThh:mm:ss[.sss]Z`.
    #[serde(default)]
    pub now: Option<String>,
    pub expect: Expect,
    #[serde(default)]
    pub determining: Option<Vec<String>>,
    #[serde(default)]
    pub errors: Option<Vec<String>>,
}

/// The request context of a case; every field is optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseContext {
    pub client_address: Option<String>,
    #[serde(default)]
    pub listener: String,
    #[serde(default)]
    pub security_protocol: String,
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub request_api: String,
}

/// The expected decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    Allow,
    Deny,
}

/// The outcome of one case (or of a test file that could not be read, named
/// `<file>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseResult {
    /// The test file, as named to the runner (`policies/tests/roles.json`).
    pub file: String,
    pub name: String,
    pub passed: bool,
    /// Why it failed; empty when it passed.
    pub message: String,
}

/// The outcome of a test run, printable for CI.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TestReport {
    pub results: Vec<CaseResult>,
}

impl TestReport {
    /// Number of passed cases.
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.passed).count()
    }

    /// Number of failed cases (and unreadable files).
    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }

    /// True when every case passed and there was at least one.
    pub fn success(&self) -> bool {
        self.failed() == 0 && !self.results.is_empty()
    }
}

impl fmt::Display for TestReport {
    /// One line per case (`ok` or `FAIL`), then a summary line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.results {
            if r.passed {
                writeln!(f, "ok    {}: {}", r.file, r.name)?;
            } else {
                writeln!(f, "FAIL  {}: {}: {}", r.file, r.name, r.message)?;
            }
        }
        write!(f, "{} passed, {} failed", self.passed(), self.failed())
    }
}

/// Loads the policy directory `dir` and runs the cases of `dir/tests`.
pub fn run_tests(dir: impl AsRef<Path>) -> Result<TestReport, LoadError> {
    let dir = dir.as_ref();
    let snapshot = PolicySnapshot::load_dir(dir)?;
    Ok(run_cases(&snapshot, &dir.join(TESTS_DIR)))
}

/// Runs every `*.json` case file of `tests_dir` against `snapshot`, files in
/// name order. An unreadable or malformed file is one failed result.
pub fn run_cases(snapshot: &PolicySnapshot, tests_dir: &Path) -> TestReport {
    let mut report = TestReport::default();
    let shown = tests_dir.display().to_string();
    let mut paths: Vec<_> = match std::fs::read_dir(tests_dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect(),
        Err(e) => {
            report
                .results
                .push(file_failure(&shown, format!("cannot read: {e}")));
            return report;
        }
    };
    paths.sort();
    for path in paths {
        let file = path.display().to_string();
        match std::fs::read_to_string(&path) {
            Ok(text) => report.results.extend(run_file(snapshot, &file, &text)),
            Err(e) => report
                .results
                .push(file_failure(&file, format!("cannot read: {e}"))),
        }
    }
    report
}

/// Runs the cases of one test file's text.
pub fn run_file(snapshot: &PolicySnapshot, file: &str, text: &str) -> Vec<CaseResult> {
    let parsed: TestFile = match serde_json::from_str(text) {
        Ok(parsed) => parsed,
        Err(e) => {
            let message = format!(
                "{}:{}: invalid test file: {}",
                e.line(),
                e.column(),
                lowercase_first(&e.to_string())
            );
            return vec![file_failure(file, message)];
        }
    };
    parsed
        .cases
        .iter()
        .map(|case| {
            let outcome = run_case(snapshot, case);
            CaseResult {
                file: file.to_owned(),
                name: case.name.clone(),
                passed: outcome.is_ok(),
                message: outcome.err().unwrap_or_default(),
            }
        })
        .collect()
}

fn file_failure(file: &str, message: String) -> CaseResult {
    CaseResult {
        file: file.to_owned(),
        name: "<file>".to_owned(),
        passed: false,
        message,
    }
}

/// Runs one case; `Err` says what differed.
pub fn run_case(snapshot: &PolicySnapshot, case: &TestCase) -> Result<(), String> {
    let (ctx, action, now) = request_of(case).map_err(|e| format!("invalid case: {e}"))?;
    let decision = snapshot.decide(&ctx, &action, now);
    let got = if decision.allowed { "allow" } else { "deny" };
    let want = match case.expect {
        Expect::Allow => "allow",
        Expect::Deny => "deny",
    };
    let got_ids: BTreeSet<&str> = decision.determining.iter().map(String::as_str).collect();
    let got_errors: BTreeSet<&str> = decision
        .errors
        .iter()
        .map(|e| e.policy_id.as_deref().unwrap_or("<request>"))
        .collect();
    let mut problems = Vec::new();
    if got != want {
        problems.push(format!("expected {want}, got {got}"));
    }
    if let Some(ids) = &case.determining {
        let want_ids: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
        if want_ids != got_ids {
            problems.push(format!(
                "expected determining {want_ids:?}, got {got_ids:?}"
            ));
        }
    }
    let want_errors: BTreeSet<&str> = case.errors.iter().flatten().map(String::as_str).collect();
    // Request-level errors (an operation that does not apply, say) are part
    // of an expected DENY, not evaluation errors of a policy.
    let policy_errors: BTreeSet<&str> = got_errors
        .into_iter()
        .filter(|e| *e != "<request>")
        .collect();
    if want_errors != policy_errors {
        let detail: Vec<String> = decision.errors.iter().map(ToString::to_string).collect();
        problems.push(format!("expected errors {want_errors:?}, got {detail:?}"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn request_of(case: &TestCase) -> Result<(RequestContext, Action, SystemTime), String> {
    let principal: Principal = case.principal.parse().map_err(|e| format!("{e}"))?;
    let address = match &case.context.client_address {
        Some(a) => parse_client_address(a).map_err(|e| e.to_string())?,
        None => IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    let ctx = RequestContext::new(
        principal,
        address,
        case.context.listener.clone(),
        case.context.security_protocol.clone(),
        case.context.client_id.clone(),
        case.context.request_api.clone(),
    )
    .map_err(|e| e.to_string())?;
    let pattern = match &case.pattern_type {
        Some(p) => p.parse().map_err(|e: crate::RequestError| e.to_string())?,
        None => PatternType::Literal,
    };
    let action = Action::new(
        case.operation
            .parse()
            .map_err(|e: crate::RequestError| e.to_string())?,
        case.resource_type
            .parse()
            .map_err(|e: crate::RequestError| e.to_string())?,
        case.resource.clone(),
        pattern,
    )
    .map_err(|e| e.to_string())?;
    let now = parse_utc(case.now.as_deref().unwrap_or(DEFAULT_NOW))?;
    Ok((ctx, action, now))
}

/// Parses `YYYY-MM-DDThh:mm:ss[.fff]Z`.
pub fn parse_utc(s: &str) -> Result<SystemTime, String> {
    let bad = || format!("invalid time `{s}`: expected `YYYY-MM-DDThh:mm:ss[.sss]Z`");
    let body = s.strip_suffix('Z').ok_or_else(bad)?;
    let (date, time) = body.split_once('T').ok_or_else(bad)?;
    let num = |t: &str| t.parse::<u64>().map_err(|_| bad());
    let d: Vec<&str> = date.split('-').collect();
    let (time, frac) = time.split_once('.').unwrap_or((time, ""));
    let t: Vec<&str> = time.split(':').collect();
    if d.len() != 3 || t.len() != 3 || d[0].len() != 4 || frac.len() > 9 {
        return Err(bad());
    }
    let (year, month, day) = (num(d[0])?, num(d[1])?, num(d[2])?);
    let (hour, minute, second) = (num(t[0])?, num(t[1])?, num(t[2])?);
    if !(1970..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(bad());
    }
    let nanos = if frac.is_empty() {
        0
    } else {
        num(frac)? * 10u64.pow(9 - frac.len() as u32)
    };
    let days = days_from_civil(year as i64, month as i64, day as i64);
    let secs = days as u64 * 86_400 + hour * 3600 + minute * 60 + second;
    Ok(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_nanos(nanos))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// well-known algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_to_the_second_and_millisecond() {
        let t = parse_utc("2024-02-29T23:59:59.123Z").unwrap();
        let since = t.duration_since(UNIX_EPOCH).unwrap();
        assert_eq!(since.as_millis(), 1_709_251_199_123);
        assert_eq!(crate::decide::cedar_datetime(t), "2024-02-29T23:59:59.123Z");
        assert!(parse_utc("2024-02-29").is_err());
        assert!(parse_utc("2024-13-01T00:00:00Z").is_err());
    }
}

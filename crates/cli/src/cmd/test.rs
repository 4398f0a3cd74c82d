//! `kafka-pdp test DIR`: run the policy test cases kept next to the policies.

use std::{path::PathBuf, process::ExitCode};

use kafka_pdp_core::testing;

use super::{EXIT_ERROR, EXIT_OK};

/// Run the policy test cases kept next to the policies.
///
/// Runs `DIR/tests/*.json` against the policies of `DIR`. Prints one line per
/// case (`ok` or `FAIL` with the reason), then `N passed, N failed`. Exits 0
/// when every case passed, 1 on any failure, on no cases at all, or on an
/// invalid policy set.
#[derive(clap::Args, Debug)]
#[command(after_help = super::EXIT_CODES)]
pub struct Args {
    /// The policy directory; its cases are in `DIR/tests/`.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let report = match testing::run_tests(&args.dir) {
        Ok(report) => report,
        Err(error) => {
            for problem in &error.problems {
                println!("{problem}");
            }
            println!("0 passed, 0 failed (the policy set is invalid)");
            return Ok(ExitCode::from(EXIT_ERROR));
        }
    };
    println!("{report}");
    let code = if report.success() {
        EXIT_OK
    } else {
        EXIT_ERROR
    };
    Ok(ExitCode::from(code))
}

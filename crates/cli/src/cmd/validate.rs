//! `kafka-pdp validate DIR`: check a policy directory as the server would load it.

use std::{path::PathBuf, process::ExitCode};

use kafka_pdp_core::PolicySnapshot;

use super::{EXIT_ERROR, EXIT_OK};

/// Validate a policy directory as the server would load it.
///
/// Checks the schema, the policies (strict mode), the bindings and the links.
/// Prints every problem as `file:line:column: message` and exits 1 if there is
/// any; exits 0 for a valid set.
#[derive(clap::Args, Debug)]
#[command(after_help = super::EXIT_CODES)]
pub struct Args {
    /// The policy directory.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match PolicySnapshot::load_dir(&args.dir) {
        Ok(snapshot) => {
            println!(
                "{}: valid, {} policies, version {}",
                args.dir.display(),
                snapshot.policy_count(),
                snapshot.version()
            );
            Ok(ExitCode::from(EXIT_OK))
        }
        Err(error) => {
            for problem in &error.problems {
                println!("{problem}");
            }
            let n = error.problems.len();
            eprintln!("{}: invalid, {n} problem{}", args.dir.display(), plural(n));
            Ok(ExitCode::from(EXIT_ERROR))
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

//! `e2e-gate run` (the default command): composition root for the suite runner.

use super::args::RunArgs;
use crate::{exit_code, suite};

/// Runs the selected suites.
pub async fn run(args: RunArgs) -> u8 {
    match suite::select(&args.suites_dir, &args.suites) {
        Ok(_) => exit_code::OK,
        Err(e) => {
            eprintln!("error: {e}");
            exit_code::USAGE
        }
    }
}

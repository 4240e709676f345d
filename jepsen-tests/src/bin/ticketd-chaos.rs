//! `ticketd-chaos`: runs chaos workloads against real `ticketd` nodes and checks histories.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use ticketd_jepsen::checker;
use ticketd_jepsen::history::History;

#[derive(Parser)]
#[command(about = "Chaos harness of ticketd: run workloads under faults, check histories")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Checks a history file (JSON lines) and prints the report; exit 1 on any anomaly.
    Check {
        /// The history file.
        history: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Check { history } => {
            let h = History::load(&history)?;
            let r = checker::check(&h);
            println!("{}", serde_json::to_string_pretty(&r)?);
            if !r.anomalies.is_empty() {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

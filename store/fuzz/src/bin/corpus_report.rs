//! Replays a corpus directory through the harness and reports what its inputs reached: the
//! share that applied at least one command, and per command variant how many took effect and
//! how many were refused.
//!
//! `cargo run --release --no-default-features --bin corpus-report -- corpus/apply`
#![cfg_attr(not(test), deny(clippy::too_many_lines))]

use std::path::PathBuf;

fn main() -> std::process::ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: corpus-report CORPUS_DIR");
        return std::process::ExitCode::from(2);
    };
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("cannot read {}: {e}", dir.display());
            return std::process::ExitCode::from(2);
        }
    };
    let (mut inputs, mut applying) = (0u64, 0u64);
    let mut all = ticketd_store_fuzz::Stats::default();
    for entry in entries.flatten() {
        let Ok(data) = std::fs::read(entry.path()) else {
            continue;
        };
        let stats = ticketd_store_fuzz::run(&data);
        inputs += 1;
        if stats.done() > 0 {
            applying += 1;
        }
        all.add(&stats);
    }
    let share = if inputs == 0 {
        0.0
    } else {
        100.0 * applying as f64 / inputs as f64
    };
    println!("inputs {inputs}, entries {}, inputs that applied at least one command {applying} ({share:.1} %)", all.entries);
    println!("{:<22} {:>10} {:>10}", "command", "done", "rejected");
    for (variant, (done, rejected)) in &all.by_variant {
        println!("{variant:<22} {done:>10} {rejected:>10}");
    }
    std::process::ExitCode::SUCCESS
}

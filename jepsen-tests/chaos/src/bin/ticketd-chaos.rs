//! `ticketd-chaos`: runs chaos workloads against real `ticketd` nodes and checks histories.
//!
//! ```text
//! ticketd-chaos run --seed 7 --faults kill-leader,isolate-one --duration 60
//! ticketd-chaos check out/run.history.jsonl
//! ticketd-chaos table out/*.summary.json
//! ```

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use ticketd_chaos::nemesis::FaultKind;
use ticketd_chaos::runner::{self, NetMode, RaftTiming, RunConfig, RunSummary};
use ticketd_checker as checker;
use ticketd_checker::history::History;
use ticketd_workload::Workload;

#[derive(Parser)]
#[command(about = "Chaos harness of ticketd: run workloads under faults, check histories")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// One run: cluster, clients, faults from the seed, heal, final reads, history, check.
    /// Exit 1 on any anomaly.
    Run {
        /// Name of the run (file prefix).
        #[arg(long, default_value = "run")]
        name: String,
        /// Seed (default: from the clock; printed either way).
        #[arg(long)]
        seed: Option<u64>,
        /// Nodes: 3 or 5.
        #[arg(long, default_value_t = 3)]
        nodes: u64,
        /// Concurrent clients.
        #[arg(long, default_value_t = 6)]
        clients: usize,
        /// Target ops/s over all clients.
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        /// Workload seconds.
        #[arg(long, default_value_t = 30)]
        duration: u64,
        /// Comma-separated fault kinds, `all`, or `none`.
        #[arg(long, default_value = "all")]
        faults: String,
        /// Mean quiet seconds between faults.
        #[arg(long, default_value_t = 4.0)]
        fault_interval: f64,
        /// Longest seconds a fault is held.
        #[arg(long, default_value_t = 6.0)]
        fault_hold: f64,
        /// auto (namespaces if possible), netns, loopback.
        #[arg(long, default_value = "auto")]
        net: String,
        /// The ticketd binary.
        #[arg(
            long,
            env = "TICKETD_BIN",
            default_value = "/var/cache/ticketd/target/debug/ticketd"
        )]
        bin: PathBuf,
        /// Output directory.
        #[arg(long, default_value = "chaos-out")]
        out: PathBuf,
        /// Venue ids in use at once (contention), for the register workload.
        #[arg(long, default_value_t = 4)]
        key_window: u64,
        /// sale (holds, purchases, cancels, scans on a seat map) or register (venue ids).
        #[arg(long, default_value = "sale")]
        workload: String,
        /// The nodes' Raft timing: chaos (heartbeat 100 ms, election timeout 600 ms) or
        /// production (ticketd's defaults: 50 ms, 100 ms).
        #[arg(long, default_value = "chaos")]
        timing: String,
        /// A shell command run against the healed cluster before it stops, with
        /// TICKETCTL_ENDPOINTS, TICKETCTL_CACERT, TICKETCTL_CERT, TICKETCTL_KEY set (for
        /// example `ticketctl endpoint hashkv`); its exit status is printed.
        #[arg(long)]
        after_heal: Option<String>,
    },
    /// Checks a history file and prints the report; exit 1 on any anomaly.
    Check {
        /// The history file.
        history: PathBuf,
    },
    /// Prints the summary table of run summaries; exit 1 on any anomaly.
    Table {
        /// `*.summary.json` files.
        summaries: Vec<PathBuf>,
    },
    /// Deterministic simulation of the Raft layer for the given seeds; exit 1 on any violation.
    Sim {
        /// First seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// How many seeds from `seed` on.
        #[arg(long, default_value_t = 1)]
        count: u64,
        /// Voters.
        #[arg(long, default_value_t = 3)]
        nodes: u64,
        /// Ops per client.
        #[arg(long, default_value_t = 60)]
        ops: usize,
        /// Write each seed's history to this directory.
        #[arg(long)]
        out: Option<PathBuf>,
        /// No faults (a baseline).
        #[arg(long)]
        no_faults: bool,
        /// openraft's enable_leader_restore (default: what ticketd node runs with, off).
        #[arg(long)]
        leader_restore: Option<bool>,
        /// sale or register.
        #[arg(long, default_value = "sale")]
        workload: String,
    },
    /// Lists the fault kinds.
    Faults,
    /// Lists the short suite's runs, one per line: name, nodes, workload, fault kinds.
    Suite,
    /// Removes namespaces and bridges left by killed runs (tjN-nI, tjbN).
    Cleanup,
}

fn parse_faults(s: &str) -> anyhow::Result<Vec<FaultKind>> {
    match s {
        "all" => Ok(FaultKind::ALL.to_vec()),
        "none" | "" => Ok(Vec::new()),
        s => s.split(',').map(|f| FaultKind::parse(f.trim())).collect(),
    }
}

fn main() -> anyhow::Result<()> {
    // rustls's crypto provider for the whole process (ring): reqwest and lettre take none of
    // their own.
    ticketd_raft::tls::install_provider();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CHAOS_LOG")
                // openraft runs in this process only in `sim`, where its warnings about
                // simulated faults are noise.
                .unwrap_or_else(|_| "warn,openraft=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Run {
            name,
            seed,
            nodes,
            clients,
            rate,
            duration,
            faults,
            fault_interval,
            fault_hold,
            net,
            bin,
            out,
            key_window,
            workload,
            timing,
            after_heal,
        } => {
            let seed = seed.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64 % 1_000_000_007)
                    .unwrap_or(1)
            });
            println!("seed {seed}");
            let net = match net.as_str() {
                "auto" => NetMode::Auto,
                "netns" => NetMode::Netns,
                "loopback" => NetMode::Loopback,
                other => anyhow::bail!("--net {other}: expected auto, netns or loopback"),
            };
            if !bin.exists() {
                anyhow::bail!(
                    "{} not found: build it with `cargo build -p ticketd-cluster --bins`",
                    bin.display()
                );
            }
            let cfg = RunConfig {
                name,
                seed,
                nodes,
                clients,
                rate,
                duration: Duration::from_secs(duration),
                faults: parse_faults(&faults)?,
                fault_interval: Duration::from_secs_f64(fault_interval),
                fault_hold_max: Duration::from_secs_f64(fault_hold),
                net,
                bin,
                out_dir: out,
                key_window,
                workload: Workload::parse(&workload)?,
                timing: RaftTiming::parse(&timing)?,
                after_heal,
            };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let s = rt.block_on(runner::run(&cfg))?;
            rt.shutdown_timeout(Duration::from_secs(5));
            println!("{}", runner::table(std::slice::from_ref(&s)));
            println!("history: {}", s.history.display());
            println!("replay:  {}", s.replay);
            if let Some(st) = s.after_heal_status {
                println!("after-heal command exited {st}");
            }
            if let Some(d) = &s.cluster_dir {
                println!("node data and logs kept at {}", d.display());
            }
            if !s.anomalies.is_empty() {
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::Check { history } => {
            let h = History::load(&history)?;
            let r = checker::check(&h);
            println!("{}", serde_json::to_string_pretty(&r)?);
            if !r.anomalies.is_empty() {
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::Table { summaries } => {
            let mut runs: Vec<RunSummary> = Vec::new();
            for p in &summaries {
                runs.push(serde_json::from_slice(&std::fs::read(p)?)?);
            }
            println!("{}", runner::table(&runs));
            if runs.iter().any(|r| !r.anomalies.is_empty()) {
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::Sim {
            seed,
            count,
            nodes,
            ops,
            out,
            no_faults,
            leader_restore,
            workload,
        } => {
            let cfg = ticketd_sim::SimConfig {
                nodes,
                ops_per_client: ops,
                faults: !no_faults,
                leader_restore: leader_restore.or(Some(ticketd_raft::ENABLE_LEADER_RESTORE)),
                workload: Workload::parse(&workload)?,
                ..Default::default()
            };
            let mut bad = 0;
            for s in seed..seed.saturating_add(count) {
                let o = ticketd_sim::run(s, &cfg)?;
                println!(
                    "seed {s}: {} ms simulated, ok {} fail {} unknown {}, faults {:?}, violations {}, anomalies {}, history {}",
                    o.sim_ms,
                    o.report.ok,
                    o.report.fail,
                    o.report.info,
                    o.faults,
                    o.violations.len(),
                    o.report.anomalies.len(),
                    &o.history_digest[..16]
                );
                for v in &o.violations {
                    println!("  VIOLATION {v}");
                }
                for a in &o.report.anomalies {
                    println!("  ANOMALY [{}] {}: {}", a.checker, a.kind, a.detail);
                }
                if let Some(dir) = &out {
                    std::fs::create_dir_all(dir)?;
                    let mut text = String::new();
                    for l in &o.history {
                        text.push_str(&serde_json::to_string(l)?);
                        text.push('\n');
                    }
                    std::fs::write(dir.join(format!("sim-{s}.history.jsonl")), text)?;
                }
                if !o.violations.is_empty() || !o.report.anomalies.is_empty() {
                    bad += 1;
                }
            }
            if bad > 0 {
                println!("{bad} seeds with violations");
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::Faults => {
            for f in FaultKind::ALL {
                println!(
                    "{}{}",
                    f.name(),
                    if f.needs_netns() {
                        " (needs namespaces)"
                    } else {
                        ""
                    }
                );
            }
            Ok(())
        }
        Cmd::Suite => {
            for r in ticketd_chaos::runner::SHORT_SUITE {
                let faults: Vec<String> = r.faults.iter().map(|f| f.name()).collect();
                println!(
                    "{} {} {} {}",
                    r.name,
                    r.nodes,
                    r.workload.name(),
                    faults.join(",")
                );
            }
            Ok(())
        }
        Cmd::Cleanup => {
            for r in ticketd_chaos::lazyfs::cleanup_stale()
                .into_iter()
                .chain(ticketd_chaos::net::cleanup_stale())
            {
                println!("removed {r}");
            }
            Ok(())
        }
    }
}

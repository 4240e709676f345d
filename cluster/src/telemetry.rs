//! Logs (tracing) and metrics (Prometheus) of a process.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

/// Starts structured logging to stderr; `RUST_LOG` filters (default `info`).
pub fn init_logs(format: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,openraft=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Installs the Prometheus recorder, with latency buckets fit for fsyncs and RPCs.
pub fn init_metrics() -> anyhow::Result<PrometheusHandle> {
    let seconds = [
        0.000_1, 0.000_25, 0.000_5, 0.001, 0.002, 0.004, 0.006, 0.008, 0.01, 0.015, 0.02, 0.05,
        0.1, 0.25, 0.5, 1.0, 2.5,
    ];
    let counts = [
        1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
    ];
    Ok(PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)?
        .set_buckets_for_metric(Matcher::Suffix("_per_fsync".into()), &counts)?
        .install_recorder()?)
}

//! `ticketd-sim`: the provider simulators for development and tests (never shipped): `pay`, a
//! Stripe-shaped payment provider, and `sms`, an SMS provider.
#![cfg_attr(not(test), deny(clippy::too_many_lines))]

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ticketd-sim",
    about = "The payment and SMS provider simulators of ticketd's development and tests"
)]
struct Cli {
    #[command(subcommand)]
    command: SimCommand,
}

#[derive(Subcommand)]
enum SimCommand {
    /// Run the payment provider simulator (a Stripe-shaped API with faults on request).
    Pay {
        /// HTTP listen address.
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: std::net::SocketAddr,
        /// File that keeps the simulator's intents across restarts.
        #[arg(long)]
        state_file: Option<PathBuf>,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Run the SMS provider simulator.
    Sms {
        /// HTTP listen address.
        #[arg(long, default_value = "127.0.0.1:8091")]
        listen: std::net::SocketAddr,
        #[command(flatten)]
        serve: ServeArgs,
    },
}

/// How a simulator serves: HTTPS with this certificate, and a secret key it requires.
#[derive(clap::Args)]
struct ServeArgs {
    /// Serve HTTPS with this certificate (PEM), e.g. `ticketd certs create-node --host
    /// 127.0.0.1` from the development CA.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require `Authorization: Bearer <key>` on every request, as a real provider does.
    #[arg(long, env = "TICKETD_SIM_SECRET_KEY", hide_env_values = true)]
    secret_key: Option<String>,
}

fn main() -> anyhow::Result<()> {
    ticketd_raft::tls::install_provider();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        SimCommand::Pay {
            listen,
            state_file,
            serve,
        } => {
            let simulator = ticketd_testkit::paysim::Simulator::new(state_file)?;
            serve_simulator(listen, "payment", simulator.router(), serve)
        }
        SimCommand::Sms { listen, serve } => {
            serve_simulator(listen, "SMS", ticketd_testkit::smssim::router(), serve)
        }
    }
}

/// Runs a simulator's router until SIGTERM or Ctrl-C.
fn serve_simulator(
    listen: std::net::SocketAddr,
    what: &str,
    router: axum::Router,
    serve: ServeArgs,
) -> anyhow::Result<()> {
    use ticketd_testkit::https;
    let router = match serve.secret_key {
        Some(key) => {
            let key: std::sync::Arc<str> = key.into();
            router.layer(axum::middleware::from_fn(move |request, next| {
                https::require_bearer(key.clone(), request, next)
            }))
        }
        None => router,
    };
    let tls = match (&serve.tls_cert, &serve.tls_key) {
        (Some(cert), Some(key)) => Some(https::server_config(cert, key)?),
        _ => None,
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("bind {listen}"))?;
            tracing::info!(addr = %listen, https = tls.is_some(), "{what} simulator serving");
            let shutdown = async {
                let _ = wait_for_signal().await;
            };
            match tls {
                Some(tls) => https::serve(listener, router, tls, shutdown).await?,
                None => {
                    axum::serve(listener, router)
                        .with_graceful_shutdown(shutdown)
                        .await?
                }
            }
            anyhow::Ok(())
        })
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}

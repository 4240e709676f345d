//! The TLS settings every binary takes the same way: `--cacert`, `--cert`, `--key`, or an
//! explicit `--insecure` for a cluster run without TLS (never the default, always logged).

use std::path::PathBuf;

use ticketd_raft::identity::Role;
use ticketd_raft::tls::{Credentials, TlsFiles, Transport};

/// The flag that turns TLS off.
pub const INSECURE_FLAG: &str = "--insecure";

/// The paths a binary was given, and whether it was told to run without TLS.
#[derive(Debug, Clone, Default)]
pub struct TlsPaths {
    /// The cluster's CA certificate(s).
    pub cacert: Option<PathBuf>,
    /// This party's certificate.
    pub cert: Option<PathBuf>,
    /// Its private key.
    pub key: Option<PathBuf>,
    /// `--insecure` was given.
    pub insecure: bool,
}

/// How a party may present itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// With a certificate of this role only.
    Role(Role),
    /// With any certificate, or with the CA alone (then the nodes refuse it: `ticketctl` lets
    /// an operator see that).
    Any,
}

/// Logs, loudly, that this process runs without TLS.
pub fn warn_insecure(what: &str) {
    for line in [
        format!("INSECURE: {what} runs WITHOUT TLS ({INSECURE_FLAG}): no caller is authenticated"),
        "INSECURE: anyone who reaches a node's port may write any command, read every secret and change membership".to_string(),
        "INSECURE: for development comparisons only; production runs with --cacert, --cert and --key".to_string(),
    ] {
        tracing::error!("{line}");
    }
}

impl TlsPaths {
    /// The transport these paths make for `what` (a name for messages), checked against
    /// `presence`.
    pub fn transport(&self, what: &str, presence: Presence) -> anyhow::Result<Transport> {
        let given = [&self.cacert, &self.cert, &self.key]
            .iter()
            .filter(|p| p.is_some())
            .count();
        if self.insecure {
            anyhow::ensure!(
                given == 0,
                "{what}: {INSECURE_FLAG} turns TLS off; do not give --cacert, --cert or --key with it"
            );
            warn_insecure(what);
            return Ok(Transport::Insecure);
        }
        let Some(ca) = &self.cacert else {
            anyhow::bail!(
                "{what}: no TLS material: give --cacert, --cert and --key (make them with \
                 `ticketd certs`), or {INSECURE_FLAG} for a cluster run without TLS"
            );
        };
        let creds = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Credentials::load(&TlsFiles {
                ca: ca.clone(),
                cert: cert.clone(),
                key: key.clone(),
            })?,
            (None, None) if presence == Presence::Any => Credentials::load_ca_only(ca)?,
            _ => anyhow::bail!("{what}: --cert and --key go together"),
        };
        if let (Presence::Role(want), Some(id)) = (presence, creds.identity()) {
            anyhow::ensure!(
                id.role() == want,
                "{what} needs a certificate of role {want}; {} is {id}",
                self.cert
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            );
        }
        Ok(Transport::Tls(creds))
    }
}

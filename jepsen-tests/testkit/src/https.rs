//! HTTPS for the provider simulators (`ticketd-sim pay`, `ticketd-sim sms`): the same code path as
//! a real provider's API, a certificate from the development CA, and the secret key a real
//! provider would require.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Longest a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once, at most.
const CONNECTIONS_MAX: usize = 1024;

/// A server configuration presenting the certificate and key in these PEM files.
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let provider = ticketd_raft::tls::install_provider();
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("read {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parse {}", cert.display()))?;
    let key =
        PrivateKeyDer::from_pem_file(key).with_context(|| format!("read {}", key.display()))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("certificate and key")?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// A layer that answers 401 to any request without `Authorization: Bearer <key>`.
pub async fn require_bearer(key: Arc<str>, req: Request, next: Next) -> Response {
    let want = format!("Bearer {key}");
    let ok = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.as_bytes() == want.as_bytes());
    if !ok {
        return (StatusCode::UNAUTHORIZED, "a valid secret key is required").into_response();
    }
    next.run(req).await
}

/// Serves `router` over TLS on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let slots = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS_MAX));
    tokio::pin!(shutdown);
    loop {
        let (tcp, addr) = tokio::select! {
            a = listener.accept() => a?,
            _ = &mut shutdown => return Ok(()),
        };
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return Ok(());
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    return tracing::debug!(peer = %addr, error = %e, "TLS handshake failed")
                }
                Err(_) => return tracing::debug!(peer = %addr, "TLS handshake timed out"),
            };
            let service = hyper_util::service::TowerToHyperService::new(router);
            let conn =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            if let Err(e) = conn {
                tracing::debug!(peer = %addr, error = %e, "connection ended with an error");
            }
        });
    }
}

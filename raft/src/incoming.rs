//! A node's accepted connections: TCP (TCP_NODELAY), then the TLS handshake, and the caller's
//! identity read once per connection from its verified certificate. Each connection carries a
//! [`Peer`] that tonic puts into every request's extensions, where `authz` decides.
//!
//! Handshakes run beside the accept loop, at most [`HANDSHAKES_MAX`] at a time, each within
//! [`HANDSHAKE_TIMEOUT`]: a caller that stalls its handshake holds a slot for that long, never
//! the loop. A refused handshake (a certificate from another CA, plain text on a TLS port) is
//! counted in `ticketd_tls_handshake_failures_total` and logged at most once per
//! [`crate::log_limit::REFUSAL_LOG_EVERY`].

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::wrappers::ReceiverStream;

use crate::identity::{Identity, IdentityError};
use crate::log_limit::RateLimitedLog;

/// Handshakes in progress at once, at most; more connections wait in the kernel's queue.
pub const HANDSHAKES_MAX: usize = 256;
/// Longest a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections handed to the server but not yet taken, at most.
const READY_QUEUE: usize = 64;
/// Pause after a failed accept (out of file descriptors, say) before the next.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Who is at the other end of a connection, as far as TLS told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerIdentity {
    /// The node runs with `--insecure`: nobody is authenticated and everything is allowed.
    Insecure,
    /// TLS without a client certificate.
    NoCertificate,
    /// A certificate the CA signed that names no valid identity.
    Invalid(IdentityError),
    /// A certificate the CA signed, naming this identity.
    Known(Identity),
}

/// A connection's peer: its address and identity. In each request's extensions.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The remote address.
    pub addr: Option<SocketAddr>,
    /// The identity.
    pub identity: PeerIdentity,
}

/// An accepted connection, plain or TLS, with its [`Peer`].
pub struct PeerStream {
    io: Io,
    peer: Peer,
}

enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl tonic::transport::server::Connected for PeerStream {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Peer {
        self.peer.clone()
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The identity of a TLS connection's client, from its first (end-entity) certificate.
fn identity_of(conn: &rustls::ServerConnection) -> PeerIdentity {
    match conn.peer_certificates().and_then(|c| c.first()) {
        None => PeerIdentity::NoCertificate,
        Some(cert) => match Identity::from_cert_der(cert) {
            Ok(id) => PeerIdentity::Known(id),
            Err(e) => PeerIdentity::Invalid(e),
        },
    }
}

/// The connections accepted on `listener`, TLS with `tls` unless it is `None` (`--insecure`).
/// The accept loop ends when the returned stream is dropped (the server stopped).
pub fn incoming(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> ReceiverStream<std::io::Result<PeerStream>> {
    let (tx, rx) = tokio::sync::mpsc::channel(READY_QUEUE);
    tokio::spawn(accept_loop(listener, tls, tx));
    ReceiverStream::new(rx)
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    tx: tokio::sync::mpsc::Sender<std::io::Result<PeerStream>>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(HANDSHAKES_MAX));
    let refusals = Arc::new(RateLimitedLog::default());
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = tx.closed() => return,
        };
        let (tcp, addr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        // Nagle would hold small replies (stream appends' answers, write replies) until the
        // peer's delayed ACK, 40 ms at a time.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "TCP_NODELAY on an accepted connection failed");
        }
        let Some(cfg) = tls.clone() else {
            let peer = Peer {
                addr: Some(addr),
                identity: PeerIdentity::Insecure,
            };
            let stream = PeerStream {
                io: Io::Plain(tcp),
                peer,
            };
            if tx.send(Ok(stream)).await.is_err() {
                return;
            }
            continue;
        };
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => s.expect("the semaphore is never closed"),
            _ = tx.closed() => return,
        };
        let tx = tx.clone();
        let refusals = refusals.clone();
        tokio::spawn(async move {
            let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
            let result = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
            drop(slot);
            let tls = match result {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return handshake_refused(&refusals, addr, &e.to_string()),
                Err(_) => return handshake_refused(&refusals, addr, "handshake timed out"),
            };
            let identity = identity_of(tls.get_ref().1);
            let stream = PeerStream {
                io: Io::Tls(Box::new(tls)),
                peer: Peer {
                    addr: Some(addr),
                    identity,
                },
            };
            let _ = tx.send(Ok(stream)).await;
        });
    }
}

fn handshake_refused(log: &RateLimitedLog, addr: SocketAddr, why: &str) {
    metrics::counter!("ticketd_tls_handshake_failures_total").increment(1);
    if let Some(suppressed) = log.allow("tls handshake") {
        tracing::warn!(peer = %addr, error = why, suppressed, "TLS handshake refused");
    }
}

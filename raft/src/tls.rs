//! Mutual TLS between the parties of a cluster: the credentials a party loads (the cluster's CA,
//! its certificate and key), the rustls configurations made from them, and the verifier a
//! client uses for nodes.
//!
//! Every party trusts one CA (the file may hold several certificates, for a CA rotation) and
//! presents a certificate it signed that names its [`Identity`]. A client checks a node's
//! certificate by the chain and by the node identity in it, never by a host name: the same
//! certificates work on 127.0.0.x and inside the chaos harness's network namespaces. When the
//! client knows which node it dials (a Raft peer, a forward to the leader it knows), the
//! certificate must name that node's id.
//!
//! Only TLS 1.3, and ring as the crypto provider of the whole process ([`install_provider`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::identity::{Identity, Role};
use crate::NodeId;

/// The ALPN protocol of gRPC.
const ALPN_H2: &[u8] = b"h2";

/// Where a party's TLS material is, in PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The cluster's CA certificate(s).
    pub ca: PathBuf,
    /// This party's certificate (then any intermediates).
    pub cert: PathBuf,
    /// Its private key (PKCS#8, SEC1 or PKCS#1), readable by its owner only.
    pub key: PathBuf,
}

/// Why TLS material is unusable.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or holds no usable PEM item.
    #[error("{path}: {msg}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
    /// The material does not fit together (certificate not signed by the CA, key of another
    /// certificate, no identity, ...).
    #[error("{0}")]
    Invalid(String),
}

fn file_err(path: &Path, msg: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        msg: msg.to_string(),
    }
}

/// Installs ring as the process's rustls crypto provider, once (every TLS user of the process,
/// reqwest and lettre included, takes it from there). Returns it.
pub fn install_provider() -> Arc<CryptoProvider> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// A party's loaded TLS material: whom it trusts and, unless it connects without a client
/// certificate, who it is.
#[derive(Clone)]
pub struct Credentials {
    roots: Arc<RootCertStore>,
    own: Option<Own>,
    provider: Arc<CryptoProvider>,
}

#[derive(Clone)]
struct Own {
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
    identity: Identity,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("roots", &self.roots.len())
            .field("identity", &self.identity())
            .finish()
    }
}

/// Reads every certificate of a PEM file.
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_err(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(path, e))?;
    if certs.is_empty() {
        return Err(file_err(path, "holds no PEM certificate"));
    }
    Ok(certs)
}

/// Reads a private key, refusing one that others than its owner may read (as ssh and
/// CockroachDB do).
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| file_err(path, e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(file_err(
            path,
            format!(
                "private key is readable by others (mode {:o}); chmod 600 it",
                mode & 0o777
            ),
        ));
    }
    PrivateKeyDer::from_pem_file(path).map_err(|e| file_err(path, e))
}

impl Credentials {
    /// Loads the CA, certificate and key of `files` and checks that they fit: the certificate
    /// is signed by the CA, valid now, names one identity, and the key is its key.
    pub fn load(files: &TlsFiles) -> Result<Credentials, TlsError> {
        let ca = read_certs(&files.ca)?;
        let chain = read_certs(&files.cert)?;
        let key = read_key(&files.key)?;
        Credentials::new(ca, Some((chain, key)))
    }

    /// Trusts the CA at `ca` and presents no certificate (a caller the nodes will refuse, for
    /// anything but testing that they do).
    pub fn load_ca_only(ca: &Path) -> Result<Credentials, TlsError> {
        Credentials::new(read_certs(ca)?, None)
    }

    /// Credentials from DER: the CA certificates, and this party's chain and key.
    pub fn new(
        ca: Vec<CertificateDer<'static>>,
        own: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    ) -> Result<Credentials, TlsError> {
        let provider = install_provider();
        let mut roots = RootCertStore::empty();
        for c in ca {
            roots
                .add(c)
                .map_err(|e| TlsError::Invalid(format!("CA certificate unusable: {e}")))?;
        }
        let roots = Arc::new(roots);
        let own = match own {
            None => None,
            Some((chain, key)) => {
                let identity = Identity::from_cert_der(&chain[0])
                    .map_err(|e| TlsError::Invalid(format!("own certificate: {e}")))?;
                Some(Own {
                    chain,
                    key: Arc::new(key),
                    identity,
                })
            }
        };
        let creds = Credentials {
            roots,
            own,
            provider,
        };
        creds.check_own()?;
        Ok(creds)
    }

    /// Checks that this party's certificate is one the others will accept, and its key its
    /// own: a misconfiguration fails at start, not at the first connection.
    fn check_own(&self) -> Result<(), TlsError> {
        let Some(own) = &self.own else {
            return Ok(());
        };
        let now = UnixTime::now();
        let (end_entity, intermediates) = own.chain.split_first().expect("chain is not empty");
        let invalid = |what: &str, e: &dyn std::fmt::Display| {
            TlsError::Invalid(format!("own certificate ({}) {what}: {e}", own.identity))
        };
        self.client_verifier()?
            .verify_client_cert(end_entity, intermediates, now)
            .map_err(|e| invalid("is not accepted as a client certificate by the CA", &e))?;
        if own.identity.role() == Role::Node {
            let parsed = ParsedCertificate::try_from(end_entity)
                .map_err(|e| invalid("does not parse", &e))?;
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &parsed,
                &self.roots,
                intermediates,
                now,
                self.provider.signature_verification_algorithms.all,
            )
            .map_err(|e| invalid("is not accepted as a server certificate by the CA", &e))?;
        }
        // Building a server or client configuration compares the key with the certificate.
        rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| invalid("TLS versions", &e))?
            .with_no_client_auth()
            .with_single_cert(own.chain.clone(), own.key.clone_key())
            .map_err(|e| invalid("does not go with the key", &e))?;
        Ok(())
    }

    /// Who this party is, unless it presents no certificate.
    pub fn identity(&self) -> Option<&Identity> {
        self.own.as_ref().map(|o| &o.identity)
    }

    fn client_verifier(
        &self,
    ) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
        // Clients without a certificate complete the handshake, so that the node can answer
        // them with a gRPC status that says what is missing; `authz` refuses their every call.
        WebPkiClientVerifier::builder_with_provider(self.roots.clone(), self.provider.clone())
            .allow_unauthenticated()
            .build()
            .map_err(|e| TlsError::Invalid(format!("client verifier: {e}")))
    }

    /// The configuration a node serves with: its certificate, and client certificates checked
    /// against the CA (a caller may present none; see [`Self::client_verifier`]).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let own = self
            .own
            .as_ref()
            .ok_or_else(|| TlsError::Invalid("a server needs its own certificate".into()))?;
        let mut cfg = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| TlsError::Invalid(e.to_string()))?
            .with_client_cert_verifier(self.client_verifier()?)
            .with_single_cert(own.chain.clone(), own.key.clone_key())
            .map_err(|e| TlsError::Invalid(e.to_string()))?;
        cfg.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(Arc::new(cfg))
    }

    /// The configuration to dial a node with: the node's certificate must chain to the CA and
    /// name a node, node `expected` when given; this party's certificate goes with it.
    pub fn client_config(
        &self,
        expected: Option<NodeId>,
    ) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        let verifier = Arc::new(NodeVerifier {
            roots: self.roots.clone(),
            provider: self.provider.clone(),
            expected,
        });
        let builder = rustls::ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| TlsError::Invalid(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut cfg = match &self.own {
            Some(own) => builder
                .with_client_auth_cert(own.chain.clone(), own.key.clone_key())
                .map_err(|e| TlsError::Invalid(e.to_string()))?,
            None => builder.with_no_client_auth(),
        };
        cfg.alpn_protocols = vec![ALPN_H2.to_vec()];
        // Names mean nothing here (see the module doc): send none.
        cfg.enable_sni = false;
        Ok(Arc::new(cfg))
    }
}

/// Checks a node's certificate: the chain to the cluster's CA (webpki, for server use), then
/// the node identity it names, instead of a host name.
#[derive(Debug)]
struct NodeVerifier {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    expected: Option<NodeId>,
}

fn refused(msg: String) -> rustls::Error {
    rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
        Arc::new(std::io::Error::other(msg)),
    )))
}

impl ServerCertVerifier for NodeVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let parsed = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        match (Identity::from_cert_der(end_entity), self.expected) {
            (Ok(Identity::Node(id)), Some(want)) if id != want => Err(refused(format!(
                "the server's certificate names node {id}, not node {want} that was dialed"
            ))),
            (Ok(Identity::Node(_)), _) => Ok(ServerCertVerified::assertion()),
            (Ok(other), _) => Err(refused(format!(
                "the server's certificate names {other}, not a node"
            ))),
            (Err(e), _) => Err(refused(format!("the server's certificate: {e}"))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// How a party's gRPC connections go: mutual TLS with its credentials, or plain text when the
/// cluster runs with `--insecure`.
#[derive(Clone, Debug)]
pub enum Transport {
    /// Plain TCP: anyone who reaches a node may call it.
    Insecure,
    /// Mutual TLS.
    Tls(Credentials),
}

impl Transport {
    /// Mutual TLS with the material in `files`.
    pub fn load(files: &TlsFiles) -> Result<Transport, TlsError> {
        Credentials::load(files).map(Transport::Tls)
    }

    /// True when TLS is off.
    pub fn is_insecure(&self) -> bool {
        matches!(self, Transport::Insecure)
    }
}

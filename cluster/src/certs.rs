//! `ticketd certs`: a cluster's CA and its parties' certificates, made with rcgen (ECDSA P-256,
//! ring). What the scripts, the test helpers, the chaos harness and the bench run on first
//! start; production may use its own PKI, as long as each certificate names its party with the
//! URI scheme of `ticketd_raft::identity`.
//!
//! In a directory:
//!
//! | file | what |
//! | --- | --- |
//! | `ca.pem`, `ca-key.pem` | the cluster's CA (10 years) |
//! | `node-<id>.pem`, `node-<id>-key.pem` | node `<id>`: `ticketd://node/<id>`, server and client use |
//! | `api-<name>.pem`, `api-<name>-key.pem` | an API copy: `ticketd://api/<name>`, client use |
//! | `admin-<name>.pem`, `admin-<name>-key.pem` | an operator: `ticketd://admin/<name>`, client use |
//!
//! Keys are written with mode 0600. An existing file is never overwritten: running the same
//! command again changes nothing, which is what makes the scripts' first-start step idempotent.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use ticketd_raft::identity::{Identity, Role};
use ticketd_raft::tls::{Credentials, TlsFiles};

/// Days a CA is valid.
pub const CA_DAYS: i64 = 3650;
/// Days a party's certificate is valid unless told otherwise.
pub const CERT_DAYS: i64 = 365;
/// Longest validity a party's certificate may be given.
pub const CERT_DAYS_MAX: i64 = 3650;

/// The CA's certificate in `dir`.
pub fn ca_path(dir: &Path) -> PathBuf {
    dir.join("ca.pem")
}

/// The files of `identity`'s certificate and key in `dir`, with the CA.
pub fn files(dir: &Path, identity: &Identity) -> TlsFiles {
    let stem = match identity {
        Identity::Node(id) => format!("node-{id}"),
        Identity::Api(name) => format!("api-{name}"),
        Identity::Admin(name) => format!("admin-{name}"),
    };
    TlsFiles {
        ca: ca_path(dir),
        cert: dir.join(format!("{stem}.pem")),
        key: dir.join(format!("{stem}-key.pem")),
    }
}

/// Writes `contents` to a new file at `path` with `mode`, failing if it exists.
fn write_new(path: &Path, contents: &str, mode: u32) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

fn validity(params: &mut CertificateParams, days: i64) {
    let now = time::OffsetDateTime::now_utc();
    // A little in the past, so a peer whose clock is behind by minutes still accepts it.
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(days);
}

/// The parameters of a CA this command makes, validity aside: the subject every ticketd-made
/// CA has (a CA is told from another by its key and fingerprint, not its name), its key usages
/// and rcgen's default key identifier. Issuing under an existing CA rebuilds the issuer from
/// these and the CA's key.
fn ca_params() -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "ticketd CA");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "ticketd");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

/// Creates the CA in `dir` unless it exists; returns whether it was created.
pub fn create_ca(dir: &Path) -> anyhow::Result<bool> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let (cert_path, key_path) = (ca_path(dir), dir.join("ca-key.pem"));
    match (cert_path.exists(), key_path.exists()) {
        (true, true) => return Ok(false),
        (false, false) => {}
        _ => anyhow::bail!(
            "{} holds half a CA (one of ca.pem, ca-key.pem); remove it or restore the other",
            dir.display()
        ),
    }
    let key = KeyPair::generate().context("generate the CA key")?;
    let mut params = ca_params()?;
    validity(&mut params, CA_DAYS);
    let cert = params.self_signed(&key).context("sign the CA")?;
    write_new(&key_path, &key.serialize_pem(), 0o600)?;
    write_new(&cert_path, &cert.pem(), 0o644)?;
    Ok(true)
}

/// Issues `identity`'s certificate and key in `dir`, signed by the CA there, unless they
/// exist; returns whether it issued them. `hosts` become DNS or IP subject alternative names
/// beside the identity (for other tools: ticketd itself checks the identity only).
pub fn issue(dir: &Path, identity: &Identity, hosts: &[String], days: i64) -> anyhow::Result<bool> {
    anyhow::ensure!(
        (1..=CERT_DAYS_MAX).contains(&days),
        "validity must be 1 to {CERT_DAYS_MAX} days, got {days}"
    );
    let f = files(dir, identity);
    match (f.cert.exists(), f.key.exists()) {
        (true, true) => return Ok(false),
        (false, false) => {}
        _ => anyhow::bail!(
            "only one of {} and {} exists; remove it to issue both again",
            f.cert.display(),
            f.key.display()
        ),
    }
    anyhow::ensure!(
        f.ca.exists(),
        "no CA at {} (ticketd certs create-ca)",
        f.ca.display()
    );
    let ca_key_path = dir.join("ca-key.pem");
    let ca_key = KeyPair::from_pem(
        &std::fs::read_to_string(&ca_key_path)
            .with_context(|| format!("read {}", ca_key_path.display()))?,
    )
    .context("parse the CA key")?;
    let issuer = Issuer::new(ca_params()?, ca_key);

    let key = KeyPair::generate().context("generate a key")?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(
        DnType::CommonName,
        match identity {
            Identity::Node(id) => format!("node {id}"),
            Identity::Api(n) => format!("api {n}"),
            Identity::Admin(n) => format!("admin {n}"),
        },
    );
    params
        .distinguished_name
        .push(DnType::OrganizationalUnitName, identity.role().as_str());
    params.subject_alt_names = vec![SanType::URI(identity.uri().try_into()?)];
    for h in hosts {
        params.subject_alt_names.push(match h.parse() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(h.clone().try_into()?),
        });
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = match identity.role() {
        // A node serves and calls its peers.
        Role::Node => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        Role::Api | Role::Admin => vec![ExtendedKeyUsagePurpose::ClientAuth],
    };
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, days);
    let cert = params.signed_by(&key, &issuer).context("sign")?;
    // What a party will check at start, checked now: a CA made by other tools (another
    // subject) would give certificates that do not chain to it.
    let ca = CertificateDer::pem_file_iter(&f.ca)
        .with_context(|| format!("read {}", f.ca.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parse {}", f.ca.display()))?;
    let own_key = PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| anyhow::anyhow!("the new key: {e}"))?;
    Credentials::new(ca, Some((vec![cert.der().clone()], own_key))).context(
        "the new certificate does not verify against the CA in this directory: ticketd certs \
         issues under CAs it made; under another CA, issue with that CA's tools, naming the \
         identity URI",
    )?;
    write_new(&f.key, &key.serialize_pem(), 0o600)?;
    write_new(&f.cert, &cert.pem(), 0o644)?;
    Ok(true)
}

/// What a development cluster needs in `dir`, each made unless it exists: the CA, nodes
/// `1..=nodes`, and one `api` and one `admin` certificate named `dev`. Returns what it made.
pub fn dev(dir: &Path, nodes: u64) -> anyhow::Result<Vec<String>> {
    let mut made = Vec::new();
    if create_ca(dir)? {
        made.push("ca".to_string());
    }
    let mut ids: Vec<Identity> = (1..=nodes).map(Identity::Node).collect();
    ids.push(Identity::Api("dev".into()));
    ids.push(Identity::Admin("dev".into()));
    for id in ids {
        if issue(dir, &id, &[], CERT_DAYS)? {
            made.push(id.to_string());
        }
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::{dev, files, issue};
    use ticketd_raft::identity::Identity;
    use ticketd_raft::tls::{Credentials, TlsFiles};

    #[test]
    fn dev_certificates_load_as_their_identities_and_a_second_run_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let made = dev(dir.path(), 3).unwrap();
        assert_eq!(made.len(), 6, "{made:?}");
        for id in [
            Identity::Node(1),
            Identity::Node(3),
            Identity::Api("dev".into()),
            Identity::Admin("dev".into()),
        ] {
            let creds = Credentials::load(&files(dir.path(), &id)).unwrap();
            assert_eq!(creds.identity(), Some(&id));
        }
        let before = std::fs::read(files(dir.path(), &Identity::Node(2)).cert).unwrap();
        assert!(dev(dir.path(), 3).unwrap().is_empty());
        assert_eq!(
            std::fs::read(files(dir.path(), &Identity::Node(2)).cert).unwrap(),
            before
        );
    }

    #[test]
    fn a_certificate_of_another_ca_or_a_foreign_key_does_not_load() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        dev(a.path(), 1).unwrap();
        dev(b.path(), 1).unwrap();
        let node = Identity::Node(1);
        let (fa, fb) = (files(a.path(), &node), files(b.path(), &node));
        let foreign = TlsFiles {
            ca: fa.ca.clone(),
            ..fb.clone()
        };
        let e = Credentials::load(&foreign).unwrap_err().to_string();
        assert!(e.contains("not accepted"), "{e}");
        let wrong_key = TlsFiles {
            key: fb.key.clone(),
            ..fa.clone()
        };
        assert!(Credentials::load(&wrong_key).is_err());
    }

    #[test]
    fn a_key_others_may_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        dev(dir.path(), 1).unwrap();
        let f = files(dir.path(), &Identity::Node(1));
        std::fs::set_permissions(&f.key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Credentials::load(&f).unwrap_err().to_string();
        assert!(e.contains("readable by others"), "{e}");
    }

    #[test]
    fn half_a_pair_is_not_silently_replaced() {
        let dir = tempfile::tempdir().unwrap();
        dev(dir.path(), 1).unwrap();
        let id = Identity::Api("x".into());
        assert!(issue(dir.path(), &id, &[], 30).unwrap());
        std::fs::remove_file(files(dir.path(), &id).key).unwrap();
        assert!(issue(dir.path(), &id, &[], 30).is_err());
        assert!(issue(dir.path(), &Identity::Api("y".into()), &[], 0).is_err());
    }
}

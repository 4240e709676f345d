//! Who a certificate says its holder is: a role of the cluster and, for nodes, the node id.
//!
//! The identity is one URI in the certificate's subject alternative names:
//!
//! | role | URI | who holds it |
//! | --- | --- | --- |
//! | `node` | `ticketd://node/<id>` | the node with that id (server and client: Raft, forwarding) |
//! | `api` | `ticketd://api/<name>` | a copy of the HTTP API (writes, reads with secrets) |
//! | `admin` | `ticketd://admin/<name>` | an operator (`ticketctl`), the chaos harness's control |
//!
//! Nodes are told apart by this id, never by a host name or address: nodes run on 127.0.0.x in
//! development and inside network namespaces with other addresses in the chaos harness, and the
//! same certificates serve both. What each role may call is `authz`'s matrix.
//!
//! The URI is read only from a certificate rustls has already verified against the cluster's CA;
//! a certificate with no `ticketd://` URI, or more than one, carries no identity. The URI is not
//! case-folded or normalized: an identity has one spelling.

use std::fmt;

use crate::NodeId;

/// The scheme of identity URIs.
pub const SCHEME: &str = "ticketd://";

/// Longest name of an `api` or `admin` identity, bytes.
pub const NAME_LEN_MAX: usize = 64;

/// A party of the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// A member node (or one about to become one).
    Node,
    /// The HTTP API.
    Api,
    /// An operator.
    Admin,
}

impl Role {
    /// The role's word in identity URIs and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Node => "node",
            Role::Api => "api",
            Role::Admin => "admin",
        }
    }

    /// The role named `s`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "node" => Some(Role::Node),
            "api" => Some(Role::Api),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An identity as a certificate states it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// Node `id` (at least 1).
    Node(NodeId),
    /// The HTTP API copy `name`.
    Api(String),
    /// The operator `name`.
    Admin(String),
}

/// Why a certificate gives no identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The DER does not parse as an X.509 certificate.
    #[error("unreadable certificate: {0}")]
    Unreadable(String),
    /// No `ticketd://` URI among the subject alternative names.
    #[error("the certificate names no ticketd identity (a subject alternative name URI ticketd://node/<id>, ticketd://api/<name> or ticketd://admin/<name>)")]
    Missing,
    /// More than one `ticketd://` URI: which one holds would be ambiguous.
    #[error("the certificate names {0} ticketd identities; it must name exactly one")]
    Ambiguous(usize),
    /// A `ticketd://` URI that is not one of the three forms.
    #[error("malformed ticketd identity {0:?}")]
    Malformed(String),
}

impl Identity {
    /// The identity's role.
    pub fn role(&self) -> Role {
        match self {
            Identity::Node(_) => Role::Node,
            Identity::Api(_) => Role::Api,
            Identity::Admin(_) => Role::Admin,
        }
    }

    /// The node id, for a node.
    pub fn node_id(&self) -> Option<NodeId> {
        match self {
            Identity::Node(id) => Some(*id),
            _ => None,
        }
    }

    /// The identity for `role` with `name` (a node's name is its id).
    pub fn new(role: Role, name: &str) -> Result<Identity, IdentityError> {
        Identity::parse_uri(&format!("{SCHEME}{role}/{name}"))
    }

    /// The URI a certificate carries for this identity.
    pub fn uri(&self) -> String {
        match self {
            Identity::Node(id) => format!("{SCHEME}node/{id}"),
            Identity::Api(n) => format!("{SCHEME}api/{n}"),
            Identity::Admin(n) => format!("{SCHEME}admin/{n}"),
        }
    }

    /// Parses `ticketd://node/<id>`, `ticketd://api/<name>` or `ticketd://admin/<name>`. A node
    /// id is a decimal number of at least 1 without leading zeros (one spelling per node); a
    /// name is 1 to [`NAME_LEN_MAX`] of `[A-Za-z0-9._-]`.
    pub fn parse_uri(uri: &str) -> Result<Identity, IdentityError> {
        let malformed = || IdentityError::Malformed(uri.chars().take(200).collect());
        let rest = uri.strip_prefix(SCHEME).ok_or_else(malformed)?;
        let (role, name) = rest.split_once('/').ok_or_else(malformed)?;
        match Role::parse(role).ok_or_else(malformed)? {
            Role::Node => {
                let canonical = !name.is_empty()
                    && name.len() <= 20
                    && name.bytes().all(|b| b.is_ascii_digit())
                    && !name.starts_with('0');
                let id: NodeId = name.parse().map_err(|_| malformed())?;
                if !canonical {
                    return Err(malformed());
                }
                Ok(Identity::Node(id))
            }
            role => {
                let valid = !name.is_empty()
                    && name.len() <= NAME_LEN_MAX
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
                if !valid {
                    return Err(malformed());
                }
                Ok(match role {
                    Role::Api => Identity::Api(name.to_string()),
                    _ => Identity::Admin(name.to_string()),
                })
            }
        }
    }

    /// The identity a DER certificate names: its one `ticketd://` subject alternative name URI.
    /// Does not verify the certificate: call it on certificates rustls verified.
    pub fn from_cert_der(der: &[u8]) -> Result<Identity, IdentityError> {
        let uris = san_uris(der)?;
        let ours: Vec<&str> = uris
            .iter()
            .filter(|u| u.starts_with(SCHEME.as_bytes()))
            .map(|u| std::str::from_utf8(u).unwrap_or(""))
            .collect();
        match ours.as_slice() {
            [] => Err(IdentityError::Missing),
            [one] => Identity::parse_uri(one),
            many => Err(IdentityError::Ambiguous(many.len())),
        }
    }
}

/// One DER element: its tag, its content and what follows it. Only the low-tag-number form
/// (every tag an X.509 certificate uses up to its extensions) and definite lengths of at most
/// four bytes, as DER has them.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The elements of a constructed element's content, in order.
fn der_children(mut content: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (tag, value, rest) = der_element(content)?;
        out.push((tag, value));
        content = rest;
    }
    Some(out)
}

const DER_SEQUENCE: u8 = 0x30;
const DER_OID: u8 = 0x06;
const DER_BOOLEAN: u8 = 0x01;
const DER_OCTET_STRING: u8 = 0x04;
/// `[3]` constructed: the extensions of a `TBSCertificate`.
const DER_EXTENSIONS: u8 = 0xa3;
/// `[6]` primitive: a `uniformResourceIdentifier` `GeneralName`.
const DER_GENERAL_NAME_URI: u8 = 0x86;
/// id-ce-subjectAltName, 2.5.29.17.
const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

/// The URIs among a certificate's subject alternative names (RFC 5280 4.2.1.6), read with a
/// small DER walker: the certificate was verified by webpki already, which parsed it in full,
/// and only this one extension is of interest here. No extension is no URI; two
/// subjectAltName extensions are refused, as RFC 5280 forbids them.
fn san_uris(der: &[u8]) -> Result<Vec<&[u8]>, IdentityError> {
    let bad = |what: &str| IdentityError::Unreadable(what.to_string());
    let (tag, cert, rest) = der_element(der).ok_or_else(|| bad("not DER"))?;
    if tag != DER_SEQUENCE || !rest.is_empty() {
        return Err(bad("not a certificate"));
    }
    let (tag, tbs, _) = der_element(cert).ok_or_else(|| bad("no TBSCertificate"))?;
    if tag != DER_SEQUENCE {
        return Err(bad("no TBSCertificate"));
    }
    let fields = der_children(tbs).ok_or_else(|| bad("malformed TBSCertificate"))?;
    let Some((_, extensions)) = fields.iter().find(|(t, _)| *t == DER_EXTENSIONS) else {
        return Ok(Vec::new());
    };
    let (tag, list, rest) = der_element(extensions).ok_or_else(|| bad("malformed extensions"))?;
    if tag != DER_SEQUENCE || !rest.is_empty() {
        return Err(bad("malformed extensions"));
    }
    let mut san = None;
    for (tag, ext) in der_children(list).ok_or_else(|| bad("malformed extensions"))? {
        let parts = der_children(ext).filter(|_| tag == DER_SEQUENCE);
        let parts = parts.ok_or_else(|| bad("malformed extension"))?;
        let (value, oid) = match parts.as_slice() {
            [(DER_OID, oid), (DER_OCTET_STRING, v)]
            | [(DER_OID, oid), (DER_BOOLEAN, _), (DER_OCTET_STRING, v)] => (*v, *oid),
            _ => return Err(bad("malformed extension")),
        };
        if oid == OID_SUBJECT_ALT_NAME {
            if san.is_some() {
                return Err(bad("two subjectAltName extensions"));
            }
            san = Some(value);
        }
    }
    let Some(san) = san else {
        return Ok(Vec::new());
    };
    let (tag, names, rest) = der_element(san).ok_or_else(|| bad("malformed subjectAltName"))?;
    if tag != DER_SEQUENCE || !rest.is_empty() {
        return Err(bad("malformed subjectAltName"));
    }
    let names = der_children(names).ok_or_else(|| bad("malformed subjectAltName"))?;
    Ok(names
        .into_iter()
        .filter(|(t, _)| *t == DER_GENERAL_NAME_URI)
        .map(|(_, uri)| uri)
        .collect())
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri())
    }
}

#[cfg(test)]
mod tests {
    use super::{Identity, IdentityError, Role};

    #[test]
    fn the_three_forms_parse_and_print_back() {
        for (uri, id) in [
            ("ticketd://node/3", Identity::Node(3)),
            (
                "ticketd://node/18446744073709551615",
                Identity::Node(u64::MAX),
            ),
            ("ticketd://api/api-1", Identity::Api("api-1".into())),
            (
                "ticketd://admin/ops.alice_2",
                Identity::Admin("ops.alice_2".into()),
            ),
        ] {
            assert_eq!(Identity::parse_uri(uri).unwrap(), id);
            assert_eq!(id.uri(), uri);
        }
        assert_eq!(Identity::new(Role::Node, "7").unwrap(), Identity::Node(7));
    }

    #[test]
    fn anything_else_is_malformed() {
        for uri in [
            "ticketd://node/0",
            "ticketd://node/03",
            "ticketd://node/+3",
            "ticketd://node/3/",
            "ticketd://node/",
            "ticketd://node/18446744073709551616",
            "ticketd://api/",
            "ticketd://api/a b",
            "ticketd://api/a/b",
            "ticketd://root/x",
            "ticketd://admin",
            "https://node/3",
            "TICKETD://node/3",
        ] {
            assert!(
                matches!(Identity::parse_uri(uri), Err(IdentityError::Malformed(_))),
                "{uri}"
            );
        }
        let long = format!("ticketd://api/{}", "a".repeat(65));
        assert!(Identity::parse_uri(&long).is_err());
        assert!(Identity::parse_uri(&format!("ticketd://api/{}", "a".repeat(64))).is_ok());
    }

    /// A self-signed certificate with these subject alternative names.
    fn cert(sans: Vec<rcgen::SanType>) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = sans;
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn uri(s: &str) -> rcgen::SanType {
        rcgen::SanType::URI(s.try_into().unwrap())
    }

    #[test]
    fn a_certificate_names_its_one_ticketd_uri() {
        let dns = rcgen::SanType::DnsName("node3.example".try_into().unwrap());
        let der = cert(vec![
            dns.clone(),
            uri("https://x.example/"),
            uri("ticketd://node/3"),
        ]);
        assert_eq!(Identity::from_cert_der(&der).unwrap(), Identity::Node(3));
        let der = cert(vec![uri("ticketd://api/a"), uri("ticketd://admin/b")]);
        assert_eq!(
            Identity::from_cert_der(&der),
            Err(IdentityError::Ambiguous(2))
        );
        assert_eq!(
            Identity::from_cert_der(&cert(vec![dns])),
            Err(IdentityError::Missing)
        );
        assert_eq!(
            Identity::from_cert_der(&cert(vec![])),
            Err(IdentityError::Missing)
        );
        assert!(matches!(
            Identity::from_cert_der(&cert(vec![uri("ticketd://node/0")])),
            Err(IdentityError::Malformed(_))
        ));
    }

    #[test]
    fn a_damaged_certificate_gives_an_error_or_an_identity_never_a_panic() {
        let der = cert(vec![uri("ticketd://admin/ops")]);
        for len in 0..der.len() {
            let _ = Identity::from_cert_der(&der[..len]);
        }
        for i in 0..der.len() {
            for bit in 0..8 {
                let mut d = der.clone();
                d[i] ^= 1 << bit;
                let _ = Identity::from_cert_der(&d);
            }
        }
        let mut long = der.clone();
        long.push(0);
        assert!(Identity::from_cert_der(&long).is_err());
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert!(matches!(
            Identity::from_cert_der(b"not a certificate"),
            Err(IdentityError::Unreadable(_))
        ));
    }
}

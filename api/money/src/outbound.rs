//! The outside services the API and the leader's worker call over HTTP: the payment provider
//! and the SMS provider. A target is `host:port` (plain HTTP: the local simulators on loopback)
//! or a URL, `https://...` for a real provider; a secret key, when configured, goes with every
//! call as `Authorization: Bearer <key>` (Stripe's scheme), and only over HTTPS or to loopback.
//! Server certificates are checked against the system's roots, or against a CA file given for
//! the purpose (a provider's test environment, the simulators run with a development CA).

use std::path::PathBuf;
use std::time::Duration;

/// Where an outside service is and how to authenticate to it.
#[derive(Clone, Default)]
pub struct Outbound {
    /// `host:port` (plain HTTP) or a base URL (`https://host[:port][/prefix]`).
    pub target: String,
    /// Sent as `Authorization: Bearer <key>` with every call.
    pub secret_key: Option<String>,
    /// PEM file of the CA(s) the service's certificate must chain to, instead of the system's.
    pub ca: Option<PathBuf>,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("target", &self.target)
            .field("secret_key", &self.secret_key.as_ref().map(|_| "<set>"))
            .field("ca", &self.ca)
            .finish()
    }
}

impl From<&str> for Outbound {
    fn from(target: &str) -> Self {
        Outbound {
            target: target.to_string(),
            ..Outbound::default()
        }
    }
}

impl From<&Outbound> for Outbound {
    fn from(o: &Outbound) -> Self {
        o.clone()
    }
}

impl From<&String> for Outbound {
    fn from(target: &String) -> Self {
        Outbound::from(target.as_str())
    }
}

impl Outbound {
    /// The base URL calls are made under, without a trailing slash.
    pub fn base_url(&self) -> Result<String, String> {
        let t = self.target.trim().trim_end_matches('/');
        let url = if t.contains("://") {
            t.to_string()
        } else {
            format!("http://{t}")
        };
        let parsed = reqwest::Url::parse(&url).map_err(|e| format!("{url}: {e}"))?;
        match parsed.scheme() {
            "https" => {}
            "http" => {
                let host = parsed.host_str().unwrap_or_default();
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let loopback = host == "localhost"
                    || host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback());
                if self.secret_key.is_some() && !loopback {
                    return Err(format!(
                        "{url}: a secret key goes only over HTTPS (or to loopback)"
                    ));
                }
            }
            other => return Err(format!("{url}: scheme {other} is neither http nor https")),
        }
        Ok(url)
    }

    /// An HTTP client for the service: calls bounded by `timeout`, connections by
    /// `connect_timeout`, TLS through rustls with ring, the CA file's roots when one is given.
    pub fn client(
        &self,
        timeout: Duration,
        connect_timeout: Duration,
    ) -> Result<reqwest::Client, String> {
        ticketd_raft::tls::install_provider();
        let mut b = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(connect_timeout)
            .pool_max_idle_per_host(16)
            .https_only(self.base_url()?.starts_with("https://"));
        if let Some(ca) = &self.ca {
            let pem = std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("{}: {e}", ca.display()))?;
            b = b.tls_certs_only(certs);
        }
        b.build().map_err(|e| e.to_string())
    }

    /// `req` with the secret key, if there is one.
    pub fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.secret_key {
            Some(k) => req.bearer_auth(k),
            None => req,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Outbound;

    #[test]
    fn targets_become_base_urls_and_keys_stay_off_plain_text_beyond_loopback() {
        let o = |t: &str, key: bool| Outbound {
            target: t.into(),
            secret_key: key.then(|| "sk_test".into()),
            ca: None,
        };
        assert_eq!(
            o("127.0.0.1:8091", true).base_url().unwrap(),
            "http://127.0.0.1:8091"
        );
        assert_eq!(
            o("https://pay.example/api/", true).base_url().unwrap(),
            "https://pay.example/api"
        );
        assert!(o("http://localhost:1", true).base_url().is_ok());
        assert!(o("pay.example:80", false).base_url().is_ok());
        let e = o("pay.example:80", true).base_url().unwrap_err();
        assert!(e.contains("only over HTTPS"), "{e}");
        assert!(o("ftp://pay.example", false).base_url().is_err());
        assert!(!format!("{:?}", o("x:1", true)).contains("sk_test"));
    }
}

//! Email reaches a real SMTP server (Debian's python3-aiosmtpd), with its stable Message-ID and
//! the e-ticket's QR attachment; over STARTTLS when the server offers it, the server's
//! certificate verified.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ticketd_notify::email::{Email, SmtpMailer, SmtpTls, StartTls};
use ticketd_notify::SendError;

#[tokio::test]
async fn email_with_qr_arrives_at_a_real_smtp_server_with_its_stable_id() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile_dir();
    let out_path = dir.join("smtp.out");
    let mut server = Command::new("/usr/bin/python3")
        .args([
            "-m",
            "aiosmtpd",
            "-n",
            "-c",
            "aiosmtpd.handlers.Debugging",
            "-l",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3-aiosmtpd is installed (scripts/test.sh installs it)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "SMTP server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The server offers no STARTTLS: opportunistic TLS sends in plain text.
    let mailer = SmtpMailer::new(
        "127.0.0.1",
        port,
        "tickets@ticketd.example",
        Duration::from_secs(5),
        &SmtpTls::default(),
    )
    .unwrap();
    let svg = ticketd_notify::tickets::qr_svg("TKT1.t-1-0.123456").unwrap();
    mailer
        .send(&Email {
            id: "order-42-confirmation".into(),
            to: "ada@example.com".into(),
            subject: "Your tickets".into(),
            text: "Thank you for your order.".into(),
            svg_attachments: vec![("ticket.svg".into(), svg)],
        })
        .await
        .expect("sent");

    let deadline = Instant::now() + Duration::from_secs(10);
    let received = loop {
        let s = std::fs::read_to_string(&out_path).unwrap_or_default();
        if s.contains("---------- MESSAGE FOLLOWS ----------") && s.contains("END MESSAGE") {
            break s;
        }
        assert!(Instant::now() < deadline, "message not received: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    server.kill().unwrap();
    let _ = server.wait();
    assert!(
        received.contains("Message-ID: <order-42-confirmation@ticketd.example>"),
        "{received}"
    );
    assert!(received.contains("image/svg+xml"));
    assert!(received.contains("Subject: Your tickets"));
    let _ = std::fs::remove_dir_all(dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("ticketd-smtp-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A CA, and a certificate for 127.0.0.1 it signed with its key: (CA PEM, cert PEM, key PEM).
fn server_certificate() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "test SMTP CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca_cert.pem(), leaf.pem(), key.serialize_pem())
}

fn message(id: &str) -> Email {
    Email {
        id: id.into(),
        to: "ada@example.com".into(),
        subject: "Your tickets".into(),
        text: "Thank you for your order.".into(),
        svg_attachments: vec![],
    }
}

#[tokio::test]
async fn email_goes_over_starttls_when_offered_and_the_server_certificate_is_verified() {
    let dir = tempfile_dir();
    let (ca, cert, key) = server_certificate();
    for (name, pem) in [("ca.pem", &ca), ("cert.pem", &cert), ("key.pem", &key)] {
        std::fs::write(dir.join(name), pem).unwrap();
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out_path = dir.join("smtp.out");
    // aiosmtpd with --tlscert offers STARTTLS and refuses mail before it (require_starttls).
    let mut server = Command::new("/usr/bin/python3")
        .args(["-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Debugging"])
        .arg("--tlscert")
        .arg(dir.join("cert.pem"))
        .arg("--tlskey")
        .arg(dir.join("key.pem"))
        .arg("-l")
        .arg(format!("127.0.0.1:{port}"))
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3-aiosmtpd is installed (scripts/test.sh installs it)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "SMTP server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mailer = |starttls: StartTls, ca: Option<std::path::PathBuf>| {
        SmtpMailer::new(
            "127.0.0.1",
            port,
            "tickets@ticketd.example",
            Duration::from_secs(5),
            &SmtpTls { starttls, ca },
        )
        .unwrap()
    };

    // Plain text is refused by this server; a certificate the mailer cannot verify (its roots
    // are the system's) is refused by the mailer.
    let e = mailer(StartTls::Off, None)
        .send(&message("plain"))
        .await
        .expect_err("the server requires STARTTLS");
    assert!(matches!(e, SendError::Transient(_)), "{e}");
    let e = mailer(StartTls::Opportunistic, None)
        .send(&message("unverified"))
        .await
        .expect_err("the server's certificate is of an unknown CA");
    assert!(matches!(e, SendError::Transient(_)), "{e}");

    // With the CA: STARTTLS, then the message.
    mailer(StartTls::Opportunistic, Some(dir.join("ca.pem")))
        .send(&message("over-starttls"))
        .await
        .expect("sent over STARTTLS");
    let deadline = Instant::now() + Duration::from_secs(10);
    let received = loop {
        let s = std::fs::read_to_string(&out_path).unwrap_or_default();
        if s.contains("END MESSAGE") {
            break s;
        }
        assert!(Instant::now() < deadline, "message not received: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    server.kill().unwrap();
    let _ = server.wait();
    assert!(
        received.contains("<over-starttls@ticketd.example>"),
        "{received}"
    );
    assert!(!received.contains("<plain@"), "{received}");
    assert!(!received.contains("<unverified@"), "{received}");
    let _ = std::fs::remove_dir_all(dir);
}

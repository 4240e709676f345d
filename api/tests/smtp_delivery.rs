//! Email reaches a real SMTP server (Debian's python3-aiosmtpd), with its stable Message-ID and
//! the e-ticket's QR attachment.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ticketd_api::notify::{Email, SmtpMailer};

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

    let mailer = SmtpMailer::new(
        "127.0.0.1",
        port,
        "tickets@ticketd.example",
        Duration::from_secs(5),
    );
    let svg = ticketd_api::tickets::qr_svg("TKT1.t-1-0.123456").unwrap();
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
    let d = std::env::temp_dir().join(format!("ticketd-smtp-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

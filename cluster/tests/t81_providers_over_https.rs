//! The payment and SMS providers over HTTPS with a secret key: the simulators serve TLS with a
//! certificate of the development CA and require the key, as a real provider does; the API
//! and the SMS client verify the certificate against the CA they are given and send the key.
//! A wrong key, no key, or plain text to the TLS port gets nothing done.

mod common;
mod money;

use std::time::Duration;

use common::*;
use money::*;
use ticketd_http::auth::Role;
use ticketd_money::outbound::Outbound;
use ticketd_notify::sms::{HttpSms, Sms};
use ticketd_notify::SendError;
use ticketd_testkit::cluster::{free_addr, make_certs, NodeOpts, TestCluster};

/// A simulator (`ticketd-sim pay` or `sms`) over HTTPS with `key` required; killed on drop.
struct Sim {
    addr: String,
    child: std::process::Child,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_sim(which: &str, certs: &std::path::Path, key: &str) -> anyhow::Result<Sim> {
    let addr = free_addr()?;
    let child = std::process::Command::new(common::sim_bin())
        .args([which, "--listen", &addr, "--secret-key", key])
        .arg("--tls-cert")
        .arg(certs.join("node-99.pem"))
        .arg("--tls-key")
        .arg(certs.join("node-99-key.pem"))
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let sim = Sim { addr, child };
    wait_for("the simulator listens", Duration::from_secs(10), || async {
        Ok(std::net::TcpStream::connect(&sim.addr)
            .is_ok()
            .then_some(()))
    })
    .await?;
    Ok(sim)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purchases_and_sms_go_to_the_providers_over_https_with_their_secret_key(
) -> anyhow::Result<()> {
    let c = TestCluster::start(&ticketd_bin(), 3, NodeOpts::default()).await?;
    let certs = c.certs_dir();
    let certs_arg = certs.to_str().expect("utf-8 path");
    // A server certificate for 127.0.0.1 from the cluster's CA.
    make_certs(
        &ticketd_bin(),
        &[
            "create-node",
            "--dir",
            certs_arg,
            "--id",
            "99",
            "--host",
            "127.0.0.1",
        ],
    )?;
    let ca = certs.join("ca.pem");
    let pay = start_sim("pay", &certs, "sk_test_pay").await?;
    let url = format!("https://{}", pay.addr);
    let ca_arg = ca.to_str().expect("utf-8 path");
    let dir = tempfile::tempdir()?;
    let client = c.client();
    let dt = "dt-https";
    catalogue(&client, "seller-https", dt, now_ms() + 86_400_000).await?;
    for u in ["https-1", "https-2", "https-3"] {
        user(&client, u, &format!("{u}@example.org"), Default::default()).await?;
    }

    phase("the right key over HTTPS: the purchase is made");
    let good = ApiProcess::start_with(
        &c,
        &c.endpoints(),
        dir.path(),
        &[
            "--payments",
            &url,
            "--payments-secret-key",
            "sk_test_pay",
            "--payments-ca",
            ca_arg,
        ],
    )
    .await?;
    let tok = token("https-1", Role::User);
    let (hold_id, total) = hold(&good, &tok, dt, "h-good", &[1]).await?;
    let (s, v) = buy(&good, &tok, dt, "b-good", &hold_id, total, "pm_card_visa").await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["status"], "confirmed", "{v}");
    assert_eq!(v["hold_id"], hold_id.as_str(), "{v}");

    phase("a wrong key, or plain text to the TLS port: no purchase");
    let d2 = tempfile::tempdir()?;
    let wrong_key = ApiProcess::start_with(
        &c,
        &c.endpoints(),
        d2.path(),
        &[
            "--payments",
            &url,
            "--payments-secret-key",
            "sk_wrong",
            "--payments-ca",
            ca_arg,
        ],
    )
    .await?;
    let tok2 = token("https-2", Role::User);
    let (hold_id, total) = hold(&wrong_key, &tok2, dt, "h-wrong", &[2]).await?;
    let (s, v) = buy(
        &wrong_key,
        &tok2,
        dt,
        "b-wrong",
        &hold_id,
        total,
        "pm_card_visa",
    )
    .await;
    assert!(s != 201 && s != 0, "{s} {v}");
    let d3 = tempfile::tempdir()?;
    let plain = ApiProcess::start_with(
        &c,
        &c.endpoints(),
        d3.path(),
        &[
            "--payments",
            &pay.addr,
            "--payments-secret-key",
            "sk_test_pay",
        ],
    )
    .await?;
    let tok3 = token("https-3", Role::User);
    let (hold_id, total) = hold(&plain, &tok3, dt, "h-plain", &[3]).await?;
    let (s, v) = buy(
        &plain,
        &tok3,
        dt,
        "b-plain",
        &hold_id,
        total,
        "pm_card_visa",
    )
    .await;
    assert!(s != 201 && s != 0, "{s} {v}");

    phase("a secret key is never sent in plain text beyond loopback");
    let e = Outbound {
        target: "payments.example:80".into(),
        secret_key: Some("sk".into()),
        ca: None,
    }
    .base_url()
    .expect_err("refused");
    assert!(e.contains("only over HTTPS"), "{e}");

    phase("SMS: with the key over HTTPS it is taken; without it, refused");
    let sms_sim = start_sim("sms", &certs, "sk_test_sms").await?;
    let sms_url = format!("https://{}", sms_sim.addr);
    let target = |key: Option<&str>| Outbound {
        target: sms_url.clone(),
        secret_key: key.map(str::to_string),
        ca: Some(ca.clone()),
    };
    let msg = Sms {
        id: "sms-https-1".into(),
        to: "+4712345678".into(),
        text: "Your tickets".into(),
    };
    HttpSms::new(target(Some("sk_test_sms")), Duration::from_secs(5))?
        .send(&msg)
        .await?;
    let e = HttpSms::new(target(None), Duration::from_secs(5))?
        .send(&msg)
        .await
        .expect_err("no key");
    assert!(matches!(e, SendError::Invalid(_)), "{e}");
    let unverified = Outbound {
        ca: None,
        ..target(Some("sk_test_sms"))
    };
    let e = HttpSms::new(unverified, Duration::from_secs(5))?
        .send(&msg)
        .await
        .expect_err("the simulator's CA is not a system root");
    assert!(matches!(e, SendError::Transient(_)), "{e}");
    Ok(())
}

//! `ticketd-sim` serves both simulators as their own processes, the way the integration tests
//! and scripts/run.sh start them (and a workspace test run builds the binary for them).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ticketd_money::provider::{CreateIntent, HttpProvider, IntentStatus, PaymentProvider};
use ticketd_notify::sms::{HttpSms, Sms};
use ticketd_testkit::cluster::free_addr;

/// A simulator process, killed on drop.
struct Simulator(Child);

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `ticketd-sim <which>` on a free port and waits until it listens.
fn start(which: &str) -> (String, Simulator) {
    let addr = free_addr().expect("a free port");
    let child = Command::new(env!("CARGO_BIN_EXE_ticketd-sim"))
        .args([which, "--listen", &addr])
        .stderr(Stdio::null())
        .spawn()
        .expect("ticketd-sim starts");
    let simulator = Simulator(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "ticketd-sim {which} did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (addr, simulator)
}

#[tokio::test]
async fn the_payment_simulator_authorizes_and_captures_once_per_key() {
    ticketd_raft::tls::install_provider();
    let (addr, _simulator) = start("pay");
    let provider = HttpProvider::new(addr.as_str(), Duration::from_secs(5)).expect("client");
    let request = CreateIntent {
        amount: 5_000,
        currency: "EUR".into(),
        payment_method: "pm_card_visa".into(),
        metadata: [("hold_id".to_string(), "h-1".to_string())].into(),
    };
    let first = provider
        .authorize("h-1", &request)
        .await
        .expect("authorized");
    let again = provider.authorize("h-1", &request).await.expect("replayed");
    assert_eq!(first.id, again.id);
    assert_eq!(first.status, IntentStatus::RequiresCapture);
    let captured = provider.capture(&first.id).await.expect("captured");
    assert_eq!(captured.status, IntentStatus::Succeeded);
}

#[tokio::test]
async fn the_sms_simulator_accepts_a_message() {
    ticketd_raft::tls::install_provider();
    let (addr, _simulator) = start("sms");
    let sms = HttpSms::new(addr.as_str(), Duration::from_secs(5)).expect("client");
    let message = Sms {
        id: "n-1".into(),
        to: "+4712345678".into(),
        text: "hello".into(),
    };
    sms.send(&message).await.expect("accepted");
}

//! The web pages in a real browser: headless Chromium driven over WebDriver (chromedriver)
//! against a real 3-node cluster, the payment simulator, the API and the demo data. Browse, pick
//! seats on the SVG map, hold, pay (a declined card, then an approved one), see the ticket with
//! its rotating QR, scan it at the gate (admitted), scan again (refused: already used); best
//! available, then cancel; two browsers racing for the same seat (exactly one gets it); sign-up;
//! the seller's pages. Every page is saved as a PNG screenshot in `TICKETD_SCREENSHOTS`
//! (default `$CARGO_TARGET_DIR/browser-screenshots`, else cargo's test temp dir).

mod common;
mod webdriver;

use std::path::PathBuf;

use common::*;
use ticketd_testkit::cluster::{NodeOpts, TestCluster};
use webdriver::{Browser, Driver};

/// A phone's viewport (CSS pixels).
const PHONE: (u32, u32) = (412, 915);
/// A laptop's viewport.
const LAPTOP: (u32, u32) = (1280, 900);

fn screenshot_dir() -> anyhow::Result<PathBuf> {
    let dir = match std::env::var_os("TICKETD_SCREENSHOTS") {
        Some(d) => PathBuf::from(d),
        None => match std::env::var_os("CARGO_TARGET_DIR") {
            Some(t) => PathBuf::from(t).join("browser-screenshots"),
            None => PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-screenshots"),
        },
    };
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn log_in(b: &Browser, base: &str, email: &str, password: &str) -> anyhow::Result<()> {
    b.goto(&format!("{base}/app/login")).await?;
    b.page("login").await?;
    b.fill("#login-email", email).await?;
    b.fill("#login-password", password).await?;
    b.click("#login-go").await?;
    b.find("#logout").await?;
    Ok(())
}

/// Pays on the checkout page with the test card `pm` (the `<option>` value).
async fn pay(b: &Browser, pm: &str) -> anyhow::Result<()> {
    b.click(&format!("#card option[value=\"{pm}\"]")).await?;
    b.fill("#card-name", "Demo Buyer").await?;
    b.click("#pay").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_flow_in_headless_chromium() -> anyhow::Result<()> {
    let shots = screenshot_dir()?;
    let driver = Driver::start().await?;
    let c = TestCluster::start(&ticketd_bin(), 3, NodeOpts::default()).await?;
    let dir = tempfile::tempdir()?;
    let (pay_addr, _paysim) = start_paysim().await?;
    let api =
        ApiProcess::start_with(&c, &c.endpoints(), dir.path(), &["--payments", &pay_addr]).await?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    ticketd_cluster::demo::seed(&c.client(), now_ms, true).await?;
    let base = api.base.clone();
    let pw = ticketd_cluster::demo::DEMO_PASSWORD;
    eprintln!("screenshots: {}", shots.display());

    phase("the pages are served by the API and are not in its OpenAPI document");
    let r = api.http.get(api.url("/")).send().await?;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()?
        .starts_with("text/html"));
    let doc: serde_json::Value = api
        .http
        .get(api.url("/openapi.json"))
        .send()
        .await?
        .json()
        .await?;
    let paths = doc["paths"].as_object().expect("paths");
    assert!(
        paths.keys().all(|p| p != "/" && !p.starts_with("/app")),
        "{:?}",
        paths.keys()
    );

    let a = driver.browser("buyer", PHONE.0, PHONE.1, &shots).await?;

    phase("log in; home: popular events, a city, search");
    b_log_in_page(&a, &base).await?;
    a.screenshot("01-login").await?;
    log_in(&a, &base, "demo1@example.org", pw).await?;
    a.page("home").await?;
    a.find("a[data-event=\"aurora-live\"]").await?;
    a.screenshot("02-home").await?;
    a.click("#city option[value=\"stockholm\"]").await?;
    a.find("a[data-event=\"nordic-jazz\"]").await?;
    assert!(
        !a.exists("a[data-event=\"aurora-live\"]").await?,
        "only events near Stockholm"
    );
    a.screenshot("03-home-stockholm").await?;
    a.cdp(
        "Browser.grantPermissions",
        serde_json::json!({ "origin": base, "permissions": ["geolocation"] }),
    )
    .await?;
    a.cdp(
        "Emulation.setGeolocationOverride",
        serde_json::json!({ "latitude": 59.91, "longitude": 10.75, "accuracy": 50 }),
    )
    .await?;
    a.click("#near-me").await?;
    a.wait_text("h2", "near you", |t| t == "Popular near you")
        .await?;
    a.find("a[data-event=\"aurora-live\"]").await?;
    assert!(
        !a.exists("a[data-event=\"nordic-jazz\"]").await?,
        "only events near Oslo"
    );
    a.screenshot("04-home-near-me").await?;
    a.fill("#search", "auro").await?;
    a.click("#search-go").await?;
    a.wait_text("h2", "the search heading", |t| t.contains("auro"))
        .await?;
    a.find("a[data-event=\"aurora-live\"]").await?;
    a.screenshot("04-search-results").await?;

    phase("the event and its dts; the dt's seat map");
    a.click("a[data-event=\"aurora-live\"]").await?;
    a.page("event").await?;
    a.screenshot("05-event").await?;
    a.click("a[data-dt=\"aurora-live-d0\"]").await?;
    a.page("dt").await?;
    let seats = a
        .eval("return document.querySelectorAll('#seatmap [data-seat]').length")
        .await?;
    assert_eq!(seats, 400, "every seat of the venue is drawn");
    a.screenshot("06-seatmap").await?;

    phase("zoom, pick two seats on the map, hold them");
    let before = a
        .eval("return document.getElementById('seatmap').getAttribute('viewBox')")
        .await?;
    a.click("#zoom-in").await?;
    let after = a
        .eval("return document.getElementById('seatmap').getAttribute('viewBox')")
        .await?;
    assert_ne!(before, after, "zoom changes the viewBox");
    a.click("#zoom-reset").await?;
    a.click("#seatmap [data-seat=\"45\"]").await?;
    a.click("#seatmap [data-seat=\"46\"]").await?;
    a.wait_text("#chosen", "the two seats", |t| {
        t.contains("A 3 6") && t.contains("A 3 7")
    })
    .await?;
    a.screenshot("07-seats-chosen").await?;
    a.click("#hold-selected").await?;
    a.page("hold").await?;
    let left = a.text("#countdown").await?;
    assert!(left.contains(':'), "a countdown: {left}");
    // The hold names its seats; each one's price and fee come from its tier in the seat map.
    let rows = a
        .eval(
            "return [...document.querySelectorAll('#hold-items tbody tr')]\
             .map(r => [...r.cells].map(c => c.textContent.trim()))",
        )
        .await?;
    let rows = rows.as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 2, "two held seats: {rows:?}");
    for r in &rows {
        let cells: Vec<&str> = r
            .as_array()
            .map(|c| c.iter().filter_map(|x| x.as_str()).collect())
            .unwrap_or_default();
        assert!(
            cells.len() == 3 && cells.iter().all(|c| !c.is_empty()),
            "a seat label, its price and its fee: {cells:?}"
        );
    }
    a.screenshot("08-hold").await?;

    phase("checkout: a declined card, then an approved one; confirmation");
    a.click("#to-checkout").await?;
    a.page("checkout").await?;
    a.screenshot("09-checkout").await?;
    pay(&a, "pm_card_declined").await?;
    a.find("[data-code=\"PAYMENT_DECLINED\"]").await?;
    a.screenshot("10-checkout-declined").await?;
    pay(&a, "pm_card_visa").await?;
    a.page("order").await?;
    a.wait_text("#order-status", "Confirmed", |t| t == "Confirmed")
        .await?;
    a.screenshot("11-confirmation").await?;

    phase("my tickets; the ticket with its QR; the code rotates on its step");
    a.click("#nav a[href=\"/app/tickets\"]").await?;
    a.page("tickets").await?;
    a.screenshot("12-my-tickets").await?;
    a.click("#tickets a[data-ticket]").await?;
    a.page("ticket").await?;
    a.find("#qr svg").await?;
    let payload = a
        .eval("return document.getElementById('qr-payload').textContent")
        .await?
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(payload.starts_with("TKT1."), "{payload}");
    let code = a.text("#code").await?;
    assert_eq!(code.len(), 6, "{code}");
    a.screenshot("13-ticket-qr").await?;

    phase("the scanner page: admitted, then refused as already used");
    let s = driver.browser("scanner", PHONE.0, PHONE.1, &shots).await?;
    log_in(&s, &base, "scanner@example.org", pw).await?;
    s.page("scan").await?;
    s.fill("#scan-dt", "aurora-live-d0").await?;
    s.fill("#scan-gate", "north-3").await?;
    s.fill("#scan-code", &payload).await?;
    s.screenshot("14-scan").await?;
    s.click("#scan-go").await?;
    s.find("#verdict[data-verdict=\"admitted\"]").await?;
    s.screenshot("15-scan-admitted").await?;
    s.fill("#scan-code", &payload).await?;
    s.click("#scan-go").await?;
    s.find("#verdict[data-verdict=\"already_used\"]").await?;
    let why = s.text("#verdict-reason").await?;
    assert!(why.contains("north-3"), "{why}");
    s.screenshot("16-scan-already-used").await?;
    s.quit().await?;

    phase("the ticket page shows it used, and a new code after the step");
    // The code's step is 15 s: the page reads the ticket again when its code rotates.
    a.wait_text_for(
        "#code",
        "a new code",
        std::time::Duration::from_secs(20),
        |t| t.len() == 6 && t != code,
    )
    .await?;
    // The scan may land after the read of that rotation: the next rotation (a step later)
    // reads it again.
    a.wait_text_for(
        "#ticket-status",
        "used",
        std::time::Duration::from_secs(20),
        |t| t == "used",
    )
    .await?;

    phase("best available, pay, then cancel the order");
    a.goto(&format!("{base}/app/events/aurora-live/dts/aurora-live-d0"))
        .await?;
    a.page("dt").await?;
    a.click("#best-tier option[value=\"silver\"]").await?;
    a.fill("#best-qty", "2").await?;
    a.click("#best-go").await?;
    a.page("hold").await?;
    a.click("#to-checkout").await?;
    a.page("checkout").await?;
    pay(&a, "pm_card_visa").await?;
    a.page("order").await?;
    a.wait_text("#order-status", "Confirmed", |t| t == "Confirmed")
        .await?;
    a.click("#cancel-order").await?;
    a.fill("#cancel-reason", "cannot come").await?;
    a.screenshot("17-cancel").await?;
    a.click("#cancel-yes").await?;
    a.wait_text("#order-status", "Canceled", |t| t == "Canceled")
        .await?;
    a.screenshot("18-canceled").await?;

    phase("sign up in a second browser; both race for the same seat: exactly one gets it");
    let b = driver.browser("racer", PHONE.0, PHONE.1, &shots).await?;
    b.goto(&format!("{base}/app/signup")).await?;
    b.page("signup").await?;
    b.fill("#signup-name", "Grace Hopper").await?;
    b.fill("#signup-email", "grace@example.org").await?;
    b.fill("#signup-password", "cobol forever").await?;
    b.screenshot("19-signup").await?;
    b.click("#signup-go").await?;
    b.find("#logout").await?;
    let dt_url = format!("{base}/app/events/aurora-live/dts/aurora-live-d0");
    for x in [&a, &b] {
        x.goto(&dt_url).await?;
        x.page("dt").await?;
    }
    // One picks the seat with the mouse, the other with the keyboard (focus it, Enter).
    a.click("#seatmap [data-seat=\"100\"]").await?;
    b.eval("document.querySelector('#seatmap [data-seat=\"100\"]').focus(); return null")
        .await?;
    b.press("\u{E007}").await?;
    for x in [&a, &b] {
        x.wait_text("#chosen", "seat A 6 1 chosen", |t| t.contains("A 6 1"))
            .await?;
    }
    let (ra, rb) = tokio::join!(a.click("#hold-selected"), b.click("#hold-selected"));
    ra?;
    rb?;
    let deadline = std::time::Instant::now() + webdriver::WAIT;
    let (mut won, mut lost) = (vec![], vec![]);
    for (name, x) in [("buyer", &a), ("racer", &b)] {
        loop {
            if x.exists("main[data-page=\"hold\"][data-ready]").await? {
                won.push(name);
                break;
            }
            if x.exists("[data-code=\"SEAT_ALREADY_HELD\"]").await? {
                lost.push(name);
                break;
            }
            anyhow::ensure!(std::time::Instant::now() < deadline, "{name}: no outcome");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    assert_eq!(
        (won.len(), lost.len()),
        (1, 1),
        "won {won:?}, lost {lost:?}"
    );
    a.screenshot("20-race").await?;
    b.screenshot("20-race").await?;
    a.quit().await?;
    b.quit().await?;

    phase("the seller: a venue, an event, a dt with tiers and a sale window; sales");
    let v = driver.browser("seller", LAPTOP.0, LAPTOP.1, &shots).await?;
    log_in(&v, &base, "seller1@example.org", pw).await?;
    v.page("seller").await?;
    v.fill("#venue-name", "Sentrum Scene").await?;
    v.fill("#venue-city", "Oslo").await?;
    v.fill("#venue-address", "Arbeidersamfunnets plass 1")
        .await?;
    v.fill("#venue-sections", "A:4x10").await?;
    v.fill("#venue-ga", "floor:50").await?;
    v.click("#venue-go").await?;
    v.wait_text("#venue-out", "created", |t| t.starts_with("Venue created"))
        .await?;
    v.fill("#event-title", "Sentrum Sessions").await?;
    v.fill("#event-performers", "The Band").await?;
    v.click("#event-go").await?;
    v.wait_text("#event-out", "created", |t| t.starts_with("Event created"))
        .await?;
    v.eval("document.querySelector('#tiers [name=ga]').value = 'floor'; return null")
        .await?;
    v.eval("document.querySelector('#tiers [name=sections]').value = 'A'; return null")
        .await?;
    v.click("#dt-go").await?;
    v.wait_text("#dt-out", "created", |t| t.starts_with("Dt created"))
        .await?;
    v.screenshot("21-seller-created").await?;
    v.click("#window-go").await?;
    v.wait_text("#window-out", "saved", |t| t == "Sale window saved")
        .await?;
    v.fill("#sales-event", "aurora-live").await?;
    v.fill("#sales-dt", "aurora-live-d0").await?;
    v.click("#sales-go").await?;
    v.wait_text("#sales-sold", "the sales", |t| t.contains("sold"))
        .await?;
    let sold = v.text("#sales-sold").await?;
    assert!(
        sold.starts_with("2 of"),
        "two seats stay sold (the used ones): {sold}"
    );
    v.screenshot("22-seller-sales").await?;
    v.click("#dt-out a").await?;
    v.page("dt").await?;
    let drawn = v
        .eval("return document.querySelectorAll('#seatmap [data-seat]').length")
        .await?;
    assert_eq!(drawn, 40, "the new venue's seats");
    v.screenshot("23-seller-new-dt").await?;

    phase("a stadium: 50,400 seats drawn; zoom and pan move the viewBox");
    v.goto(&format!(
        "{base}/app/events/stadium-tour/dts/stadium-tour-d0"
    ))
    .await?;
    v.page("dt").await?;
    let drawn = v
        .eval("return document.querySelectorAll('#seatmap [data-seat]').length")
        .await?;
    assert_eq!(drawn, 50_400);
    v.screenshot("24-stadium").await?;
    let whole = v
        .eval("return document.getElementById('seatmap').getAttribute('viewBox')")
        .await?;
    for _ in 0..4 {
        v.click("#zoom-in").await?;
    }
    v.eval("document.getElementById('seatmap').focus(); return null")
        .await?;
    let zoomed = v
        .eval("return document.getElementById('seatmap').getAttribute('viewBox')")
        .await?;
    assert_ne!(whole, zoomed);
    v.screenshot("25-stadium-zoomed").await?;
    v.quit().await?;
    eprintln!("screenshots in {}", shots.display());
    Ok(())
}

async fn b_log_in_page(b: &Browser, base: &str) -> anyhow::Result<()> {
    b.goto(&format!("{base}/app/login")).await?;
    b.page("login").await
}

//! A minimal W3C WebDriver client over HTTP (reqwest) for the browser tests: Debian's
//! `chromedriver` driving headless Chromium. Every wait is a bounded poll on a condition.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::{json, Value};

/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long a wait polls before failing.
pub const WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(100);

/// A `chromedriver` process, killed on drop.
pub struct Driver {
    child: std::process::Child,
    base: String,
    http: reqwest::Client,
}

impl Driver {
    /// Starts chromedriver (`TICKETD_CHROMEDRIVER`, default `/usr/bin/chromedriver`) on a free
    /// port and waits until it is ready.
    pub async fn start() -> anyhow::Result<Self> {
        let bin = std::env::var("TICKETD_CHROMEDRIVER")
            .unwrap_or_else(|_| "/usr/bin/chromedriver".to_string());
        anyhow::ensure!(
            Path::new(&bin).exists(),
            "chromedriver not found at {bin}: run scripts/test.sh (it installs chromium and chromium-driver) or set TICKETD_CHROMEDRIVER"
        );
        let port = ticketd_testkit::cluster::free_port()?;
        let child = std::process::Command::new(&bin)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .with_context(|| format!("starting {bin}"))?;
        ticketd_raft::tls::install_provider(); // reqwest takes the process's ring provider
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(r) = http.get(format!("{base}/status")).send().await {
                if let Ok(v) = r.json::<Value>().await {
                    if v["value"]["ready"] == true {
                        break;
                    }
                }
            }
            anyhow::ensure!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(POLL).await;
        }
        Ok(Self { child, base, http })
    }

    /// A new headless browser with its own profile (its own sessionStorage), `width` x
    /// `height` CSS pixels; screenshots go to `shots` prefixed with `name`.
    pub async fn browser(
        &self,
        name: &str,
        width: u32,
        height: u32,
        shots: &Path,
    ) -> anyhow::Result<Browser> {
        let chromium =
            std::env::var("TICKETD_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_string());
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--no-first-run", "--disable-extensions", "--lang=en-US",
                         format!("--window-size={width},{height}")]
            }
        }}});
        let r: Value = self
            .http
            .post(format!("{}/session", self.base))
            .json(&caps)
            .send()
            .await?
            .json()
            .await?;
        let id = r["value"]["sessionId"]
            .as_str()
            .with_context(|| format!("no session: {r}"))?;
        Ok(Browser {
            http: self.http.clone(),
            url: format!("{}/session/{id}", self.base),
            shots: shots.to_path_buf(),
            name: name.to_string(),
        })
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser session.
pub struct Browser {
    http: reqwest::Client,
    url: String,
    shots: PathBuf,
    name: String,
}

impl Browser {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let req = self.http.request(method, format!("{}{path}", self.url));
        let req = if body.is_null() { req } else { req.json(&body) };
        let r = req.send().await?;
        let status = r.status();
        let v: Value = r.json().await?;
        if !status.is_success() {
            bail!("webdriver {path}: {status} {}", v["value"]);
        }
        Ok(v["value"].clone())
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.call(reqwest::Method::POST, "/url", json!({ "url": url }))
            .await?;
        Ok(())
    }

    async fn find_now(&self, css: &str) -> anyhow::Result<Option<String>> {
        let r = self
            .http
            .post(format!("{}/element", self.url))
            .json(&json!({"using": "css selector", "value": css}))
            .send()
            .await?;
        if r.status() == 404 {
            return Ok(None);
        }
        let v: Value = r.json().await?;
        Ok(v["value"][ELEMENT].as_str().map(str::to_string))
    }

    /// Waits (bounded) until `css` matches, and returns the element.
    pub async fn find(&self, css: &str) -> anyhow::Result<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(e) = self.find_now(css).await? {
                return Ok(e);
            }
            if Instant::now() > deadline {
                let page = self.eval("return location.pathname + ' ' + document.getElementById('main').innerText.slice(0, 400)").await.unwrap_or_default();
                bail!(
                    "[{}] no element {css} within {WAIT:?}; page: {page}",
                    self.name
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Whether `css` matches now.
    pub async fn exists(&self, css: &str) -> anyhow::Result<bool> {
        Ok(self.find_now(css).await?.is_some())
    }

    /// Waits until the page `page` has loaded (`main[data-page][data-ready]`).
    pub async fn page(&self, page: &str) -> anyhow::Result<()> {
        self.find(&format!("main[data-page=\"{page}\"][data-ready]"))
            .await?;
        Ok(())
    }

    /// Clicks `css` (waiting for it; found again if the page re-rendered it meanwhile).
    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        let mut tries = 0;
        loop {
            let e = self.find(css).await?;
            let r = self
                .call(
                    reqwest::Method::POST,
                    &format!("/element/{e}/click"),
                    json!({}),
                )
                .await;
            match r {
                Err(err) if tries < 3 && err.to_string().contains("stale element") => tries += 1,
                r => return r.map(|_| ()),
            }
        }
    }

    /// Replaces the value of the input `css` with `text`, typed as keys.
    pub async fn fill(&self, css: &str, text: &str) -> anyhow::Result<()> {
        let e = self.find(css).await?;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/clear"),
            json!({}),
        )
        .await?;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/value"),
            json!({ "text": text }),
        )
        .await?;
        Ok(())
    }

    /// The rendered text of `css` (waiting for it).
    pub async fn text(&self, css: &str) -> anyhow::Result<String> {
        let e = self.find(css).await?;
        let v = self
            .call(
                reqwest::Method::GET,
                &format!("/element/{e}/text"),
                Value::Null,
            )
            .await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// Waits until the text of `css` satisfies `ok`; returns it.
    pub async fn wait_text(
        &self,
        css: &str,
        what: &str,
        ok: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        self.wait_text_for(css, what, WAIT, ok).await
    }

    /// [`Self::wait_text`] with its own bound.
    pub async fn wait_text_for(
        &self,
        css: &str,
        what: &str,
        bound: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + bound;
        loop {
            // The page may re-render between finding the element and reading it (a stale
            // element): read again until the bound.
            let t = self.text(css).await.unwrap_or_default();
            if ok(&t) {
                return Ok(t);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "[{}] {css} never became {what}; last: {t:?}",
                self.name
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Runs `script` (a function body) in the page and returns its value.
    pub async fn eval(&self, script: &str) -> anyhow::Result<Value> {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            json!({ "script": script, "args": [] }),
        )
        .await
    }

    /// Saves a PNG screenshot of the viewport as `<dir>/<browser name>-<name>.png`, after
    /// checking that the page shows no JavaScript leftovers ("null", "undefined", "NaN").
    pub async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let text = self
            .eval("return document.getElementById('main').innerText")
            .await?;
        let text = text.as_str().unwrap_or_default();
        for bad in ["null", "undefined", "NaN", "[object"] {
            anyhow::ensure!(
                !text
                    .split(|c: char| !c.is_alphanumeric() && c != '[')
                    .any(|w| w == bad),
                "[{}] page {name} shows {bad:?}: {text}",
                self.name
            );
        }
        let v = self
            .call(reqwest::Method::GET, "/screenshot", Value::Null)
            .await?;
        let png = base64_decode(v.as_str().context("screenshot is not a string")?)?;
        let path = self.shots.join(format!("{}-{name}.png", self.name));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    /// Presses and releases one key (a WebDriver key code such as `"\u{E007}"`, Enter) on
    /// whatever has the focus.
    pub async fn press(&self, key: &str) -> anyhow::Result<()> {
        let actions = json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
            {"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}]}]});
        self.call(reqwest::Method::POST, "/actions", actions)
            .await?;
        Ok(())
    }

    /// Runs a Chrome DevTools Protocol command through chromedriver (`goog/cdp/execute`).
    pub async fn cdp(&self, cmd: &str, params: Value) -> anyhow::Result<Value> {
        self.call(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            json!({ "cmd": cmd, "params": params }),
        )
        .await
    }

    /// Ends the session (closes the browser).
    pub async fn quit(self) -> anyhow::Result<()> {
        self.call(reqwest::Method::DELETE, "", Value::Null).await?;
        Ok(())
    }
}

/// Standard base64 (with padding), as WebDriver sends screenshots.
fn base64_decode(s: &str) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\n' | b'\r' => continue,
            _ => bail!("not base64: {c}"),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

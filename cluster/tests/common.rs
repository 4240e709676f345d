//! Shared bits of the integration tests: the binary under test and small domain helpers.
#![allow(dead_code)]

use std::path::PathBuf;

use ticketd_store::command::Venue;
use ticketd_store::{Command, Query, QueryResult};
use ticketd_testkit::cluster::TestCluster;

/// The `ticketd` binary cargo built for these tests.
pub fn ticketd_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ticketd"))
}

/// The provider simulators' binary (`ticketd-sim`, the test kit's), built beside `ticketd`.
pub fn sim_bin() -> PathBuf {
    ticketd_testkit::sibling_bin(&ticketd_bin(), "ticketd-sim")
}

/// The `ticketctl` binary cargo built for these tests.
pub fn ticketctl_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ticketctl"))
}

/// Runs `ticketctl` against `endpoints` with `tls` flags, environment `env`, the given
/// per-command and total timeouts (ms) and `args`: exit code, stdout, stderr.
pub fn ctl_with(
    tls: &[std::ffi::OsString],
    env: &[(&str, std::ffi::OsString)],
    endpoints: &[String],
    (command_ms, total_ms): (u64, u64),
    args: &[&str],
) -> (i32, String, String) {
    let out = std::process::Command::new(ticketctl_bin())
        .arg("--endpoints")
        .arg(endpoints.join(","))
        .arg("--command-timeout-ms")
        .arg(command_ms.to_string())
        .arg("--total-timeout-ms")
        .arg(total_ms.to_string())
        .args(tls)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(args)
        .output()
        .expect("run ticketctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `ticketctl` against `endpoints` of `c` as its operator (the `admin` identity), with
/// the given per-command and total timeouts (ms): exit code, stdout, stderr.
pub fn operator_ctl(
    c: &TestCluster,
    endpoints: &[String],
    timeouts_ms: (u64, u64),
    args: &[&str],
) -> (i32, String, String) {
    let tls = c.tls_args(&ticketd_raft::identity::Identity::Admin("dev".into()));
    ctl_with(&tls, &[], endpoints, timeouts_ms, args)
}

/// A venue-creating command, the simplest write of the domain.
pub fn create_venue(id: &str) -> Command {
    Command::CreateVenue {
        venue_id: id.to_string(),
        name: format!("Venue {id}"),
        city: "Oslo".into(),
    }
}

/// The query that reads a venue back.
pub fn get_venue(id: &str) -> Query {
    Query::GetVenue {
        venue_id: id.to_string(),
    }
}

/// The venue in a query result, if any.
pub fn venue(r: &QueryResult) -> Option<Venue> {
    match r {
        QueryResult::Venue(v) => v.clone(),
        other => panic!("expected a venue result, got {other:?}"),
    }
}

/// Logs test phases to stderr (shown for failing tests).
pub fn phase(msg: &str) {
    eprintln!("=== {msg}");
}

/// A `ticketd api` process in front of a test cluster, and an HTTP client for it.
pub struct ApiProcess {
    /// Base URL, `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its Prometheus listener, `http://127.0.0.1:PORT/metrics`.
    pub metrics_url: String,
    child: std::sync::Mutex<std::process::Child>,
    /// The HTTP client.
    pub http: reqwest::Client,
}

impl ApiProcess {
    /// Starts the API against every node of `c` and waits (bounded) until it serves.
    pub async fn start(c: &TestCluster, log_dir: &std::path::Path) -> anyhow::Result<Self> {
        Self::start_with(c, &c.endpoints(), log_dir, &[]).await
    }

    /// Like [`Self::start`], against `endpoints` of `c`, with extra `ticketd api` flags. The
    /// API presents `c`'s `api-dev` certificate.
    pub async fn start_with(
        c: &TestCluster,
        endpoints: &[String],
        log_dir: &std::path::Path,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let port = ticketd_testkit::cluster::free_port()?;
        let metrics = ticketd_testkit::cluster::free_addr()?;
        let child = std::process::Command::new(ticketd_bin())
            .arg("api")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--metrics-listen", &metrics])
            .args(["--endpoints", &endpoints.join(",")])
            .args(c.tls_args(&ticketd_raft::identity::Identity::Api("dev".into())))
            .args(["--root-key", ROOT_KEY])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(log_dir.join("api.log"))?)
            .spawn()?;
        ticketd_raft::tls::install_provider(); // reqwest takes the process's ring provider
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        let base = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if http
                .get(format!("{base}/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                break;
            }
            anyhow::ensure!(std::time::Instant::now() < deadline, "API did not start");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Ok(Self {
            base,
            metrics_url: format!("http://{metrics}/metrics"),
            child: std::sync::Mutex::new(child),
            http,
        })
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Kills the process at once (SIGKILL), as a crash.
    pub fn kill9(&self) {
        let mut child = self.child.lock().expect("child lock");
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Its exit status once it exited by itself or was killed; `None` while it runs.
    pub fn exited(&self) -> Option<std::process::ExitStatus> {
        self.child
            .lock()
            .expect("child lock")
            .try_wait()
            .ok()
            .flatten()
    }
}

impl Drop for ApiProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The root key the test API processes run with (64 hex digits): their tokens', ids', vault's
/// and code secrets' keys derive from it.
pub const ROOT_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// A bearer token for `user` with `role`, signed with the tokens' key of [`ROOT_KEY`].
pub fn token(user: &str, role: ticketd_http::auth::Role) -> String {
    let root = ticketd_http::keys::Keys::parse_root(ROOT_KEY).expect("root key");
    ticketd_http::keys::Keys::derive(&root, 3600)
        .tokens
        .issue(user, role)
        .0
}

/// A `ticketd-sim pay` process, killed on drop.
pub struct Paysim(std::process::Child);

impl Drop for Paysim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the payment provider simulator on a free port; its address and handle.
pub async fn start_paysim() -> anyhow::Result<(String, Paysim)> {
    let addr = ticketd_testkit::cluster::free_addr()?;
    let paysim = start_paysim_on(&addr, None).await?;
    Ok((addr, paysim))
}

/// Starts the payment provider simulator on `addr`, keeping its books in `state_file` across
/// restarts when given.
pub async fn start_paysim_on(
    addr: &str,
    state_file: Option<&std::path::Path>,
) -> anyhow::Result<Paysim> {
    let mut cmd = std::process::Command::new(sim_bin());
    cmd.args(["pay", "--listen", addr]);
    if let Some(f) = state_file {
        cmd.arg("--state-file").arg(f);
    }
    let child = cmd.stderr(std::process::Stdio::null()).spawn()?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        anyhow::ensure!(std::time::Instant::now() < deadline, "paysim did not start");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Ok(Paysim(child))
}

/// What most API tests run against: 3 nodes with the demo data (no stadium), the payment
/// simulator, and an API process in front. Fields drop in order: the API, the simulator, its
/// files, then the cluster.
pub struct Stack {
    /// The API process.
    pub api: ApiProcess,
    /// The payment simulator.
    pub paysim: Paysim,
    /// Its address, `127.0.0.1:PORT`.
    pub pay_addr: String,
    /// The API's log directory.
    pub dir: tempfile::TempDir,
    /// The nodes.
    pub c: ticketd_testkit::cluster::TestCluster,
}

/// Starts a [`Stack`] whose API also gets the `extra` flags.
pub async fn seeded_stack(extra: &[&str]) -> anyhow::Result<Stack> {
    use ticketd_testkit::cluster::NodeOpts;
    let c = TestCluster::start(&ticketd_bin(), 3, NodeOpts::default()).await?;
    let dir = tempfile::tempdir()?;
    let (pay_addr, paysim) = start_paysim().await?;
    let mut flags = vec!["--payments", pay_addr.as_str()];
    flags.extend_from_slice(extra);
    let api = ApiProcess::start_with(&c, &c.endpoints(), dir.path(), &flags).await?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    ticketd_cluster::demo::seed(&c.client(), now_ms, false).await?;
    Ok(Stack {
        api,
        paysim,
        pay_addr,
        dir,
        c,
    })
}

/// `ms` (Unix milliseconds) as an RFC 3339 time in UTC, the form the API takes and gives times
/// in (like `2027-06-01T19:30:00.25Z`).
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .expect("a time RFC 3339 can say")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("an RFC 3339 time")
}

/// An RFC 3339 time of an API body (`v` a JSON string) as Unix milliseconds; `None` when `v`
/// is not such a time.
pub fn unix_ms(v: &serde_json::Value) -> Option<i64> {
    let t =
        time::OffsetDateTime::parse(v.as_str()?, &time::format_description::well_known::Rfc3339)
            .ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

//! Real node processes on loopback: start, kill -9, restart, pause, and bounded waits on their
//! state. No fixed sleeps: every wait polls a condition with a deadline.
//!
//! Every cluster runs with mutual TLS: on start it makes a CA and certificates in its directory
//! with `ticketd certs` (a node's when the node is created, `api-dev` and `admin-dev` for the
//! test's own clients), as the scripts do.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use ticketd_raft::client::{ClusterClient, Consistency, RetryPolicy};
use ticketd_raft::identity::Identity;
use ticketd_raft::pb;
use ticketd_raft::tls::{TlsFiles, Transport};

use crate::lazyfs::{LazyMount, Lost};

/// Interval between polls of a waited-for condition.
const POLL: Duration = Duration::from_millis(50);

/// Raft settings of the nodes a test starts.
#[derive(Debug, Clone)]
pub struct NodeOpts {
    /// Heartbeat interval, ms.
    pub heartbeat_ms: u64,
    /// Election timeout lower bound, ms.
    pub election_timeout_ms: u64,
    /// Snapshot after this many entries.
    pub snapshot_every_entries: u64,
    /// Entries kept behind a snapshot.
    pub logs_kept_after_snapshot: u64,
    /// Each node's data directory is a [`LazyMount`] over `nodeN.disk`, so
    /// [`TestCluster::lose_unsynced`] can drop what a killed node never fsynced.
    pub lazy_fs: bool,
}

impl Default for NodeOpts {
    fn default() -> Self {
        Self {
            heartbeat_ms: 100,
            election_timeout_ms: 600,
            snapshot_every_entries: 10_000,
            logs_kept_after_snapshot: 1_000,
            lazy_fs: false,
        }
    }
}

/// One node of a test cluster.
pub struct TestNode {
    /// Node id.
    pub id: u64,
    /// gRPC address.
    pub addr: String,
    /// Prometheus address.
    pub metrics_addr: String,
    /// Data directory.
    pub data_dir: PathBuf,
    log_path: PathBuf,
    child: Option<Child>,
}

impl TestNode {
    /// True while its process runs (not killed by the test).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The OS process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
}

/// A cluster of `ticketd node` processes for one test.
pub struct TestCluster {
    /// The nodes' lazyfs mounts ([`NodeOpts::lazy_fs`]); declared first so they are unmounted
    /// (after `Drop` has killed the processes) before the directory under them is removed.
    lazy: BTreeMap<u64, LazyMount>,
    bin: PathBuf,
    /// Nodes that run another binary than `bin` from their next (re)start on (a rolling
    /// upgrade: [`TestCluster::set_node_bin`]).
    node_bins: BTreeMap<u64, PathBuf>,
    dir: tempfile::TempDir,
    opts: NodeOpts,
    nodes: BTreeMap<u64, TestNode>,
    /// How each node's process is launched (network namespace, faketime), for
    /// [`TestCluster::respawn`]; empty for clusters started by [`TestCluster::start`].
    launch: BTreeMap<u64, Launch>,
    /// The test's own identities: `api-dev` (writes, reads) and `admin-dev` (administers).
    api: Transport,
    admin: Transport,
}

/// Runs `ticketd certs ARGS` and fails with its output if it fails.
pub fn make_certs(bin: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(bin)
        .arg("certs")
        .args(args)
        .output()
        .with_context(|| format!("run {} certs", bin.display()))?;
    if !out.status.success() {
        bail!(
            "ticketd certs {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The directory of a cluster's certificates inside its directory `dir`.
fn certs_dir_in(dir: &Path) -> PathBuf {
    dir.join("certs")
}

/// Makes the CA and the test's client certificates in `dir`'s certificate directory and loads
/// the clients' transports.
fn test_identities(bin: &Path, dir: &Path) -> anyhow::Result<(Transport, Transport)> {
    let certs = certs_dir_in(dir);
    let certs_arg = certs.to_string_lossy().to_string();
    make_certs(bin, &["dev", "--dir", &certs_arg, "--nodes", "0"])?;
    let load = |id: Identity| {
        Transport::load(&tls_files(&certs, &id)).with_context(|| format!("load {id}"))
    };
    Ok((
        load(Identity::Api("dev".into()))?,
        load(Identity::Admin("dev".into()))?,
    ))
}

/// The files `ticketd certs` makes for `identity` in `certs`.
pub fn tls_files(certs: &Path, identity: &Identity) -> TlsFiles {
    let stem = match identity {
        Identity::Node(id) => format!("node-{id}"),
        Identity::Api(n) => format!("api-{n}"),
        Identity::Admin(n) => format!("admin-{n}"),
    };
    TlsFiles {
        ca: certs.join("ca.pem"),
        cert: certs.join(format!("{stem}.pem")),
        key: certs.join(format!("{stem}-key.pem")),
    }
}

/// The TLS flags of a node or client process with `identity`'s files in `certs`.
pub fn tls_args(certs: &Path, identity: &Identity) -> Vec<std::ffi::OsString> {
    let f = tls_files(certs, identity);
    vec![
        "--cacert".into(),
        f.ca.into(),
        "--cert".into(),
        f.cert.into(),
        "--key".into(),
        f.key.into(),
    ]
}

/// How to launch one node's process: a command prefix (e.g. `ip netns exec NS`) that must `exec`
/// the node (so its pid is the node's), and extra environment (e.g. libfaketime's).
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// Program and arguments put before the `ticketd` binary.
    pub prefix: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

/// Where a node of [`TestCluster::start_placed`] listens and how it is launched.
#[derive(Debug, Clone)]
pub struct Placement {
    /// gRPC address (listen and advertise).
    pub addr: String,
    /// Prometheus address.
    pub metrics_addr: String,
    /// Launch prefix and environment.
    pub launch: Launch,
}

/// A free loopback port for a process to bind later, taken below the kernel's ephemeral range
/// (32768-60999 by default): a port from `bind(0)` can be handed to another process's `bind(0)`
/// or to an outgoing connection between this check and the child's bind, which concurrent
/// tests do. Each process walks 10000-30999 from its own pid-derived start.
pub fn free_port() -> anyhow::Result<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 10_000;
    const SPAN: u32 = 21_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(977) % SPAN;
    for _ in 0..SPAN {
        let k = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (LOW + (start + k) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    anyhow::bail!("no free loopback port in 10000-30999")
}

/// The retries of the test clients.
fn test_policy() -> RetryPolicy {
    RetryPolicy {
        attempt_timeout: Duration::from_secs(3),
        total_deadline: Duration::from_secs(20),
        ..Default::default()
    }
}

/// `127.0.0.1:<free_port()>`.
pub fn free_addr() -> anyhow::Result<String> {
    Ok(format!("127.0.0.1:{}", free_port()?))
}

impl TestCluster {
    /// Starts `n` nodes (ids 1..=n), initializes them as one cluster and waits for a leader.
    pub async fn start(bin: &Path, n: u64, opts: NodeOpts) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("ticketd-test-").tempdir()?;
        let (api, admin) = test_identities(bin, dir.path())?;
        let mut c = TestCluster {
            lazy: BTreeMap::new(),
            bin: bin.to_path_buf(),
            node_bins: BTreeMap::new(),
            dir,
            opts,
            nodes: BTreeMap::new(),
            launch: BTreeMap::new(),
            api,
            admin,
        };
        for id in 1..=n {
            c.add_node(id)?;
        }
        let members: Vec<pb::Member> = c
            .nodes
            .values()
            .map(|n| pb::Member {
                id: n.id,
                addr: n.addr.clone(),
            })
            .collect();
        let first = c.addr(1);
        // The first node may still be binding its port: retry init within a bound.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match c
                .admin_client_for(std::slice::from_ref(&first))
                .init(&first, members.clone())
                .await
            {
                Ok(_) => break,
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!(error = %e, "init not yet accepted");
                    tokio::time::sleep(POLL).await;
                }
                Err(e) => return Err(e).context("initialize cluster"),
            }
        }
        c.wait_leader(Duration::from_secs(20)).await?;
        Ok(c)
    }

    /// Creates and starts node `id` (not yet a member: see `ClusterClient::admin_on_leader`).
    pub fn add_node(&mut self, id: u64) -> anyhow::Result<()> {
        let addr = format!("127.0.0.1:{}", free_port()?);
        let metrics_addr = format!("127.0.0.1:{}", free_port()?);
        self.new_node(id, addr, metrics_addr)?;
        self.restart(id)
    }

    /// Registers node `id` (not started), its data directory on a lazyfs mount when the
    /// options ask for one.
    fn new_node(&mut self, id: u64, addr: String, metrics_addr: String) -> anyhow::Result<()> {
        if self.nodes.contains_key(&id) {
            bail!("node {id} exists");
        }
        let data_dir = self.dir.path().join(format!("node{id}"));
        let certs = self.certs_dir().to_string_lossy().to_string();
        make_certs(
            &self.bin,
            &["create-node", "--dir", &certs, "--id", &id.to_string()],
        )?;
        if self.opts.lazy_fs {
            let backing = self.dir.path().join(format!("node{id}.disk"));
            self.lazy.insert(id, LazyMount::mount(&backing, &data_dir)?);
        }
        let node = TestNode {
            id,
            addr,
            metrics_addr,
            data_dir,
            log_path: self.dir.path().join(format!("node{id}.log")),
            child: None,
        };
        self.nodes.insert(id, node);
        Ok(())
    }

    /// Throws away what node `id` wrote and never fsynced (its lazyfs mount's pending data), as
    /// a power loss would. The node must be killed first; fails if it is running or has no
    /// lazyfs mount.
    pub fn lose_unsynced(&self, id: u64) -> anyhow::Result<Lost> {
        let node = self.nodes.get(&id).context("no such node")?;
        if node.is_running() {
            bail!("node {id} is running: kill it before losing its unsynced writes");
        }
        let m = self
            .lazy
            .get(&id)
            .with_context(|| format!("node {id} has no lazyfs mount"))?;
        Ok(m.lose_unsynced())
    }

    /// True when the nodes' data directories are lazyfs mounts.
    pub fn has_lazy_fs(&self) -> bool {
        self.opts.lazy_fs
    }

    /// Makes node `id` run `bin` from its next (re)start on: a rolling upgrade (or downgrade)
    /// one node at a time.
    pub fn set_node_bin(&mut self, id: u64, bin: &Path) {
        self.node_bins.insert(id, bin.to_path_buf());
    }

    /// Starts the process of node `id` again (after a kill), on the same data and ports.
    pub fn restart(&mut self, id: u64) -> anyhow::Result<()> {
        let opts = self.opts.clone();
        let bin = self.node_bins.get(&id).unwrap_or(&self.bin).clone();
        let certs = self.certs_dir();
        let node = self.nodes.get_mut(&id).context("no such node")?;
        if node.child.is_some() {
            bail!("node {id} is running");
        }
        let log = File::options()
            .create(true)
            .append(true)
            .open(&node.log_path)?;
        let child = Command::new(&bin)
            .arg("node")
            .args(["--id", &id.to_string()])
            .arg("--data-dir")
            .arg(&node.data_dir)
            .args(["--listen", &node.addr])
            .args(["--metrics-listen", &node.metrics_addr])
            .args(tls_args(&certs, &Identity::Node(id)))
            .args(["--heartbeat-ms", &opts.heartbeat_ms.to_string()])
            .args([
                "--election-timeout-ms",
                &opts.election_timeout_ms.to_string(),
            ])
            .args([
                "--snapshot-every-entries",
                &opts.snapshot_every_entries.to_string(),
            ])
            .args([
                "--logs-kept-after-snapshot",
                &opts.logs_kept_after_snapshot.to_string(),
            ])
            .env(
                "RUST_LOG",
                std::env::var("TICKETD_TEST_LOG").unwrap_or_else(|_| "info,openraft=warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawn {}", bin.display()))?;
        node.child = Some(child);
        Ok(())
    }

    /// kill -9 of node `id`, and waits for the process to be gone.
    pub fn kill(&mut self, id: u64) -> anyhow::Result<()> {
        let node = self.nodes.get_mut(&id).context("no such node")?;
        let mut child = node
            .child
            .take()
            .with_context(|| format!("node {id} is not running"))?;
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    /// Sends a signal (by name, e.g. `TERM`, `STOP`, `CONT`) to node `id`.
    pub fn signal(&self, id: u64, sig: &str) -> anyhow::Result<()> {
        let pid = self
            .nodes
            .get(&id)
            .and_then(|n| n.pid())
            .context("node not running")?;
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()?;
        if !st.success() {
            bail!("kill -{sig} {pid} failed");
        }
        Ok(())
    }

    /// SIGTERM to node `id` and a bounded wait for a clean exit.
    pub async fn stop(
        &mut self,
        id: u64,
        timeout: Duration,
    ) -> anyhow::Result<std::process::ExitStatus> {
        self.signal(id, "TERM")?;
        let node = self.nodes.get_mut(&id).context("no such node")?;
        let mut child = node.child.take().context("not running")?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = child.try_wait()? {
                return Ok(st);
            }
            if Instant::now() >= deadline {
                child.kill()?;
                child.wait()?;
                bail!("node {id} did not stop within {timeout:?}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// gRPC address of node `id`.
    pub fn addr(&self, id: u64) -> String {
        self.nodes[&id].addr.clone()
    }

    /// The node handles.
    pub fn nodes(&self) -> impl Iterator<Item = &TestNode> {
        self.nodes.values()
    }

    /// Ids of nodes whose process runs.
    pub fn running(&self) -> Vec<u64> {
        self.nodes
            .values()
            .filter(|n| n.is_running())
            .map(|n| n.id)
            .collect()
    }

    /// Addresses of every node.
    pub fn endpoints(&self) -> Vec<String> {
        self.nodes.values().map(|n| n.addr.clone()).collect()
    }

    /// A client over every node with the `api` identity (writes, reads with secrets).
    pub fn client(&self) -> ClusterClient {
        self.client_for(&self.endpoints())
    }

    /// An `api` client over the given endpoints only.
    pub fn client_for(&self, endpoints: &[String]) -> ClusterClient {
        ClusterClient::new(endpoints.to_vec(), test_policy(), self.api.clone())
    }

    /// A client over every node with the `admin` identity (membership, status, snapshots).
    pub fn admin_client(&self) -> ClusterClient {
        self.admin_client_for(&self.endpoints())
    }

    /// An `admin` client over the given endpoints only.
    pub fn admin_client_for(&self, endpoints: &[String]) -> ClusterClient {
        ClusterClient::new(endpoints.to_vec(), test_policy(), self.admin.clone())
    }

    /// The transport of the test's `api` identity.
    pub fn api_transport(&self) -> Transport {
        self.api.clone()
    }

    /// The transport of the test's `admin` identity.
    pub fn admin_transport(&self) -> Transport {
        self.admin.clone()
    }

    /// Where the cluster's CA and certificates are.
    pub fn certs_dir(&self) -> PathBuf {
        certs_dir_in(self.dir.path())
    }

    /// The files of `identity` in [`Self::certs_dir`] (made there by `ticketd certs`).
    pub fn tls_files(&self, identity: &Identity) -> TlsFiles {
        tls_files(&self.certs_dir(), identity)
    }

    /// The `--cacert`, `--cert`, `--key` flags of a process with `identity`.
    pub fn tls_args(&self, identity: &Identity) -> Vec<std::ffi::OsString> {
        tls_args(&self.certs_dir(), identity)
    }

    /// Status of node `id`.
    pub async fn status(&self, id: u64) -> anyhow::Result<pb::StatusReply> {
        let addr = self.addr(id);
        Ok(self
            .admin_client_for(std::slice::from_ref(&addr))
            .status(&addr)
            .await?)
    }

    /// Waits until a running node is leader and every other running voter agrees; returns its id.
    pub async fn wait_leader(&self, timeout: Duration) -> anyhow::Result<u64> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.agreed_leader().await {
                return Ok(l);
            }
            if Instant::now() >= deadline {
                bail!(
                    "no agreed leader within {timeout:?}\n{}",
                    self.logs_tail(30)
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn agreed_leader(&self) -> Option<u64> {
        let mut leader = None;
        for id in self.running() {
            let s = self.status(id).await.ok()?;
            if s.is_learner {
                continue;
            }
            if !s.has_leader {
                return None;
            }
            match leader {
                None => leader = Some(s.leader_id),
                Some(l) if l != s.leader_id => return None,
                _ => {}
            }
        }
        let l = leader?;
        let s = self.status(l).await.ok()?;
        s.is_leader.then_some(l)
    }

    /// Waits until node `id` has applied at least `index`.
    pub async fn wait_applied(
        &self,
        id: u64,
        index: u64,
        timeout: Duration,
    ) -> anyhow::Result<pb::StatusReply> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(s) = self.status(id).await {
                if s.applied_index >= index {
                    return Ok(s);
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "node {id} did not apply index {index} within {timeout:?}\n{}",
                    self.logs_tail(30)
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until `cond` holds for node `id`'s status.
    pub async fn wait_status(
        &self,
        id: u64,
        what: &str,
        timeout: Duration,
        cond: impl Fn(&pb::StatusReply) -> bool,
    ) -> anyhow::Result<pb::StatusReply> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(s) = self.status(id).await {
                if cond(&s) {
                    return Ok(s);
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "node {id}: {what} not reached within {timeout:?}\n{}",
                    self.logs_tail(30)
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// A linearizable read through node `id` only.
    pub async fn read_linearizable_at(
        &self,
        id: u64,
        query: &ticketd_store::Query,
    ) -> anyhow::Result<ticketd_raft::client::ReadResult> {
        let addr = self.addr(id);
        self.client_for(std::slice::from_ref(&addr))
            .read_at(&addr, query, Consistency::Linearizable)
            .await?
            .with_context(|| format!("node {id} knows no leader"))
    }

    /// The last `lines` lines of every node's log, for failure messages.
    pub fn logs_tail(&self, lines: usize) -> String {
        let mut out = String::new();
        for n in self.nodes.values() {
            let text = std::fs::read_to_string(&n.log_path).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            out.push_str(&format!("--- node {} log ---\n", n.id));
            for l in &all[all.len().saturating_sub(lines)..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}

impl TestCluster {
    /// Like [`TestCluster::start`], with each node's addresses and launch chosen by `place`
    /// (e.g. one network namespace per node). Restart such nodes with [`TestCluster::respawn`].
    pub async fn start_placed(
        bin: &Path,
        n: u64,
        opts: NodeOpts,
        place: &dyn Fn(u64) -> anyhow::Result<Placement>,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("ticketd-chaos-")
            .tempdir()?;
        let (api, admin) = test_identities(bin, dir.path())?;
        let mut c = TestCluster {
            lazy: BTreeMap::new(),
            bin: bin.to_path_buf(),
            node_bins: BTreeMap::new(),
            dir,
            opts,
            nodes: BTreeMap::new(),
            launch: BTreeMap::new(),
            api,
            admin,
        };
        for id in 1..=n {
            c.add_node_placed(id, place(id)?)?;
        }
        let members: Vec<pb::Member> = c
            .nodes
            .values()
            .map(|n| pb::Member {
                id: n.id,
                addr: n.addr.clone(),
            })
            .collect();
        let first = c.addr(1);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match c
                .admin_client_for(std::slice::from_ref(&first))
                .init(&first, members.clone())
                .await
            {
                Ok(_) => break,
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!(error = %e, "init not yet accepted");
                    tokio::time::sleep(POLL).await;
                }
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("initialize cluster\n{}", c.logs_tail(20)))
                }
            }
        }
        c.wait_leader(Duration::from_secs(20)).await?;
        Ok(c)
    }

    /// Creates node `id` at `place` and starts it (not yet a member).
    pub fn add_node_placed(&mut self, id: u64, place: Placement) -> anyhow::Result<()> {
        self.new_node(id, place.addr, place.metrics_addr)?;
        self.launch.insert(id, place.launch);
        self.respawn(id)
    }

    /// Replaces how node `id` is launched from its next [`TestCluster::respawn`] on.
    pub fn set_launch(&mut self, id: u64, launch: Launch) {
        self.launch.insert(id, launch);
    }

    /// How node `id` is launched.
    pub fn launch_of(&self, id: u64) -> Launch {
        self.launch.get(&id).cloned().unwrap_or_default()
    }

    /// Starts node `id`'s process again with its [`Launch`] (after a kill).
    pub fn respawn(&mut self, id: u64) -> anyhow::Result<()> {
        let opts = self.opts.clone();
        let bin = self.bin.clone();
        let certs = self.certs_dir();
        let launch = self.launch.get(&id).cloned().unwrap_or_default();
        let node = self.nodes.get_mut(&id).context("no such node")?;
        if node.child.is_some() {
            bail!("node {id} is running");
        }
        let log = File::options()
            .create(true)
            .append(true)
            .open(&node.log_path)?;
        let mut cmd = match launch.prefix.split_first() {
            Some((prog, args)) => {
                let mut c = Command::new(prog);
                c.args(args).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        cmd.arg("node")
            .args(["--id", &id.to_string()])
            .arg("--data-dir")
            .arg(&node.data_dir)
            .args(["--listen", &node.addr])
            .args(["--advertise", &node.addr])
            .args(["--metrics-listen", &node.metrics_addr])
            .args(tls_args(&certs, &Identity::Node(id)))
            .args(["--heartbeat-ms", &opts.heartbeat_ms.to_string()])
            .args([
                "--election-timeout-ms",
                &opts.election_timeout_ms.to_string(),
            ])
            .args([
                "--snapshot-every-entries",
                &opts.snapshot_every_entries.to_string(),
            ])
            .args([
                "--logs-kept-after-snapshot",
                &opts.logs_kept_after_snapshot.to_string(),
            ])
            .env(
                "RUST_LOG",
                std::env::var("TICKETD_TEST_LOG").unwrap_or_else(|_| "info,openraft=warn".into()),
            )
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = cmd
            .spawn()
            .with_context(|| format!("spawn {:?} {}", launch.prefix, bin.display()))?;
        node.child = Some(child);
        Ok(())
    }

    /// Reaps node `id`'s process if it exited on its own; returns its exit status then.
    pub fn reap_if_exited(&mut self, id: u64) -> Option<std::process::ExitStatus> {
        let node = self.nodes.get_mut(&id)?;
        let st = node.child.as_mut()?.try_wait().ok()??;
        node.child = None;
        Some(st)
    }

    /// The leader as the running voters agree on it now, without waiting.
    pub async fn current_leader(&self) -> Option<u64> {
        self.agreed_leader().await
    }

    /// The leader some running node believes in (no agreement needed), without waiting.
    pub async fn any_leader(&self) -> Option<u64> {
        for id in self.running() {
            if let Ok(s) = self.status(id).await {
                if s.has_leader && self.nodes.contains_key(&s.leader_id) {
                    return Some(s.leader_id);
                }
            }
        }
        None
    }

    /// The directory holding the nodes' data and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Path of node `id`'s log file.
    pub fn log_path(&self, id: u64) -> Option<PathBuf> {
        self.nodes.get(&id).map(|n| n.log_path.clone())
    }

    /// Keeps the data and logs after the cluster is dropped; returns where they are.
    pub fn keep_files(&mut self) -> PathBuf {
        let path = self.dir.path().to_path_buf();
        let _ = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir")).keep();
        path
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for n in self.nodes.values_mut() {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if std::thread::panicking() {
            // Keep the data and logs of a failed test for inspection.
            let path = self.dir.path().to_path_buf();
            eprintln!("test cluster files kept at {}", path.display());
            let _ = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir")).keep();
        }
    }
}

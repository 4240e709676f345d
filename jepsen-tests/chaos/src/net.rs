//! One network namespace per node on a Linux bridge, and iptables faults inside them.
//!
//! Layout of a run with tag `T`: bridge `tjbT` at `10.88.T.254/24` in the root namespace (the
//! harness's clients talk to the nodes through it), namespace `tjT-nI` with `eth0` at `10.88.T.I`
//! joined to the bridge by veth `tjT-vI`. Partitions drop packets from chosen peers on INPUT
//! inside a node's namespace; the clients (from `.254`) are never cut off. Needs root, `ip` and
//! `iptables`; [`Netns::create`] fails with the reason when they are not there, and the runner
//! then falls back to loopback without network faults and says so.

use std::collections::BTreeMap;
use std::process::Command;

use anyhow::{bail, Context as _};

use crate::delay::Delayer;

/// Runs a command, failing with its stderr.
fn run(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .with_context(|| format!("run {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The namespaces and bridge of one run; removed on drop.
pub struct Netns {
    tag: u8,
    nodes: BTreeMap<u64, String>,
    /// The delayer thread of each node whose incoming packets are being delayed.
    delays: std::sync::Mutex<BTreeMap<u64, Delayer>>,
}

impl Netns {
    /// The bridge's name.
    pub fn bridge(&self) -> String {
        format!("tjb{}", self.tag)
    }

    /// The harness's address on the bridge.
    pub fn host_ip(&self) -> String {
        format!("10.88.{}.254", self.tag)
    }

    /// Node `id`'s address.
    pub fn ip(&self, id: u64) -> String {
        format!("10.88.{}.{}", self.tag, id)
    }

    /// Node `id`'s namespace name (under /run/netns).
    pub fn namespace(&self, id: u64) -> String {
        self.ns(id)
    }

    fn ns(&self, id: u64) -> String {
        format!("tj{}-n{}", self.tag, id)
    }

    /// The prefix that runs a program in node `id`'s namespace (it `exec`s: same pid).
    pub fn prefix(&self, id: u64) -> Vec<String> {
        vec!["ip".into(), "netns".into(), "exec".into(), self.ns(id)]
    }

    /// Checks the tools, picks a free tag and creates the bridge and one namespace per node.
    pub fn create(ids: impl IntoIterator<Item = u64>) -> anyhow::Result<Self> {
        if !nix_is_root() {
            bail!("network namespaces need root");
        }
        run(&["ip", "-V"]).context("iproute2 `ip` is missing")?;
        run(&["iptables", "--version"])
            .context("iptables is missing (apt-get install iptables)")?;
        let existing = run(&["ip", "-o", "link", "show"])?;
        let start = (std::process::id() % 200) as u8;
        let tag = (0..200u8)
            .map(|k| 20 + (start.wrapping_add(k)) % 200)
            // A namespace's veth goes a little after `ip netns del`: a tag is free only when
            // neither its bridge nor any of its veths is left.
            .find(|t| {
                !existing.contains(&format!("tjb{t}:")) && !existing.contains(&format!(" tj{t}-v"))
            })
            .context("no free bridge tag")?;
        let mut n = Netns {
            tag,
            nodes: BTreeMap::new(),
            delays: Default::default(),
        };
        let br = n.bridge();
        run(&["ip", "link", "add", &br, "type", "bridge"])?;
        run(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", n.host_ip()),
            "dev",
            &br,
        ])?;
        run(&["ip", "link", "set", &br, "up"])?;
        for id in ids {
            n.add_node(id)?;
        }
        Ok(n)
    }

    /// Creates node `id`'s namespace, joined to the bridge.
    pub fn add_node(&mut self, id: u64) -> anyhow::Result<()> {
        if !(1..=250).contains(&id) {
            bail!("node id {id} does not fit the /24");
        }
        let ns = self.ns(id);
        let veth = format!("tj{}-v{}", self.tag, id);
        run(&["ip", "netns", "add", &ns])?;
        self.nodes.insert(id, ns.clone());
        run(&[
            "ip", "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ])?;
        run(&["ip", "link", "set", &veth, "master", &self.bridge(), "up"])?;
        run(&[
            "ip",
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{}/24", self.ip(id)),
            "dev",
            "eth0",
        ])?;
        run(&["ip", "-n", &ns, "link", "set", "eth0", "up"])?;
        run(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
        // Prove iptables works in the namespace before any fault relies on it.
        self.ipt(id, &["-F", "INPUT"])
            .context("iptables does not work inside a network namespace")?;
        Ok(())
    }

    fn ipt(&self, id: u64, args: &[&str]) -> anyhow::Result<()> {
        let ns = self.nodes.get(&id).context("no namespace for node")?;
        let mut a = vec!["ip", "netns", "exec", ns, "iptables", "-w", "5"];
        a.extend_from_slice(args);
        run(&a).map(|_| ())
    }

    /// Node `id` drops every packet from the nodes in `from`.
    pub fn drop_from(&self, id: u64, from: &[u64]) -> anyhow::Result<()> {
        for p in from {
            if *p != id {
                self.ipt(id, &["-A", "INPUT", "-s", &self.ip(*p), "-j", "DROP"])?;
            }
        }
        Ok(())
    }

    /// Node `id` drops packets from the nodes in `from` with probability `p`.
    pub fn lossy_from(&self, id: u64, from: &[u64], p: f64) -> anyhow::Result<()> {
        for peer in from {
            if *peer != id {
                self.ipt(
                    id,
                    &[
                        "-A",
                        "INPUT",
                        "-s",
                        &self.ip(*peer),
                        "-m",
                        "statistic",
                        "--mode",
                        "random",
                        "--probability",
                        &format!("{p:.3}"),
                        "-j",
                        "DROP",
                    ],
                )?;
            }
        }
        Ok(())
    }

    /// Node `id` holds each packet from the nodes in `from` for `base` plus up to `jitter`
    /// before delivering it (an NFQUEUE served by a [`Delayer`] in its namespace). A node has
    /// one delayer until [`Netns::heal`]: a later call adds peers to it at its first delay.
    pub fn delay_from(
        &self,
        id: u64,
        from: &[u64],
        base: std::time::Duration,
        jitter: std::time::Duration,
        seed: u64,
    ) -> anyhow::Result<()> {
        let ns = self.nodes.get(&id).context("no namespace for node")?;
        {
            let mut delays = self.delays.lock().unwrap_or_else(|p| p.into_inner());
            if let std::collections::btree_map::Entry::Vacant(e) = delays.entry(id) {
                e.insert(Delayer::start(ns, base, jitter, seed ^ id)?);
            }
        }
        for p in from {
            if *p != id {
                self.ipt(
                    id,
                    &[
                        "-A",
                        "INPUT",
                        "-s",
                        &self.ip(*p),
                        "-j",
                        "NFQUEUE",
                        "--queue-num",
                        &crate::delay::QUEUE_NUM.to_string(),
                        "--queue-bypass",
                    ],
                )?;
            }
        }
        Ok(())
    }

    /// Cuts the nodes into components: each node drops packets from every node outside its own.
    pub fn partition(&self, components: &[Vec<u64>]) -> anyhow::Result<()> {
        let all: Vec<u64> = components.iter().flatten().copied().collect();
        for comp in components {
            let others: Vec<u64> = all.iter().filter(|n| !comp.contains(n)).copied().collect();
            for id in comp {
                self.drop_from(*id, &others)?;
            }
        }
        Ok(())
    }

    /// Removes every rule in every namespace, then stops the delayers (releasing the packets
    /// they hold). Tries all, reports the first failure.
    pub fn heal(&self) -> anyhow::Result<()> {
        let mut first = Ok(());
        for id in self.nodes.keys() {
            if let Err(e) = self.ipt(*id, &["-F", "INPUT"]) {
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        let delays = std::mem::take(&mut *self.delays.lock().unwrap_or_else(|p| p.into_inner()));
        for (id, d) in delays {
            match d.stop() {
                Ok(st) => tracing::info!(
                    node = id,
                    delayed = st.delayed,
                    overflowed = st.overflowed,
                    "delayer stopped"
                ),
                Err(e) => {
                    if first.is_ok() {
                        first = Err(e.context(format!("delayer of node {id}")));
                    }
                }
            }
        }
        first
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        std::mem::take(&mut *self.delays.lock().unwrap_or_else(|p| p.into_inner()));
        for ns in self.nodes.values() {
            let _ = run(&["ip", "netns", "del", ns]);
        }
        let _ = run(&["ip", "link", "del", &self.bridge()]);
        // The kernel removes the namespaces' veths asynchronously; wait (bounded) so the next
        // run of this process can take the same tag.
        let veths = format!(" tj{}-v", self.tag);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline
            && run(&["ip", "-o", "link", "show"]).is_ok_and(|l| l.contains(&veths))
        {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

fn nix_is_root() -> bool {
    run(&["id", "-u"]).map(|s| s.trim() == "0").unwrap_or(false)
}

/// Removes namespaces and bridges left by killed runs (names `tjN-nI`, `tjbN`).
pub fn cleanup_stale() -> Vec<String> {
    let mut removed = Vec::new();
    if let Ok(list) = run(&["ip", "netns", "list"]) {
        for l in list.lines() {
            let name = l.split_whitespace().next().unwrap_or_default();
            if name.starts_with("tj")
                && name.contains("-n")
                && run(&["ip", "netns", "del", name]).is_ok()
            {
                removed.push(name.to_string());
            }
        }
    }
    if let Ok(links) = run(&["ip", "-o", "link", "show", "type", "bridge"]) {
        for l in links.lines() {
            if let Some(name) = l.split(':').nth(1).map(str::trim) {
                if name.starts_with("tjb") && run(&["ip", "link", "del", name]).is_ok() {
                    removed.push(name.to_string());
                }
            }
        }
    }
    removed
}

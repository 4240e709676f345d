//! Latency on real links without netem: iptables sends a node's incoming peer packets to an
//! NFQUEUE in its namespace, and a thread of the harness, moved into that namespace, gives each
//! packet its verdict (accept) only after a delay drawn per packet (base + uniform jitter, so
//! packets may overtake each other, as with netem's jitter). The queue is bound fail-open and the
//! iptables rules with `--queue-bypass`: with the thread gone or its queue full, packets pass
//! undelayed instead of being dropped.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The NFQUEUE number the rules use (queues are per network namespace).
pub const QUEUE_NUM: u16 = 0;
/// Packets held at once; more are accepted at once (netem's `limit` drops them instead).
pub const MAX_HELD: usize = 4096;
/// Longest sleep between looks at the queue: the delay's resolution.
const TICK: Duration = Duration::from_millis(1);

/// What a delayer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DelayStats {
    /// Packets delayed.
    pub delayed: u64,
    /// Packets accepted at once because [`MAX_HELD`] were held.
    pub overflowed: u64,
}

/// A running delayer thread in one namespace; stopped (every held packet released) by
/// [`Delayer::stop`] or on drop.
pub struct Delayer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<DelayStats>>>,
}

impl Delayer {
    /// Starts a thread in network namespace `ns` (a name under /run/netns) that holds every
    /// packet queued to [`QUEUE_NUM`] for `base` plus up to `jitter`. Returns once the queue is
    /// bound, so rules added after it delay from the first packet.
    pub fn start(ns: &str, base: Duration, jitter: Duration, seed: u64) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let path = format!("/run/netns/{ns}");
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("delay-{ns}"))
            .spawn(move || run(&path, base, jitter, seed, &flag, ready_tx))?;
        match ready_rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(())) => Ok(Delayer {
                stop,
                thread: Some(thread),
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                stop.store(true, Ordering::Relaxed);
                anyhow::bail!("the delayer of {ns} did not start within 5 s")
            }
        }
    }

    /// Releases every held packet and ends the thread.
    pub fn stop(mut self) -> anyhow::Result<DelayStats> {
        self.finish()
    }

    fn finish(&mut self) -> anyhow::Result<DelayStats> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| anyhow::anyhow!("delayer thread panicked"))?,
            None => Ok(DelayStats::default()),
        }
    }
}

impl Drop for Delayer {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

fn run(
    ns_path: &str,
    base: Duration,
    jitter: Duration,
    seed: u64,
    stop: &AtomicBool,
    ready: std::sync::mpsc::Sender<anyhow::Result<()>>,
) -> anyhow::Result<DelayStats> {
    let queue = (|| {
        let ns = std::fs::File::open(ns_path).with_context(|| format!("open {ns_path}"))?;
        // Only this thread moves into the namespace; the netlink socket is created there.
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
            .with_context(|| format!("setns {ns_path}"))?;
        let mut q = nfq::Queue::open().context("open an NFQUEUE socket")?;
        q.bind(QUEUE_NUM).context("bind the NFQUEUE")?;
        q.set_copy_range(QUEUE_NUM, 0)?;
        q.set_fail_open(QUEUE_NUM, true)?;
        q.set_queue_max_len(QUEUE_NUM, MAX_HELD as u32)?;
        q.set_nonblocking(true);
        Ok::<_, anyhow::Error>(q)
    })();
    let mut q = match queue {
        Ok(q) => {
            let _ = ready.send(Ok(()));
            q
        }
        Err(e) => {
            let msg = format!("{e:#}");
            let _ = ready.send(Err(e));
            anyhow::bail!(msg);
        }
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut held: BTreeMap<(Instant, u64), nfq::Message> = BTreeMap::new();
    let mut seq = 0u64;
    let mut stats = DelayStats::default();
    let mut result = Ok(());
    while !stop.load(Ordering::Relaxed) {
        loop {
            match q.recv() {
                Ok(mut msg) => {
                    if held.len() >= MAX_HELD {
                        msg.set_verdict(nfq::Verdict::Accept);
                        q.verdict(msg)?;
                        stats.overflowed += 1;
                        continue;
                    }
                    let extra = if jitter.is_zero() {
                        Duration::ZERO
                    } else {
                        jitter.mul_f64(rng.random::<f64>())
                    };
                    seq += 1;
                    held.insert((Instant::now() + base + extra, seq), msg);
                    stats.delayed += 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    result = Err(anyhow::Error::new(e).context("receive from the NFQUEUE"));
                    break;
                }
            }
        }
        if result.is_err() {
            break;
        }
        let now = Instant::now();
        while let Some(entry) = held.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let mut msg = entry.remove();
            msg.set_verdict(nfq::Verdict::Accept);
            q.verdict(msg)?;
        }
        let next = held
            .keys()
            .next()
            .map_or(TICK, |(t, _)| t.saturating_duration_since(now).min(TICK));
        std::thread::sleep(next);
    }
    for (_, mut msg) in std::mem::take(&mut held) {
        msg.set_verdict(nfq::Verdict::Accept);
        let _ = q.verdict(msg);
    }
    let _ = q.unbind(QUEUE_NUM);
    result.map(|()| stats)
}

//! The simulated faults: crashes, restarts, partitions and message loss.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::rt::AsyncRuntime;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::log::{flush, SimLog};
use crate::network::SimNetFactory;
use crate::simrt::SimRt;
use crate::state_machine::SimRaft;
use crate::state_machine::SimStateMachine;
use crate::world::World;
use ticketd_checker::history::Line;

pub(crate) async fn run_nemesis(
    world: Arc<World>,
    seed: u64,
    stop: Arc<AtomicU64>,
    faults: Arc<Mutex<BTreeMap<String, u64>>>,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6e65_6d65);
    let nodes: Vec<u64> = (1..=world.cfg.nodes).collect();
    let mut down: Vec<u64> = Vec::new();
    let mut restarts = 0u64;
    while stop.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..1_200))).await;
        if stop.load(Ordering::SeqCst) != 0 {
            break;
        }
        let kind = *["crash", "crash-leader", "partition", "split", "loss"]
            .choose(&mut rng)
            .expect("kinds");
        *faults
            .lock()
            .expect("faults")
            .entry(kind.into())
            .or_default() += 1;
        match kind {
            "crash" | "crash-leader" => {
                let victim = if kind == "crash-leader" {
                    world.leader_guess()
                } else {
                    nodes.choose(&mut rng).copied()
                };
                if let Some(v) = victim {
                    if world.handle(v).is_some() {
                        crash_node(&world, v).await;
                        down.push(v);
                    }
                }
            }
            "partition" => {
                let v = *nodes.choose(&mut rng).expect("nodes");
                let mut n = world.net.lock().expect("net lock");
                for o in &nodes {
                    if *o != v {
                        n.cut.insert((v, *o));
                        n.cut.insert((*o, v));
                    }
                }
            }
            "split" => {
                let mut s = nodes.clone();
                s.shuffle(&mut rng);
                let k = (s.len() - 1) / 2;
                let (a, b) = s.split_at(k.max(1));
                let mut n = world.net.lock().expect("net lock");
                for x in a {
                    for y in b {
                        n.cut.insert((*x, *y));
                        n.cut.insert((*y, *x));
                    }
                }
            }
            _ => {
                world.net.lock().expect("net lock").loss = rng.random_range(0.05..0.3);
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..2_000))).await;
        {
            let mut n = world.net.lock().expect("net lock");
            n.cut.clear();
            n.loss = 0.0;
        }
        for v in down.drain(..) {
            restarts += 1;
            restart_node(&world, v, seed ^ (restarts << 8) ^ v).await;
        }
    }
}

pub(crate) async fn crash_node(world: &World, id: u64) {
    let h = world.net.lock().expect("net lock").rafts.remove(&id);
    world.incarnation[&id].fetch_add(1, Ordering::SeqCst);
    let revert = || {
        let mut disk = world.log_disks[&id].lock().expect("log lock");
        disk.current = disk.durable.clone();
        disk.pending.clear();
    };
    revert();
    if let Some((raft, _)) = h {
        let _ = tokio::time::timeout(Duration::from_secs(5), raft.shutdown()).await;
    }
    revert();
    world.record(Line::Fault {
        time_ns: world.now(),
        fault: "crash".into(),
        phase: "start".into(),
        nodes: vec![id],
        status: ticketd_checker::history::FaultStatus::Installed,
        detail: String::new(),
    });
}

/// Starts node `id` on what its disks hold, with its flusher (a simulated fsync every 0.5-3 ms).
pub(crate) async fn spawn_node(world: &World, id: u64, flush_seed: u64) -> anyhow::Result<()> {
    let sm = SimStateMachine::open(id, world.sm_disks[&id].clone(), world.oracle.clone())?;
    let log = SimLog {
        node: id,
        disk: world.log_disks[&id].clone(),
        oracle: world.oracle.clone(),
    };
    let raft = SimRaft::new(
        id,
        world.config.clone(),
        SimNetFactory {
            from: id,
            net: world.net.clone(),
        },
        log,
        sm.clone(),
    )
    .await?;
    world
        .net
        .lock()
        .expect("net lock")
        .rafts
        .insert(id, (raft, sm));
    let inc = world.incarnation[&id].clone();
    let mine = inc.load(Ordering::SeqCst);
    let disk = world.log_disks[&id].clone();
    SimRt::spawn(async move {
        let mut rng = ChaCha8Rng::seed_from_u64(flush_seed);
        while inc.load(Ordering::SeqCst) == mine {
            tokio::time::sleep(Duration::from_micros(rng.random_range(500..3_000))).await;
            if inc.load(Ordering::SeqCst) != mine {
                break;
            }
            flush(&disk);
        }
    });
    Ok(())
}

pub(crate) async fn restart_node(world: &World, id: u64, flush_seed: u64) {
    if let Err(e) = spawn_node(world, id, flush_seed).await {
        world
            .violations
            .lock()
            .expect("violations")
            .push(format!("node {id} failed to restart: {e:#}"));
    }
    world.record(Line::Fault {
        time_ns: world.now(),
        fault: "crash".into(),
        phase: "stop".into(),
        nodes: vec![id],
        status: ticketd_checker::history::FaultStatus::Installed,
        detail: String::new(),
    });
}

//! The simulated clients: the workload's ops against the nodes, and their answers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::ReadPolicy;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use ticketd_raft::Proposal;
use ticketd_store::{Command, Query, Request};

use crate::world::World;
use ticketd_checker::history::{read_pos, write_pos, Call, Cons, Line, OpType, Ret};
use ticketd_workload::{self as workload, dt_id, SaleClient, Seen, Shared};

pub(crate) async fn run_client(world: Arc<World>, idx: usize, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (0xc11e_u64 << 32) ^ idx as u64);
    let client_id = format!("sim-c{idx}");
    let mut process = idx as u64;
    let mut past: Vec<(String, Command)> = Vec::new();
    for n in 0..world.cfg.ops_per_client {
        tokio::time::sleep(Duration::from_millis(rng.random_range(1..40))).await;
        let op = (idx * 1_000_000 + n) as u64;
        let venue = format!("v{}", n / 6 + rng.random_range(0..3usize));
        let roll: f64 = rng.random();
        let call = if roll < 0.5 {
            let key = format!("k{op}");
            let command = Command::CreateVenue {
                venue_id: venue,
                name: format!("n{op}"),
                city: "Sim".into(),
            };
            past.push((key.clone(), command.clone()));
            Call::Write {
                client_id: client_id.clone(),
                key,
                command,
                via: None,
            }
        } else if roll < 0.55 && !past.is_empty() {
            let (key, command) = past[rng.random_range(0..past.len())].clone();
            Call::Write {
                client_id: client_id.clone(),
                key,
                command,
                via: None,
            }
        } else {
            Call::Read {
                query: Query::GetVenue { venue_id: venue },
                consistency: if rng.random_bool(0.8) {
                    Cons::Linearizable
                } else {
                    Cons::Local
                },
                node: None,
                final_read: false,
            }
        };
        let node = target(&world, &call, &mut rng).await;
        if type_of(&perform(&world, process, op, call, node).await) == OpType::Info {
            process += world.cfg.clients as u64;
        }
    }
}

/// The node an op goes to: a local read to the node it names (or any live one); everything
/// else to the leader, waiting a little for one after a crash or partition, else to any node
/// (which refuses with a forward-to-leader error: a failed op).
pub(crate) async fn target(world: &World, call: &Call, rng: &mut ChaCha8Rng) -> Option<u64> {
    let alive = world.alive();
    match call {
        Call::Read {
            consistency: Cons::Local,
            node,
            ..
        } => node
            .filter(|n| alive.contains(n))
            .or_else(|| alive.choose(rng).copied()),
        _ => {
            let mut leader = world.leader_guess();
            for _ in 0..20 {
                if leader.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                leader = world.leader_guess();
            }
            leader.or_else(|| alive.choose(rng).copied())
        }
    }
}

/// A client of the sale workload; the dt on sale moves on with the client's op count.
pub(crate) async fn sale_client(
    world: Arc<World>,
    idx: usize,
    seed: u64,
    dts: usize,
    shared: Arc<Mutex<Shared>>,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (0x5a1e_u64 << 32) ^ idx as u64);
    let mut sc = SaleClient::new(idx, world.cfg.clients, seed, format!("sim-c{idx}"));
    let nodes: Vec<u64> = (1..=world.cfg.nodes).collect();
    let mut process = idx as u64;
    let ops = world.cfg.ops_per_client;
    for n in 0..ops {
        tokio::time::sleep(Duration::from_millis(rng.random_range(1..40))).await;
        let op = (idx * 1_000_000 + n) as u64;
        let call = {
            let t = shared.lock().expect("shared lock");
            sc.next(&dt_id((n * dts / ops.max(1)).min(dts - 1)), &t, &nodes)
        };
        let node = target(&world, &call, &mut rng).await;
        let line = perform(&world, process, op, call.clone(), node).await;
        sc.observe(
            &call,
            Seen::of(&line),
            workload::effect_index(&line),
            &mut shared.lock().expect("shared lock"),
        );
        if type_of(&line) == OpType::Info {
            process += world.cfg.clients as u64;
        }
    }
}

/// Performs `call` through the leader until it is answered, at most `tries` times.
pub(crate) async fn until_answered(
    world: &World,
    process: u64,
    op: &mut u64,
    call: &Call,
    tries: usize,
) -> Option<Line> {
    for _ in 0..tries {
        *op += 1;
        let node = world.leader_guess();
        let line = perform(world, process, *op, call.clone(), node).await;
        if type_of(&line) == OpType::Ok {
            return Some(line);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Runs one op against `node`; returns its completion line.
pub(crate) async fn perform(
    world: &World,
    process: u64,
    op: u64,
    call: Call,
    node: Option<u64>,
) -> Line {
    world.record(Line::Invoke {
        time_ns: world.now(),
        process,
        op,
        f: call.f().into(),
        call: call.clone(),
    });
    let f = call.f().to_string();
    let h = node.and_then(|n| world.handle(n));
    let fail = |error: String, call: Call| Line::Fail {
        time_ns: world.now(),
        process,
        op,
        f: f.clone(),
        call,
        error,
    };
    let Some((raft, sm)) = h else {
        let line = fail("node down".into(), call);
        world.record(line.clone());
        return line;
    };
    let line = match &call {
        Call::Write {
            client_id,
            key,
            command,
            ..
        } => {
            let req = Proposal::one(Request {
                client_id: client_id.clone(),
                idempotency_key: key.clone(),
                stamped_at_ms: (world.now() / 1_000_000) as i64,
                command: command.clone(),
            });
            match tokio::time::timeout(Duration::from_secs(3), raft.client_write(req)).await {
                Ok(Ok(resp)) => match resp.data.first() {
                    Some(reply) => Line::Ok {
                        time_ns: world.now(),
                        process,
                        op,
                        f: f.clone(),
                        ret: Ret::from_reply(reply),
                        index: write_pos(resp.log_id.index(), 0),
                        call: call.clone(),
                    },
                    None => Line::Info {
                        time_ns: world.now(),
                        process,
                        op,
                        f: f.clone(),
                        call: call.clone(),
                        error: "no reply".into(),
                    },
                },
                Ok(Err(e)) if e.forward_to_leader().is_some() => fail(e.to_string(), call.clone()),
                Ok(Err(e)) => Line::Info {
                    time_ns: world.now(),
                    process,
                    op,
                    f: f.clone(),
                    call: call.clone(),
                    error: e.to_string(),
                },
                Err(_) => Line::Info {
                    time_ns: world.now(),
                    process,
                    op,
                    f: f.clone(),
                    call: call.clone(),
                    error: "timeout".into(),
                },
            }
        }
        Call::Read {
            query, consistency, ..
        } => {
            let ready = match consistency {
                Cons::Local => Ok(()),
                Cons::Linearizable => {
                    match tokio::time::timeout(
                        Duration::from_secs(3),
                        raft.ensure_linearizable(ReadPolicy::ReadIndex),
                    )
                    .await
                    {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(_) => Err("timeout".to_string()),
                    }
                }
            };
            match ready {
                Ok(()) => {
                    let (result, index) = sm.query(query);
                    Line::Ok {
                        time_ns: world.now(),
                        process,
                        op,
                        f: f.clone(),
                        ret: Ret::Read { result },
                        index: read_pos(index),
                        call: call.clone(),
                    }
                }
                Err(e) => fail(e, call.clone()),
            }
        }
    };
    world.record(line.clone());
    line
}

/// How a completion line ended.
pub(crate) fn type_of(line: &Line) -> OpType {
    match line {
        Line::Ok { .. } => OpType::Ok,
        Line::Fail { .. } => OpType::Fail,
        _ => OpType::Info,
    }
}

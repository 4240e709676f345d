//! The history of a chaos run: one JSON object per line.
//!
//! Every client operation appears twice: an `invoke` line when the client sends it and a
//! completion line (`ok`, `fail` or `info`) when it ends. `info` means the outcome is unknown: the
//! write may or may not have been applied, and no checker treats it as failed. Fault injections
//! appear as `fault` lines whose `status` is `installed`, `skipped` or `indeterminate`. Times are
//! monotonic nanoseconds since the start of the run.
//!
//! ```text
//! {"type":"meta","time_ns":0,"seed":7,...}
//! {"type":"invoke","time_ns":1200,"process":0,"op":0,"f":"write","call":{...}}
//! {"type":"ok","time_ns":9100,"process":0,"op":0,"f":"write","call":{...},"ret":{...},"index":5}
//! {"type":"fault","time_ns":5000000,"fault":"kill-leader","phase":"start","nodes":[2],"status":"installed"}
//! ```

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use ticketd_store::machine::Reply;
use ticketd_store::{Command, Outcome, Query, QueryResult};

/// Read consistency, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cons {
    /// ReadIndex through the leader.
    Linearizable,
    /// The serving node's applied state.
    Local,
}

/// What a client asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Call {
    /// A write with its idempotency identity.
    Write {
        /// Client id sent with the write.
        client_id: String,
        /// Idempotency key.
        key: String,
        /// The command.
        command: Command,
        /// Sent through this node only, which forwards to the leader (`None`: any node).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        via: Option<u64>,
    },
    /// A read.
    Read {
        /// The query.
        query: Query,
        /// Consistency asked for.
        consistency: Cons,
        /// Sent through this node only (`None`: any node).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<u64>,
        /// A final read after healing (settles unknown writes).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        final_read: bool,
    },
}

impl Call {
    /// The `f` of the op: `write` or `read`.
    pub fn f(&self) -> &'static str {
        match self {
            Call::Write { .. } => "write",
            Call::Read { .. } => "read",
        }
    }
}

/// What an `ok` op returned.
// Answers are recorded once per op: their size does not matter, a box would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ret {
    /// The state machine's reply to a write. The line's `index` is the position ([`write_pos`])
    /// of the answered attempt; `effect_index` the position at which the key was first applied
    /// (smaller when `replayed`).
    Write {
        /// The outcome.
        outcome: Outcome,
        /// Where the key was first applied.
        effect_index: u64,
        /// A remembered outcome was replayed.
        replayed: bool,
    },
    /// A read answer; the line's `index` is the applied index it was served at.
    Read {
        /// The answer.
        result: QueryResult,
    },
}

/// Bits of a log position that hold a request's place in its entry's batch (the leader's
/// batches are far smaller than 2^16).
const SEQ_BITS: u32 = 16;

/// The position of a write in the total order of applied requests: the index of its entry and
/// its place in the entry's batch, packed so that positions compare as the log applies them.
pub fn write_pos(index: u64, seq: u32) -> u64 {
    assert!(
        seq < (1 << SEQ_BITS) - 1,
        "batch position {seq} out of range"
    );
    (index << SEQ_BITS) | u64::from(seq)
}

/// The position of a read served at applied index `applied`: after every request of that
/// entry (an entry's batch is applied as a whole).
pub fn read_pos(applied: u64) -> u64 {
    (applied << SEQ_BITS) | ((1 << SEQ_BITS) - 1)
}

/// The log index of the entry at position `pos`.
pub fn entry_of(pos: u64) -> u64 {
    pos >> SEQ_BITS
}

impl Ret {
    /// From a client write reply.
    pub fn from_reply(r: &Reply) -> Self {
        Ret::Write {
            outcome: r.outcome.clone(),
            effect_index: write_pos(r.index, r.seq),
            replayed: r.replayed,
        }
    }
}

/// How a fault injection went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultStatus {
    /// It took effect.
    Installed,
    /// It was not attempted (e.g. no leader to kill).
    Skipped,
    /// It may or may not have taken effect.
    Indeterminate,
}

/// One line of a history.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    /// The run's parameters.
    Meta {
        /// ns since the run's start.
        time_ns: u64,
        /// The seed of every random choice of the run.
        seed: u64,
        /// Free-form description of the configuration.
        config: serde_json::Value,
    },
    /// A client sent an op.
    Invoke {
        /// ns since the run's start.
        time_ns: u64,
        /// Logical client; ops of one process never overlap.
        process: u64,
        /// Op id, unique in the history; its completion carries the same id.
        op: u64,
        /// `write` or `read`.
        f: String,
        /// The request.
        call: Call,
    },
    /// The op completed with an answer.
    Ok {
        /// ns since the run's start.
        time_ns: u64,
        /// Process.
        process: u64,
        /// Op id.
        op: u64,
        /// `write` or `read`.
        f: String,
        /// The request.
        call: Call,
        /// The answer.
        ret: Ret,
        /// Log position ([`write_pos`], [`read_pos`]): of the answered write attempt, or after
        /// the applied index a read was served at.
        index: u64,
    },
    /// The op definitely did not take effect.
    Fail {
        /// ns since the run's start.
        time_ns: u64,
        /// Process.
        process: u64,
        /// Op id.
        op: u64,
        /// `write` or `read`.
        f: String,
        /// The request.
        call: Call,
        /// Why.
        error: String,
    },
    /// The outcome is unknown: it may still take effect.
    Info {
        /// ns since the run's start.
        time_ns: u64,
        /// Process.
        process: u64,
        /// Op id.
        op: u64,
        /// `write` or `read`.
        f: String,
        /// The request.
        call: Call,
        /// Why.
        error: String,
    },
    /// A fault was injected (`phase: start`) or healed (`phase: stop`).
    Fault {
        /// ns since the run's start.
        time_ns: u64,
        /// Kind, e.g. `kill-leader`.
        fault: String,
        /// `start` or `stop`.
        phase: String,
        /// Nodes affected.
        nodes: Vec<u64>,
        /// How it went.
        status: FaultStatus,
        /// Details (errors of an indeterminate injection).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        detail: String,
    },
    /// A free-form note (phase changes, environment limits).
    Note {
        /// ns since the run's start.
        time_ns: u64,
        /// The note.
        text: String,
    },
}

/// How a completed op ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpType {
    /// Answered.
    Ok,
    /// Definitely not applied.
    Fail,
    /// Unknown (timed out, or never completed before the history ended).
    Info,
}

/// An op with its invocation and completion paired.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    /// Op id.
    pub op: u64,
    /// Process.
    pub process: u64,
    /// Request.
    pub call: Call,
    /// Invocation time.
    pub invoke_ns: u64,
    /// Completion time (`None`: never completed, treated as unknown).
    pub complete_ns: Option<u64>,
    /// How it ended.
    pub typ: OpType,
    /// Answer of an `ok` op.
    pub ret: Option<Ret>,
    /// Log position of an `ok` op ([`write_pos`], [`read_pos`]).
    pub index: Option<u64>,
    /// Error of a `fail` or `info` op.
    pub error: Option<String>,
}

/// A parsed history.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Seed, from the meta line.
    pub seed: Option<u64>,
    /// The run's configuration, from the meta line.
    pub config: Option<serde_json::Value>,
    /// Paired ops, in invocation order.
    pub ops: Vec<Op>,
    /// Fault and note lines, in order.
    pub events: Vec<Line>,
}

impl History {
    /// Pairs invocations with completions. An invocation without completion is `info`.
    pub fn from_lines(lines: impl IntoIterator<Item = Line>) -> anyhow::Result<Self> {
        let mut h = History::default();
        let mut open: BTreeMap<u64, usize> = BTreeMap::new();
        for line in lines {
            match line {
                Line::Meta { seed, config, .. } => {
                    h.seed = Some(seed);
                    h.config = Some(config);
                }
                Line::Invoke {
                    time_ns,
                    process,
                    op,
                    call,
                    ..
                } => {
                    if open.contains_key(&op) {
                        anyhow::bail!("op {op} invoked twice");
                    }
                    open.insert(op, h.ops.len());
                    h.ops.push(Op {
                        op,
                        process,
                        call,
                        invoke_ns: time_ns,
                        complete_ns: None,
                        typ: OpType::Info,
                        ret: None,
                        index: None,
                        error: None,
                    });
                }
                Line::Ok {
                    time_ns,
                    op,
                    ret,
                    index,
                    ..
                } => {
                    let i = open
                        .remove(&op)
                        .with_context(|| format!("ok of op {op} without invoke"))?;
                    let o = &mut h.ops[i];
                    o.complete_ns = Some(time_ns);
                    o.typ = OpType::Ok;
                    o.ret = Some(ret);
                    o.index = Some(index);
                }
                Line::Fail {
                    time_ns, op, error, ..
                } => {
                    let i = open
                        .remove(&op)
                        .with_context(|| format!("fail of op {op} without invoke"))?;
                    let o = &mut h.ops[i];
                    o.complete_ns = Some(time_ns);
                    o.error = Some(error);
                    o.typ = OpType::Fail;
                }
                Line::Info {
                    time_ns, op, error, ..
                } => {
                    let i = open
                        .remove(&op)
                        .with_context(|| format!("info of op {op} without invoke"))?;
                    let o = &mut h.ops[i];
                    o.complete_ns = Some(time_ns);
                    o.error = Some(error);
                    o.typ = OpType::Info;
                }
                other @ (Line::Fault { .. } | Line::Note { .. }) => h.events.push(other),
            }
        }
        Ok(h)
    }

    /// Reads a JSON-lines history file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        Self::from_lines(Self::load_lines(path)?)
    }

    /// Reads the lines of a JSON-lines history file.
    pub fn load_lines(path: &Path) -> anyhow::Result<Vec<Line>> {
        let f = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
        let raw: Vec<String> = std::io::BufReader::new(f)
            .lines()
            .collect::<Result<_, _>>()?;
        let mut lines = Vec::new();
        for (n, l) in raw.iter().enumerate() {
            if l.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Line>(l) {
                Ok(line) => lines.push(line),
                // A run killed mid-write may leave a torn last line: the history ends there.
                Err(_) if n + 1 == raw.len() => break,
                Err(e) => anyhow::bail!("{}:{}: {e}", path.display(), n + 1),
            }
        }
        Ok(lines)
    }
}

/// Appends history lines to a file as they happen (so a crashed run keeps its history).
pub struct Recorder {
    start: Instant,
    out: Mutex<std::io::BufWriter<std::fs::File>>,
    next_op: std::sync::atomic::AtomicU64,
}

impl Recorder {
    /// A recorder writing to `path`, with the run's clock starting now.
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let f =
            std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
        Ok(Self {
            start: Instant::now(),
            out: Mutex::new(std::io::BufWriter::new(f)),
            next_op: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// ns since the run's start.
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// A fresh op id.
    pub fn next_op(&self) -> u64 {
        self.next_op
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Writes one line.
    pub fn record(&self, line: &Line) {
        let mut out = self.out.lock().expect("recorder lock poisoned");
        let s = serde_json::to_string(line).expect("history lines always encode");
        // A full disk is fatal for a chaos run: say so loudly.
        writeln!(out, "{s}").expect("write history line");
        // Flushed line by line (no fsync): a harness that dies keeps its history up to here.
        out.flush().expect("flush history line");
    }

    /// Writes a note.
    pub fn note(&self, text: impl Into<String>) {
        self.record(&Line::Note {
            time_ns: self.now(),
            text: text.into(),
        });
    }

    /// Flushes to disk.
    pub fn flush(&self) -> anyhow::Result<()> {
        let mut out = self.out.lock().expect("recorder lock poisoned");
        out.flush()?;
        out.get_ref().sync_all()?;
        Ok(())
    }
}

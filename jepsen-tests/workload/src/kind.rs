//! Which workload a run drives.

use serde::{Deserialize, Serialize};

/// Which workload a run drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Set-once registers (venues).
    Register,
    /// Seat sale and scans.
    Sale,
}

impl Workload {
    /// `register` or `sale`.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Register => "register",
            Workload::Sale => "sale",
        }
    }

    /// Parses `register` or `sale`.
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        match s {
            "register" | "venues" => Ok(Workload::Register),
            "sale" | "seats" => Ok(Workload::Sale),
            other => anyhow::bail!("unknown workload {other:?} (register, sale)"),
        }
    }
}

//! What an op ended with, as a client sees it.

use ticketd_store::{Outcome, QueryResult};

use ticketd_checker::history::{Line, Ret};

/// What an op ended with, as a client sees it.
#[derive(Debug, Clone, Copy)]
pub enum Seen<'a> {
    /// A write's outcome.
    Write(&'a Outcome),
    /// A read's answer.
    Read(&'a QueryResult),
    /// Definitely not applied.
    Failed,
    /// Unknown: may have been applied, may still be.
    Unknown,
}

impl<'a> Seen<'a> {
    /// From a completion line.
    pub fn of(line: &'a Line) -> Self {
        match line {
            Line::Ok {
                ret: Ret::Write { outcome, .. },
                ..
            } => Seen::Write(outcome),
            Line::Ok {
                ret: Ret::Read { result },
                ..
            } => Seen::Read(result),
            Line::Fail { .. } => Seen::Failed,
            _ => Seen::Unknown,
        }
    }
}

/// The position at which an answered write first took effect.
pub fn effect_index(line: &Line) -> Option<u64> {
    match line {
        Line::Ok {
            ret: Ret::Write { effect_index, .. },
            ..
        } => Some(*effect_index),
        _ => None,
    }
}

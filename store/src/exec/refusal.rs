//! A handler's refusal, on its way to becoming [`crate::Outcome::Rejected`].

use crate::protocol::{Command, Rejection};

/// A refusal on its way to becoming [`crate::Outcome::Rejected`].
#[derive(Debug)]
pub(crate) struct Reject {
    pub code: Rejection,
    pub detail: String,
}

pub(crate) type HandlerResult<T> = Result<T, Reject>;

pub(crate) fn reject(code: Rejection, detail: impl Into<String>) -> Reject {
    Reject {
        code,
        detail: detail.into(),
    }
}

pub(crate) fn not_found(what: &str, id: &str) -> Reject {
    reject(Rejection::NotFound, format!("no {what} {id}"))
}

/// The refusal of a command handed to a family it is not of. `execute` routes each command to
/// its own family, so no command meets it; it is a rejection, not a panic, because `apply` is
/// total.
pub(crate) fn misrouted(command: &Command) -> Reject {
    reject(
        Rejection::InvalidState,
        format!("no handler of this family for {command:?}"),
    )
}

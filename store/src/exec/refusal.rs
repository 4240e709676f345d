//! A handler's refusal, on its way to becoming [`crate::Outcome::Rejected`].

use crate::protocol::Rejection;

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

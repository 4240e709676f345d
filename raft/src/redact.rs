//! Least privilege in answers: what a read answers to a caller that is not the `api` identity
//! (a node, an operator) leaves out the secrets the store keeps: accounts' password hashes,
//! tickets' code secrets and users' sealed payment tokens. Only the API needs them (sign-in,
//! rotating codes, paying with a saved method); the secrets stay in the store, where a
//! transfer can re-key them later.
//!
//! Architecture invariant: [`redact`] matches every [`QueryResult`] variant by name, so a new
//! answer cannot reach a node or an operator before someone decided what in it is secret.

use ticketd_store::command::OrderView;
use ticketd_store::types::{Account, Ticket, User};
use ticketd_store::QueryResult;

/// What a redacted password hash reads as.
pub const REDACTED: &str = "<redacted>";

fn ticket(t: &mut Ticket) {
    t.secret = [0; 32];
}

fn order(o: &mut OrderView) {
    o.tickets.iter_mut().for_each(ticket);
}

fn account(a: &mut Account) {
    a.password_hash = REDACTED.to_string();
}

fn user(u: &mut User) {
    if u.payment_token_sealed.is_some() {
        u.payment_token_sealed = Some(Vec::new());
    }
}

/// Removes every secret from `r`.
pub fn redact(r: &mut QueryResult) {
    match r {
        QueryResult::Account(a) => a.iter_mut().for_each(account),
        QueryResult::Ticket(t) => t.iter_mut().for_each(ticket),
        QueryResult::Order(o) => o.iter_mut().for_each(order),
        QueryResult::Orders(os) => os.iter_mut().for_each(order),
        QueryResult::User(u) => u.iter_mut().for_each(user),
        QueryResult::Venue(_)
        | QueryResult::Digest(_)
        | QueryResult::VenueLayout(_)
        | QueryResult::Seller(_)
        | QueryResult::Event(_)
        | QueryResult::Events(_)
        | QueryResult::Dts(_)
        | QueryResult::Dt(_)
        | QueryResult::SeatMap(_)
        | QueryResult::Hold(_)
        | QueryResult::Payment(_)
        | QueryResult::Notifications(_)
        | QueryResult::SellerLedger(_)
        | QueryResult::Cursor(_)
        | QueryResult::Unfinished(_)
        | QueryResult::Retries(_) => {}
    }
}

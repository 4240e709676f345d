//! What the clients of a sale share.

/// What the clients of a sale share: the tickets every client has seen issued, oldest first, as
/// `(dt, ticket)`, and the ids of notifications the outbox may hold (minted by the entries of
/// answered purchases, cancellations and refunds; at most [`NOTES_KEPT`], newest last).
#[derive(Debug, Default, Clone)]
pub struct Shared {
    /// `(dt, ticket)`, oldest first.
    pub tickets: Vec<(String, String)>,
    /// Notification ids, newest last.
    pub notes: Vec<String>,
}

/// Notification ids kept in [`Shared::notes`].
pub const NOTES_KEPT: usize = 64;

/// Notifications an entry that confirms, cancels or refunds may mint per command: ids
/// `n-{entry}-1` up to this (more when the batch holds several such commands; the rest are
/// found or not, both are answers the model knows).
const NOTES_PER_ENTRY_GUESS: u32 = 3;

impl Shared {
    pub(crate) fn learn_notes(&mut self, index: u64) {
        let entry = ticketd_checker::history::entry_of(index);
        for k in 1..=NOTES_PER_ENTRY_GUESS {
            let id = format!("n-{entry}-{k}");
            if !self.notes.contains(&id) {
                self.notes.push(id);
            }
        }
        let over = self.notes.len().saturating_sub(NOTES_KEPT);
        self.notes.drain(..over);
    }
}

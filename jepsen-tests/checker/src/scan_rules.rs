//! What a scan at the gate answers, as a table written from the product's rules, not from the
//! store's code: the seed's "Use Ticket" flow (the server verifies the ticket is not used, not
//! canceled, not refunded, then marks it used), the architecture's scan flow (a compare-and-set
//! unused -> used; a second scan answers "already used, at T, gate G") and the dt's lifecycle (a
//! called-off dt's tickets are canceled). The model answers scans by this table, so a store
//! whose answers differ is caught by the replay instead of agreeing with its own copy.
//!
//! The rotating code is checked before a scan becomes a command (the HTTP layer, one time step
//! of tolerance): a stale or forged code never reaches the log, so it has no row here.

/// What a scan finds of the ticket it names, judged in this order: whether it exists, whether
/// it is for the dt the gate scans for, then its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// No ticket has the id.
    NoSuchTicket,
    /// A ticket of another dt, whatever its state: the gate is not the one to judge it.
    OtherDt,
    /// A ticket of this dt, neither used, canceled nor refunded.
    Valid,
    /// A ticket of this dt admitted before.
    Used,
    /// A ticket of this dt canceled (with its order, or by its dt's call-off).
    Canceled,
    /// A ticket of this dt refunded.
    Refunded,
}

/// What the scanner is told, and whether the ticket is admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// No such ticket; nothing is recorded.
    Unknown,
    /// Not admitted: the ticket is for another dt, which the answer names.
    WrongDt,
    /// Admitted: the ticket becomes used, at this scan's time and gate.
    Admit,
    /// Not admitted: used before, at the first admission's time and gate.
    AlreadyUsed,
    /// Not admitted: canceled, at the time it was canceled.
    CanceledAt,
    /// Not admitted: its dt is being called off, which cancels it; canceled as of this scan.
    CanceledNow,
    /// Not admitted: refunded, at the time it was refunded.
    RefundedAt,
}

/// One rule: what the scan finds, whether the ticket's dt is called off (being or done;
/// `None`: either), the answer, and the rule it comes from.
pub struct ScanRule {
    /// What the scan finds of the ticket.
    pub found: Found,
    /// Whether its dt is called off; `None` when the rule holds either way.
    pub called_off: Option<bool>,
    /// The answer.
    pub answer: Answer,
    /// Why, in the product's words.
    pub rule: &'static str,
}

/// The scan-verdict table. Every (found, called off) case matches exactly one row (its unit
/// test checks it).
pub const SCAN_RULES: [ScanRule; 7] = [
    ScanRule {
        found: Found::NoSuchTicket,
        called_off: None,
        answer: Answer::Unknown,
        rule: "a code that names no ticket admits no one",
    },
    ScanRule {
        found: Found::OtherDt,
        called_off: None,
        answer: Answer::WrongDt,
        rule: "a ticket admits to its own dt only; the scanner is told which one it is for",
    },
    ScanRule {
        found: Found::Used,
        called_off: None,
        answer: Answer::AlreadyUsed,
        rule: "a ticket is admitted at most once; a second scan answers already used, at T, gate G",
    },
    ScanRule {
        found: Found::Canceled,
        called_off: None,
        answer: Answer::CanceledAt,
        rule: "a canceled ticket does not admit",
    },
    ScanRule {
        found: Found::Refunded,
        called_off: None,
        answer: Answer::RefundedAt,
        rule: "a refunded ticket does not admit",
    },
    ScanRule {
        found: Found::Valid,
        called_off: Some(true),
        answer: Answer::CanceledNow,
        rule: "a called-off dt's tickets are canceled: one the call-off has not reached yet \
               does not admit either",
    },
    ScanRule {
        found: Found::Valid,
        called_off: Some(false),
        answer: Answer::Admit,
        rule: "a valid ticket of its own dt admits, and is used from then on",
    },
];

/// The answer the table gives.
pub fn answer(found: Found, called_off: bool) -> Answer {
    SCAN_RULES
        .iter()
        .find(|row| row.found == found && row.called_off.is_none_or(|c| c == called_off))
        .map(|row| row.answer)
        .expect("the scan table covers every case")
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY_FOUND: [Found; 6] = [
        Found::NoSuchTicket,
        Found::OtherDt,
        Found::Valid,
        Found::Used,
        Found::Canceled,
        Found::Refunded,
    ];

    #[test]
    fn every_case_matches_exactly_one_rule() {
        for found in EVERY_FOUND {
            for called_off in [false, true] {
                let rows = SCAN_RULES
                    .iter()
                    .filter(|row| {
                        row.found == found && row.called_off.is_none_or(|c| c == called_off)
                    })
                    .count();
                assert_eq!(rows, 1, "{found:?}, called off {called_off}");
            }
        }
    }

    #[test]
    fn only_a_valid_ticket_of_a_dt_not_called_off_admits() {
        for found in EVERY_FOUND {
            for called_off in [false, true] {
                let admits = answer(found, called_off) == Answer::Admit;
                assert_eq!(admits, found == Found::Valid && !called_off, "{found:?}");
            }
        }
    }
}

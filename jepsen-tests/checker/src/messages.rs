//! The messages checker of a full-stack run: every notification the store recorded as sent by
//! email or SMS (confirmations, e-tickets, reminders, cancellations, refund notices) reached its
//! receiver at least once under its stable id, nothing is left pending once the run settled,
//! and redeliveries (the same id twice, after a leader change between send and mark) are
//! counted, not hidden.

use std::collections::{BTreeMap, BTreeSet};

/// A notification as the store ends with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Its stable id (the message's id at the receiver).
    pub id: String,
    /// Its kind, for the report.
    pub kind: String,
    /// Where it ended.
    pub end: NoteEnd,
}

/// Where a notification ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoteEnd {
    /// Still pending (due, or waiting for its next attempt).
    Pending {
        /// Due (or next attempt) in log time.
        due_at_ms: i64,
        /// Parked after too many failures.
        parked: bool,
    },
    /// Recorded as sent through these channels ("email", "sms", "provider", "undeliverable").
    Sent(Vec<String>),
    /// Voided (a reminder of a canceled order).
    Void,
}

/// What the messages checker counted and found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MessagesReport {
    /// Notifications sent by a message channel, per kind.
    pub sent_by_kind: BTreeMap<String, usize>,
    /// Distinct ids the receivers got.
    pub delivered: usize,
    /// Deliveries beyond the first of an id.
    pub duplicates: usize,
    /// Voided notifications whose message went out anyway (sent, then voided before marked).
    pub void_but_delivered: usize,
    /// Everything wrong, one line each.
    pub anomalies: Vec<String>,
}

/// Judges the outbox against what the receivers got (`received`: one id per delivery, in any
/// order, redeliveries included); `settled_at_ms`: log time when the run settled, past which
/// nothing due may still be pending (unless parked).
pub fn check_messages(notes: &[Note], received: &[String], settled_at_ms: i64) -> MessagesReport {
    let mut r = MessagesReport::default();
    let mut times: BTreeMap<&str, usize> = BTreeMap::new();
    for id in received {
        *times.entry(id.as_str()).or_default() += 1;
    }
    r.delivered = times.len();
    r.duplicates = times.values().map(|n| n - 1).sum();
    let known: BTreeSet<&str> = notes.iter().map(|n| n.id.as_str()).collect();
    for n in notes {
        let got = times.get(n.id.as_str()).copied().unwrap_or(0);
        match &n.end {
            NoteEnd::Sent(channels) => {
                let by_message = channels.iter().any(|c| c == "email" || c == "sms");
                if by_message {
                    *r.sent_by_kind.entry(n.kind.clone()).or_default() += 1;
                    if got == 0 {
                        r.anomalies.push(format!(
                            "{} {} recorded sent by {channels:?}, never received",
                            n.kind, n.id
                        ));
                    }
                }
            }
            NoteEnd::Pending { due_at_ms, parked } => {
                if !parked && *due_at_ms <= settled_at_ms {
                    r.anomalies.push(format!(
                        "{} {} still pending, due at {due_at_ms}",
                        n.kind, n.id
                    ));
                }
            }
            NoteEnd::Void => {
                if got > 0 {
                    r.void_but_delivered += 1;
                }
            }
        }
    }
    for id in times.keys() {
        if !known.contains(id) {
            r.anomalies
                .push(format!("received {id}, which the store never wrote"));
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(id: &str, kind: &str, end: NoteEnd) -> Note {
        Note {
            id: id.into(),
            kind: kind.into(),
            end,
        }
    }

    fn sent(c: &str) -> NoteEnd {
        NoteEnd::Sent(vec![c.into()])
    }

    fn healthy() -> (Vec<Note>, Vec<String>) {
        let notes = vec![
            note("n-1-1", "confirmation", sent("email")),
            note("n-1-2", "etickets", sent("email")),
            note(
                "n-1-3",
                "reminder",
                NoteEnd::Pending {
                    due_at_ms: 9_000,
                    parked: false,
                },
            ),
            note(
                "n-2-1",
                "refund",
                NoteEnd::Sent(vec!["provider".into(), "sms".into()]),
            ),
            note("n-3-1", "confirmation", sent("undeliverable")),
            note("n-4-1", "reminder", NoteEnd::Void),
        ];
        let received = ["n-1-1", "n-1-2", "n-2-1", "n-1-2"]
            .map(String::from)
            .to_vec();
        (notes, received)
    }

    #[test]
    fn a_healthy_outbox_counts_its_redeliveries_and_has_no_anomaly() {
        let (notes, received) = healthy();
        let r = check_messages(&notes, &received, 5_000);
        assert!(r.anomalies.is_empty(), "{r:?}");
        assert_eq!((r.delivered, r.duplicates), (3, 1));
        assert_eq!(r.sent_by_kind["confirmation"], 1);
    }

    #[test]
    fn a_message_recorded_sent_but_never_received_is_found() {
        let (notes, mut received) = healthy();
        received.retain(|id| id != "n-2-1");
        let r = check_messages(&notes, &received, 5_000);
        assert!(r.anomalies.iter().any(|a| a.contains("n-2-1")), "{r:?}");
    }

    #[test]
    fn a_notification_due_and_still_pending_is_found_unless_parked() {
        let (mut notes, received) = healthy();
        let r = check_messages(&notes, &received, 10_000);
        assert!(
            r.anomalies.iter().any(|a| a.contains("still pending")),
            "{r:?}"
        );
        notes[2].end = NoteEnd::Pending {
            due_at_ms: 9_000,
            parked: true,
        };
        assert!(check_messages(&notes, &received, 10_000)
            .anomalies
            .is_empty());
    }

    #[test]
    fn a_message_the_store_never_wrote_is_found() {
        let (notes, mut received) = healthy();
        received.push("n-77-1".into());
        let r = check_messages(&notes, &received, 5_000);
        assert!(r.anomalies.iter().any(|a| a.contains("n-77-1")), "{r:?}");
    }
}

//! What the leader's worker keeps in the store from cluster version 2 on: the reconciler's
//! cursor, the set of unfinished payments, failed deliveries with their next attempt.

mod common;

use common::*;
use ticketd_store::limits::{PARKED_RETRY_MS, RETRY_DELAY_FIRST_MS, RETRY_DELAY_MAX_MS};
use ticketd_store::types::NotificationKind;
use ticketd_store::{Command, Done, Query, QueryResult, Rejection};

fn at_version_2() -> H {
    let mut h = H::show();
    h.ok(Command::SetClusterVersion { version: 2 });
    h
}

fn cursor(created_ms: i64, id: &str, unsettled: &[&str]) -> Command {
    Command::AdvanceCursor {
        name: "payments".into(),
        created_ms,
        intent_id: id.into(),
        unsettled: unsettled.iter().map(|s| s.to_string()).collect(),
    }
}

fn unfinished(h: &H) -> Vec<String> {
    match h.q(Query::UnfinishedPayments {
        after: None,
        limit: 500,
    }) {
        QueryResult::Unfinished(u) => u.into_iter().map(|(r, _)| r).collect(),
        other => panic!("{other:?}"),
    }
}

fn due(h: &H, up_to_ms: i64, after: Option<(i64, String)>, limit: u32) -> Vec<String> {
    match h.q(Query::DueNotifications {
        up_to_ms,
        after,
        limit,
    }) {
        QueryResult::Notifications(n) => n.into_iter().map(|n| n.notification_id).collect(),
        other => panic!("{other:?}"),
    }
}

fn failed(id: &str, park_after: u32) -> Command {
    Command::NotificationFailed {
        notification_id: id.into(),
        park_after,
        error: "451 try later".into(),
    }
}

#[test]
fn the_worker_commands_wait_for_version_2() {
    let mut h = H::show();
    assert_eq!(h.code(cursor(T0, "pi_1", &[])), Rejection::InvalidState);
    assert_eq!(
        h.code(Command::PaymentsSettled {
            payment_refs: vec![]
        }),
        Rejection::InvalidState
    );
    // A payment started at version 1 is not recorded: no replica of version 1 would.
    let Done::HoldPlaced { total_minor, .. } = h.ok(hold("h1", "u1", &[0])) else {
        unreachable!()
    };
    h.ok(start_payment("h1", "u1", "pi-h1", total_minor));
    assert!(unfinished(&h).is_empty());
}

#[test]
fn the_cursor_moves_only_forward_and_keeps_what_it_passed_unsettled() {
    let mut h = at_version_2();
    h.ok(cursor(T0, "pi_00000010", &["pi_00000004"]));
    assert_eq!(
        h.code(cursor(T0, "pi_00000010", &[])),
        Rejection::InvalidState
    );
    assert_eq!(
        h.code(cursor(T0 - 1, "pi_00000099", &[])),
        Rejection::InvalidState,
        "an older position, whatever its id"
    );
    h.ok(cursor(T0, "pi_00000011", &["pi_00000011"]));
    match h.q(Query::ReconcileCursor {
        name: "payments".into(),
    }) {
        QueryResult::Cursor(Some(c)) => {
            assert_eq!((c.created_ms, c.intent_id.as_str()), (T0, "pi_00000011"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(unfinished(&h), vec!["pi_00000004", "pi_00000011"]);
    assert_eq!(
        h.code(Command::AdvanceCursor {
            name: "no spaces".into(),
            created_ms: T0 + 1,
            intent_id: "pi_12".into(),
            unsettled: vec![],
        }),
        Rejection::InvalidArgument
    );
    assert_eq!(
        h.code(cursor(T0 + 1, "pi_12", &[""])),
        Rejection::InvalidArgument
    );
    h.reopen();
}

#[test]
fn every_started_payment_is_unfinished_until_settled_and_not_while_pending() {
    let mut h = at_version_2();
    let Done::HoldPlaced { total_minor, .. } = h.ok(hold("h1", "u1", &[0])) else {
        unreachable!()
    };
    h.ok(start_payment("h1", "u1", "pi-h1", total_minor));
    assert_eq!(unfinished(&h), vec!["pi-h1"]);
    // Still pending in the store: it stays.
    assert_eq!(
        h.ok(Command::PaymentsSettled {
            payment_refs: vec!["pi-h1".into(), "pi-unknown".into()]
        }),
        Done::PaymentsSettled { removed: 0 }
    );
    h.ok(confirm("h1", "o1", "pi-h1", total_minor));
    assert_eq!(
        h.ok(Command::PaymentsSettled {
            payment_refs: vec!["pi-h1".into()]
        }),
        Done::PaymentsSettled { removed: 1 }
    );
    assert!(unfinished(&h).is_empty());
    h.reopen();
    let too_many = vec!["p".to_string(); ticketd_store::limits::SETTLED_PER_ENTRY_MAX + 1];
    assert_eq!(
        h.code(Command::PaymentsSettled {
            payment_refs: too_many
        }),
        Rejection::InvalidArgument
    );
}

#[test]
fn a_failed_notification_waits_for_its_next_attempt_and_parks_without_blocking_others() {
    let mut h = at_version_2();
    buy(&mut h, "h1", "u1", &[0]);
    buy(&mut h, "h2", "u2", &[1]);
    let now = h.now;
    let first = due(&h, now, None, 10);
    assert_eq!(
        first.len(),
        4,
        "two confirmations and two e-ticket mails: {first:?}"
    );
    let stuck = first[0].clone();
    match h.ok(failed(&stuck, 3)) {
        Done::NotificationDeferred {
            attempts,
            next_at_ms,
            parked,
            ..
        } => {
            assert_eq!((attempts, parked), (1, false));
            assert_eq!(next_at_ms, now + RETRY_DELAY_FIRST_MS);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !due(&h, now, None, 10).contains(&stuck),
        "offered only at its next attempt"
    );
    assert_eq!(
        due(&h, now, None, 1),
        vec![first[1].clone()],
        "the next one comes first"
    );
    assert!(due(&h, now + RETRY_DELAY_FIRST_MS, None, 10).contains(&stuck));
    match h.ok(failed(&stuck, 3)) {
        Done::NotificationDeferred {
            attempts,
            next_at_ms,
            ..
        } => {
            assert_eq!(attempts, 2);
            assert_eq!(next_at_ms, now + 2 * RETRY_DELAY_FIRST_MS);
        }
        other => panic!("{other:?}"),
    }
    match h.ok(failed(&stuck, 3)) {
        Done::NotificationDeferred {
            attempts,
            next_at_ms,
            parked,
            ..
        } => {
            assert_eq!((attempts, parked), (3, true));
            assert_eq!(next_at_ms, now + PARKED_RETRY_MS);
        }
        other => panic!("{other:?}"),
    }
    assert!(!due(&h, now + RETRY_DELAY_MAX_MS, None, 10).contains(&stuck));
    match h.q(Query::DeliveryRetries {
        after: None,
        parked_only: true,
        limit: 10,
    }) {
        QueryResult::Retries(r) => {
            assert_eq!(r.len(), 1);
            assert_eq!(r[0].0, stuck);
            assert_eq!(r[0].1.last_error, "451 try later");
        }
        other => panic!("{other:?}"),
    }
    // Paging: after the first page's last position comes the rest, in order.
    let all = due(&h, now, None, 10);
    let page = due(&h, now, None, 1);
    let QueryResult::Notifications(n) = h.q(Query::DueNotifications {
        up_to_ms: now,
        after: None,
        limit: 1,
    }) else {
        unreachable!()
    };
    let rest = due(
        &h,
        now,
        Some((n[0].due_at_ms, n[0].notification_id.clone())),
        10,
    );
    assert_eq!([page, rest].concat(), all);
    h.reopen();
    // Sent at last: its failures are forgotten with it.
    h.ok(Command::MarkNotificationSent {
        notification_id: stuck.clone(),
        channel: "email".into(),
    });
    match h.q(Query::DeliveryRetry {
        notification_id: stuck.clone(),
    }) {
        QueryResult::Retries(r) => assert!(r.is_empty()),
        other => panic!("{other:?}"),
    }
    assert_eq!(h.code(failed(&stuck, 3)), Rejection::InvalidState);
    assert_eq!(h.code(failed(&first[1], 0)), Rejection::InvalidArgument);
    h.reopen();
}

#[test]
fn a_void_reminder_forgets_its_failures() {
    let mut h = at_version_2();
    buy(&mut h, "h1", "u1", &[0]);
    let QueryResult::Notifications(all) = h.q(Query::DueNotifications {
        up_to_ms: i64::MAX,
        after: None,
        limit: 10,
    }) else {
        unreachable!()
    };
    let reminder = all
        .iter()
        .find(|n| n.kind == NotificationKind::Reminder)
        .expect("a reminder")
        .notification_id
        .clone();
    h.ok(failed(&reminder, 2));
    h.ok(Command::CancelOrder {
        order_id: "o-h1".into(),
        user_id: "u1".into(),
        reason: "changed plans".into(),
    });
    match h.q(Query::DeliveryRetry {
        notification_id: reminder,
    }) {
        QueryResult::Retries(r) => assert!(r.is_empty()),
        other => panic!("{other:?}"),
    }
    h.reopen();
}

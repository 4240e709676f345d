use crate::oracle::Oracle;

#[test]
fn one_log_id_with_two_payloads_breaks_log_matching() {
    let mut o = Oracle::default();
    o.appended(1, 5, 2, 1, "a".into());
    o.appended(2, 5, 2, 1, "a".into());
    o.appended(3, 5, 3, 3, "b".into());
    assert!(o.violations.is_empty(), "{:?}", o.violations);
    // The leader of term 2 lost index 5 and proposed something else there.
    o.appended(1, 5, 2, 1, "c".into());
    assert_eq!(o.violations.len(), 1);
    assert!(
        o.violations[0].starts_with("log matching"),
        "{:?}",
        o.violations
    );
}

#[test]
fn two_entries_applied_at_one_index_break_state_machine_safety() {
    let mut o = Oracle::default();
    o.applied(1, 7, 2, 1, "a".into());
    o.applied(2, 7, 2, 1, "a".into());
    o.applied(2, 8, 3, 2, "b".into());
    assert!(o.violations.is_empty(), "{:?}", o.violations);
    o.applied(3, 7, 3, 2, "d".into());
    assert_eq!(o.violations.len(), 1);
    assert!(
        o.violations[0].starts_with("state machine safety"),
        "{:?}",
        o.violations
    );
}

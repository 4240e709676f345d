//! Full-text search against a reference: random catalogues of events, dts and venues drawn from
//! a small vocabulary (so words collide and prefix each other), searched with random queries,
//! must answer exactly what a linear scan with the documented rules answers, both from the
//! index kept up to date entry by entry and from one built when the machine opens.

#![cfg(feature = "search")]

mod common;

use std::collections::BTreeSet;

use common::*;
use proptest::prelude::*;
use ticketd_store::command::{EventFilter, EventHit};
use ticketd_store::search::words;
use ticketd_store::{Command, Machine, Outcome, Query, QueryResult};

const VOCABULARY: &[&str] = &[
    "rock", "rocket", "Röck", "jazz", "JAZZY", "oslo", "bergen", "band", "the", "Björk", "opera",
    "op", "night", "live",
];

#[derive(Debug, Clone)]
enum Op {
    Venue(Vec<usize>, Vec<usize>),
    Event(Vec<usize>, Vec<usize>, Vec<usize>, usize),
    Dt(usize, usize),
    Publish(usize),
    Buy(usize),
    Restart,
}

fn text() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0..VOCABULARY.len(), 0..3)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (text(), text()).prop_map(|(n, c)| Op::Venue(n, c)),
        3 => (text(), text(), text(), 0..VOCABULARY.len()).prop_map(|(t, p, d, c)| Op::Event(t, p, d, c)),
        3 => (0..8usize, 0..4usize).prop_map(|(e, v)| Op::Dt(e, v)),
        2 => (0..12usize).prop_map(Op::Publish),
        1 => (0..12usize).prop_map(Op::Buy),
        1 => Just(Op::Restart),
    ]
}

fn join(ws: &[usize]) -> String {
    ws.iter()
        .map(|w| VOCABULARY[*w])
        .collect::<Vec<_>>()
        .join(" ")
}

fn events_of(r: QueryResult) -> Vec<EventHit> {
    match r {
        QueryResult::Events(e) => e,
        other => panic!("{other:?}"),
    }
}

/// The documented rules as a linear scan.
fn reference(m: &Machine, text: &str) -> Vec<String> {
    let mut query = words(text);
    query.truncate(ticketd_store::search::QUERY_WORDS_MAX);
    if query.is_empty() {
        return Vec::new();
    }
    let get = |q: Query| m.query(&q);
    // Browse answers every event with a published dt (fewer than QUERY_LIMIT_MAX here).
    let QueryResult::Events(all) = get(Query::BrowseEvents(EventFilter {
        limit: 500,
        ..Default::default()
    })) else {
        unreachable!()
    };
    let mut scored = Vec::new();
    for hit in all {
        let e = &hit.event;
        let QueryResult::Dts(dts) = get(Query::ListDts {
            event_id: e.event_id.clone(),
        }) else {
            unreachable!()
        };
        let mut fields: Vec<(Vec<String>, u32)> = vec![
            (words(&e.title), 4),
            (e.performers.iter().flat_map(|p| words(p)).collect(), 3),
            (words(&format!("{} {}", e.description, e.category)), 1),
        ];
        let venues: BTreeSet<String> = dts.iter().map(|d| d.venue_id.clone()).collect();
        for v in venues {
            let QueryResult::Venue(Some(v)) = get(Query::GetVenue { venue_id: v }) else {
                unreachable!()
            };
            fields.push((words(&format!("{} {}", v.name, v.city)), 2));
        }
        let mut score = 0;
        let all_match = query.iter().enumerate().all(|(i, q)| {
            let last = i + 1 == query.len();
            let best = fields
                .iter()
                .filter(|(ws, _)| {
                    ws.iter()
                        .any(|w| w == q || (last && w.starts_with(q.as_str())))
                })
                .map(|(_, weight)| *weight)
                .max();
            score += best.unwrap_or(0);
            best.is_some()
        });
        if all_match {
            scored.push((score, e.popularity, e.event_id.clone()));
        }
    }
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    scored.into_iter().map(|(_, _, id)| id).collect()
}

fn search(m: &Machine, text: &str) -> Vec<String> {
    events_of(m.query(&Query::SearchEvents {
        text: text.into(),
        limit: 500,
    }))
    .into_iter()
    .map(|h| h.event.event_id)
    .collect()
}

fn queries() -> impl Strategy<Value = Vec<String>> {
    let word = (0..VOCABULARY.len(), 1..6usize).prop_map(|(w, cut)| {
        // Whole words and their prefixes (cut at a char boundary).
        VOCABULARY[w].chars().take(cut).collect::<String>()
    });
    prop::collection::vec(
        prop::collection::vec(word, 1..3).prop_map(|ws| ws.join(" ")),
        1..6,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn search_answers_like_a_linear_scan(
        ops in prop::collection::vec(op(), 1..40),
        qs in queries(),
    ) {
        let mut h = H::show();
        let (mut venues, mut events, mut dts) = (vec!["v1".to_string()], vec!["e1".to_string()], vec!["d1".to_string()]);
        let mut bought = 0;
        for op in &ops {
            match op {
                Op::Venue(name, city) => {
                    let id = format!("v{}", venues.len() + 1);
                    h.ok(Command::CreateVenue { venue_id: id.clone(), name: format!("Hall {}", join(name)), city: join(city) });
                    h.ok(Command::SetVenueLayout {
                        venue_id: id.clone(),
                        address: String::new(),
                        geo: Default::default(),
                        seating_map: seating(&[("A", 1, 5), ("B", 1, 5)], &[("floor", 5)]),
                    });
                    venues.push(id);
                }
                Op::Event(title, performers, description, category) => {
                    let id = format!("e{}", events.len() + 1);
                    h.ok(Command::CreateEvent {
                        event_id: id.clone(),
                        seller_id: "s1".into(),
                        title: format!("T {}", join(title)),
                        description: join(description),
                        category: VOCABULARY[*category].to_lowercase(),
                        performers: performers.iter().map(|p| VOCABULARY[*p].to_string()).collect(),
                    });
                    events.push(id);
                }
                Op::Dt(e, v) => {
                    let id = format!("d{}", dts.len() + 1);
                    let at = T0 + (10 + dts.len() as i64) * DAY_MS;
                    h.ok(dt_cmd(&id, &events[e % events.len()], &venues[v % venues.len()], at));
                    dts.push(id);
                }
                Op::Publish(d) => {
                    let _ = h.run(Command::PublishDt { dt_id: dts[d % dts.len()].clone() });
                }
                Op::Buy(d) => {
                    bought += 1;
                    let hold = format!("hb{bought}");
                    let placed = h.run(Command::HoldBestAvailable {
                        hold_id: hold.clone(),
                        dt_id: dts[d % dts.len()].clone(),
                        user_id: ["u1", "u2", "u3"][bought % 3].into(),
                        tier_id: "gold".into(),
                        quantity: 1,
                        hold_ttl_ms: None,
                    });
                    if let Outcome::Done(ticketd_store::command::Done::HoldPlaced { total_minor, .. }) = placed {
                        let pay = format!("pi-{hold}");
                        h.ok(start_payment(&hold, ["u1", "u2", "u3"][bought % 3], &pay, total_minor));
                        h.ok(confirm(&hold, &format!("o-{hold}"), &pay, total_minor));
                    }
                }
                Op::Restart => h.reopen(),
            }
            // Search between entries, so the index catches up in several steps.
            let q = &qs[h.index as usize % qs.len()];
            prop_assert_eq!(search(&h.m, q), reference(&h.m, q), "query {:?}", q);
        }
        let fresh = Machine::open(&h.backend).unwrap();
        for q in &qs {
            let want = reference(&h.m, q);
            prop_assert_eq!(&search(&h.m, q), &want, "kept up to date, query {:?}", q);
            prop_assert_eq!(&search(&fresh, q), &want, "built on open, query {:?}", q);
        }
    }
}

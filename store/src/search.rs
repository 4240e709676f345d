//! Full-text search over events: title, description, performers, category and the names and
//! cities of the venues of their dts.
//!
//! The index is derived from state, never persisted: this module scans the events (a few
//! thousand in a single Raft group) and ranks them, so it is rebuilt "on recovery" for free.
//! Matching is per word, case-insensitive, every query word must match (the last one as a
//! prefix, for search-as-you-type); a match in the title weighs most.

use crate::command::EventHit;
use crate::machine::Machine;
use crate::types::DtStatus;

/// Weights of the fields a query word can match.
const TITLE_WEIGHT: u32 = 4;
const PERFORMER_WEIGHT: u32 = 3;
const VENUE_WEIGHT: u32 = 2;
const OTHER_WEIGHT: u32 = 1;
/// Query words considered at most.
const QUERY_WORDS_MAX: usize = 16;

/// Lower-cased words of a text.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect()
}

/// Events with a published dt matching every word of `text`, best first: by score, then
/// popularity, then id.
pub(crate) fn search(m: &Machine, text: &str, limit: usize) -> Vec<EventHit> {
    let mut query = words(text);
    query.truncate(QUERY_WORDS_MAX);
    if query.is_empty() {
        return Vec::new();
    }
    let mut first_dt: std::collections::BTreeMap<&str, &crate::types::Dt> = Default::default();
    for dt in m.dts.values() {
        if dt.status != DtStatus::Published {
            continue;
        }
        let e = first_dt.entry(dt.event_id.as_str()).or_insert(dt);
        if (dt.starts_at_ms, &dt.dt_id) < (e.starts_at_ms, &e.dt_id) {
            *e = dt;
        }
    }
    let mut scored: Vec<(u32, EventHit)> = Vec::new();
    for (event_id, dt) in first_dt {
        let Some(event) = m.events.get(event_id) else {
            continue;
        };
        let mut fields: Vec<(Vec<String>, u32)> = vec![
            (words(&event.title), TITLE_WEIGHT),
            (words(&event.performers.join(" ")), PERFORMER_WEIGHT),
            (words(&event.description), OTHER_WEIGHT),
            (words(&event.category), OTHER_WEIGHT),
        ];
        for d in m.dts.values().filter(|d| d.event_id == event_id) {
            if let Some(v) = m.venues.get(&d.venue_id) {
                fields.push((words(&format!("{} {}", v.name, v.city)), VENUE_WEIGHT));
            }
        }
        let mut score = 0;
        let all_match = query.iter().enumerate().all(|(i, q)| {
            let last = i + 1 == query.len();
            let hit = |w: &String| w == q || (last && w.starts_with(q.as_str()));
            let best = fields
                .iter()
                .filter(|(ws, _)| ws.iter().any(hit))
                .map(|(_, weight)| *weight)
                .max();
            score += best.unwrap_or(0);
            best.is_some()
        });
        if all_match {
            scored.push((
                score,
                EventHit {
                    event: event.clone(),
                    dt_id: dt.dt_id.clone(),
                    starts_at_ms: dt.starts_at_ms,
                    venue_id: dt.venue_id.clone(),
                    distance_m: None,
                },
            ));
        }
    }
    scored.sort_by(|(sa, a), (sb, b)| {
        sb.cmp(sa)
            .then(b.event.popularity.cmp(&a.event.popularity))
            .then(a.event.event_id.cmp(&b.event.event_id))
    });
    scored.into_iter().take(limit).map(|(_, h)| h).collect()
}

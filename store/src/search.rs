//! Full-text search over events: title, performers, description, category and the names and
//! cities of the venues of their dts, with a tantivy index kept in RAM.
//!
//! The index is derived from state and never persisted: [`crate::Machine::open`] builds it from
//! the events (so it is rebuilt on recovery and after a snapshot is installed), and `apply` only
//! notes which events changed, without touching tantivy. The next search brings the index up to
//! date first (one tantivy commit for everything noted since the last one), so holds and
//! purchases never pay for indexing, and the index can influence neither an apply's outcome nor
//! the state digest.
//!
//! Matching is per word after Unicode tokenization, lower-casing and ASCII folding ("Björk"
//! matches "bjork"): every query word must match some field, the last one as a prefix (for
//! search-as-you-type). Ranking is deterministic and independent of the index's history (which
//! segments exist, which documents were deleted): each query word scores the weight of the best
//! field it matches (title 4, performers 3, venue 2, description and category 1) as a constant,
//! not BM25, and ties go to the more popular event, then to the smaller event id. Popularity is
//! read from state at query time, so a purchase never changes the index. Only events with a
//! published dt are answered; the hit is their earliest published dt.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::fastfield::Column;
use tantivy::query::{
    BooleanQuery, ConstScoreQuery, DisjunctionMaxQuery, InvertedIndexRangeQuery, Query, TermQuery,
};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, STRING,
};
use tantivy::tokenizer::{AsciiFoldingFilter, LowerCaser, SimpleTokenizer, TextAnalyzer};
use tantivy::{
    DocId, Index, IndexReader, IndexWriter, ReloadPolicy, Score, SegmentReader, TantivyDocument,
    Term,
};

use crate::event_source::EventSource;
use crate::protocol::EventHit;
use crate::types::{Dt, DtStatus, Event};

pub use crate::limits::QUERY_WORDS_MAX;
/// Weight of a query word found in the title.
const TITLE_WEIGHT: f32 = 4.0;
/// ... in a performer's name.
const PERFORMER_WEIGHT: f32 = 3.0;
/// ... in a venue's name or city.
const VENUE_WEIGHT: f32 = 2.0;
/// ... in the description or the category.
const OTHER_WEIGHT: f32 = 1.0;
/// Name of the analyzer of every text field, and of query text.
const ANALYZER: &str = "ticketd_words";
/// Memory of the one indexing thread (tantivy's minimum).
const WRITER_MEMORY_BYTES: usize = 15_000_000;

fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// The words of a text as search sees them: split on anything not alphanumeric, lower-cased,
/// folded to ASCII where a folding exists.
pub fn words(text: &str) -> Vec<String> {
    let mut a = analyzer();
    let mut stream = a.token_stream(text);
    let mut out = Vec::new();
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}

/// Name of the fast field holding an event's number (see [`Built::ids`]).
const EVENT_NUMBER: &str = "event_number";

/// Fields of the index.
#[derive(Clone, Copy)]
struct Fields {
    /// For deleting an event's document.
    event_id: Field,
    /// For answering: reading a column is much cheaper than loading stored documents.
    event_number: Field,
    title: Field,
    performers: Field,
    venue: Field,
    other: Field,
}

impl Fields {
    fn weighted(&self) -> [(Field, f32); 4] {
        [
            (self.title, TITLE_WEIGHT),
            (self.performers, PERFORMER_WEIGHT),
            (self.venue, VENUE_WEIGHT),
            (self.other, OTHER_WEIGHT),
        ]
    }
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    // Matching only: no frequencies, positions or norms, since scores are constants.
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(ANALYZER)
            .set_index_option(IndexRecordOption::Basic)
            .set_fieldnorms(false),
    );
    let fields = Fields {
        event_id: b.add_text_field("event_id", STRING),
        event_number: b.add_u64_field(EVENT_NUMBER, FAST),
        title: b.add_text_field("title", text.clone()),
        performers: b.add_text_field("performers", text.clone()),
        venue: b.add_text_field("venue", text.clone()),
        other: b.add_text_field("other", text),
    };
    (b.build(), fields)
}

/// The in-RAM index and what it knows.
struct Built {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    /// Event ids by the number their documents carry; a re-indexed event keeps its number.
    ids: Vec<String>,
    numbers: BTreeMap<String, u64>,
}

/// Collects `(score, event number)` of every matching live document.
struct AllScored;

struct SegmentAllScored {
    numbers: Column<u64>,
    found: Vec<(u32, u64)>,
}

impl Collector for AllScored {
    type Fruit = Vec<(u32, u64)>;
    type Child = SegmentAllScored;

    fn for_segment(&self, _: u32, segment: &SegmentReader) -> tantivy::Result<SegmentAllScored> {
        Ok(SegmentAllScored {
            numbers: segment.fast_fields().u64(EVENT_NUMBER)?,
            found: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, fruits: Vec<Vec<(u32, u64)>>) -> tantivy::Result<Vec<(u32, u64)>> {
        Ok(fruits.concat())
    }
}

/// A score as a whole number: sums of small integer weights, exact in f32 and far below
/// u32::MAX (`as` saturates besides).
#[allow(clippy::cast_possible_truncation)]
fn whole_score(score: Score) -> u32 {
    score.round() as u32
}

impl SegmentCollector for SegmentAllScored {
    type Fruit = Vec<(u32, u64)>;

    fn collect(&mut self, doc: DocId, score: Score) {
        if let Some(n) = self.numbers.first(doc) {
            self.found.push((whole_score(score), n));
        }
    }

    fn harvest(self) -> Vec<(u32, u64)> {
        self.found
    }
}

impl Built {
    fn new() -> tantivy::Result<Self> {
        let (schema, fields) = schema();
        let index = Index::create_in_ram(schema);
        index.tokenizers().register(ANALYZER, analyzer());
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(Built {
            index,
            reader,
            fields,
            ids: Vec::new(),
            numbers: BTreeMap::new(),
        })
    }

    /// A writer for one batch of changes: one indexing thread and one merge thread, which end
    /// when the batch is committed, so an idle machine runs no tantivy thread.
    fn writer(&self) -> tantivy::Result<IndexWriter> {
        self.index.writer_with_options(
            tantivy::indexer::IndexWriterOptions::builder()
                .num_worker_threads(1)
                .num_merge_threads(1)
                .memory_budget_per_thread(WRITER_MEMORY_BYTES)
                .build(),
        )
    }

    /// The document of an event: its text and the venues of its dts.
    fn document(&mut self, source: &dyn EventSource, event: &Event) -> TantivyDocument {
        let f = self.fields;
        let number = match self.numbers.get(&event.event_id) {
            Some(number) => *number,
            None => {
                let number = self.ids.len() as u64;
                self.ids.push(event.event_id.clone());
                self.numbers.insert(event.event_id.clone(), number);
                number
            }
        };
        let mut doc = TantivyDocument::default();
        doc.add_text(f.event_id, &event.event_id);
        doc.add_u64(f.event_number, number);
        doc.add_text(f.title, &event.title);
        for p in &event.performers {
            doc.add_text(f.performers, p);
        }
        doc.add_text(f.other, &event.description);
        doc.add_text(f.other, &event.category);
        let venues: BTreeSet<&str> = source
            .dts_of_event(&event.event_id)
            .into_iter()
            .map(|d| d.venue_id.as_str())
            .collect();
        for v in venues.into_iter().filter_map(|v| source.venue(v)) {
            doc.add_text(f.venue, &v.name);
            doc.add_text(f.venue, &v.city);
        }
        doc
    }

    /// Re-indexes the events named in `changed` (all of them when `None`) and commits.
    fn update(
        &mut self,
        m: &dyn EventSource,
        changed: Option<&BTreeSet<String>>,
    ) -> tantivy::Result<()> {
        let mut w = self.writer()?;
        match changed {
            None => {
                w.delete_all_documents()?;
                self.ids.clear();
                self.numbers.clear();
                for e in m.events().values() {
                    w.add_document(self.document(m, e))?;
                }
            }
            Some(ids) => {
                for id in ids {
                    w.delete_term(Term::from_field_text(self.fields.event_id, id));
                    if let Some(e) = m.events().get(id) {
                        w.add_document(self.document(m, e))?;
                    }
                }
            }
        }
        w.commit()?;
        w.wait_merging_threads()?;
        self.reader.reload()
    }

    /// Ids and scores of every indexed event that matches every word, any order.
    fn matching(&self, words: &[String]) -> tantivy::Result<Vec<(u32, &str)>> {
        let mut per_word: Vec<Box<dyn Query>> = Vec::with_capacity(words.len());
        for (i, w) in words.iter().enumerate() {
            let prefix = i.saturating_add(1) == words.len();
            let per_field: Vec<Box<dyn Query>> = self
                .fields
                .weighted()
                .into_iter()
                .map(|(field, weight)| {
                    let matcher: Box<dyn Query> = if prefix {
                        // Every term starting with the word: UTF-8 never holds 0xFF, so
                        // `word ++ 0xFF` is above all of them and below everything else.
                        let mut upper = w.as_bytes().to_vec();
                        upper.push(0xFF);
                        Box::new(InvertedIndexRangeQuery::new(
                            Bound::Included(Term::from_field_text(field, w)),
                            Bound::Excluded(Term::from_field_bytes(field, &upper)),
                        ))
                    } else {
                        Box::new(TermQuery::new(
                            Term::from_field_text(field, w),
                            IndexRecordOption::Basic,
                        ))
                    };
                    Box::new(ConstScoreQuery::new(matcher, weight)) as Box<dyn Query>
                })
                .collect();
            per_word.push(Box::new(DisjunctionMaxQuery::new(per_field)));
        }
        let query = BooleanQuery::intersection(per_word);
        let found = self.reader.searcher().search(&query, &AllScored)?;
        Ok(found
            .into_iter()
            .filter_map(|(score, number)| {
                let id = self.ids.get(usize::try_from(number).ok()?)?;
                Some((score, id.as_str()))
            })
            .collect())
    }
}

/// What the index lacks.
#[derive(Debug, Default)]
enum Pending {
    /// Everything: build from all events.
    #[default]
    All,
    /// These events changed (or appeared).
    Events(BTreeSet<String>),
}

#[derive(Default)]
struct Inner {
    built: Option<Built>,
    pending: Pending,
}

/// The search index of a [`Machine`](crate::Machine): derived state, not part of its identity.
#[derive(Default)]
pub struct SearchIndex {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("SearchIndex")
            .field("built", &inner.built.is_some())
            .field("pending", &inner.pending)
            .finish()
    }
}

impl SearchIndex {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| {
            // A panic inside tantivy mid-update: start over from state.
            let mut inner = poisoned.into_inner();
            inner.built = None;
            inner.pending = Pending::All;
            inner
        })
    }

    /// Notes that an event's searchable text (or the venues of its dts) changed. Cheap: called
    /// inside `apply`.
    pub(crate) fn changed(&mut self, event_id: &str) {
        let inner = self.inner.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Pending::Events(ids) = &mut inner.pending {
            ids.insert(event_id.to_string());
        }
    }

    fn catch_up(inner: &mut Inner, m: &dyn EventSource) -> tantivy::Result<()> {
        let changed = match std::mem::take(&mut inner.pending) {
            Pending::Events(ids) if ids.is_empty() && inner.built.is_some() => {
                inner.pending = Pending::Events(ids);
                return Ok(());
            }
            Pending::Events(ids) if inner.built.is_some() => Some(ids),
            _ => None,
        };
        let result = (|| {
            let built = match &mut inner.built {
                Some(built) => built,
                none => none.insert(Built::new()?),
            };
            built.update(m, changed.as_ref())
        })();
        match result {
            Ok(()) => {
                inner.pending = Pending::Events(BTreeSet::new());
                Ok(())
            }
            Err(e) => {
                inner.built = None;
                inner.pending = Pending::All;
                Err(e)
            }
        }
    }

    /// Events with a published dt matching every word of `text`, best first: by score, then
    /// popularity, then id. A failure of the index answers nothing and rebuilds it next time.
    pub(crate) fn search(&self, m: &dyn EventSource, text: &str, limit: usize) -> Vec<EventHit> {
        let mut query = words(text);
        query.truncate(QUERY_WORDS_MAX);
        if query.is_empty() {
            return Vec::new();
        }
        let mut inner = self.lock();
        if Self::catch_up(&mut inner, m).is_err() {
            return Vec::new();
        }
        let Some(built) = inner.built.as_ref() else {
            return Vec::new();
        };
        let found = match built.matching(&query) {
            Ok(found) => found,
            Err(_) => {
                drop(inner);
                let mut inner = self.lock();
                inner.built = None;
                inner.pending = Pending::All;
                return Vec::new();
            }
        };
        let mut scored: Vec<(u32, &Event, &Dt)> = found
            .into_iter()
            .filter_map(|(score, id)| Some((score, m.events().get(id)?, first_published(m, id)?)))
            .collect();
        scored.sort_unstable_by(|(sa, a, _), (sb, b, _)| {
            sb.cmp(sa)
                .then(b.popularity.cmp(&a.popularity))
                .then(a.event_id.cmp(&b.event_id))
        });
        scored
            .into_iter()
            .take(limit)
            .map(|(_, event, dt)| EventHit {
                event: event.clone(),
                dt_id: dt.dt_id.clone(),
                starts_at_ms: dt.starts_at_ms,
                venue_id: dt.venue_id.clone(),
                distance_m: None,
            })
            .collect()
    }
}

/// An event's earliest published dt (by start, then id).
fn first_published<'a>(source: &'a dyn EventSource, event_id: &str) -> Option<&'a Dt> {
    source
        .dts_of_event(event_id)
        .into_iter()
        .filter(|dt| dt.status == DtStatus::Published)
        .min_by(|a, b| (a.starts_at_ms, &a.dt_id).cmp(&(b.starts_at_ms, &b.dt_id)))
}

#[cfg(test)]
impl SearchIndex {
    /// Events noted since the last catch-up; `None` when everything is to be (re)built.
    fn pending_events(&self) -> Option<usize> {
        match &self.lock().pending {
            Pending::All => None,
            Pending::Events(ids) => Some(ids.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::words;
    use crate::protocol::{Command, GaPick, Query, Request};
    use crate::types::*;
    use crate::{Machine, MemBackend, Outcome, WriteSet};

    #[test]
    fn only_event_and_dt_changes_are_noted_for_the_index() {
        let mut m = Machine::open(&MemBackend::new()).unwrap();
        assert_eq!(m.search.pending_events(), None, "not built on open");
        m.query(&Query::SearchEvents {
            text: "anything".into(),
            limit: 1,
        });
        assert_eq!(
            m.search.pending_events(),
            Some(0),
            "built by the first search"
        );
        let mut index = 0;
        let mut apply = |m: &mut Machine, command: Command| {
            index += 1;
            let req = Request {
                client_id: "t".into(),
                idempotency_key: format!("k{index}"),
                stamped_at_ms: 1_000,
                command,
            };
            let reply = m.apply(index, &req, &mut WriteSet::new());
            assert!(matches!(reply.outcome, Outcome::Done(_)), "{reply:?}");
        };
        apply(
            &mut m,
            Command::CreateVenue {
                venue_id: "v".into(),
                name: "Arena".into(),
                city: "Oslo".into(),
            },
        );
        apply(
            &mut m,
            Command::SetVenueLayout {
                venue_id: "v".into(),
                address: String::new(),
                geo: GeoPoint::default(),
                seating_map: SeatingMap {
                    sections: vec![],
                    ga_areas: vec![GaAreaDef {
                        area_id: "floor".into(),
                        name: "Floor".into(),
                        capacity: 100,
                    }],
                },
            },
        );
        apply(
            &mut m,
            Command::CreateSeller {
                seller_id: "s".into(),
                name: "S".into(),
                fee_bps: 0,
                plan: SellerPlan::Standard,
            },
        );
        assert_eq!(m.search.pending_events(), Some(0));
        apply(
            &mut m,
            Command::CreateEvent {
                event_id: "e".into(),
                seller_id: "s".into(),
                title: "Gig".into(),
                description: String::new(),
                category: "concert".into(),
                performers: vec![],
            },
        );
        apply(
            &mut m,
            Command::CreateDt {
                dt_id: "d".into(),
                event_id: "e".into(),
                venue_id: "v".into(),
                starts_at_ms: 10_000_000,
                time_zone: "Europe/Oslo".into(),
                tiers: vec![TierSpec {
                    tier_id: "ga".into(),
                    name: "GA".into(),
                    price_minor: 100,
                    currency: "EUR".into(),
                    sections: vec![],
                    seat_ranges: vec![],
                    ga_areas: vec!["floor".into()],
                }],
                sale_starts_at_ms: 0,
                sale_ends_at_ms: 10_000_000,
            },
        );
        assert_eq!(m.search.pending_events(), Some(1), "one event noted");
        apply(&mut m, Command::PublishDt { dt_id: "d".into() });
        let found = m.query(&Query::SearchEvents {
            text: "gig oslo".into(),
            limit: 10,
        });
        assert!(matches!(found, crate::QueryResult::Events(ref h) if h.len() == 1));
        assert_eq!(
            m.search.pending_events(),
            Some(0),
            "caught up by the search"
        );
        apply(
            &mut m,
            Command::UpsertUser {
                user_id: "u".into(),
                profile: Profile::default(),
                contact: Contact::default(),
                reminder: ReminderPreference::default(),
                payment_token_sealed: None,
            },
        );
        apply(
            &mut m,
            Command::HoldSeats {
                hold_id: "h".into(),
                dt_id: "d".into(),
                user_id: "u".into(),
                seats: vec![],
                ga: vec![GaPick {
                    area_id: "floor".into(),
                    quantity: 2,
                }],
                hold_ttl_ms: None,
            },
        );
        apply(
            &mut m,
            Command::ReleaseHold {
                hold_id: "h".into(),
                user_id: "u".into(),
            },
        );
        assert_eq!(m.search.pending_events(), Some(0), "holds touch no index");
    }

    #[test]
    fn words_are_split_lowered_and_folded() {
        assert_eq!(
            words("Björk & the Sugarcubes: LIVE—Reykjavík 2025"),
            vec!["bjork", "the", "sugarcubes", "live", "reykjavik", "2025"]
        );
        assert!(words(" -- ").is_empty());
    }
}

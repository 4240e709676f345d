//! The compact availability of one dt: one byte per seat, counters per tier and GA area.
//!
//! A seat byte is `tier << 2 | state`: the tier index in the high six bits ([`TIER_NONE`] for a
//! seat no tier covers) and one of [`FREE`], [`HELD`], [`SOLD`], [`OFF`] in the low two. A
//! 100k-seat stadium costs 100 kB per dt in memory and nothing on disk: the book is derived
//! from the dt, its live holds and its valid tickets, rebuilt on open, and checked against a
//! fresh rebuild by the invariant checker.

use serde::{Deserialize, Serialize};

use crate::limits::{
    BEST_AVAILABLE_ROWS_MAX, PLACES_PER_VENUE_MAX, SEATS_PER_VENUE_MAX, TIERS_PER_DT_MAX,
};
use crate::types::{SeatRef, SeatingMap, TierSpec};

/// A seat nobody holds or owns.
pub const FREE: u8 = 0;
/// A seat in a live hold.
pub const HELD: u8 = 1;
/// A seat of a valid or used ticket.
pub const SOLD: u8 = 2;
/// A seat no tier covers: not for sale.
pub const OFF: u8 = 3;
/// The tier index of a seat no tier covers.
pub const TIER_NONE: u8 = 63;

/// The byte of a seat of `tier` (at most [`TIER_NONE`]) in `state` (two bits).
const fn seat_byte(tier: u8, state: u8) -> u8 {
    (tier & TIER_NONE).wrapping_shl(2) | (state & 3)
}

/// The tier of a seat byte.
const fn tier_of(b: u8) -> u8 {
    b.wrapping_shr(2)
}

/// The state of a seat byte.
const fn state_of(b: u8) -> u8 {
    b & 3
}

/// Counters of one tier or one GA area.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Seats and places covered.
    pub capacity: u32,
    /// In live holds.
    pub held: u32,
    /// In valid or used tickets.
    pub sold: u32,
}

impl Counts {
    /// Neither held nor sold (0 for counters that break held + sold <= capacity, which
    /// [`SeatBook::check_counts`] reports).
    pub fn available(&self) -> u32 {
        self.capacity
            .saturating_sub(self.held)
            .saturating_sub(self.sold)
    }
}

/// Availability of one dt.
#[derive(Debug, Clone)]
pub struct SeatBook {
    seats: Vec<u8>,
    /// First seat index of each row, ascending; a row ends where the next begins.
    row_starts: Vec<u32>,
    tiers: Vec<Counts>,
    /// Per GA area of the venue: the tier covering it (or [`TIER_NONE`]) and its counters.
    ga: Vec<(u8, Counts)>,
    /// Free seats (of any tier) per row: lets best-available skip rows that cannot hold a
    /// party without reading their seats.
    row_free: Vec<u16>,
    /// Per tier: no free seat of the tier has a lower index. Speeds up best-available; never
    /// changes an answer, so it is not part of the state's identity.
    free_hint: Vec<u32>,
}

impl PartialEq for SeatBook {
    fn eq(&self, other: &Self) -> bool {
        self.seats == other.seats
            && self.row_starts == other.row_starts
            && self.tiers == other.tiers
            && self.ga == other.ga
            && self.row_free == other.row_free
    }
}

/// The seat index range of each section, and the first seat of each row, of a map; fails
/// when the map has more than [`SEATS_PER_VENUE_MAX`] seats.
type SectionRanges<'m> = Vec<(&'m str, u32, u32)>;

fn seat_ranges(map: &SeatingMap) -> Result<(SectionRanges<'_>, Vec<u32>), String> {
    let too_many = || format!("a venue has at most {SEATS_PER_VENUE_MAX} seats");
    let mut row_starts = Vec::new();
    let mut sections = Vec::with_capacity(map.sections.len());
    let mut n: u32 = 0;
    for s in &map.sections {
        let start = n;
        for r in &s.rows {
            row_starts.push(n);
            n = u32::try_from(r.seats.len())
                .ok()
                .and_then(|len| n.checked_add(len))
                .filter(|n| u64::from(*n) <= SEATS_PER_VENUE_MAX)
                .ok_or_else(too_many)?;
        }
        sections.push((s.section_id.as_str(), start, n));
    }
    Ok((sections, row_starts))
}

impl SeatBook {
    /// Resolves which tier covers each seat and GA area; everything starts free.
    /// Fails with a sentence when a tier names an unknown section, range or area, two tiers
    /// cover the same seat, a tier covers nothing, or the venue passes its bounds
    /// ([`SEATS_PER_VENUE_MAX`], [`PLACES_PER_VENUE_MAX`], [`TIERS_PER_DT_MAX`]).
    pub fn build(map: &SeatingMap, specs: &[TierSpec]) -> Result<SeatBook, String> {
        if specs.len() > TIERS_PER_DT_MAX {
            return Err(format!("a dt has at most {TIERS_PER_DT_MAX} tiers"));
        }
        let (section_ranges, row_starts) = seat_ranges(map)?;
        let n = section_ranges.last().map_or(0, |(_, _, end)| *end);
        let mut seats = vec![seat_byte(TIER_NONE, OFF); n as usize];
        let mut places = u64::from(n);
        let mut ga: Vec<(u8, Counts)> = Vec::with_capacity(map.ga_areas.len());
        for a in &map.ga_areas {
            places = places.saturating_add(u64::from(a.capacity));
            ga.push((
                TIER_NONE,
                Counts {
                    capacity: a.capacity,
                    ..Counts::default()
                },
            ));
        }
        if places > PLACES_PER_VENUE_MAX {
            return Err(format!(
                "a venue has at most {PLACES_PER_VENUE_MAX} seats and GA places"
            ));
        }
        let mut tiers = Vec::with_capacity(specs.len());
        for (tier, spec) in (0u8..).zip(specs) {
            let mut ranges = Vec::new();
            for sid in &spec.sections {
                let (_, a, b) = section_ranges
                    .iter()
                    .find(|(id, _, _)| id == sid)
                    .ok_or_else(|| format!("tier {}: no section {sid}", spec.tier_id))?;
                ranges.push((*a, *b));
            }
            for r in &spec.seat_ranges {
                if r.start >= r.end || r.end > n {
                    return Err(format!(
                        "tier {}: seat range {}..{} outside 0..{n}",
                        spec.tier_id, r.start, r.end
                    ));
                }
                ranges.push((r.start, r.end));
            }
            // Sums of seats and places stay within PLACES_PER_VENUE_MAX (checked above), since
            // a seat or an area is counted by one tier at most.
            let mut capacity: u32 = 0;
            for (a, b) in ranges {
                let covered = seats.get_mut(a as usize..b as usize).ok_or_else(|| {
                    format!("tier {}: seats {a}..{b} outside 0..{n}", spec.tier_id)
                })?;
                for seat in covered {
                    if *seat != seat_byte(TIER_NONE, OFF) {
                        let other = specs
                            .get(usize::from(tier_of(*seat)))
                            .map_or("?", |o| o.tier_id.as_str());
                        return Err(format!(
                            "tier {}: overlaps tier {other} on seats {a}..{b}",
                            spec.tier_id
                        ));
                    }
                    *seat = seat_byte(tier, FREE);
                }
                capacity = capacity.saturating_add(b.saturating_sub(a));
            }
            for aid in &spec.ga_areas {
                let area = map
                    .ga_areas
                    .iter()
                    .position(|a| &a.area_id == aid)
                    .and_then(|i| ga.get_mut(i))
                    .ok_or_else(|| format!("tier {}: no GA area {aid}", spec.tier_id))?;
                if area.0 != TIER_NONE {
                    return Err(format!(
                        "tier {}: GA area {aid} already covered",
                        spec.tier_id
                    ));
                }
                area.0 = tier;
                capacity = capacity.saturating_add(area.1.capacity);
            }
            if capacity == 0 {
                return Err(format!("tier {} covers nothing", spec.tier_id));
            }
            tiers.push(Counts {
                capacity,
                ..Counts::default()
            });
        }
        let mut book = SeatBook {
            seats,
            row_free: vec![0; row_starts.len()],
            row_starts,
            free_hint: vec![0; tiers.len()],
            tiers,
            ga,
        };
        book.recount_rows();
        Ok(book)
    }

    fn recount_rows(&mut self) {
        let ends = self.row_starts.iter().skip(1).map(|s| *s as usize);
        let ends = ends.chain(std::iter::once(self.seats.len()));
        for ((start, end), free) in self.row_starts.iter().zip(ends).zip(&mut self.row_free) {
            let row = self.seats.get(*start as usize..end).unwrap_or_default();
            // A row has at most SEATS_PER_ROW_MAX (1,000) seats, checked with the layout.
            *free = u16::try_from(row.iter().filter(|s| state_of(**s) == FREE).count())
                .unwrap_or(u16::MAX);
        }
    }

    /// The row holding seat `i` (rows without seats never hold one); 0 when there are no rows.
    fn row_of(&self, i: usize) -> usize {
        self.row_starts
            .partition_point(|s| (*s as usize) <= i)
            .saturating_sub(1)
    }

    /// Number of seats.
    pub fn seat_count(&self) -> usize {
        self.seats.len()
    }

    /// Counters per tier.
    pub fn tiers(&self) -> &[Counts] {
        &self.tiers
    }

    /// The tier covering a GA area and its counters.
    pub fn ga(&self) -> &[(u8, Counts)] {
        &self.ga
    }

    /// Tier and state of a seat or GA area; None when out of range. A GA area's state is
    /// [`FREE`] while it has room, [`SOLD`] when full, [`OFF`] when no tier covers it.
    pub fn lookup(&self, r: SeatRef) -> Option<(u8, u8)> {
        match r {
            SeatRef::Seat(i) => self
                .seats
                .get(i as usize)
                .map(|b| (tier_of(*b), state_of(*b))),
            SeatRef::Ga(a) => self.ga.get(usize::from(a)).map(|(t, c)| {
                let state = if *t == TIER_NONE {
                    OFF
                } else if c.available() > 0 {
                    FREE
                } else {
                    SOLD
                };
                (*t, state)
            }),
        }
    }

    /// Moves one seat or GA place from state `from` to `to` (each FREE, HELD or SOLD) and keeps
    /// the counters.
    ///
    /// Every caller has checked the move: a seat is held only after `lookup` (or
    /// `best_available`) found it free, a GA place only where the area has room; a live hold's
    /// seats are held and a valid ticket's seat is sold (invariant 1, checked on open and
    /// against a rebuild). The asserts below are that invariant, kept in every build (one
    /// compare): a broken invariant stops the machine rather than sell a seat twice.
    pub fn shift(&mut self, r: SeatRef, from: u8, to: u8) {
        let tier = match r {
            SeatRef::Seat(i) => {
                let Some(b) = self.seats.get_mut(i as usize) else {
                    panic!("invariant broken: seat {i} is not in the book");
                };
                assert_eq!(
                    state_of(*b),
                    from,
                    "invariant broken: seat {i} not in state {from}"
                );
                let tier = tier_of(*b);
                *b = seat_byte(tier, to);
                let row = self.row_of(i as usize);
                if let Some(free) = self.row_free.get_mut(row) {
                    // The seat was free (asserted), so its row counted it; a row has at most
                    // SEATS_PER_ROW_MAX seats.
                    if from == FREE {
                        *free = free.saturating_sub(1);
                    }
                    if to == FREE {
                        *free = free.saturating_add(1);
                    }
                }
                if to == FREE {
                    if let Some(hint) = self.free_hint.get_mut(usize::from(tier)) {
                        *hint = (*hint).min(i);
                    }
                }
                tier
            }
            SeatRef::Ga(a) => {
                let Some((tier, c)) = self.ga.get_mut(usize::from(a)) else {
                    panic!("invariant broken: GA area {a} is not in the book");
                };
                bump(c, from, to);
                *tier
            }
        };
        let Some(c) = self.tiers.get_mut(usize::from(tier)) else {
            panic!("invariant broken: {r:?} is in no tier");
        };
        bump(c, from, to);
    }

    /// Up to `n` free seats of `tier`, best first (lowest index): the first `n` adjacent free
    /// seats of one row within [`BEST_AVAILABLE_ROWS_MAX`] rows of the first free seat, else
    /// the first `n` free seats; then free places in the tier's GA areas. Fewer than `n` when
    /// sold out.
    pub fn best_available(&mut self, tier: u8, n: usize) -> Vec<SeatRef> {
        let mut picked = self.best_seats(tier, n);
        for (a, (t, c)) in (0u16..).zip(&self.ga) {
            let missing = n.saturating_sub(picked.len());
            if missing == 0 {
                break;
            }
            if *t != tier {
                continue;
            }
            let take = (c.available() as usize).min(missing);
            picked.extend(std::iter::repeat_n(SeatRef::Ga(a), take));
        }
        picked
    }

    /// The seat byte at `i`, or an OFF byte past the end.
    fn byte(&self, i: usize) -> u8 {
        self.seats
            .get(i)
            .copied()
            .unwrap_or(seat_byte(TIER_NONE, OFF))
    }

    /// Free seats of row `row` (0 past the last row).
    fn free_in(&self, row: usize) -> usize {
        self.row_free.get(row).map_or(0, |f| usize::from(*f))
    }

    fn best_seats(&mut self, tier: u8, n: usize) -> Vec<SeatRef> {
        let want = seat_byte(tier, FREE);
        let len = self.seats.len();
        let Some(hint) = self.free_hint.get(usize::from(tier)) else {
            return Vec::new();
        };
        if n == 0 || len == 0 {
            return Vec::new();
        }
        // Move the hint to the first free seat of the tier, skipping full rows whole. Seat
        // indexes are below len <= SEATS_PER_VENUE_MAX, so the steps never overflow.
        let mut i = *hint as usize;
        while i < len && self.byte(i) != want {
            let row = self.row_of(i);
            i = if self.free_in(row) == 0 {
                self.row_end(row.saturating_add(1))
            } else {
                i.saturating_add(1)
            };
        }
        if let Some(h) = self.free_hint.get_mut(usize::from(tier)) {
            *h = u32::try_from(i).unwrap_or(u32::MAX);
        }
        if i >= len {
            return Vec::new();
        }
        // Adjacent seats in the first row that has them, within a bounded number of rows.
        let first_row = self.row_of(i);
        let last_row = first_row
            .saturating_add(BEST_AVAILABLE_ROWS_MAX)
            .min(self.row_starts.len());
        for row in first_row..last_row {
            if self.free_in(row) < n {
                continue;
            }
            let start = self.row_starts.get(row).map_or(len, |s| *s as usize);
            let (a, b) = (start.max(i), self.row_end(row.saturating_add(1)));
            let mut run = 0usize;
            for s in a..b {
                run = if self.byte(s) == want {
                    run.saturating_add(1)
                } else {
                    0
                };
                if run == n {
                    let first = s.saturating_add(1).saturating_sub(n);
                    return (first..=s).map(seat_ref).collect();
                }
            }
        }
        // Else the first free seats, wherever they are.
        let mut picked = Vec::with_capacity(n);
        while i < len && picked.len() < n {
            let row = self.row_of(i);
            if self.free_in(row) == 0 {
                i = self.row_end(row.saturating_add(1));
                continue;
            }
            if self.byte(i) == want {
                picked.push(seat_ref(i));
            }
            i = i.saturating_add(1);
        }
        picked
    }

    /// The first seat of row `next`, which is where the row before it ends.
    fn row_end(&self, next: usize) -> usize {
        self.row_starts
            .get(next)
            .map(|s| *s as usize)
            .unwrap_or(self.seats.len())
    }

    /// The state of every seat, two bits each, four seats per byte, seat 0 in the low bits.
    pub fn packed_states(&self) -> Vec<u8> {
        self.seats
            .chunks(4)
            .map(|c| {
                [0u32, 2, 4, 6].iter().zip(c).fold(0u8, |acc, (shift, b)| {
                    acc | state_of(*b).wrapping_shl(*shift)
                })
            })
            .collect()
    }

    /// Runs of consecutive seats with the same tier: (first seat, length, tier).
    pub fn tier_runs(&self) -> Vec<(u32, u32, u8)> {
        let mut runs: Vec<(u32, u32, u8)> = Vec::new();
        for (i, b) in (0u32..).zip(&self.seats) {
            let t = tier_of(*b);
            match runs.last_mut() {
                Some((_, len, tier)) if *tier == t => *len = len.saturating_add(1),
                _ => runs.push((i, 1, t)),
            }
        }
        runs
    }

    /// A copy with every seat and place free again, for rebuilding and checking.
    pub fn emptied(&self) -> SeatBook {
        let mut b = self.clone();
        for s in &mut b.seats {
            if state_of(*s) != OFF {
                *s = seat_byte(tier_of(*s), FREE);
            }
        }
        for c in &mut b.tiers {
            c.held = 0;
            c.sold = 0;
        }
        for (_, c) in &mut b.ga {
            c.held = 0;
            c.sold = 0;
        }
        b.free_hint.iter_mut().for_each(|h| *h = 0);
        b.recount_rows();
        b
    }

    /// Heap bytes of the book.
    pub fn heap_bytes(&self) -> usize {
        let capacities = [
            (self.seats.capacity(), 1),
            (self.row_starts.capacity(), 4),
            (self.row_free.capacity(), 2),
            (self.tiers.capacity(), std::mem::size_of::<Counts>()),
            (self.ga.capacity(), std::mem::size_of::<(u8, Counts)>()),
            (self.free_hint.capacity(), 4),
        ];
        capacities.iter().fold(0usize, |sum, (n, size)| {
            sum.saturating_add(n.saturating_mul(*size))
        })
    }

    /// Checks that the per-seat bytes agree with the counters and that no counter overflows
    /// its capacity.
    pub fn check_counts(&self) -> Result<(), String> {
        let mut recount = vec![Counts::default(); self.tiers.len()];
        for b in &self.seats {
            let (t, s) = (tier_of(*b), state_of(*b));
            if t == TIER_NONE {
                if s != OFF {
                    return Err("a seat without tier is not OFF".into());
                }
                continue;
            }
            let c = recount
                .get_mut(usize::from(t))
                .ok_or("a seat names a tier that does not exist")?;
            // Counting at most SEATS_PER_VENUE_MAX seats: no u32 overflows.
            c.capacity = c.capacity.saturating_add(1);
            match s {
                HELD => c.held = c.held.saturating_add(1),
                SOLD => c.sold = c.sold.saturating_add(1),
                FREE => {}
                _ => return Err("a covered seat is OFF".into()),
            }
        }
        for (t, c) in &self.ga {
            if *t == TIER_NONE {
                continue;
            }
            if !within_capacity(c) {
                return Err("a GA area is over capacity".into());
            }
            let r = recount
                .get_mut(usize::from(*t))
                .ok_or("a GA area names a tier that does not exist")?;
            r.capacity = r.capacity.saturating_add(c.capacity);
            r.held = r.held.saturating_add(c.held);
            r.sold = r.sold.saturating_add(c.sold);
        }
        for (t, (have, want)) in self.tiers.iter().zip(&recount).enumerate() {
            if have != want || !within_capacity(have) {
                return Err(format!(
                    "tier {t}: counters {have:?} but seats say {want:?} (available + held + sold != capacity)"
                ));
            }
        }
        Ok(())
    }
}

/// The reference of seat `i`, an index below the book's length (at most
/// [`SEATS_PER_VENUE_MAX`], so it fits a u32).
fn seat_ref(i: usize) -> SeatRef {
    SeatRef::Seat(u32::try_from(i).unwrap_or(u32::MAX))
}

/// Moves one seat or place between counters. Its callers moved a seat from the state it was
/// asserted in, or a GA place out of an area with room ([`SeatBook::shift`]), so a counter
/// never goes below 0 and held + sold never exceeds the capacity; asserted in every build.
fn bump(c: &mut Counts, from: u8, to: u8) {
    let broken = "invariant broken: tier or GA counters out of range";
    match from {
        HELD => {
            assert!(c.held > 0, "{broken}");
            c.held = c.held.saturating_sub(1);
        }
        SOLD => {
            assert!(c.sold > 0, "{broken}");
            c.sold = c.sold.saturating_sub(1);
        }
        _ => {}
    }
    match to {
        HELD => c.held = c.held.saturating_add(1),
        SOLD => c.sold = c.sold.saturating_add(1),
        _ => {}
    }
    assert!(within_capacity(c), "{broken}");
}

/// held + sold <= capacity, without overflow.
fn within_capacity(c: &Counts) -> bool {
    u64::from(c.held).saturating_add(u64::from(c.sold)) <= u64::from(c.capacity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{GaAreaDef, RowDef, SeatDef, SectionDef};

    fn map(rows: usize, per_row: usize) -> SeatingMap {
        SeatingMap {
            sections: vec![SectionDef {
                section_id: "A".into(),
                name: "A".into(),
                rows: (0..rows)
                    .map(|r| RowDef {
                        label: r.to_string(),
                        seats: (0..per_row)
                            .map(|s| SeatDef {
                                number: s.to_string(),
                                x: s as i32,
                                y: r as i32,
                            })
                            .collect(),
                    })
                    .collect(),
            }],
            ga_areas: vec![GaAreaDef {
                area_id: "floor".into(),
                name: "Floor".into(),
                capacity: 3,
            }],
        }
    }

    fn tier(id: &str, sections: &[&str], ga: &[&str]) -> TierSpec {
        TierSpec {
            tier_id: id.into(),
            name: id.into(),
            price_minor: 100,
            currency: "EUR".into(),
            sections: sections.iter().map(|s| s.to_string()).collect(),
            seat_ranges: vec![],
            ga_areas: ga.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn best_available_prefers_adjacent_seats_in_one_row() {
        let mut b = SeatBook::build(&map(2, 4), &[tier("t", &["A"], &[])]).unwrap();
        b.shift(SeatRef::Seat(1), FREE, HELD);
        // Row 0 has 0, 2, 3 free: no three adjacent; row 1 has 4, 5, 6.
        let got = b.best_available(0, 3);
        assert_eq!(
            got,
            vec![SeatRef::Seat(4), SeatRef::Seat(5), SeatRef::Seat(6)]
        );
        let got = b.best_available(0, 2);
        assert_eq!(got, vec![SeatRef::Seat(2), SeatRef::Seat(3)]);
    }

    #[test]
    fn best_available_falls_back_to_scattered_then_ga() {
        let mut b = SeatBook::build(&map(2, 2), &[tier("t", &["A"], &["floor"])]).unwrap();
        b.shift(SeatRef::Seat(1), FREE, SOLD);
        b.shift(SeatRef::Seat(2), FREE, SOLD);
        let got = b.best_available(0, 4);
        assert_eq!(
            got,
            vec![
                SeatRef::Seat(0),
                SeatRef::Seat(3),
                SeatRef::Ga(0),
                SeatRef::Ga(0)
            ]
        );
        assert_eq!(b.tiers()[0].capacity, 7);
        b.check_counts().unwrap();
    }

    #[test]
    #[should_panic(expected = "invariant broken: seat 1 not in state 0")]
    fn moving_a_seat_from_a_state_it_is_not_in_stops_the_machine() {
        let mut b = SeatBook::build(&map(1, 2), &[tier("t", &["A"], &[])]).unwrap();
        b.shift(SeatRef::Seat(1), FREE, HELD);
        // A second hold of the same seat, as a bug elsewhere would try.
        b.shift(SeatRef::Seat(1), FREE, HELD);
    }

    #[test]
    #[should_panic(expected = "invariant broken: tier or GA counters out of range")]
    fn a_ga_area_never_goes_over_capacity() {
        let mut b = SeatBook::build(&map(1, 1), &[tier("t", &[], &["floor"])]).unwrap();
        for _ in 0..=b.ga()[0].1.capacity {
            b.shift(SeatRef::Ga(0), FREE, HELD);
        }
    }

    #[test]
    fn overlapping_tiers_are_refused() {
        let err = SeatBook::build(
            &map(1, 2),
            &[tier("a", &["A"], &[]), tier("b", &["A"], &[])],
        );
        assert!(err.unwrap_err().contains("overlaps"));
    }

    #[test]
    fn packed_states_use_two_bits_per_seat() {
        let mut b = SeatBook::build(&map(1, 5), &[tier("t", &["A"], &[])]).unwrap();
        b.shift(SeatRef::Seat(1), FREE, HELD);
        b.shift(SeatRef::Seat(4), FREE, HELD);
        b.shift(SeatRef::Seat(4), HELD, SOLD);
        assert_eq!(b.packed_states(), vec![0b0000_0100, 0b0000_0010]);
    }
}

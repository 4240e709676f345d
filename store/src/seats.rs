//! The compact availability of one dt: one byte per seat, counters per tier and GA area.
//!
//! A seat byte is `tier << 2 | state`: the tier index in the high six bits ([`TIER_NONE`] for a
//! seat no tier covers) and one of [`FREE`], [`HELD`], [`SOLD`], [`OFF`] in the low two. A
//! 100k-seat stadium costs 100 kB per dt in memory and nothing on disk: the book is derived
//! from the dt, its live holds and its valid tickets, rebuilt on open, and checked against a
//! fresh rebuild by the invariant checker.

use serde::{Deserialize, Serialize};

use crate::limits::BEST_AVAILABLE_ROWS_MAX;
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
    /// Neither held nor sold.
    pub fn available(&self) -> u32 {
        self.capacity - self.held - self.sold
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

impl SeatBook {
    /// Resolves which tier covers each seat and GA area; everything starts free.
    /// Fails with a sentence when a tier names an unknown section, range or area, or two tiers
    /// cover the same seat.
    pub fn build(map: &SeatingMap, specs: &[TierSpec]) -> Result<SeatBook, String> {
        let mut row_starts = Vec::new();
        let mut section_ranges = Vec::with_capacity(map.sections.len());
        let mut n: u32 = 0;
        for s in &map.sections {
            let start = n;
            for r in &s.rows {
                row_starts.push(n);
                n += r.seats.len() as u32;
            }
            section_ranges.push((s.section_id.as_str(), start, n));
        }
        let mut seats = vec![TIER_NONE << 2 | OFF; n as usize];
        let mut ga: Vec<(u8, Counts)> = map
            .ga_areas
            .iter()
            .map(|a| {
                (
                    TIER_NONE,
                    Counts {
                        capacity: a.capacity,
                        ..Counts::default()
                    },
                )
            })
            .collect();
        let mut tiers = vec![Counts::default(); specs.len()];
        for (t, spec) in specs.iter().enumerate() {
            let tier = t as u8;
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
            for (a, b) in ranges {
                for seat in &mut seats[a as usize..b as usize] {
                    if *seat != (TIER_NONE << 2 | OFF) {
                        return Err(format!(
                            "tier {}: overlaps tier {} on seats {a}..{b}",
                            spec.tier_id,
                            specs[(*seat >> 2) as usize].tier_id
                        ));
                    }
                    *seat = tier << 2 | FREE;
                }
                tiers[t].capacity += b - a;
            }
            for aid in &spec.ga_areas {
                let i = map
                    .ga_areas
                    .iter()
                    .position(|a| &a.area_id == aid)
                    .ok_or_else(|| format!("tier {}: no GA area {aid}", spec.tier_id))?;
                if ga[i].0 != TIER_NONE {
                    return Err(format!(
                        "tier {}: GA area {aid} already covered",
                        spec.tier_id
                    ));
                }
                ga[i].0 = tier;
                tiers[t].capacity += ga[i].1.capacity;
            }
            if tiers[t].capacity == 0 {
                return Err(format!("tier {} covers nothing", spec.tier_id));
            }
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
        for r in 0..self.row_starts.len() {
            let (a, b) = (self.row_starts[r] as usize, self.row_end(r + 1));
            self.row_free[r] = self.seats[a..b].iter().filter(|s| *s & 3 == FREE).count() as u16;
        }
    }

    /// The row holding seat `i` (rows without seats never hold one).
    fn row_of(&self, i: usize) -> usize {
        self.row_starts.partition_point(|s| (*s as usize) <= i) - 1
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
            SeatRef::Seat(i) => self.seats.get(i as usize).map(|b| (b >> 2, b & 3)),
            SeatRef::Ga(a) => self.ga.get(a as usize).map(|(t, c)| {
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
    /// the counters. The caller has checked that the move is legal.
    pub fn shift(&mut self, r: SeatRef, from: u8, to: u8) {
        let tier = match r {
            SeatRef::Seat(i) => {
                let b = &mut self.seats[i as usize];
                // A seat moves only from the state its holder believes it in: what keeps a
                // seat in at most one live hold or valid ticket. Checked in every build (one
                // compare): a broken invariant stops the machine rather than sell a seat twice.
                assert_eq!(
                    *b & 3,
                    from,
                    "invariant broken: seat {i} not in state {from}"
                );
                let tier = *b >> 2;
                *b = tier << 2 | to;
                let row = self.row_of(i as usize);
                if from == FREE {
                    self.row_free[row] -= 1;
                }
                if to == FREE {
                    self.row_free[row] += 1;
                    if i < self.free_hint[tier as usize] {
                        self.free_hint[tier as usize] = i;
                    }
                }
                tier
            }
            SeatRef::Ga(a) => {
                let (tier, c) = &mut self.ga[a as usize];
                bump(c, from, to);
                *tier
            }
        };
        bump(&mut self.tiers[tier as usize], from, to);
    }

    /// Up to `n` free seats of `tier`, best first (lowest index): the first `n` adjacent free
    /// seats of one row within [`BEST_AVAILABLE_ROWS_MAX`] rows of the first free seat, else
    /// the first `n` free seats; then free places in the tier's GA areas. Fewer than `n` when
    /// sold out.
    pub fn best_available(&mut self, tier: u8, n: usize) -> Vec<SeatRef> {
        let mut picked = self.best_seats(tier, n);
        for (a, (t, c)) in self.ga.iter().enumerate() {
            if picked.len() >= n {
                break;
            }
            if *t != tier {
                continue;
            }
            let take = (c.available() as usize).min(n - picked.len());
            picked.extend(std::iter::repeat_n(SeatRef::Ga(a as u16), take));
        }
        picked
    }

    fn best_seats(&mut self, tier: u8, n: usize) -> Vec<SeatRef> {
        let want = tier << 2 | FREE;
        let len = self.seats.len();
        if n == 0 || len == 0 {
            return Vec::new();
        }
        // Move the hint to the first free seat of the tier, skipping full rows whole.
        let mut i = self.free_hint[tier as usize] as usize;
        while i < len && self.seats[i] != want {
            let row = self.row_of(i);
            if self.row_free[row] == 0 {
                i = self.row_end(row + 1);
            } else {
                i += 1;
            }
        }
        self.free_hint[tier as usize] = i as u32;
        if i >= len {
            return Vec::new();
        }
        // Adjacent seats in the first row that has them, within a bounded number of rows.
        let first_row = self.row_of(i);
        let last_row = (first_row + BEST_AVAILABLE_ROWS_MAX).min(self.row_starts.len());
        for row in first_row..last_row {
            if (self.row_free[row] as usize) < n {
                continue;
            }
            let (a, b) = (
                (self.row_starts[row] as usize).max(i),
                self.row_end(row + 1),
            );
            let mut run = 0;
            for s in a..b {
                run = if self.seats[s] == want { run + 1 } else { 0 };
                if run == n {
                    return (s + 1 - n..=s).map(|s| SeatRef::Seat(s as u32)).collect();
                }
            }
        }
        // Else the first free seats, wherever they are.
        let mut picked = Vec::with_capacity(n);
        while i < len && picked.len() < n {
            let row = self.row_of(i);
            if self.row_free[row] == 0 {
                i = self.row_end(row + 1);
                continue;
            }
            if self.seats[i] == want {
                picked.push(SeatRef::Seat(i as u32));
            }
            i += 1;
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
                c.iter()
                    .enumerate()
                    .fold(0u8, |acc, (k, b)| acc | (b & 3) << (2 * k))
            })
            .collect()
    }

    /// Runs of consecutive seats with the same tier: (first seat, length, tier).
    pub fn tier_runs(&self) -> Vec<(u32, u32, u8)> {
        let mut runs: Vec<(u32, u32, u8)> = Vec::new();
        for (i, b) in self.seats.iter().enumerate() {
            let t = b >> 2;
            match runs.last_mut() {
                Some((_, len, tier)) if *tier == t => *len += 1,
                _ => runs.push((i as u32, 1, t)),
            }
        }
        runs
    }

    /// A copy with every seat and place free again, for rebuilding and checking.
    pub fn emptied(&self) -> SeatBook {
        let mut b = self.clone();
        for s in &mut b.seats {
            if *s & 3 != OFF {
                *s &= !3;
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
        self.seats.capacity()
            + self.row_starts.capacity() * 4
            + self.row_free.capacity() * 2
            + self.tiers.capacity() * std::mem::size_of::<Counts>()
            + self.ga.capacity() * std::mem::size_of::<(u8, Counts)>()
            + self.free_hint.capacity() * 4
    }

    /// Checks that the per-seat bytes agree with the counters and that no counter overflows
    /// its capacity.
    pub fn check_counts(&self) -> Result<(), String> {
        let mut recount = vec![Counts::default(); self.tiers.len()];
        for b in &self.seats {
            let (t, s) = (b >> 2, b & 3);
            if t == TIER_NONE {
                if s != OFF {
                    return Err("a seat without tier is not OFF".into());
                }
                continue;
            }
            let c = recount
                .get_mut(t as usize)
                .ok_or("a seat names a tier that does not exist")?;
            c.capacity += 1;
            match s {
                HELD => c.held += 1,
                SOLD => c.sold += 1,
                FREE => {}
                _ => return Err("a covered seat is OFF".into()),
            }
        }
        for (t, c) in &self.ga {
            if *t == TIER_NONE {
                continue;
            }
            if c.held + c.sold > c.capacity {
                return Err("a GA area is over capacity".into());
            }
            let r = &mut recount[*t as usize];
            r.capacity += c.capacity;
            r.held += c.held;
            r.sold += c.sold;
        }
        for (t, (have, want)) in self.tiers.iter().zip(&recount).enumerate() {
            if have != want || have.held + have.sold > have.capacity {
                return Err(format!(
                    "tier {t}: counters {have:?} but seats say {want:?} (available + held + sold != capacity)"
                ));
            }
        }
        Ok(())
    }
}

/// Moves one seat or place between counters; held + sold never exceeds the capacity, in any
/// build.
fn bump(c: &mut Counts, from: u8, to: u8) {
    let broken = "invariant broken: tier or GA counters out of range";
    match from {
        HELD => c.held = c.held.checked_sub(1).expect(broken),
        SOLD => c.sold = c.sold.checked_sub(1).expect(broken),
        _ => {}
    }
    match to {
        HELD => c.held += 1,
        SOLD => c.sold += 1,
        _ => {}
    }
    assert!(c.held + c.sold <= c.capacity, "{broken}");
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

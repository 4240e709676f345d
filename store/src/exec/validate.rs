//! Checks of the values commands bring, each against a named bound of [`crate::limits`].

use crate::limits::*;
use crate::protocol::Rejection;
use crate::types::{GeoPoint, SeatingMap};

use super::refusal::{reject, HandlerResult, Reject};

fn invalid(detail: impl Into<String>) -> Reject {
    reject(Rejection::InvalidArgument, detail)
}

/// An id: 1..=[`ID_LEN_MAX`] bytes without NUL (NUL separates the parts of stored keys).
pub(crate) fn id(field: &str, value: &str) -> HandlerResult<()> {
    if value.is_empty() || value.len() > ID_LEN_MAX || value.contains('\0') {
        return Err(invalid(format!(
            "{field} must be 1..={ID_LEN_MAX} bytes without NUL"
        )));
    }
    Ok(())
}

/// A text of at most `max` bytes.
pub(crate) fn text(field: &str, value: &str, max: usize) -> HandlerResult<()> {
    if value.len() > max {
        return Err(invalid(format!("{field} longer than {max} bytes")));
    }
    Ok(())
}

/// At most `max` items.
pub(crate) fn count(field: &str, count: usize, max: usize) -> HandlerResult<()> {
    if count > max {
        return Err(invalid(format!("at most {max} {field}")));
    }
    Ok(())
}

/// An ISO 4217 code: three upper-case letters.
pub(crate) fn currency(value: &str) -> HandlerResult<()> {
    if value.len() != 3 || !value.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(invalid(format!(
            "currency {value:?} is not an ISO 4217 code"
        )));
    }
    Ok(())
}

/// An instant a command names: [`TIME_MS_MIN`]..=[`TIME_MS_MAX`].
pub(crate) fn instant(field: &str, ms: i64) -> HandlerResult<()> {
    if !(TIME_MS_MIN..=TIME_MS_MAX).contains(&ms) {
        return Err(invalid(format!(
            "{field} must be {TIME_MS_MIN}..={TIME_MS_MAX} (Unix ms, before 2200), not {ms}"
        )));
    }
    Ok(())
}

/// A sale window: both ends instants, the start before the end.
pub(crate) fn window(starts: i64, ends: i64) -> HandlerResult<()> {
    instant("sale_starts_at_ms", starts)?;
    instant("sale_ends_at_ms", ends)?;
    if starts >= ends {
        return Err(invalid("sale must start before it ends"));
    }
    Ok(())
}

/// The TTL a hold command names, within its bounds, or the default.
pub(crate) fn hold_ttl(named: Option<i64>) -> HandlerResult<i64> {
    match named {
        None => Ok(HOLD_TTL_MS),
        Some(ms) if (HOLD_TTL_MIN_MS..=HOLD_TTL_MAX_MS).contains(&ms) => Ok(ms),
        Some(ms) => Err(invalid(format!(
            "a hold's TTL is {HOLD_TTL_MIN_MS}..={HOLD_TTL_MAX_MS} ms, not {ms}"
        ))),
    }
}

/// A point on Earth in micro-degrees.
pub(crate) fn geo(point: GeoPoint) -> HandlerResult<()> {
    let lat_ok = (-90_000_000..=90_000_000).contains(&point.lat_e6);
    let lon_ok = (-180_000_000..=180_000_000).contains(&point.lon_e6);
    if !lat_ok || !lon_ok {
        return Err(invalid("geo point out of range"));
    }
    Ok(())
}

/// An IANA time zone name, by shape: the store keeps no zone database.
pub(crate) fn time_zone(value: &str) -> HandlerResult<()> {
    let ok = !value.is_empty()
        && value.len() <= TIME_ZONE_LEN_MAX
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_+-".contains(&b));
    if !ok {
        return Err(invalid(format!("time zone {value:?} is not an IANA name")));
    }
    Ok(())
}

/// A seating map within every bound of a venue: sections, rows, seats per row and in all,
/// GA areas and their capacities, places in all, label lengths, unique section and area ids.
pub(crate) fn seating_map(map: &SeatingMap) -> HandlerResult<u64> {
    count("sections", map.sections.len(), SECTIONS_PER_VENUE_MAX)?;
    count("GA areas", map.ga_areas.len(), GA_AREAS_PER_VENUE_MAX)?;
    let (mut rows, mut seats) = (0usize, 0u64);
    let mut ids = std::collections::BTreeSet::new();
    for s in &map.sections {
        id("section_id", &s.section_id)?;
        text("section name", &s.name, LABEL_LEN_MAX)?;
        if !ids.insert(s.section_id.as_str()) {
            return Err(invalid(format!("section {} twice", s.section_id)));
        }
        rows = rows.saturating_add(s.rows.len());
        count("rows", rows, ROWS_PER_VENUE_MAX)?;
        for r in &s.rows {
            text("row label", &r.label, LABEL_LEN_MAX)?;
            count("seats per row", r.seats.len(), SEATS_PER_ROW_MAX)?;
            // At most ROWS_PER_VENUE_MAX rows of SEATS_PER_ROW_MAX seats: no overflow.
            seats = seats.saturating_add(r.seats.len() as u64);
            for seat in &r.seats {
                text("seat number", &seat.number, LABEL_LEN_MAX)?;
            }
        }
    }
    if seats > SEATS_PER_VENUE_MAX {
        return Err(invalid(format!(
            "a venue has at most {SEATS_PER_VENUE_MAX} seats"
        )));
    }
    ids.clear();
    let mut places = seats;
    for a in &map.ga_areas {
        id("area_id", &a.area_id)?;
        text("GA area name", &a.name, LABEL_LEN_MAX)?;
        if !ids.insert(a.area_id.as_str()) {
            return Err(invalid(format!("GA area {} twice", a.area_id)));
        }
        if a.capacity == 0 || a.capacity > GA_AREA_CAPACITY_MAX {
            return Err(invalid(format!(
                "GA area {}: capacity 1..={GA_AREA_CAPACITY_MAX}",
                a.area_id
            )));
        }
        places = places.saturating_add(u64::from(a.capacity));
    }
    if places > PLACES_PER_VENUE_MAX {
        return Err(invalid(format!(
            "a venue has at most {PLACES_PER_VENUE_MAX} seats and GA places"
        )));
    }
    Ok(seats)
}

/// A state digest announced at entry `now_index` for an earlier entry `index`: 64 lower-case
/// hex digits.
pub(crate) fn digest(index: u64, digest: &str, now_index: u64) -> HandlerResult<()> {
    let hex = digest.len() == 64
        && digest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !hex || index >= now_index {
        return Err(invalid(
            "a digest is 64 lower-case hex digits of an earlier entry",
        ));
    }
    Ok(())
}

/// A PHC string of an argon2id hash whose cost stays within the bounds a log-in may spend:
/// `$argon2id$v=19$m=M,t=T,p=P$SALT$HASH`, M <= [`PASSWORD_HASH_MEMORY_KIB_MAX`],
/// T <= [`PASSWORD_HASH_TIME_COST_MAX`], P <= [`PASSWORD_HASH_LANES_MAX`], salt and hash in
/// unpadded base64. A plain password sent by mistake is refused rather than kept.
pub(crate) fn password_hash(value: &str) -> HandlerResult<()> {
    let bad = || {
        invalid(format!(
            "password hash must be an argon2id v=19 PHC string of at most \
             {PASSWORD_HASH_LEN_MAX} bytes, m <= {PASSWORD_HASH_MEMORY_KIB_MAX}, \
             t <= {PASSWORD_HASH_TIME_COST_MAX}, p <= {PASSWORD_HASH_LANES_MAX}"
        ))
    };
    if value.len() > PASSWORD_HASH_LEN_MAX {
        return Err(bad());
    }
    let parts: Vec<&str> = value.split('$').collect();
    let ["", "argon2id", "v=19", params, salt, hash] = parts.as_slice() else {
        return Err(bad());
    };
    let param = |p: Option<&str>, name: &str, range: std::ops::RangeInclusive<u32>| {
        p.and_then(|p| p.strip_prefix(name))
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|n| range.contains(n))
    };
    let mut it = params.split(',');
    let lanes_and_costs = (
        param(it.next(), "m=", 8..=PASSWORD_HASH_MEMORY_KIB_MAX),
        param(it.next(), "t=", 1..=PASSWORD_HASH_TIME_COST_MAX),
        param(it.next(), "p=", 1..=PASSWORD_HASH_LANES_MAX),
        it.next(),
    );
    let (Some(memory_kib), Some(_), Some(lanes), None) = lanes_and_costs else {
        return Err(bad());
    };
    let b64 = |s: &str, len: std::ops::RangeInclusive<usize>| {
        len.contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    };
    // argon2 needs 8 KiB of memory per lane.
    if memory_kib < lanes.saturating_mul(8) || !b64(salt, 11..=64) || !b64(hash, 16..=86) {
        return Err(bad());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hashes_are_held_to_their_cost_bounds() {
        let good = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$\
                    aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
        password_hash(good).unwrap();
        for bad in [
            "hunter2",
            "$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=19456,t=4000,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=19456,t=2,p=255$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=8,t=2,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=19456,t=2,p=1,x=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhh c2hoYXNoaGFzaA",
        ] {
            assert!(password_hash(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn extreme_values_are_refused_not_overflowed() {
        assert!(geo(GeoPoint {
            lat_e6: i32::MIN,
            lon_e6: 0
        })
        .is_err());
        assert!(instant("t", i64::MAX).is_err());
        assert!(instant("t", -1).is_err());
        assert!(window(0, TIME_MS_MAX).is_ok());
        assert!(hold_ttl(Some(i64::MIN)).is_err());
    }
}

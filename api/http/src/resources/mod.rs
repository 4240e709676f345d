//! The API's own bodies: every request and response the HTTP layer speaks, converted from the
//! store's domain types at the edge, so that a change to the domain changes the API only where
//! a conversion here says so (and within /v1 only by adding: see docs/API.md, "Versions").
//!
//! Resources carry an id and, where they have a life cycle, a `status` as a lowercase string;
//! times are RFC 3339 in UTC with milliseconds; money is integer minor units beside an ISO 4217
//! `currency`.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::problem::Problem;

pub mod catalogue;
pub mod people;
pub mod sales;

/// An example time of the documents' examples.
pub const EXAMPLE_TIME: &str = "2027-06-01T19:30:00Z";

/// Milliseconds of 0001-01-01T00:00:00Z and of 9999-12-31T23:59:59.999Z: what RFC 3339 can say.
const RFC3339_MS: std::ops::RangeInclusive<i64> = -62_135_596_800_000..=253_402_300_799_999;

/// `ms` (Unix milliseconds) as RFC 3339 in UTC, like `2027-06-01T19:30:00.25Z`; a time
/// outside years 1..=9999 is clamped to the nearest end.
pub fn rfc3339(ms: i64) -> String {
    let ms = ms.clamp(*RFC3339_MS.start(), *RFC3339_MS.end());
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        // Unreachable: every clamped time has an RFC 3339 form.
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

/// An RFC 3339 time given as `field`, as Unix milliseconds.
pub fn parse_time(field: &str, value: &str) -> Result<i64, Problem> {
    let t = OffsetDateTime::parse(value, &Rfc3339).map_err(|_| {
        Problem::bad_request(format!(
            "{field} must be an RFC 3339 time, like {EXAMPLE_TIME}"
        ))
    })?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| Problem::bad_request(format!("{field} is out of range")))
}

/// An optional RFC 3339 time given as `field`.
pub fn parse_time_opt(field: &str, value: Option<&str>) -> Result<Option<i64>, Problem> {
    value.map(|v| parse_time(field, v)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_through_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_811_878_200_250), "2027-06-01T19:30:00.25Z");
        assert_eq!(
            parse_time("t", "2027-06-01T19:30:00.25Z").unwrap(),
            1_811_878_200_250
        );
        assert_eq!(
            parse_time("t", "2027-06-01T21:30:00+02:00").unwrap(),
            1_811_878_200_000
        );
        for ms in [0, 1, -1, 1_811_878_200_250, 253_402_300_799_999] {
            assert_eq!(parse_time("t", &rfc3339(ms)).unwrap(), ms, "{ms}");
        }
        assert!(parse_time("t", "1811784600250").is_err());
        assert!(parse_time("t", "2027-06-01").is_err());
        // Total on any i64: clamped, still a time.
        assert!(parse_time("t", &rfc3339(i64::MAX)).is_ok());
        assert!(parse_time("t", &rfc3339(i64::MIN)).is_ok());
    }
}

//! E-ticket codes: a per-ticket secret and a time step give a rotating code (like TOTP); the QR
//! code carries `ticket id` and the current code. A scanner's code is checked here with a small
//! clock tolerance before the cluster decides admission (a linearizable compare-and-set).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Seconds a code is valid for: the interval Ticketmaster's SafeTix is reported to use.
pub const CODE_STEP_S: u64 = 15;
/// Steps before and after the scanner's clock that still count.
pub const CODE_TOLERANCE_STEPS: u64 = 1;
/// The prefix of a QR payload: `TKT1.<ticket id>.<code>`.
pub const PAYLOAD_PREFIX: &str = "TKT1";

/// The code of `secret` at step `step` (6 digits).
pub fn code_at(secret: &[u8], step: u64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(&step.to_be_bytes());
    let out = mac.finalize().into_bytes();
    // RFC 4226 dynamic truncation.
    let offset = (out[out.len() - 1] & 0x0f) as usize;
    let bin = u32::from_be_bytes([
        out[offset] & 0x7f,
        out[offset + 1],
        out[offset + 2],
        out[offset + 3],
    ]);
    format!("{:06}", bin % 1_000_000)
}

/// The step of a Unix time in seconds.
pub fn step_of(unix_s: u64) -> u64 {
    unix_s / CODE_STEP_S
}

/// The current code and the seconds until it changes.
pub fn current_code(secret: &[u8], unix_s: u64) -> (String, u64) {
    (
        code_at(secret, step_of(unix_s)),
        CODE_STEP_S - unix_s % CODE_STEP_S,
    )
}

/// Why a presented code is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    /// Valid now (within tolerance).
    Valid,
    /// A code of this ticket, but too old: a screenshot.
    Stale,
    /// Not a code of this ticket.
    Forged,
}

/// Checks `code` against `secret` at the scanner's time, accepting `CODE_TOLERANCE_STEPS` steps
/// of clock difference either way; recognizes stale codes of up to an hour.
pub fn check_code(secret: &[u8], code: &str, unix_s: u64) -> CodeCheck {
    let now = step_of(unix_s);
    let lo = now.saturating_sub(CODE_TOLERANCE_STEPS);
    if (lo..=now + CODE_TOLERANCE_STEPS)
        .any(|s| constant_time_eq(code_at(secret, s).as_bytes(), code.as_bytes()))
    {
        return CodeCheck::Valid;
    }
    let hour = 3600 / CODE_STEP_S;
    if (now.saturating_sub(hour)..lo)
        .any(|s| constant_time_eq(code_at(secret, s).as_bytes(), code.as_bytes()))
    {
        return CodeCheck::Stale;
    }
    CodeCheck::Forged
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The QR payload of a ticket at a moment.
pub fn qr_payload(ticket_id: &str, code: &str) -> String {
    format!("{PAYLOAD_PREFIX}.{ticket_id}.{code}")
}

/// Splits a scanned payload into ticket id and code.
pub fn parse_payload(payload: &str) -> Option<(&str, &str)> {
    let rest = payload
        .trim()
        .strip_prefix(PAYLOAD_PREFIX)?
        .strip_prefix('.')?;
    let (id, code) = rest.rsplit_once('.')?;
    (!id.is_empty() && code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()))
        .then_some((id, code))
}

/// An SVG QR code of `payload`.
pub fn qr_svg(payload: &str) -> Result<String, qrcode::types::QrError> {
    let code = qrcode::QrCode::new(payload.as_bytes())?;
    Ok(code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_rotate_each_step_and_tolerate_one_step_of_skew() {
        let secret = b"per-ticket-secret-0123456789abcdef";
        let t = 1_800_000_000;
        let (c, left) = current_code(secret, t);
        assert!((1..=CODE_STEP_S).contains(&left));
        assert_eq!(check_code(secret, &c, t), CodeCheck::Valid);
        assert_eq!(
            check_code(secret, &c, t + CODE_STEP_S),
            CodeCheck::Valid,
            "one step of skew"
        );
        assert_eq!(
            check_code(secret, &c, t + 5 * CODE_STEP_S),
            CodeCheck::Stale,
            "a screenshot"
        );
        assert_ne!(code_at(secret, step_of(t)), code_at(secret, step_of(t) + 1));
        assert_eq!(
            check_code(b"another ticket's secret", &c, t),
            CodeCheck::Forged
        );
        assert_eq!(check_code(secret, "12345x", t), CodeCheck::Forged);
    }

    #[test]
    fn payloads_round_trip_and_render_as_svg() {
        let p = qr_payload("t-42-1", "012345");
        assert_eq!(parse_payload(&p), Some(("t-42-1", "012345")));
        assert_eq!(parse_payload("TKT1.t-42-1.12"), None);
        assert_eq!(parse_payload("XYZ.t.012345"), None);
        let svg = qr_svg(&p).unwrap();
        assert!(svg.starts_with("<?xml") && svg.contains("<svg"));
    }
}

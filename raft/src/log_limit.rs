//! Log lines about refusals (handshakes, calls), at most one per kind every
//! [`REFUSAL_LOG_EVERY`]: a peer that keeps knocking cannot flood the log.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Least time between two log lines of one kind of refusal; the ones in between are counted
/// and the next line says how many.
pub const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// Logs one line per kind at most every [`REFUSAL_LOG_EVERY`].
#[derive(Default)]
pub struct RateLimitedLog {
    last: Mutex<HashMap<&'static str, (Instant, u64)>>,
}

impl RateLimitedLog {
    /// `Some(n)` when a line of `kind` may be logged now, `n` being how many were held back
    /// since the last; `None` (and one more held back) otherwise. Kinds are a fixed set of
    /// names, so the map stays small.
    pub fn allow(&self, kind: &'static str) -> Option<u64> {
        let mut last = self.last.lock().expect("log limiter poisoned");
        let now = Instant::now();
        match last.get_mut(kind) {
            Some((at, held)) if now.duration_since(*at) < REFUSAL_LOG_EVERY => {
                *held += 1;
                None
            }
            Some((at, held)) => {
                let n = *held;
                *at = now;
                *held = 0;
                Some(n)
            }
            None => {
                last.insert(kind, (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RateLimitedLog;

    #[test]
    fn refusal_lines_are_rate_limited_per_kind() {
        let log = RateLimitedLog::default();
        assert_eq!(log.allow("a"), Some(0));
        assert_eq!(log.allow("a"), None);
        assert_eq!(log.allow("a"), None);
        assert_eq!(log.allow("b"), Some(0));
    }
}

//! Every bound of the domain in one place: time spans, sizes and counts.

/// How long, in log time, the outcome of an idempotency key is remembered.
pub const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;
/// Forgotten idempotency entries pruned per apply: bounds the work of one apply while still
/// pruning faster than one entry per apply adds.
pub const IDEMPOTENCY_PRUNE_PER_APPLY_MAX: usize = 8;
/// How long a hold keeps its seats without a payment, unless its command names a TTL.
pub const HOLD_TTL_MS: i64 = 10 * 60 * 1000;
/// Shortest TTL a hold command may name.
pub const HOLD_TTL_MIN_MS: i64 = 5 * 1000;
/// Longest TTL a hold command may name.
pub const HOLD_TTL_MAX_MS: i64 = 30 * 60 * 1000;
/// How long a started payment pins its hold, from when it starts (never shortening the hold).
pub const PAYMENT_PIN_MS: i64 = 10 * 60 * 1000;
/// Payments that may be started on one hold.
pub const PAYMENT_ATTEMPTS_PER_HOLD_MAX: u8 = 3;
/// Seats and GA places in one hold.
pub const SEATS_PER_HOLD_MAX: u32 = 10;
/// Seats and GA places one user may hold or own (valid or used) per dt.
pub const SEATS_PER_USER_PER_DT_MAX: u32 = 10;
/// Seats of one venue.
pub const SEATS_PER_VENUE_MAX: u64 = 200_000;
/// Seats of one row (a row's free count is a u16).
pub const SEATS_PER_ROW_MAX: usize = 1_000;
/// GA areas of one venue (an area index is a u16).
pub const GA_AREAS_PER_VENUE_MAX: usize = 1_000;
/// Tiers of one dt: a tier index lives in the high 6 bits of a seat byte, 63 meaning "none".
pub const TIERS_PER_DT_MAX: usize = 62;
/// Scans kept per ticket (the admitting scan is also kept in the ticket's status).
pub const SCANS_PER_TICKET_MAX: usize = 16;
/// Default reminder lead: three days before the start.
pub const REMINDER_LEAD_DEFAULT_MS: i64 = 3 * 24 * 60 * 60 * 1000;
/// Platform fee ceiling in basis points (50 %).
pub const FEE_BPS_MAX: u32 = 5_000;
/// Length of an id or short text field.
pub const ID_LEN_MAX: usize = 128;
/// Length of a long text field (description, address).
pub const TEXT_LEN_MAX: usize = 8_192;
/// Performers of one event.
pub const PERFORMERS_MAX: usize = 64;
/// Length of a password hash (PHC string).
pub const PASSWORD_HASH_LEN_MAX: usize = 512;
/// Length of an encrypted payment-method token.
pub const PAYMENT_TOKEN_LEN_MAX: usize = 1_024;
/// Bytes of the client-minted seed of the ticket secrets of one purchase (min and max).
pub const SECRET_SEED_LEN: std::ops::RangeInclusive<usize> = 16..=64;
/// Rows a best-available search looks at for adjacent seats, from the row of the first free
/// seat, before settling for the first free seats: bounds the search on a fragmented stadium.
pub const BEST_AVAILABLE_ROWS_MAX: usize = 4_096;
/// Rows of answers a list query returns at most.
pub const QUERY_LIMIT_MAX: u32 = 500;

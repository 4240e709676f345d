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
/// Seats and GA places of one venue together: what a tier's counters (u32) can never exceed.
pub const PLACES_PER_VENUE_MAX: u64 = 1_000_000;
/// Places of one GA area.
pub const GA_AREA_CAPACITY_MAX: u32 = 1_000_000;
/// Seats of one row (a row's free count is a u16).
pub const SEATS_PER_ROW_MAX: usize = 1_000;
/// Rows of one venue.
pub const ROWS_PER_VENUE_MAX: usize = 20_000;
/// Sections of one venue.
pub const SECTIONS_PER_VENUE_MAX: usize = 1_000;
/// GA areas of one venue (an area index is a u16).
pub const GA_AREAS_PER_VENUE_MAX: usize = 1_000;
/// Length of a section's, row's or seat's label, or a GA area's name.
pub const LABEL_LEN_MAX: usize = 64;
/// Seat ranges of one tier.
pub const SEAT_RANGES_PER_TIER_MAX: usize = 1_000;
/// Sections or GA areas one tier names.
pub const TIER_PARTS_MAX: usize = 1_000;
/// Tiers of one dt: a tier index lives in the high 6 bits of a seat byte, 63 meaning "none".
pub const TIERS_PER_DT_MAX: usize = 62;
/// Scans kept per ticket (the admitting scan is also kept in the ticket's status).
pub const SCANS_PER_TICKET_MAX: usize = 16;
/// Default reminder lead: three days before the start.
pub const REMINDER_LEAD_DEFAULT_MS: i64 = 3 * 24 * 60 * 60 * 1000;
/// Longest reminder lead a user may choose: a year.
pub const REMINDER_LEAD_MAX_MS: i64 = 365 * 24 * 60 * 60 * 1000;
/// Platform fee ceiling in basis points (50 %).
pub const FEE_BPS_MAX: u32 = 5_000;
/// Price of one ticket, in minor units, at most: with [`SEATS_PER_HOLD_MAX`] seats and
/// [`FEE_BPS_MAX`] of fees, every sum of a hold, an order or a ledger stays far inside i64.
pub const PRICE_MINOR_MAX: i64 = 1_000_000_000_000;
/// The earliest instant a command may name (the Unix epoch): a dt's start, a sale window
/// (a sale open "since always" starts at 0).
pub const TIME_MS_MIN: i64 = 0;
/// The latest instant a command may name (2200-01-01T00:00:00Z, Unix ms). Log time is held
/// to it too, so log time plus any span below stays far inside i64.
pub const TIME_MS_MAX: i64 = 7_258_118_400_000;
/// Length of an IANA time zone name.
pub const TIME_ZONE_LEN_MAX: usize = 64;
/// Dts of one event.
pub const DTS_PER_EVENT_MAX: usize = 1_000;
/// Dts at one venue (live or past): bounds what a venue's layout check reads.
pub const DTS_PER_VENUE_MAX: usize = 100_000;
/// Holds released plus orders canceled by one entry of a dt's cancellation; the leader
/// proposes continuation entries for the rest while the dt shows as canceling.
pub const CANCEL_ROWS_PER_ENTRY_MAX: usize = 256;
/// Requests in one log entry's batch (the client service accepts at most 1,024 per call).
pub const REQUESTS_PER_ENTRY_MAX: usize = 65_536;
/// Length of an id or short text field.
pub const ID_LEN_MAX: usize = 128;
/// Length of a long text field (description, address).
pub const TEXT_LEN_MAX: usize = 8_192;
/// Performers of one event.
pub const PERFORMERS_MAX: usize = 64;
/// Bytes of an email address (RFC 5321's path limit).
pub const EMAIL_LEN_MAX: usize = 254;
/// Length of a password hash (PHC string).
pub const PASSWORD_HASH_LEN_MAX: usize = 512;
/// argon2 memory cost a stored hash may ask of a log-in, in KiB (64 MiB): whatever a command
/// stores, checking a password against it costs at most this much.
pub const PASSWORD_HASH_MEMORY_KIB_MAX: u32 = 65_536;
/// argon2 passes a stored hash may ask for.
pub const PASSWORD_HASH_TIME_COST_MAX: u32 = 8;
/// argon2 lanes a stored hash may ask for.
pub const PASSWORD_HASH_LANES_MAX: u32 = 4;
/// Length of an encrypted payment-method token.
pub const PAYMENT_TOKEN_LEN_MAX: usize = 1_024;
/// Bytes of the client-minted seed of the ticket secrets of one purchase (min and max).
pub const SECRET_SEED_LEN: std::ops::RangeInclusive<usize> = 16..=64;
/// Rows a best-available search looks at for adjacent seats, from the row of the first free
/// seat, before settling for the first free seats: bounds the search on a fragmented stadium.
pub const BEST_AVAILABLE_ROWS_MAX: usize = 4_096;
/// Rows of answers a list query returns at most.
pub const QUERY_LIMIT_MAX: u32 = 500;
/// Query words a search considers at most.
pub const QUERY_WORDS_MAX: usize = 16;
/// Length of a notification channel's name ("email", "sms", "provider").
pub const CHANNEL_LEN_MAX: usize = 32;
/// Longest name of a reconciler cursor.
pub const CURSOR_NAME_LEN_MAX: usize = 64;
/// Payments one `PaymentsSettled` entry names at most.
pub const SETTLED_PER_ENTRY_MAX: usize = 500;
/// Unfinished payments the store keeps at most: past it `StartPayment` is refused
/// ([`crate::Rejection::InvalidState`], "the reconciler is behind") until the reconciler
/// settles some. Every live hold has at most one payment in flight, so a reconciler that keeps
/// up holds the set near the payments of the last few minutes.
pub const UNFINISHED_PAYMENTS_MAX: usize = 200_000;
/// Failures of one notification before `NotificationFailed` must park it, at most.
pub const DELIVERY_ATTEMPTS_MAX: u32 = 64;
/// Longest failure text a `NotificationFailed` carries.
pub const DELIVERY_ERROR_LEN_MAX: usize = 512;
/// First retry delay of a failed notification, in log time; doubles per failure.
pub const RETRY_DELAY_FIRST_MS: i64 = 1_000;
/// Longest retry delay of a failing notification that is not parked.
pub const RETRY_DELAY_MAX_MS: i64 = 300_000;
/// Delay of a parked notification's next attempt.
pub const PARKED_RETRY_MS: i64 = 60 * 60 * 1000;
/// Highest cluster version a `SetClusterVersion` may name: far above any binary's, so the
/// bound only keeps the counter's arithmetic trivially safe.
pub const CLUSTER_VERSION_MAX: u32 = 65_535;

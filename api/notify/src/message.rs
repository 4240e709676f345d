//! The text of each notification: subject, body, and the QR codes an e-ticket mail carries.

use ticketd_store::command::OrderView;
use ticketd_store::types::{NotificationKind, TicketStatus};

use crate::tickets;

/// A message before it is addressed.
#[derive(Debug, Clone)]
pub struct Message {
    /// Subject line (the SMS of an email-only message says it too).
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// QR codes to attach: (file name, SVG).
    pub qrs: Vec<(String, String)>,
    /// Only email can carry it (e-tickets with their QR codes).
    pub email_only: bool,
}

/// What a message is written from besides its notification and order.
pub struct Context<'a> {
    /// The event's title.
    pub title: &'a str,
    /// When the dt starts, Unix ms, when known (reminders say it).
    pub starts_at_ms: Option<i64>,
    /// Now, Unix seconds: e-tickets carry the code of this step.
    pub now_s: u64,
}

/// The message of a notification of `kind` for `order`.
pub fn compose(
    kind: &NotificationKind,
    order: &OrderView,
    context: &Context<'_>,
) -> Result<Message, String> {
    let o = &order.order;
    let title = context.title;
    let money = |minor: i64| format!("{}.{:02} {}", minor / 100, (minor % 100).abs(), o.currency);
    let seats: Vec<&str> = order
        .tickets
        .iter()
        .map(|t| t.seat_label.as_str())
        .collect();
    let plain = |subject: String, text: String| Message {
        subject,
        text,
        qrs: Vec::new(),
        email_only: false,
    };
    Ok(match kind {
        NotificationKind::Confirmation => plain(
            format!("Order {} confirmed: {title}", o.order_id),
            format!(
                "Thank you. Order {} for {title} is confirmed: {} ticket(s) ({}), {} paid. Your e-tickets follow.",
                o.order_id,
                o.ticket_ids.len(),
                seats.join(", "),
                money(o.total_minor)
            ),
        ),
        NotificationKind::ETickets => e_tickets(order, title, &seats, context.now_s)?,
        NotificationKind::Reminder => {
            let starts = context.starts_at_ms.map_or_else(|| "soon".to_string(), utc);
            plain(
                format!("Reminder: {title} starts {starts}"),
                format!(
                    "{title} starts {starts}. Your tickets: {} (order {}).",
                    seats.join(", "),
                    o.order_id
                ),
            )
        }
        NotificationKind::Cancellation => plain(
            format!("Order {} canceled: {title}", o.order_id),
            format!(
                "Order {} for {title} is canceled; any money owed goes back to your payment method.",
                o.order_id
            ),
        ),
        NotificationKind::Refund {
            amount_minor,
            ticket_ids,
        } => plain(
            format!("Refund of {} for {title}", money(*amount_minor)),
            format!(
                "{} was refunded to your payment method for {} ticket(s) of order {}.",
                money(*amount_minor),
                ticket_ids.len(),
                o.order_id
            ),
        ),
    })
}

/// The e-tickets mail: one QR code per valid ticket, with the code of the current step.
fn e_tickets(
    order: &OrderView,
    title: &str,
    seats: &[&str],
    now_s: u64,
) -> Result<Message, String> {
    let mut qrs = Vec::new();
    for t in order
        .tickets
        .iter()
        .filter(|t| t.status == TicketStatus::Valid)
    {
        let (code, _) = tickets::current_code(&t.secret, now_s);
        let payload = tickets::qr_payload(&t.ticket_id, &code);
        let svg = tickets::qr_svg(&payload).map_err(|e| format!("QR of {}: {e}", t.ticket_id))?;
        qrs.push((format!("{}.svg", t.ticket_id), svg));
    }
    Ok(Message {
        subject: format!("Your e-tickets: {title}"),
        text: format!(
            "Your e-tickets for {title}, order {}: {} ticket(s) ({}). Each attached QR code names its ticket; at the gate show the ticket in the app, whose code changes every {} s (a copy of an old code is refused).",
            order.order.order_id,
            qrs.len(),
            seats.join(", "),
            tickets::CODE_STEP_S
        ),
        qrs,
        email_only: true,
    })
}

/// `YYYY-MM-DD HH:MM UTC` of Unix ms (proleptic Gregorian, days-from-civil inverted).
pub fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, second_of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let shifted_days = days + 719_468;
    let era = shifted_days.div_euclid(146_097);
    let day_of_era = shifted_days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        second_of_day / 3600,
        second_of_day % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_unix_ms() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(1_893_456_000_000), "2030-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400_000 + 3_661_000), "2000-02-29 01:01 UTC");
    }
}

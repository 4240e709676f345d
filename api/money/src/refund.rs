//! Refunds the store owes: what the dispatcher does for a `Refund` notification.

use crate::provider::{HttpProvider, IntentStatus, PaymentError, PaymentProvider};

/// Refunds `amount` of the payment `payment_ref`, keyed by `key` (the notification), so it
/// happens once. The store confirmed the payment (a refund is owed only by an order), so an
/// authorization nobody captured yet is captured first, as [`crate::decide`] asks of a
/// confirmed payment.
pub async fn refund_owed(
    provider: &HttpProvider,
    payment_ref: &str,
    amount: i64,
    key: &str,
) -> Result<(), PaymentError> {
    let intent = provider.retrieve(payment_ref).await?;
    if intent.status == IntentStatus::RequiresCapture {
        provider.capture(payment_ref).await?;
    }
    provider.refund(payment_ref, amount, key).await?;
    tracing::info!(payment = %payment_ref, amount, key, "refunded");
    Ok(())
}

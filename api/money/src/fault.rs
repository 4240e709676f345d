//! FAULT INJECTION, for the crash tests only, compiled in with the `failpoints` feature (the
//! workspace's test build turns it on; a build of the shipped binaries without it has no fault
//! hook): after a step of the purchase saga, exit the process at once (a crash) or pause (so a
//! test can kill the leader in between).

use std::time::Duration;

/// A step of the purchase saga.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SagaStep {
    /// The provider authorized the payment.
    Authorize,
    /// The store pinned the hold with the payment (`StartPayment`).
    Start,
    /// The store turned the hold into an order (`ConfirmPurchase`), before the capture.
    Confirm,
}

/// What the saga does after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SagaFault {
    /// Exit with status 86 right after the step.
    CrashAfter(SagaStep),
    /// Sleep this long right after the step.
    PauseAfter(SagaStep, Duration),
    /// A deliberately broken saga: it leaves an authorization the store refused instead of
    /// voiding it, so a real run shows the money checker flags what a bug like it does.
    SkipVoid,
}

impl SagaFault {
    /// Parses `crash-after:STEP` or `pause-after:STEP:MS`, STEP one of `authorize`, `start`,
    /// `confirm`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let step = |t: &str| match t {
            "authorize" => Ok(SagaStep::Authorize),
            "start" => Ok(SagaStep::Start),
            "confirm" => Ok(SagaStep::Confirm),
            _ => Err(format!("unknown saga step {t:?}")),
        };
        match text.split(':').collect::<Vec<_>>().as_slice() {
            ["skip-void"] => Ok(SagaFault::SkipVoid),
            ["crash-after", t] => Ok(SagaFault::CrashAfter(step(t)?)),
            ["pause-after", t, ms] => Ok(SagaFault::PauseAfter(
                step(t)?,
                Duration::from_millis(ms.parse().map_err(|_| format!("bad pause {ms:?}"))?),
            )),
            _ => Err(format!(
                "fault must be crash-after:STEP, pause-after:STEP:MS or skip-void, not {text:?}"
            )),
        }
    }

    /// Runs the fault if it is set for `step`.
    pub async fn after(fault: Option<SagaFault>, step: SagaStep) {
        match fault {
            Some(SagaFault::CrashAfter(s)) if s == step => {
                tracing::error!(?step, "FAULT INJECTION: exiting after this saga step");
                std::process::exit(86);
            }
            Some(SagaFault::PauseAfter(s, pause)) if s == step => {
                tracing::warn!(
                    ?step,
                    ?pause,
                    "FAULT INJECTION: pausing after this saga step"
                );
                tokio::time::sleep(pause).await;
            }
            _ => {}
        }
    }
}

//! Buyers' profiles and sellers' plans.

use serde::Serialize;
use ticketd_store::types as st;
use utoipa::ToSchema;

use crate::auth::Role;

/// A person's name and address.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Profile {
    /// First name.
    pub first_name: String,
    /// Middle name.
    pub middle_name: String,
    /// Last name.
    pub last_name: String,
    /// Postal address.
    pub address: String,
}

/// Where messages go.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Contact {
    /// E-tickets and confirmations.
    pub email: String,
    /// SMS, when reminders by SMS are on.
    pub phone: String,
}

/// When and how reminders before an event are sent.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReminderSettings {
    /// Days before the dt starts (hours rounded down to whole days).
    pub days_before: u32,
    /// By email.
    pub email: bool,
    /// By SMS.
    pub sms: bool,
}

impl From<&st::ReminderPreference> for ReminderSettings {
    fn from(r: &st::ReminderPreference) -> Self {
        const DAY_MS: i64 = 24 * 3600 * 1000;
        Self {
            days_before: u32::try_from(r.lead_ms.max(0) / DAY_MS).unwrap_or(u32::MAX),
            email: r.email,
            sms: r.sms,
        }
    }
}

/// The caller's profile.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"user_id": "u-5e0c11", "role": "user",
    "profile": {"first_name": "Ada", "middle_name": "", "last_name": "Lovelace", "address": ""},
    "contact": {"email": "ada@example.com", "phone": "+4520000000"},
    "reminders": {"days_before": 3, "email": true, "sms": false},
    "saved_payment_method": false}))]
pub struct Me {
    /// The user's id.
    pub user_id: String,
    /// The role of the caller's session.
    pub role: Role,
    /// Name and address.
    pub profile: Profile,
    /// Email and phone.
    pub contact: Contact,
    /// Reminders before events.
    pub reminders: ReminderSettings,
    /// Whether a payment method is saved (purchases may then omit one).
    pub saved_payment_method: bool,
}

impl Me {
    /// A stored user, seen by a session of `role`.
    pub fn of(u: &st::User, role: Role) -> Self {
        Self {
            user_id: u.user_id.clone(),
            role,
            profile: Profile {
                first_name: u.profile.first_name.clone(),
                middle_name: u.profile.middle_name.clone(),
                last_name: u.profile.last_name.clone(),
                address: u.profile.address.clone(),
            },
            contact: Contact {
                email: u.contact.email.clone(),
                phone: u.contact.phone.clone(),
            },
            reminders: (&u.reminder).into(),
            saved_payment_method: u.payment_token_sealed.is_some(),
        }
    }
}

/// A seller's plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlanName {
    /// The platform's standard fee.
    Standard,
    /// A lower fee and per-tier sales reports.
    Vip,
}

impl From<st::SellerPlan> for PlanName {
    fn from(p: st::SellerPlan) -> Self {
        match p {
            st::SellerPlan::Standard => Self::Standard,
            st::SellerPlan::Vip => Self::Vip,
        }
    }
}

impl From<PlanName> for st::SellerPlan {
    fn from(p: PlanName) -> Self {
        match p {
            PlanName::Standard => Self::Standard,
            PlanName::Vip => Self::Vip,
        }
    }
}

/// A seller's plan and the fee it sets.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"seller_id": "u-77ab10", "plan": "vip", "fee_bps": 500}))]
pub struct SellerPlan {
    /// The seller.
    pub seller_id: String,
    /// The plan.
    pub plan: PlanName,
    /// The platform's fee, basis points of face value.
    pub fee_bps: u32,
}

//! Users: profiles, accounts to sign in with, roles.

use crate::columns::column_family;
use crate::limits::*;
use crate::machine::{ApplyContext, Machine};
use crate::persist::put;
use crate::protocol::{Done, Rejection};
use crate::types::*;

use super::refusal::{not_found, reject, HandlerResult};
use super::validate;

fn check_profile(profile: &Profile) -> HandlerResult<()> {
    for (f, v) in [
        ("first_name", &profile.first_name),
        ("middle_name", &profile.middle_name),
        ("last_name", &profile.last_name),
        ("address", &profile.address),
    ] {
        validate::text(f, v, TEXT_LEN_MAX)?;
    }
    Ok(())
}

impl Machine {
    /// Creates or updates a user's profile, contact, reminder preference and sealed payment
    /// token (the provider's token, encrypted before it reaches the log).
    pub(super) fn upsert_user(
        &mut self,
        context: &mut ApplyContext<'_>,
        mut user: User,
    ) -> HandlerResult<Done> {
        validate::id("user_id", &user.user_id)?;
        check_profile(&user.profile)?;
        validate::text("email", &user.contact.email, TEXT_LEN_MAX)?;
        validate::text("phone", &user.contact.phone, TEXT_LEN_MAX)?;
        if !(0..=REMINDER_LEAD_MAX_MS).contains(&user.reminder.lead_ms) {
            return Err(reject(
                Rejection::InvalidArgument,
                format!("reminder lead must be 0..={REMINDER_LEAD_MAX_MS} ms (a year)"),
            ));
        }
        if user
            .payment_token_sealed
            .as_ref()
            .is_some_and(|t| t.len() > PAYMENT_TOKEN_LEN_MAX)
        {
            return Err(reject(
                Rejection::InvalidArgument,
                format!("payment token longer than {PAYMENT_TOKEN_LEN_MAX} bytes"),
            ));
        }
        let created = match self.users.get(&user.user_id) {
            Some(old) => {
                user.created_index = old.created_index;
                false
            }
            None => true,
        };
        let id = user.user_id.clone();
        put(
            &mut self.users,
            context.writes,
            column_family::USERS,
            &id,
            user,
        );
        Ok(Done::UserSaved {
            user_id: id,
            created,
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn register_user(
        &mut self,
        context: &mut ApplyContext<'_>,
        user_id: &str,
        email: &str,
        password_hash: &str,
        role: Role,
        profile: &Profile,
        phone: &str,
    ) -> HandlerResult<Done> {
        validate::id("user_id", user_id)?;
        let normalized = normalize_email(email)
            .ok_or_else(|| reject(Rejection::InvalidArgument, "email is not an address"))?;
        validate::password_hash(password_hash)?;
        check_profile(profile)?;
        validate::text("phone", phone, ID_LEN_MAX)?;
        if self.accounts.contains_key(&normalized) {
            return Err(reject(
                Rejection::EmailTaken,
                format!("an account uses {normalized}"),
            ));
        }
        if self.users.contains_key(user_id) {
            return Err(reject(
                Rejection::AlreadyExists,
                format!("user {user_id} exists"),
            ));
        }
        let user = User {
            user_id: user_id.to_string(),
            profile: profile.clone(),
            contact: Contact {
                email: email.trim().to_string(),
                phone: phone.to_string(),
            },
            reminder: ReminderPreference::default(),
            payment_token_sealed: None,
            created_index: context.index,
            updated_index: context.index,
        };
        put(
            &mut self.users,
            context.writes,
            column_family::USERS,
            user_id,
            user,
        );
        let account = Account {
            user_id: user_id.to_string(),
            email: normalized.clone(),
            password_hash: password_hash.to_string(),
            role,
            created_index: context.index,
            updated_index: context.index,
        };
        put(
            &mut self.accounts,
            context.writes,
            column_family::ACCOUNTS,
            &normalized,
            account,
        );
        self.derived
            .account_of_user
            .insert(user_id.to_string(), normalized.clone());
        Ok(Done::UserRegistered {
            user_id: user_id.to_string(),
            email: normalized,
            role,
        })
    }

    /// Sets the role of an existing user.
    pub(super) fn set_user_role(
        &mut self,
        context: &mut ApplyContext<'_>,
        user_id: &str,
        role: Role,
    ) -> HandlerResult<Done> {
        let mut account = self
            .derived
            .account_of_user
            .get(user_id)
            .and_then(|email| self.accounts.get(email))
            .cloned()
            .ok_or_else(|| not_found("account of user", user_id))?;
        if account.role != role {
            account.role = role;
            account.updated_index = context.index;
            let email = account.email.clone();
            put(
                &mut self.accounts,
                context.writes,
                column_family::ACCOUNTS,
                &email,
                account,
            );
        }
        Ok(Done::UserRoleSet {
            user_id: user_id.to_string(),
            role,
        })
    }
}

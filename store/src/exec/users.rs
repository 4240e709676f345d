//! Users: profiles, accounts to sign in with, roles.

use crate::columns::cf;
use crate::limits::*;
use crate::machine::{Cx, Machine};
use crate::persist::put;
use crate::protocol::{Done, Rejection};
use crate::types::*;

use super::reject::{no, not_found, R};
use super::validate;

fn check_profile(p: &Profile) -> R<()> {
    for (f, v) in [
        ("first_name", &p.first_name),
        ("middle_name", &p.middle_name),
        ("last_name", &p.last_name),
        ("address", &p.address),
    ] {
        validate::text(f, v, TEXT_LEN_MAX)?;
    }
    Ok(())
}

impl Machine {
    pub(super) fn upsert_user(&mut self, cx: &mut Cx<'_>, mut user: User) -> R<Done> {
        validate::id("user_id", &user.user_id)?;
        check_profile(&user.profile)?;
        validate::text("email", &user.contact.email, TEXT_LEN_MAX)?;
        validate::text("phone", &user.contact.phone, TEXT_LEN_MAX)?;
        if !(0..=REMINDER_LEAD_MAX_MS).contains(&user.reminder.lead_ms) {
            return Err(no(
                Rejection::InvalidArgument,
                format!("reminder lead must be 0..={REMINDER_LEAD_MAX_MS} ms (a year)"),
            ));
        }
        if user
            .payment_token_sealed
            .as_ref()
            .is_some_and(|t| t.len() > PAYMENT_TOKEN_LEN_MAX)
        {
            return Err(no(
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
        put(&mut self.users, cx.ws, cf::USERS, &id, user);
        Ok(Done::UserSaved {
            user_id: id,
            created,
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn register_user(
        &mut self,
        cx: &mut Cx<'_>,
        user_id: &str,
        email: &str,
        password_hash: &str,
        role: Role,
        profile: &Profile,
        phone: &str,
    ) -> R<Done> {
        validate::id("user_id", user_id)?;
        let normalized = normalize_email(email)
            .ok_or_else(|| no(Rejection::InvalidArgument, "email is not an address"))?;
        validate::password_hash(password_hash)?;
        check_profile(profile)?;
        validate::text("phone", phone, ID_LEN_MAX)?;
        if self.accounts.contains_key(&normalized) {
            return Err(no(
                Rejection::EmailTaken,
                format!("an account uses {normalized}"),
            ));
        }
        if self.users.contains_key(user_id) {
            return Err(no(
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
            created_index: cx.index,
            updated_index: cx.index,
        };
        put(&mut self.users, cx.ws, cf::USERS, user_id, user);
        let account = Account {
            user_id: user_id.to_string(),
            email: normalized.clone(),
            password_hash: password_hash.to_string(),
            role,
            created_index: cx.index,
            updated_index: cx.index,
        };
        put(
            &mut self.accounts,
            cx.ws,
            cf::ACCOUNTS,
            &normalized,
            account,
        );
        self.d
            .account_of_user
            .insert(user_id.to_string(), normalized.clone());
        Ok(Done::UserRegistered {
            user_id: user_id.to_string(),
            email: normalized,
            role,
        })
    }

    pub(super) fn set_user_role(&mut self, cx: &mut Cx<'_>, user_id: &str, role: Role) -> R<Done> {
        let mut account = self
            .d
            .account_of_user
            .get(user_id)
            .and_then(|email| self.accounts.get(email))
            .cloned()
            .ok_or_else(|| not_found("account of user", user_id))?;
        if account.role != role {
            account.role = role;
            account.updated_index = cx.index;
            let email = account.email.clone();
            put(&mut self.accounts, cx.ws, cf::ACCOUNTS, &email, account);
        }
        Ok(Done::UserRoleSet {
            user_id: user_id.to_string(),
            role,
        })
    }
}

//! Users and sessions: sign up (argon2id; the hash is computed here, so no password reaches the
//! Raft log), log in for a bearer token, read and update one's own profile. A seller account is
//! also a seller (standard plan); scanner and admin accounts are created by an admin.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use ticketd_raft::client::Consistency;
use ticketd_store::types::{self as st, Profile, ReminderPreference, SellerPlan};
use ticketd_store::{Command, Query, QueryResult};

use super::calls::{propose, read, written};
use crate::auth::{self, Caller, Role};
use crate::extract::IdempotencyKey;
use crate::problem::Problem;
use crate::resources::people::Me;
use crate::resources::rfc3339;
use crate::state::AppState;

/// Shortest password accepted.
pub const PASSWORD_CHARS_MIN: usize = 8;
/// Longest password accepted (argon2 takes any length; this bounds the work per request).
pub const PASSWORD_BYTES_MAX: usize = 128;
/// Longest name.
pub const NAME_BYTES_MAX: usize = 200;
/// The platform fee of a new seller on the standard plan, in basis points.
pub const SELLER_FEE_BPS_STANDARD: u32 = 1_000;

/// The store's role of an API role.
pub fn store_role(r: Role) -> st::Role {
    match r {
        Role::User => st::Role::User,
        Role::Seller => st::Role::Seller,
        Role::Scanner => st::Role::Scanner,
        Role::Admin => st::Role::Admin,
    }
}

/// The API's role of a store role.
pub fn api_role(r: st::Role) -> Role {
    match r {
        st::Role::User => Role::User,
        st::Role::Seller => Role::Seller,
        st::Role::Scanner => Role::Scanner,
        st::Role::Admin => Role::Admin,
    }
}

/// A sign-up.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUp {
    /// Sign-in email (case does not matter).
    email: String,
    /// At least 8 characters, at most 128 bytes.
    password: String,
    /// Full name.
    name: String,
    /// Phone number in E.164 form, for SMS.
    #[serde(default)]
    phone: String,
    /// `user` (default) or `seller`; `scanner` and `admin` need an admin's token.
    #[serde(default)]
    role: Option<Role>,
}

/// A user as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"user_id": "u-5e0c11", "email": "ada@example.com", "role": "user"}))]
pub struct UserOut {
    /// Id.
    user_id: String,
    /// Sign-in email (normalized).
    email: String,
    /// Role.
    role: Role,
}

fn check_password(p: &str) -> Result<(), Problem> {
    if p.chars().count() < PASSWORD_CHARS_MIN || p.len() > PASSWORD_BYTES_MAX {
        return Err(Problem::new(
            "INVALID_ARGUMENT",
            format!("the password must be {PASSWORD_CHARS_MIN} to {PASSWORD_BYTES_MAX} bytes"),
        ));
    }
    Ok(())
}

/// Signs up a user (or, with an admin's token, a scanner or an admin).
#[utoipa::path(post, path = "/v1/users", request_body = SignUp,
    params(("Idempotency-Key" = String, Header, description = "retry key")),
    responses((status = 201, description = "signed up", body = UserOut),
              (status = 409, description = "EMAIL_TAKEN", body = Problem, content_type = "application/problem+json"),
              (status = 400, description = "INVALID_ARGUMENT: email, password or name", body = Problem, content_type = "application/problem+json")))]
pub async fn sign_up(
    State(state): State<AppState>,
    headers: HeaderMap,
    IdempotencyKey(key): IdempotencyKey,
    Json(req): Json<SignUp>,
) -> Result<Response, Problem> {
    let role = req.role.unwrap_or(Role::User);
    if matches!(role, Role::Scanner | Role::Admin) {
        match Caller::from_headers(&headers, &state.tokens) {
            Some(c) if c.role == Role::Admin => {}
            Some(_) => {
                return Err(Problem::forbidden(
                    "only an admin creates scanners and admins",
                ))
            }
            None => return Err(Problem::unauthenticated()),
        }
    }
    let email = st::normalize_email(&req.email)
        .ok_or_else(|| Problem::new("INVALID_ARGUMENT", "that is not an email address"))?;
    check_password(&req.password)?;
    let name = req.name.trim();
    if name.is_empty() || name.len() > NAME_BYTES_MAX {
        return Err(Problem::new(
            "INVALID_ARGUMENT",
            format!("the name must be 1 to {NAME_BYTES_MAX} bytes"),
        ));
    }
    // Ids and the salt derive from the email and the key: a retry proposes the same command.
    let user_id = format!("u-{}", state.ids.hex(&["user", &email]));
    let seed = state.ids.bytes(&["salt", &email, &key]);
    let password = req.password;
    let hash = tokio::task::spawn_blocking(move || auth::hash_password_seeded(&password, &seed))
        .await
        .map_err(Problem::internal)??;
    let (first, last) = name.rsplit_once(' ').unwrap_or((name, ""));
    let cmd = Command::RegisterUser {
        user_id: user_id.clone(),
        email: req.email.clone(),
        password_hash: hash,
        role: store_role(role),
        profile: Profile {
            first_name: first.to_string(),
            last_name: last.to_string(),
            ..Profile::default()
        },
        phone: req.phone,
    };
    let client = format!("signup:{email}");
    propose(&state, &client, &key, cmd).await?;
    if role == Role::Seller {
        let seller = Command::CreateSeller {
            seller_id: user_id.clone(),
            name: name.to_string(),
            fee_bps: SELLER_FEE_BPS_STANDARD,
            plan: SellerPlan::Standard,
        };
        propose(&state, &client, &format!("{key}:seller"), seller).await?;
    }
    let out = UserOut {
        user_id,
        email,
        role,
    };
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// Credentials.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogIn {
    /// Sign-in email.
    email: String,
    /// Password.
    password: String,
}

/// A session: the bearer token and when it expires.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"token": "eyJzdWIiOiJ1LTVlMGMxMSJ9.c2ln", "expires_at": "2027-06-01T19:30:00Z",
    "user_id": "u-5e0c11", "role": "user"}))]
pub struct Session {
    /// `Authorization: Bearer <token>`.
    token: String,
    /// When the token stops being accepted.
    #[schema(format = DateTime, example = "2027-06-01T19:30:00Z")]
    expires_at: String,
    /// The user.
    user_id: String,
    /// The role.
    role: Role,
}

/// Logs in: a bearer token for the account with this email and password.
#[utoipa::path(post, path = "/v1/sessions", request_body = LogIn,
    params(("Idempotency-Key" = String, Header, description = "retry key")),
    responses((status = 201, description = "the session", body = Session),
              (status = 401, description = "wrong email or password", body = Problem, content_type = "application/problem+json"),
              (status = 429, description = "RATE_LIMITED", body = Problem, content_type = "application/problem+json")))]
pub async fn log_in(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    IdempotencyKey(_key): IdempotencyKey,
    Json(req): Json<LogIn>,
) -> Result<Response, Problem> {
    // Password guessing pays the per-IP limit the holds pay.
    if state.holds_by_ip.check_key(&peer.ip()).is_err() {
        return Err(Problem::new("RATE_LIMITED", "too many attempts; slow down").retry_after(10));
    }
    if req.password.len() > PASSWORD_BYTES_MAX {
        return Err(Problem::unauthenticated());
    }
    let q = Query::AccountByEmail {
        email: req.email.clone(),
    };
    let account = match read(&state, q, Consistency::Linearizable).await?.0 {
        QueryResult::Account(a) => a,
        _ => return Err(Problem::internal("unexpected query result")),
    };
    let password = req.password;
    let ok = tokio::task::spawn_blocking(move || match &account {
        Some(a) => auth::verify_password(&password, &a.password_hash).then(|| a.clone()),
        None => {
            auth::burn_password_check(&password);
            None
        }
    })
    .await
    .map_err(Problem::internal)?;
    let Some(a) = ok else {
        return Err(Problem::new("UNAUTHENTICATED", "wrong email or password"));
    };
    let role = api_role(a.role);
    let (token, expires_at) = state.tokens.issue(&a.user_id, role);
    let s = Session {
        token,
        expires_at: rfc3339(
            i64::try_from(expires_at)
                .unwrap_or(i64::MAX / 1000)
                .saturating_mul(1000),
        ),
        user_id: a.user_id,
        role,
    };
    Ok((StatusCode::CREATED, Json(s)).into_response())
}

/// The caller's profile, contact and reminder preference.
#[utoipa::path(get, path = "/v1/me", security(("bearer" = [])),
    responses((status = 200, description = "the profile", body = Me),
              (status = 404, description = "no profile", body = Problem, content_type = "application/problem+json")))]
pub async fn me(State(state): State<AppState>, caller: Caller) -> Result<Response, Problem> {
    let q = Query::GetUser {
        user_id: caller.user_id.clone(),
    };
    let QueryResult::User(Some(u)) = read(&state, q, Consistency::Linearizable).await?.0 else {
        return Err(Problem::not_found());
    };
    // The sealed payment token stays inside: Me says only whether there is one.
    Ok(Json(Me::of(&u, caller.role)).into_response())
}

/// When to be reminded.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reminders {
    /// Days before the start (0 for no reminder; at most 30).
    days_before: u32,
    /// By email.
    email: bool,
    /// By SMS.
    sms: bool,
}

/// Sets the caller's reminder preference.
#[utoipa::path(put, path = "/v1/me/reminders", request_body = Reminders,
    params(("Idempotency-Key" = String, Header, description = "retry key")),
    security(("bearer" = [])),
    responses((status = 200, description = "saved: the profile now", body = Me),
              (status = 404, description = "no profile", body = Problem, content_type = "application/problem+json")))]
pub async fn set_reminders(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    Json(req): Json<Reminders>,
) -> Result<Response, Problem> {
    if req.days_before > 30 {
        return Err(Problem::new(
            "INVALID_ARGUMENT",
            "days_before is at most 30",
        ));
    }
    let q = Query::GetUser {
        user_id: caller.user_id.clone(),
    };
    let QueryResult::User(Some(u)) = read(&state, q, Consistency::Linearizable).await?.0 else {
        return Err(Problem::not_found());
    };
    let mut u = u;
    u.reminder = ReminderPreference {
        lead_ms: i64::from(req.days_before) * 24 * 3600 * 1000,
        email: req.email,
        sms: req.sms,
    };
    let (_, index) = propose(&state, &caller.user_id, &key, upsert(&u)).await?;
    Ok(written(StatusCode::OK, Me::of(&u, caller.role), index))
}

/// The command that writes the user back whole.
fn upsert(u: &st::User) -> Command {
    Command::UpsertUser {
        user_id: u.user_id.clone(),
        profile: u.profile.clone(),
        contact: u.contact.clone(),
        reminder: u.reminder.clone(),
        payment_token_sealed: u.payment_token_sealed.clone(),
    }
}

/// Longest payment-method token accepted.
pub const PAYMENT_TOKEN_BYTES_MAX: usize = 256;

/// A payment method to keep for later purchases: the provider's token, never card data.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SavePaymentMethod {
    /// The provider's payment-method token.
    payment_method_token: String,
}

impl std::fmt::Debug for SavePaymentMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SavePaymentMethod(..)")
    }
}

/// Saves the caller's payment method, sealed (AES-256-GCM, bound to the user) before it is
/// proposed: the store and its snapshots only hold ciphertext. A purchase without a token uses it.
#[utoipa::path(put, path = "/v1/me/payment-method", request_body = SavePaymentMethod,
    params(("Idempotency-Key" = String, Header, description = "retry key")),
    security(("bearer" = [])),
    responses((status = 200, description = "saved: the profile now", body = Me),
              (status = 404, description = "no profile", body = Problem, content_type = "application/problem+json"),
              (status = 503, description = "UNAVAILABLE: no vault key configured", body = Problem, content_type = "application/problem+json")))]
pub async fn save_payment_method(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    Json(req): Json<SavePaymentMethod>,
) -> Result<Response, Problem> {
    let vault = state
        .vault
        .clone()
        .ok_or_else(|| Problem::new("UNAVAILABLE", "saved payment methods need a vault key"))?;
    let token = req.payment_method_token.trim();
    if token.is_empty() || token.len() > PAYMENT_TOKEN_BYTES_MAX {
        return Err(Problem::new(
            "INVALID_ARGUMENT",
            format!("payment_method_token must be 1 to {PAYMENT_TOKEN_BYTES_MAX} bytes"),
        ));
    }
    let q = Query::GetUser {
        user_id: caller.user_id.clone(),
    };
    let QueryResult::User(Some(u)) = read(&state, q, Consistency::Linearizable).await?.0 else {
        return Err(Problem::not_found());
    };
    let nonce_seed = state.vault_nonces.bytes(&["vault", &caller.user_id, token]);
    let sealed = vault.seal_with_nonce(token, &caller.user_id, &nonce_seed);
    let mut u = u;
    u.payment_token_sealed = Some(sealed);
    let (_, index) = propose(&state, &caller.user_id, &key, upsert(&u)).await?;
    Ok(written(StatusCode::OK, Me::of(&u, caller.role), index))
}

/// The caller's saved payment-method token, opened.
pub async fn saved_payment_method(state: &AppState, user_id: &str) -> Result<String, Problem> {
    let vault = state
        .vault
        .clone()
        .ok_or_else(|| Problem::new("UNAVAILABLE", "saved payment methods need a vault key"))?;
    let q = Query::GetUser {
        user_id: user_id.to_string(),
    };
    let sealed = match read(state, q, Consistency::Linearizable).await?.0 {
        QueryResult::User(Some(u)) => u.payment_token_sealed,
        _ => None,
    };
    let sealed = sealed.ok_or_else(|| {
        Problem::bad_request(
            "no payment_method_token given and none saved (PUT /v1/me/payment-method)",
        )
    })?;
    vault.open(&sealed, user_id).ok_or_else(|| {
        Problem::internal("a saved payment method does not open with this vault key")
    })
}

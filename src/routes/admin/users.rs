//! `/admin/users`: search, detail, lock and unlock, revoke sessions, reset MFA, role
//! and attributes. Each action is decided by the engine and audited.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{
    Chrome, PageError, authorize, checked_post, chrome, clear_flash, redirect_with, render, session,
};
use crate::accounts::service::{AccountError, RequestMeta};
use crate::accounts::{Role, User, UserId};
use crate::auth::Principal;
use crate::auth::admin_session::AdminSession;
use crate::clock::rfc3339;
use crate::db::{DbError, sessions, users};
use crate::error::ApiError;
use crate::state::AppState;

pub struct UserRow {
    pub id: String,
    pub email: String,
    pub role: &'static str,
    pub status: &'static str,
    pub mfa: bool,
    pub created: String,
}

impl From<&User> for UserRow {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.to_string(),
            email: u.email.to_string(),
            role: u.role.as_str(),
            status: u.status.as_str(),
            mfa: u.mfa_enabled,
            created: rfc3339(u.created_at),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct ListPage {
    chrome: Chrome,
    q: String,
    users: Vec<UserRow>,
}

pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> Result<HttpResponse, PageError> {
    let session = session(&req, &state).await?;
    authorize(&state, &session, &req, &meta, "user.list", None).await?;
    let q = crate::routes::api::query_pairs(&req)?
        .into_iter()
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v.trim().to_lowercase())
        .unwrap_or_default();
    let all = state
        .db
        .read(|conn| Ok::<_, DbError>(users::list(conn, 1000)?))
        .await
        .map_err(|e| PageError::Unexpected(e.into()))?;
    let users = all
        .iter()
        .filter(|u| q.is_empty() || u.email.as_str().contains(&q))
        .map(UserRow::from)
        .collect();
    let chrome = chrome(&req, &state, &session, "users");
    let shown = chrome.flash.is_some();
    Ok(clear_flash(render(&ListPage { chrome, q, users })?, shown))
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct DetailPage {
    chrome: Chrome,
    user: UserRow,
    attributes: String,
    sessions: usize,
    /// (op, label, dangerous)
    actions: Vec<(&'static str, &'static str, bool)>,
    errors: Vec<String>,
}

fn user_id(text: &str) -> Result<UserId, PageError> {
    Uuid::parse_str(text)
        .map(UserId)
        .map_err(|_| PageError::NotFound)
}

async fn load(state: &AppState, id: UserId) -> Result<(User, usize), PageError> {
    let now = state.clock.now();
    state
        .db
        .read(move |conn| {
            let user = users::find(conn, id)?;
            let live = sessions::live_for_user(conn, id, now)?.len();
            Ok::<_, DbError>(user.map(|u| (u, live)))
        })
        .await
        .map_err(|e| PageError::Unexpected(e.into()))?
        .ok_or(PageError::NotFound)
}

fn detail_page(
    chrome: Chrome,
    user: &User,
    sessions: usize,
    errors: Vec<String>,
) -> Result<HttpResponse, PageError> {
    let mut actions = Vec::new();
    if user.status.as_str() == "active" {
        actions.push(("lock", "Lock account", true));
    } else {
        actions.push(("unlock", "Unlock account", false));
    }
    actions.push(("revoke_sessions", "Revoke all sessions", true));
    if user.mfa_enabled {
        actions.push(("reset_mfa", "Reset MFA", true));
    }
    let mut response = render(&DetailPage {
        chrome,
        user: UserRow::from(user),
        attributes: serde_json::to_string_pretty(&Value::Object(user.attributes.clone()))
            .unwrap_or_default(),
        sessions,
        actions,
        errors: errors.clone(),
    })?;
    if !errors.is_empty() {
        *response.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(response)
}

pub async fn detail(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let session = session(&req, &state).await?;
    let id = user_id(&path)?;
    authorize(
        &state,
        &session,
        &req,
        &meta,
        "user.view",
        Some(id.to_string()),
    )
    .await?;
    let (user, live) = load(&state, id).await?;
    let chrome = chrome(&req, &state, &session, "users");
    let shown = chrome.flash.is_some();
    Ok(clear_flash(
        detail_page(chrome, &user, live, Vec::new())?,
        shown,
    ))
}

/// The administrator as the account service's admin operations expect.
fn acting(session: &AdminSession) -> Principal {
    Principal {
        user_id: session.user.id,
        session_id: session.session_id,
        role: Role::Admin,
        token_id: Uuid::nil(),
        issued_at: 0,
        expires_at: 0,
    }
}

pub async fn action(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let (session, form) = checked_post(&req, &state, &body).await?;
    let id = user_id(&path)?;
    let op = form.text("op");
    let action = match op.as_str() {
        "lock" => "user.lock",
        "unlock" => "user.unlock",
        "revoke_sessions" => "user.revoke_sessions",
        "reset_mfa" => "user.reset_mfa",
        "update" => "user.update",
        _ => return Err(PageError::NotFound),
    };
    authorize(&state, &session, &req, &meta, action, Some(id.to_string())).await?;
    let back = format!("/admin/users/{id}");
    let admin = acting(&session);
    let message = match op.as_str() {
        "lock" => state
            .accounts
            .lock(&admin, id, &meta)
            .await
            .map(|_| "Account locked; its sessions ended.".to_owned()),
        "unlock" => state
            .accounts
            .unlock(&admin, id, &meta)
            .await
            .map(|_| "Account unlocked.".to_owned()),
        "revoke_sessions" => state
            .accounts
            .revoke_all_sessions(session.user.id, id, &meta)
            .await
            .map(|n| format!("{n} session(s) ended.")),
        "reset_mfa" => state
            .accounts
            .reset_mfa(&admin, id, &meta)
            .await
            .map(|_| "MFA reset.".to_owned()),
        _ => {
            let Some(role) = Role::parse(&form.text("role")) else {
                let (user, live) = load(&state, id).await?;
                return detail_page(
                    chrome(&req, &state, &session, "users"),
                    &user,
                    live,
                    vec!["Choose a role: admin or user.".to_owned()],
                );
            };
            let attributes = match serde_json::from_str::<Value>(&form.text("attributes")) {
                Ok(Value::Object(map)) => map,
                _ if form.text("attributes").is_empty() => Map::new(),
                _ => {
                    let (user, live) = load(&state, id).await?;
                    return detail_page(
                        chrome(&req, &state, &session, "users"),
                        &user,
                        live,
                        vec![
                            "Attributes must be a JSON object, like {\"department\": \"sales\"}."
                                .to_owned(),
                        ],
                    );
                }
            };
            state
                .accounts
                .set_role_and_attributes(session.user.id, id, role, attributes, &meta)
                .await
                .map(|_| "Saved.".to_owned())
        }
    };
    match message {
        Ok(message) => Ok(redirect_with(&back, &message)),
        Err(AccountError::CannotLockSelf) => {
            Ok(redirect_with(&back, "You cannot lock your own account."))
        }
        Err(AccountError::Validation(errors)) => {
            let (user, live) = load(&state, id).await?;
            let errors = errors.into_iter().map(|e| e.message).collect();
            detail_page(chrome(&req, &state, &session, "users"), &user, live, errors)
        }
        Err(other) => Err(ApiError::from(other).into()),
    }
}

//! `/admin/users`: search, detail, lock and unlock, revoke sessions, reset MFA,
//! remove passkeys, role and attributes. Each action is decided by the engine and
//! audited.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{SessionView, messages_for};
use crate::accounts::AccountError;
use crate::accounts::passkeys::PasskeyError;
use crate::accounts::service::{UserCursor, UserDetail, UserOrder, UserQuery};
use crate::admin::AdminAction;
use crate::clock::rfc3339;
use crate::http::admin_page::{
    AdminForm, AdminPage, Chrome, Confirmation, PageError, redirect_with, redirect_with_error,
};
use crate::http::problem::ApiError;
use crate::model::{Role, User, UserId, UserStatus};
use crate::routes::ceremony::PasskeyLine;

pub struct UserRow {
    pub id: String,
    pub email: String,
    pub role: &'static str,
    pub status: &'static str,
    /// Sign-ins refused for now after too many failures (the softlock).
    pub softlocked: bool,
    pub failed_logins: u32,
    pub mfa: bool,
    pub created: String,
}

impl UserRow {
    fn of(u: &User, now: i64) -> Self {
        Self {
            id: u.id.to_string(),
            email: u.email.to_string(),
            role: u.role.as_str(),
            status: u.status.as_str(),
            softlocked: u.is_softlocked(now),
            failed_logins: u.failed_logins,
            mfa: u.mfa_enabled,
            created: rfc3339(u.created_at),
        }
    }
}

/// Accounts on one page of the list.
const PAGE_SIZE: usize = 50;

#[derive(Template)]
#[template(path = "admin/users.html")]
struct ListPage {
    chrome: Chrome,
    q: String,
    /// `email` or `newest`.
    sort: &'static str,
    users: Vec<UserRow>,
    /// The next page's link, when there is one.
    next: Option<String>,
    /// Whether this is a later page (offers the first one).
    paged: bool,
    /// The new-account form as posted, after a refusal.
    new_email: String,
    new_role: String,
    /// (field, message) of a refused new account.
    errors: Vec<(String, String)>,
}

impl ListPage {
    fn errors_for(&self, field: &str) -> Vec<String> {
        messages_for(&self.errors, field)
    }

    /// The list's link with this search, in `sort` order, from the start.
    fn sorted_by(&self, sort: &str) -> String {
        list_link(&self.q, sort, None)
    }
}

fn list_link(q: &str, sort: &str, after: Option<&str>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if !q.is_empty() {
        query.append_pair("q", q);
    }
    query.append_pair("sort", sort);
    if let Some(after) = after {
        query.append_pair("after", after);
    }
    format!("/admin/users?{}", query.finish())
}

/// A cursor as the list's links carry it: `e:<email>` or `n:<created>:<id>`.
fn cursor_text(order: UserOrder, user: &User) -> String {
    match order {
        UserOrder::Email => format!("e:{}", user.email),
        UserOrder::Newest => format!("n:{}:{}", user.created_at, user.id),
    }
}

fn parse_cursor(order: UserOrder, text: &str) -> Option<UserCursor> {
    match (order, text.split_once(':')?) {
        (UserOrder::Email, ("e", email)) => Some(UserCursor {
            email: email.to_owned(),
            created_at: 0,
            id: UserId(Uuid::nil()),
        }),
        (UserOrder::Newest, ("n", rest)) => {
            let (created, id) = rest.split_once(':')?;
            Some(UserCursor {
                email: String::new(),
                created_at: created.parse().ok()?,
                id: UserId(Uuid::parse_str(id).ok()?),
            })
        }
        _ => None,
    }
}

/// The list: a search by a part of the e-mail, sorted by e-mail or newest first,
/// a page at a time.
pub async fn list(page: AdminPage) -> Result<HttpResponse, PageError> {
    page.authorize(AdminAction::UserList, None).await?;
    list_page(&page, NewAccount::default()).await
}

/// The new-account form after a refusal.
#[derive(Default)]
struct NewAccount {
    email: String,
    role: String,
    errors: Vec<(String, String)>,
}

async fn list_page(page: &AdminPage, new: NewAccount) -> Result<HttpResponse, PageError> {
    let query = page.query()?;
    let find = |key: &str| {
        query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let q = find("q").to_lowercase();
    let (order, sort) = match find("sort").as_str() {
        "newest" => (UserOrder::Newest, "newest"),
        _ => (UserOrder::Email, "email"),
    };
    let after_text = find("after");
    let after = parse_cursor(order, &after_text);
    let mut found = page
        .state
        .accounts
        .find_users(UserQuery {
            email_contains: q.clone(),
            order,
            after: after.clone(),
            limit: PAGE_SIZE + 1,
        })
        .await?;
    let more = found.len() > PAGE_SIZE;
    found.truncate(PAGE_SIZE);
    let next = found
        .last()
        .filter(|_| more)
        .map(|last| list_link(&q, sort, Some(&cursor_text(order, last))));
    let now = page.state.clock.now();
    let refused = !new.errors.is_empty();
    let mut response = page.render(&ListPage {
        chrome: page.chrome("users"),
        users: found.iter().map(|u| UserRow::of(u, now)).collect(),
        q,
        sort,
        next,
        paged: after.is_some(),
        new_email: new.email,
        new_role: new.role,
        errors: new.errors,
    })?;
    if refused {
        *response.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(response)
}

/// An administrator creates an account (e-mail, a first password, a role); it
/// lands on the new account's page.
pub async fn create(post: AdminForm) -> Result<HttpResponse, PageError> {
    let admin = post.authorize(AdminAction::UserCreate, None).await?;
    let (email, role_text) = (post.form.text("email"), post.form.text("role"));
    let refused = |errors: Vec<(String, String)>| NewAccount {
        email: email.clone(),
        role: role_text.clone(),
        errors,
    };
    let Some(role) = Role::parse(&role_text) else {
        let errors = vec![("role".to_owned(), "choose admin or user".to_owned())];
        return list_page(&post, refused(errors)).await;
    };
    let password = secrecy::SecretString::from(post.form.get("password").unwrap_or("").to_owned());
    match post
        .state
        .accounts
        .create_by_admin(&admin, &email, password, role, &post.meta)
        .await
    {
        Ok(user) => Ok(redirect_with(
            &format!("/admin/users/{}", user.id),
            &format!("Created {} ({}).", user.email, role.as_str()),
        )),
        Err(AccountError::Validation(errors)) => {
            let errors = errors.into_iter().map(|e| (e.field, e.message)).collect();
            list_page(&post, refused(errors)).await
        }
        Err(AccountError::EmailTaken) => {
            let errors = vec![(
                "email".to_owned(),
                "an account with this e-mail, or one that looks like it, exists".to_owned(),
            )];
            list_page(&post, refused(errors)).await
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct DetailPage {
    chrome: Chrome,
    user: UserRow,
    attributes: String,
    last_sign_in: String,
    /// Until when sign-ins are refused (the softlock), if they are.
    softlocked_until: Option<String>,
    sessions: Vec<SessionView>,
    /// The account's passkeys, oldest first (listed only when there are some).
    passkeys: Vec<PasskeyLine>,
    /// (op, label, dangerous)
    actions: Vec<(&'static str, &'static str, bool)>,
    errors: Vec<String>,
}

/// The account's passkeys, as its page lists them.
async fn passkey_views(page: &AdminPage, id: UserId) -> Result<Vec<PasskeyLine>, PageError> {
    let passkeys = page
        .state
        .passkeys
        .of_user(id)
        .await
        .map_err(ApiError::from)?;
    Ok(passkeys.into_iter().map(PasskeyLine::from).collect())
}

fn user_id(text: &str) -> Result<UserId, PageError> {
    Uuid::parse_str(text)
        .map(UserId)
        .map_err(|_| PageError::not_found())
}

/// The user's page; `typed` keeps the attributes text a refused save posted.
fn detail_page(
    page: &AdminPage,
    detail: &UserDetail,
    passkeys: Vec<PasskeyLine>,
    errors: Vec<String>,
    typed: Option<String>,
) -> Result<HttpResponse, PageError> {
    let user = &detail.user;
    let mut actions = Vec::new();
    match user.status {
        UserStatus::Active => actions.push(("lock", "Lock account", true)),
        UserStatus::Locked => actions.push(("unlock", "Unlock account", false)),
        UserStatus::Disabled => actions.push(("enable", "Enable account", false)),
    }
    actions.push(("revoke_sessions", "End every session", true));
    if user.mfa_enabled {
        actions.push(("reset_mfa", "Reset MFA", true));
    }
    if !passkeys.is_empty() {
        actions.push(("reset_passkeys", "Remove passkeys", true));
    }
    if user.status != UserStatus::Disabled {
        actions.push(("disable", "Disable account", true));
    }
    actions.push(("delete", "Delete account", true));
    let mut response = page.render(&DetailPage {
        chrome: page.chrome("users"),
        user: UserRow::of(user, page.state.clock.now()),
        attributes: typed.unwrap_or_else(|| {
            serde_json::to_string_pretty(&Value::Object(user.attributes.clone()))
                .unwrap_or_default()
        }),
        last_sign_in: detail
            .last_sign_in
            .map_or_else(|| "never".to_owned(), rfc3339),
        softlocked_until: user
            .locked_until
            .filter(|_| user.is_softlocked(page.state.clock.now()))
            .map(rfc3339),
        sessions: detail
            .sessions
            .iter()
            .map(|s| SessionView::of(s, false))
            .collect(),
        passkeys,
        actions,
        errors: errors.clone(),
    })?;
    if !errors.is_empty() {
        *response.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(response)
}

pub async fn detail(page: AdminPage, path: web::Path<String>) -> Result<HttpResponse, PageError> {
    let id = user_id(&path)?;
    page.authorize(AdminAction::UserView, Some(id.to_string()))
        .await?;
    let detail = page.state.accounts.user_detail(id).await?;
    let passkeys = passkey_views(&page, id).await?;
    detail_page(&page, &detail, passkeys, Vec::new(), None)
}

/// The page again with `errors`, after a change that was not made, keeping what
/// was typed.
async fn refused(
    post: &AdminForm,
    id: UserId,
    errors: Vec<String>,
) -> Result<HttpResponse, PageError> {
    let detail = post.state.accounts.user_detail(id).await?;
    let passkeys = passkey_views(post, id).await?;
    let typed = post.form.get("attributes").map(str::to_owned);
    detail_page(post, &detail, passkeys, errors, typed)
}

/// Why a change to an administrator was not made.
const LOCKS_OUT: &str = "Not done: it would leave no active administrator able to edit the policies (find, view and update them) on every request.";

/// The question a destructive action asks first, or `None` when it asks none.
fn confirmation(action: AdminAction, user: &User, role: Option<Role>) -> Option<Confirmation> {
    let email = user.email.as_str();
    let (question, consequence, button) = match action {
        AdminAction::UserLock => (
            format!("Lock {email}?"),
            "The account can no longer sign in, and every session it has ends now. Unlocking lets it sign in again.".to_owned(),
            format!("Lock {email}"),
        ),
        AdminAction::UserRevokeSessions => (
            format!("End every session of {email}?"),
            "Every token and browser session of the account stops working now; it must sign in again.".to_owned(),
            "End every session".to_owned(),
        ),
        AdminAction::UserResetMfa => (
            format!("Reset MFA for {email}?"),
            "The authenticator and backup codes are removed and the account's sessions end; it signs in with its password alone until it enrols again.".to_owned(),
            format!("Reset MFA for {email}"),
        ),
        AdminAction::UserResetPasskeys => (
            format!("Remove every passkey of {email}?"),
            "The account's passkeys are removed now, and every session of the account ends (one that planted a passkey could plant another); it signs in with its password until it registers a passkey again.".to_owned(),
            format!("Remove the passkeys of {email}"),
        ),
        AdminAction::UserDisable => (
            format!("Disable {email}?"),
            "The account can no longer sign in and every session it has ends now; it and what it owns are kept, and enabling it lets it sign in again.".to_owned(),
            format!("Disable {email}"),
        ),
        AdminAction::UserDelete => (
            format!("Delete {email} for good?"),
            "The account and everything it owns — its sessions, MFA, documents, webhooks and their deliveries — are deleted now and cannot be restored. The audit log keeps its events.".to_owned(),
            format!("Delete {email}"),
        ),
        AdminAction::UserUpdate => match role {
            Some(role) if role != user.role => (
                format!("Make {email} {} {}?", if role == Role::Admin { "an" } else { "a" }, role.as_str()),
                "Changing the role ends the account's sessions, and the policies decide for the new role from its next sign-in.".to_owned(),
                format!("Make {email} {}", role.as_str()),
            ),
            _ => return None,
        },
        _ => return None,
    };
    Some(Confirmation {
        question,
        consequence,
        button,
        cancel: format!("/admin/users/{}", user.id),
    })
}

/// Every action names the account in its message; the destructive ones ask first.
pub async fn action(post: AdminForm, path: web::Path<String>) -> Result<HttpResponse, PageError> {
    let id = user_id(&path)?;
    let op = post.form.text("op");
    let action = match op.as_str() {
        "lock" => AdminAction::UserLock,
        "unlock" => AdminAction::UserUnlock,
        "revoke_sessions" => AdminAction::UserRevokeSessions,
        "reset_mfa" => AdminAction::UserResetMfa,
        "reset_passkeys" => AdminAction::UserResetPasskeys,
        "update" => AdminAction::UserUpdate,
        "end_session" => AdminAction::UserRevokeSessions,
        "disable" => AdminAction::UserDisable,
        "enable" => AdminAction::UserUpdate,
        "delete" => AdminAction::UserDelete,
        _ => return Err(PageError::not_found()),
    };
    let admin = post.authorize(action, Some(id.to_string())).await?;
    let (accounts, meta) = (&post.state.accounts, &post.meta);
    let back = format!("/admin/users/{id}");
    let user = accounts.user_detail(id).await?.user;
    let email = user.email.to_string();
    let role = Role::parse(&post.form.text("role"));
    if op == "end_session" {
        let Ok(session) = Uuid::parse_str(&post.form.text("session")) else {
            return Err(PageError::not_found());
        };
        return match accounts
            .end_session_by_admin(&admin, id, session, meta)
            .await
        {
            Ok(()) => Ok(redirect_with(
                &back,
                &format!("Ended one session of {email}."),
            )),
            Err(AccountError::SessionNotFound) => Ok(redirect_with_error(
                &back,
                "That session had already ended.",
            )),
            Err(other) => Err(other.into()),
        };
    }
    if !post.confirmed()
        && let Some(ask) = confirmation(action, &user, role)
    {
        return post.ask("users", ask);
    }
    if action == AdminAction::UserResetPasskeys {
        return match post.state.passkeys.reset(&admin, id, meta).await {
            Ok(removed) => Ok(redirect_with(
                &back,
                &format!("Removed {removed} passkey(s) of {email}; every session of it ended."),
            )),
            Err(PasskeyError::OwnAccount) => Ok(redirect_with_error(
                &back,
                "Your own passkeys are deleted one by one on your account page, with your password.",
            )),
            Err(other) => Err(ApiError::from(other).into()),
        };
    }
    // An administrator taken away must not be the last who could mend the policies.
    // (One's own account is refused by the account service, with its own reason.)
    let leaves = matches!(
        action,
        AdminAction::UserLock | AdminAction::UserDisable | AdminAction::UserDelete
    ) && admin.user_id() != Some(id);
    if leaves
        && post
            .state
            .policies
            .account_change_locks_out(id, None)
            .await?
    {
        return Ok(redirect_with_error(&back, LOCKS_OUT));
    }
    let message = match action {
        AdminAction::UserUpdate if op == "enable" => accounts
            .enable(&admin, id, meta)
            .await
            .map(|_| format!("Enabled {email}; it can sign in again.")),
        AdminAction::UserDisable => accounts
            .disable(&admin, id, meta)
            .await
            .map(|_| format!("Disabled {email}; its sessions ended.")),
        AdminAction::UserDelete => {
            return match accounts.delete_by_admin(&admin, id, meta).await {
                Ok(()) => Ok(redirect_with(
                    "/admin/users",
                    &format!("Deleted {email} and everything it owned."),
                )),
                Err(AccountError::CannotRemoveSelf) => Ok(redirect_with_error(
                    &back,
                    "You cannot delete your own account.",
                )),
                Err(other) => Err(other.into()),
            };
        }
        AdminAction::UserLock => accounts
            .lock(&admin, id, meta)
            .await
            .map(|_| format!("Locked {email}; its sessions ended.")),
        AdminAction::UserUnlock => accounts
            .unlock(&admin, id, meta)
            .await
            .map(|_| format!("Unlocked {email}.")),
        AdminAction::UserRevokeSessions => accounts
            .revoke_all_sessions(&admin, id, meta)
            .await
            .map(|n| format!("Ended {n} session(s) of {email}.")),
        AdminAction::UserResetMfa => accounts
            .reset_mfa(&admin, id, meta)
            .await
            .map(|_| format!("Reset MFA for {email}.")),
        _ => {
            let Some(role) = role else {
                return refused(&post, id, vec!["Choose a role: admin or user.".to_owned()]).await;
            };
            let attributes = match serde_json::from_str::<Value>(&post.form.text("attributes")) {
                Ok(Value::Object(map)) => map,
                _ if post.form.text("attributes").is_empty() => Map::new(),
                _ => {
                    return refused(
                        &post,
                        id,
                        vec![
                            "Attributes must be a JSON object, like {\"department\": \"sales\"}."
                                .to_owned(),
                        ],
                    )
                    .await;
                }
            };
            let mut changed = user.clone();
            changed.role = role;
            changed.attributes = attributes.clone();
            if post
                .state
                .policies
                .account_change_locks_out(id, Some(changed))
                .await?
            {
                return Ok(redirect_with_error(&back, LOCKS_OUT));
            }
            accounts
                .set_role_and_attributes(&admin, id, role, attributes, meta)
                .await
                .map(|_| format!("Saved the role and attributes of {email}."))
        }
    };
    match message {
        Ok(message) => Ok(redirect_with(&back, &message)),
        Err(AccountError::CannotLockSelf) => Ok(redirect_with_error(
            &back,
            "You cannot lock your own account.",
        )),
        Err(AccountError::CannotRemoveSelf) => Ok(redirect_with_error(
            &back,
            "You cannot disable your own account.",
        )),
        Err(AccountError::Validation(errors)) => {
            refused(&post, id, errors.into_iter().map(|e| e.message).collect()).await
        }
        Err(other) => Err(other.into()),
    }
}

//! The gate's sign-in portal, at `GATE_PORTAL_URL`: `/gate/login` (e-mail and
//! password, then a TOTP or backup code; the login limits and the softlock apply),
//! `/gate/` (who you are, your sessions, your passkeys — managed by `passkeys` —
//! sign out) and `POST /gate/logout`.
//! Server-rendered; the sign-in page also offers a passkey (`/gate/login/passkey/
//! start` and `finish`), and the code step the account's passkeys in place of the
//! code (`/gate/login/code/passkey/start` and `finish`), through
//! `static/passkeys.js`, the one script it runs, with the same limits, refusals
//! and `rd` rules; without the script the password and code forms work as ever. Posts are refused unless they come from the
//! portal's own origin, and a signed-in post carries the session's CSRF token.
//!
//! The cookie is HttpOnly, `Secure` when the portal is https, `SameSite=Lax` (the
//! redirect back to an app must carry it), on `GATE_COOKIE_DOMAIN` when set and
//! host-only otherwise. `rd` (where to return) passes [`GateService::safe_return`]
//! or the browser lands on `/gate/`.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use secrecy::{ExposeSecret, SecretString};

use super::{COOKIE, gate_of};
use crate::accounts::AccountError;
use crate::accounts::browser_sessions::{BrowserSession, PENDING_SECONDS, SignIn, SignInError};
use crate::accounts::passkeys::PasskeyError;
use crate::audit::RequestMeta;
use crate::clock::rfc3339;
use crate::gate::{GateService, handoff};
use crate::http::ClientIp;
use crate::http::admin_page::{
    Flash, Form, PAGE_CONTENT_SECURITY_POLICY, PageError, allow_own_scripts, end_previous,
};
use crate::http::json::Body;
use crate::http::problem::ApiError;
use crate::http::rate_limit::{enforce, enforce_code_limits, write_headers};
use crate::limits::{LimitKey, RouteClass};
use crate::model::Email;
use crate::routes::ceremony;
use crate::state::AppState;

/// The cookie of a sign-in waiting for its code.
const PENDING_COOKIE: &str = "portcullis_gate_mfa";

pub fn configure(cfg: &mut web::ServiceConfig) {
    use crate::routes::{get, post, resource};
    cfg.service(
        resource("/gate/login", "GET, HEAD, POST")
            .route(web::get().to(form))
            .route(web::head().to(form))
            .route(web::post().to(submit)),
    )
    .service(
        resource("/gate/login/code", "GET, HEAD, POST")
            .route(web::get().to(code_form))
            .route(web::head().to(code_form))
            .route(web::post().to(code_submit)),
    )
    .service(post("/gate/login/passkey/start", passkey_start))
    .service(post("/gate/login/passkey/finish", passkey_finish))
    .service(post("/gate/login/code/passkey/start", code_passkey_start))
    .service(post("/gate/login/code/passkey/finish", code_passkey_finish))
    .service(post("/gate/logout", logout))
    .service(post(
        "/gate/passkeys/start",
        super::passkeys::register_start,
    ))
    .service(post(
        "/gate/passkeys/finish",
        super::passkeys::register_finish,
    ))
    .service(post("/gate/passkeys/rename", super::passkeys::rename))
    .service(post("/gate/passkeys/delete", super::passkeys::delete))
    .service(get("/gate/", home))
    .service(web::resource("/gate").route(web::get().to(|| async {
        HttpResponse::MovedPermanently()
            .insert_header((header::LOCATION, "/gate/"))
            .finish()
    })));
}

#[derive(Template)]
#[template(path = "gate/login.html")]
struct LoginPage<'a> {
    error: Option<&'a str>,
    email: &'a str,
    rd: &'a str,
    code_step: bool,
    /// Passkeys are configured: the password step offers them.
    passkeys: bool,
    /// The code step offers the account's passkeys instead.
    code_passkey: bool,
    /// The host (and port) the sign-in continues to, named on the page.
    destination: &'a str,
}

/// Where a sign-in is.
#[derive(Clone, Copy)]
enum Step {
    Password,
    /// The password was right; a code is owed (or, when `passkey`, one of the
    /// account's passkeys instead).
    Code {
        passkey: bool,
    },
}

/// The code step of the sign-in `pending` names.
async fn code_step(state: &AppState, pending: &str) -> Result<Step, PageError> {
    let passkey = ceremony::code_step_offers_passkey(&state.gate_sessions, pending).await?;
    Ok(Step::Code { passkey })
}

/// The portal pages' CSP: the admin pages' rules, except that a form may also
/// lead (by its redirect) back to a gate host — browsers hold a sign-in's redirect
/// to `form-action` too.
fn portal_content_security_policy(gate: &GateService) -> String {
    let scheme = if gate.portal_url().starts_with("https://") {
        "https"
    } else {
        "http"
    };
    let targets: Vec<String> = gate
        .hosts()
        .iter()
        .map(|host| {
            let text = host.to_string();
            if text.contains(':') {
                format!("{scheme}://{text}")
            } else {
                format!("{scheme}://{text}:*")
            }
        })
        .collect();
    PAGE_CONTENT_SECURITY_POLICY.replace(
        "form-action 'self'",
        &format!("form-action 'self' {}", targets.join(" ")),
    )
}

fn page(
    state: &AppState,
    gate: &GateService,
    status: StatusCode,
    error: Option<&str>,
    email: &str,
    rd: &str,
    step: Step,
) -> Result<HttpResponse, PageError> {
    let passkeys = state.passkeys.enabled() && matches!(step, Step::Password);
    let code_passkey = matches!(step, Step::Code { passkey: true });
    // `rd` is safe here (or empty): its host is a gate host.
    let destination = handoff::origin_of(rd)
        .and_then(|origin| origin.split_once("://"))
        .map_or("", |(_, authority)| authority);
    let mut response = crate::http::admin_page::render(&LoginPage {
        error,
        email,
        rd,
        code_step: matches!(step, Step::Code { .. }),
        passkeys,
        code_passkey,
        destination,
    })?;
    *response.status_mut() = status;
    if let Ok(csp) = header::HeaderValue::from_str(&portal_content_security_policy(gate)) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    if passkeys || code_passkey {
        allow_own_scripts(&mut response);
    }
    Ok(response)
}

/// The portal's cookies. The session's reaches every gate host (on
/// `GATE_COOKIE_DOMAIN`, or host-only); a pending sign-in's stays on the portal's
/// own sign-in pages, so no app behind the gate ever receives it.
fn session_cookie(
    gate_settings: &crate::config::GateSettings,
    name: &'static str,
    value: &SecretString,
    max_age: i64,
) -> Cookie<'static> {
    let pending = name == PENDING_COOKIE;
    let mut cookie = host_cookie(
        name,
        value.expose_secret().to_owned(),
        if pending { "/gate/login" } else { "/" },
        gate_settings.portal_is_https(),
        max_age,
    );
    if let (false, Some(domain)) = (pending, &gate_settings.cookie_domain) {
        cookie.set_domain(domain.clone());
    }
    cookie
}

/// A cookie of the gate's, HttpOnly and `SameSite=Lax` (the redirect back to an
/// app must carry it), `Secure` on https, for this host alone (no `Domain`).
pub(super) fn host_cookie(
    name: &'static str,
    value: String,
    path: &'static str,
    https: bool,
    max_age: i64,
) -> Cookie<'static> {
    Cookie::build(name, value)
        .path(path)
        .http_only(true)
        .secure(https)
        .same_site(SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::seconds(max_age.max(0)))
        .finish()
}

fn forget(gate_settings: &crate::config::GateSettings, name: &'static str) -> Cookie<'static> {
    let mut gone = session_cookie(gate_settings, name, &SecretString::from(String::new()), 0);
    gone.make_removal();
    gone
}

/// Refuses a post that did not come from the portal's own pages: `Origin` must be
/// the portal's (its pages set a `same-origin` referrer policy, so browsers send
/// it even over plain http, where they send no `Sec-Fetch-Site`).
pub(super) fn from_the_portal(req: &HttpRequest, gate: &GateService) -> Result<(), PageError> {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let refused = || PageError::forbidden("Cross-site requests are refused.");
    if let Some(site) = header("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return Err(refused());
    }
    match header("origin") {
        Some(origin) if !origin.eq_ignore_ascii_case(gate.portal_url()) => {
            // `null` comes from a same-origin form under a strict referrer policy;
            // only `Sec-Fetch-Site` (above) can vouch for it.
            if !(origin == "null" && header("sec-fetch-site").is_some()) {
                return Err(refused());
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

pub(super) fn the_gate(
    state: &AppState,
) -> Result<(&GateService, &crate::config::GateSettings), PageError> {
    let gate = gate_of(state)?;
    let settings = state.settings.gate.as_ref().ok_or(ApiError::NotFound)?;
    Ok((gate, settings))
}

fn query_rd(req: &HttpRequest) -> String {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "rd")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Who is signed in, for [`landing`]: a session already resumed, or the cookie
/// of one just made (resumed only if a handoff code is to be minted for it).
enum SignedIn<'a> {
    Session(&'a BrowserSession),
    Cookie(&'a SecretString),
}

/// Where to go once signed in: a safe `rd` — by a one-time code when it asks for
/// the sign-in on an app host the portal's cookie does not reach (see
/// `crate::gate::handoff`) — or the portal's own page.
async fn landing(
    state: &AppState,
    gate: &GateService,
    rd: &str,
    signed_in: SignedIn<'_>,
) -> Result<String, PageError> {
    let portal_page = || format!("{}/gate/", gate.portal_url());
    let Some(to) = gate.handoff_return(rd) else {
        return Ok(gate.safe_return(rd).unwrap_or_else(portal_page));
    };
    // A host the portal's own cookie reaches needs no code: straight there.
    if !gate.needs_handoff(&to.origin) {
        return Ok(to.rd);
    }
    let resumed;
    let session = match signed_in {
        SignedIn::Session(session) => session,
        SignedIn::Cookie(cookie) => {
            resumed = state
                .gate_sessions
                .resume(cookie.expose_secret())
                .await
                .map_err(|e| ApiError::Unexpected(anyhow::anyhow!(e)))?;
            match &resumed {
                Some(session) => session,
                None => return Ok(portal_page()),
            }
        }
    };
    let origin = to.origin.clone();
    match gate.handoffs().mint(to, session) {
        Ok(code) => Ok(handoff::redeem_url(&origin, &code)),
        // The portal's own page, signed in; the app can be opened again later.
        Err(handoff::MintRefused::TooMany) => Ok(portal_page()),
        Err(handoff::MintRefused::Randomness(e)) => Err(ApiError::Unexpected(e.into()).into()),
    }
}

pub async fn form(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let (gate, _) = the_gate(&state)?;
    let rd = query_rd(&req);
    // Already signed in: straight back (a HEAD, which no browser follows, mints
    // no handoff code).
    if let Some(cookie) = req.cookie(COOKIE)
        && let Ok(Some(session)) = state.gate_sessions.resume(cookie.value()).await
    {
        let to = if req.method() == actix_web::http::Method::HEAD {
            format!("{}/gate/", gate.portal_url())
        } else {
            landing(&state, gate, &rd, SignedIn::Session(&session)).await?
        };
        return Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, to))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish());
    }
    let rd = gate.safe_return(&rd).unwrap_or_default();
    page(&state, gate, StatusCode::OK, None, "", &rd, Step::Password)
}

fn refusal(error: SignInError) -> Result<&'static str, PageError> {
    Ok(match error {
        SignInError::Account(AccountError::InvalidCredentials) => "Invalid email or password.",
        SignInError::Account(AccountError::InvalidMfaCode | AccountError::InvalidMfaToken) => {
            "Invalid authentication code."
        }
        SignInError::Account(AccountError::TemporarilyLocked) => {
            "Too many failed sign-ins. Please wait and try again."
        }
        SignInError::PendingExpired => "The sign-in expired. Please start again.",
        SignInError::Account(AccountError::Password(_)) => {
            "Too many sign-ins are being processed. Please try again shortly."
        }
        other => return Err(ApiError::Unexpected(anyhow::anyhow!(other)).into()),
    })
}

fn too_many(
    state: &AppState,
    gate: &GateService,
    decision: &crate::limits::Decision,
    rd: &str,
    step: Step,
) -> Result<HttpResponse, PageError> {
    let mut response = page(
        state,
        gate,
        StatusCode::TOO_MANY_REQUESTS,
        Some("Too many attempts. Please wait a minute and try again."),
        "",
        rd,
        step,
    )?;
    write_headers(response.headers_mut(), decision);
    Ok(response)
}

async fn signed_in(
    state: &AppState,
    (gate, settings): (&GateService, &crate::config::GateSettings),
    value: &SecretString,
    rd: &str,
) -> Result<HttpResponse, PageError> {
    Ok(HttpResponse::SeeOther()
        .insert_header((
            header::LOCATION,
            landing(state, gate, rd, SignedIn::Cookie(value)).await?,
        ))
        .cookie(session_cookie(
            settings,
            COOKIE,
            value,
            settings.session_max_seconds,
        ))
        .cookie(forget(settings, PENDING_COOKIE))
        .finish())
}

pub async fn submit(
    req: HttpRequest,
    ip: ClientIp,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Body,
) -> Result<HttpResponse, PageError> {
    let (gate, settings) = the_gate(&state)?;
    from_the_portal(&req, gate)?;
    let form = Form::parse(&body.0);
    let (email, rd) = (form.text("email"), form.text("rd"));
    let rd = gate.safe_return(&rd).unwrap_or_default();
    let limited = enforce(&req, RouteClass::LoginIp, &LimitKey::ip(ip.0)).and_then(|()| {
        match Email::parse(&email) {
            Ok(parsed) => enforce(&req, RouteClass::LoginAccount, &LimitKey::account(&parsed)),
            Err(_) => Ok(()),
        }
    });
    if let Err(ApiError::RateLimited(decision)) = limited {
        return too_many(&state, gate, &decision, &rd, Step::Password);
    }
    let password = SecretString::from(form.get("password").unwrap_or("").to_owned());
    end_previous(&req, &state.gate_sessions, COOKIE, &meta).await?;
    match state.gate_sessions.sign_in(&email, password, &meta).await {
        Ok(SignIn::Done(value)) => signed_in(&state, (gate, settings), &value, &rd).await,
        // Only admin sessions require an enrolled factor.
        Ok(SignIn::NeedsEnrolment(_)) => Err(ApiError::Unexpected(anyhow::anyhow!(
            "a gate sign-in asked for an MFA enrolment"
        ))
        .into()),
        Ok(SignIn::NeedsCode(value)) => {
            let rd_query: String = url::form_urlencoded::byte_serialize(rd.as_bytes()).collect();
            Ok(HttpResponse::SeeOther()
                .insert_header((header::LOCATION, format!("/gate/login/code?rd={rd_query}")))
                .cookie(session_cookie(
                    settings,
                    PENDING_COOKIE,
                    &value,
                    PENDING_SECONDS as i64,
                ))
                .finish())
        }
        Err(error) => page(
            &state,
            gate,
            StatusCode::UNAUTHORIZED,
            Some(refusal(error)?),
            &email,
            &rd,
            Step::Password,
        ),
    }
}

pub async fn code_form(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let (gate, _) = the_gate(&state)?;
    let rd = gate.safe_return(&query_rd(&req)).unwrap_or_default();
    let Some(pending) = req.cookie(PENDING_COOKIE) else {
        return Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, "/gate/login"))
            .finish());
    };
    let step = code_step(&state, pending.value()).await?;
    page(&state, gate, StatusCode::OK, None, "", &rd, step)
}

pub async fn code_submit(
    req: HttpRequest,
    ip: ClientIp,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Body,
) -> Result<HttpResponse, PageError> {
    let (gate, settings) = the_gate(&state)?;
    from_the_portal(&req, gate)?;
    let form = Form::parse(&body.0);
    let rd = gate.safe_return(&form.text("rd")).unwrap_or_default();
    let Some(pending) = req.cookie(PENDING_COOKIE) else {
        return page(
            &state,
            gate,
            StatusCode::UNAUTHORIZED,
            Some("The sign-in expired. Please start again."),
            "",
            &rd,
            Step::Password,
        );
    };
    let account = state.gate_sessions.pending_user(pending.value());
    if let Err(ApiError::RateLimited(decision)) = enforce_code_limits(&req, ip.0, account) {
        let step = Step::Code { passkey: false };
        return too_many(&state, gate, &decision, &rd, step);
    }
    let step = code_step(&state, pending.value()).await?;
    end_previous(&req, &state.gate_sessions, COOKIE, &meta).await?;
    match state
        .gate_sessions
        .sign_in_code(pending.value(), &form.text("code"), &meta)
        .await
    {
        Ok(value) => signed_in(&state, (gate, settings), &value, &rd).await,
        Err(error) => page(
            &state,
            gate,
            StatusCode::UNAUTHORIZED,
            Some(refusal(error)?),
            "",
            &rd,
            step,
        ),
    }
}

/// `POST /gate/login/passkey/start`: options for a passkey sign-in (the address's
/// sign-in limit applies).
pub async fn passkey_start(
    req: HttpRequest,
    ip: ClientIp,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let (gate, _) = the_gate(&state)?;
    from_the_portal(&req, gate)?;
    ceremony::sign_in_start(&req, ip.0, &state)
}

/// `POST /gate/login/passkey/finish`: the assertion (a sign-in attempt of the
/// address's); signed in, on to a safe `rd` (or the portal's own page), as after
/// a password and a code.
pub async fn passkey_finish(
    req: HttpRequest,
    ip: ClientIp,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Body,
) -> Result<HttpResponse, PageError> {
    let (gate, settings) = the_gate(&state)?;
    from_the_portal(&req, gate)?;
    if let Some(refusal) = ceremony::sign_in_attempt(&req, ip.0) {
        return Ok(refusal);
    }
    let form = Form::parse(&body.0);
    let rd = gate.safe_return(&form.text("rd")).unwrap_or_default();
    let failed = || ceremony::refused(StatusCode::UNAUTHORIZED);
    let Some(credential) = ceremony::credential(&form) else {
        return Ok(failed());
    };
    end_previous(&req, &state.gate_sessions, COOKIE, &meta).await?;
    match state
        .gate_sessions
        .sign_in_passkey(&form.text("ceremony"), &credential, &meta)
        .await
    {
        Ok(value) => passkey_signed_in(&state, (gate, settings), &value, &rd).await,
        Err(
            SignInError::PendingExpired
            | SignInError::Passkey(PasskeyError::SignInFailed | PasskeyError::CeremonyInvalid),
        ) => Ok(failed()),
        Err(other) => Err(ApiError::from(other).into()),
    }
}

/// Signed in by a passkey ceremony: the session's cookie, and on to `rd` (or the
/// portal's own page).
async fn passkey_signed_in(
    state: &AppState,
    (gate, settings): (&GateService, &crate::config::GateSettings),
    value: &SecretString,
    rd: &str,
) -> Result<HttpResponse, PageError> {
    let landing = landing(state, gate, rd, SignedIn::Cookie(value)).await?;
    let mut answer = HttpResponse::Ok();
    answer
        .cookie(session_cookie(
            settings,
            COOKIE,
            value,
            settings.session_max_seconds,
        ))
        .cookie(forget(settings, PENDING_COOKIE));
    Ok(ceremony::next(answer, &landing))
}

/// `POST /gate/login/code/passkey/start`: options for answering the pending
/// sign-in's code step with one of the account's passkeys.
pub async fn code_passkey_start(
    req: HttpRequest,
    ip: ClientIp,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let (gate, _) = the_gate(&state)?;
    from_the_portal(&req, gate)?;
    ceremony::code_start(&req, ip.0, &state.gate_sessions, PENDING_COOKIE).await
}

/// `POST /gate/login/code/passkey/finish`: the assertion in place of the code;
/// signed in, on to a safe `rd`.
pub async fn code_passkey_finish(
    req: HttpRequest,
    ip: ClientIp,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Body,
) -> Result<HttpResponse, PageError> {
    let (gate, settings) = the_gate(&state)?;
    from_the_portal(&req, gate)?;
    let form = Form::parse(&body.0);
    let rd = gate.safe_return(&form.text("rd")).unwrap_or_default();
    let cookies = (COOKIE, PENDING_COOKIE);
    let finished =
        ceremony::code_finish(&req, ip.0, &state.gate_sessions, cookies, &form, &meta).await?;
    Ok(match finished {
        Ok(value) => passkey_signed_in(&state, (gate, settings), &value, &rd).await?,
        Err(refusal) => refusal,
    })
}

/// The portal session of a request, if it is good.
pub(super) async fn session_of(
    req: &HttpRequest,
    state: &AppState,
) -> Result<Option<BrowserSession>, PageError> {
    let Some(cookie) = req.cookie(COOKIE) else {
        return Ok(None);
    };
    state
        .gate_sessions
        .resume(cookie.value())
        .await
        .map_err(|e| PageError::Problem(ApiError::Unexpected(anyhow::anyhow!(e))))
}

struct SessionLine {
    created: String,
    last_used: String,
    ip: String,
    user_agent: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "gate/home.html")]
struct HomePage {
    email: String,
    role: &'static str,
    csrf: String,
    idle_minutes: i64,
    max_hours: i64,
    sessions: Vec<SessionLine>,
    /// The account's passkeys; `None` when passkeys are not configured.
    passkeys: Option<Vec<ceremony::PasskeyLine>>,
    /// Adding a passkey asks for a code too (MFA is on).
    with_code: bool,
    /// Where the passkey section's forms post.
    section: &'static ceremony::AccountPage,
    /// The one-time message a passkey form left.
    flash: Option<Flash>,
}

pub async fn home(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let (_, settings) = the_gate(&state)?;
    let Some(session) = session_of(&req, &state).await? else {
        return Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, "/gate/login"))
            .finish());
    };
    let sessions = state
        .accounts
        .sessions_of(session.user.id, session.session_id)
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .map(|info| SessionLine {
            created: rfc3339(info.session.created_at),
            last_used: rfc3339(info.session.last_used_at),
            ip: info.session.ip.clone().unwrap_or_default(),
            user_agent: info.session.user_agent.clone().unwrap_or_default(),
            current: info.current,
        })
        .collect();
    let passkeys = ceremony::passkey_lines(&state, &session).await?;
    let scripted = passkeys.is_some();
    let flash = super::passkeys::flash_of(&req);
    let flashed = flash.is_some();
    let mut response = crate::http::admin_page::render(&HomePage {
        email: session.user.email.to_string(),
        role: session.user.role.as_str(),
        csrf: session.csrf().to_owned(),
        idle_minutes: settings.session_idle_seconds / 60,
        max_hours: settings.session_max_seconds / 3600,
        sessions,
        passkeys,
        with_code: session.user.mfa_enabled,
        section: &super::passkeys::ACCOUNT,
        flash,
    })?;
    if flashed {
        let _ = response.add_cookie(&super::passkeys::flash_removal());
    }
    if scripted {
        allow_own_scripts(&mut response);
    }
    Ok(response)
}

/// Ends the portal session — and with it access to every app behind the gate —
/// and the account session under it.
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Body,
) -> Result<HttpResponse, PageError> {
    let (gate, settings) = the_gate(&state)?;
    from_the_portal(&req, gate)?;
    let form = Form::parse(&body.0);
    if let Some(session) = session_of(&req, &state).await? {
        if !session.csrf_matches(form.get("csrf").unwrap_or("")) {
            return Err(PageError::forbidden(
                "The form's security token is missing or wrong. Reload the page and try again.",
            ));
        }
        if let Err(error) = state.gate_sessions.sign_out(&session, &meta).await {
            // The session is already refused in memory; the browser forgets it too,
            // and is told the sign-out could not be recorded.
            let mut response = PageError::from(ApiError::from(error)).error_response();
            response
                .add_cookie(&forget(settings, COOKIE))
                .map_err(|e| ApiError::Unexpected(anyhow::anyhow!(e)))?;
            return Ok(response);
        }
    }
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/gate/login"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            PAGE_CONTENT_SECURITY_POLICY,
        ))
        .cookie(forget(settings, COOKIE))
        .finish())
}

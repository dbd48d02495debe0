//! The demo's own webhook receiver, on loopback: the demo points an administrator's
//! webhook (every event) at it, and it checks each delivery's Standard Webhooks
//! signature and prints what arrived, so a user sees signed deliveries happen.
//! Registered by `portcullis demo` only.

use actix_web::{HttpRequest, HttpResponse, web};
use uuid::Uuid;

use crate::demo::webhook::is_demo_webhook;
use crate::http::json::Body;
use crate::state::AppState;
use crate::webhooks::signing::verify;

pub const PATH: &str = "/demo/webhook-receiver";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(PATH, web::post().to(receive));
}

/// Checks a delivery against the secrets of the webhook named in `?webhook=`.
async fn receive(req: HttpRequest, state: web::Data<AppState>, body: Body) -> HttpResponse {
    let body = body.0;
    let webhook = req
        .query_string()
        .strip_prefix("webhook=")
        .and_then(|id| Uuid::parse_str(id).ok());
    let Some(Ok(Some(target))) = (match webhook {
        Some(id) => Some(state.webhooks.target(id).await),
        None => None,
    }) else {
        return HttpResponse::NotFound().finish();
    };
    // Only the demo's own webhook: the receiver is no oracle for anyone else's.
    if !is_demo_webhook(&state, &target.webhook).await {
        return HttpResponse::NotFound().finish();
    }
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let now = state.clock.now();
    let valid = target.secrets.iter().any(|secret| {
        verify(
            secret,
            header("webhook-id"),
            header("webhook-timestamp"),
            header("webhook-signature"),
            &body,
            now,
        )
        .is_ok()
    });
    let event_type = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["type"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned());
    println!(
        "demo receiver: {event_type} ({}) — signature {}",
        header("webhook-id").unwrap_or("?"),
        if valid { "verified" } else { "INVALID" }
    );
    if valid {
        HttpResponse::NoContent().finish()
    } else {
        HttpResponse::Unauthorized().finish()
    }
}

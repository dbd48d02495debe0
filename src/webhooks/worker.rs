//! The delivery worker: claims due deliveries from the outbox, sends them with
//! bounded concurrency, and records every attempt. 2xx is delivered; anything else
//! is retried after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h (each ±10 %), then
//! given up. `410 Gone` disables the webhook at once, and so do
//! `WEBHOOK_MAX_CONSECUTIVE_FAILURES` failed attempts in a row. A claim is a lease,
//! not a removal: work interrupted by a crash or a restart is picked up again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use secrecy::ExposeSecret;
use uuid::Uuid;

use super::service::{Target, WebhookService};
use super::signing::signature_header;
use super::ssrf::{GuardedResolver, Refusal};
use crate::db::DbError;
use crate::db::webhooks::{self as sql, DeliveryRow};

/// Seconds to wait after failed attempt n (1-based); after the last, give up.
pub const RETRY_SCHEDULE: [i64; 7] = [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000];
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a claimed delivery stays reserved before it is due again.
const LEASE_SECONDS: i64 = 60;
const CLAIM_BATCH: usize = 256;
const EXCERPT_BYTES: usize = 1024;
const IDLE_POLL: Duration = Duration::from_millis(250);

/// The wait after failed attempt `attempt`, with ±10 % jitter; `None` after the last.
pub fn retry_delay(attempt: i64, jitter: f64) -> Option<i64> {
    let index = usize::try_from(attempt.checked_sub(1)?).ok()?;
    let base = *RETRY_SCHEDULE.get(index)? as f64;
    Some((base * (1.0 + 0.1 * jitter.clamp(-1.0, 1.0))).round() as i64)
}

/// What a claimed delivery's webhook allows.
#[derive(Clone)]
enum Ready {
    Send(Arc<Target>),
    /// Its credential or signing secret does not open.
    Unopenable,
    /// Disabled, deleted, or its owner not active.
    Skip,
}

/// What one attempt came to.
struct AttemptResult {
    status_code: Option<i64>,
    duration_ms: i64,
    error_class: &'static str,
    excerpt: String,
}

impl AttemptResult {
    fn delivered(&self) -> bool {
        self.error_class == "none"
    }
}

fn classify(error: &reqwest::Error) -> &'static str {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if cause.downcast_ref::<Refusal>().is_some() {
            return "refused";
        }
        source = cause.source();
    }
    if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else if error.is_redirect() {
        "redirect"
    } else {
        "other"
    }
}

fn refused(refusal: &Refusal) -> AttemptResult {
    AttemptResult {
        status_code: None,
        duration_ms: 0,
        error_class: "refused",
        excerpt: refusal.to_string(),
    }
}

/// The HTTP client every delivery uses: no redirects, no proxies, a 15 s timeout,
/// and host names resolved through the SSRF guard.
pub fn client(service: &WebhookService) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        // A proxy from HTTP(S)_PROXY would make the connection, not the guard.
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver {
            guard: service.guard().clone(),
        }))
        .user_agent(concat!("Portcullis-Webhooks/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(64)
        .build()
}

async fn attempt(
    client: &reqwest::Client,
    service: &WebhookService,
    target: &Target,
    delivery: &DeliveryRow,
) -> AttemptResult {
    let Ok(url) = reqwest::Url::parse(&target.webhook.url) else {
        return refused(&Refusal::BadUrl);
    };
    if let Err(refusal) = service.guard().check_url(&url).await {
        return refused(&refusal);
    }
    let timestamp = service.clock().now();
    let body = delivery.payload.as_bytes();
    let secrets: Vec<_> = target.secrets.iter().collect();
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &delivery.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header(
            "webhook-signature",
            signature_header(&secrets, &delivery.id, timestamp, body),
        )
        .body(delivery.payload.clone());
    for (name, value) in target.credential.headers() {
        request = request.header(name, value.expose_secret());
    }
    let started = Instant::now();
    let outcome = request.send().await;
    let elapsed =
        |started: Instant| i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    match outcome {
        Err(error) => AttemptResult {
            status_code: None,
            duration_ms: elapsed(started),
            error_class: classify(&error),
            excerpt: String::new(),
        },
        Ok(mut response) => {
            let status = response.status();
            let mut excerpt = Vec::new();
            while excerpt.len() < EXCERPT_BYTES {
                match response.chunk().await {
                    Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                    _ => break,
                }
            }
            excerpt.truncate(EXCERPT_BYTES);
            AttemptResult {
                status_code: Some(i64::from(status.as_u16())),
                duration_ms: elapsed(started),
                error_class: if status.is_success() {
                    "none"
                } else if status.is_redirection() {
                    "redirect"
                } else {
                    "http_status"
                },
                excerpt: String::from_utf8_lossy(&excerpt).into_owned(),
            }
        }
    }
}

/// Claims and sends what is due; returns how many deliveries it attempted.
pub async fn deliver_due(
    service: &WebhookService,
    client: &reqwest::Client,
) -> Result<usize, DbError> {
    let now = service.clock().now();
    let claimed = service
        .db()
        .write(move |tx| Ok::<_, DbError>(sql::claim_due(tx, now, LEASE_SECONDS, CLAIM_BATCH)?))
        .await?;
    if claimed.is_empty() {
        return Ok(0);
    }
    // Each webhook's secrets are opened once per batch.
    let mut targets: HashMap<Uuid, Ready> = HashMap::new();
    for delivery in &claimed {
        if let std::collections::hash_map::Entry::Vacant(slot) = targets.entry(delivery.webhook_id)
        {
            slot.insert(match service.target(delivery.webhook_id).await {
                Ok(Some(target)) if target.webhook.enabled && target.owner_active => {
                    Ready::Send(Arc::new(target))
                }
                Ok(_) => Ready::Skip,
                Err(error) => {
                    tracing::error!(webhook = %delivery.webhook_id, %error, "webhook credentials cannot be opened; the delivery fails");
                    Ready::Unopenable
                }
            });
        }
    }
    let concurrency = service.settings().delivery_concurrency;
    let mut results = Vec::with_capacity(claimed.len());
    let mut in_flight = FuturesUnordered::new();
    let mut queue = claimed.into_iter();
    loop {
        while in_flight.len() < concurrency {
            let Some(delivery) = queue.next() else { break };
            let ready = targets
                .get(&delivery.webhook_id)
                .cloned()
                .unwrap_or(Ready::Skip);
            in_flight.push(async move {
                let result = match &ready {
                    Ready::Send(target) => Some(attempt(client, service, target, &delivery).await),
                    // Nothing is sent without its credential: a failed attempt, retried
                    // (and counted toward disabling) like any other.
                    Ready::Unopenable => Some(AttemptResult {
                        status_code: None,
                        duration_ms: 0,
                        error_class: "credential",
                        excerpt: String::new(),
                    }),
                    // Disabled meanwhile, or its owner locked: left pending, not sent.
                    Ready::Skip => None,
                };
                (delivery, result)
            });
        }
        match in_flight.next().await {
            Some(done) => results.push(done),
            None => break,
        }
    }
    let attempted = results.iter().filter(|(_, r)| r.is_some()).count();
    record(service, results).await?;
    Ok(attempted)
}

/// Writes every attempt of a batch in one transaction.
async fn record(
    service: &WebhookService,
    results: Vec<(DeliveryRow, Option<AttemptResult>)>,
) -> Result<(), DbError> {
    let now = service.clock().now();
    let max_failures = i64::from(service.settings().max_consecutive_failures);
    let jitters: Vec<f64> = results
        .iter()
        .map(|_| rand::random::<f64>() * 2.0 - 1.0)
        .collect();
    service
        .db()
        .write(move |tx| {
            for ((delivery, result), jitter) in results.into_iter().zip(jitters) {
                let Some(result) = result else { continue };
                let attempt = delivery.attempts + 1;
                let gone = result.status_code == Some(410);
                let (status, next) = if result.delivered() {
                    ("delivered", now)
                } else {
                    match retry_delay(attempt, jitter) {
                        Some(delay) if !gone => ("pending", now + delay),
                        _ => ("failed", now),
                    }
                };
                sql::record_attempt(
                    tx,
                    &delivery.id,
                    attempt,
                    now,
                    result.status_code,
                    result.duration_ms,
                    result.error_class,
                    &result.excerpt,
                    status,
                    next,
                )?;
                let failures = sql::count_outcome(tx, delivery.webhook_id, result.delivered())?;
                if gone {
                    sql::disable(
                        tx,
                        delivery.webhook_id,
                        "the receiver answered 410 Gone",
                        now,
                    )?;
                } else if failures >= max_failures {
                    sql::disable(
                        tx,
                        delivery.webhook_id,
                        &format!("{failures} failed attempts in a row"),
                        now,
                    )?;
                }
            }
            Ok::<_, DbError>(())
        })
        .await
}

/// Runs until the server stops.
pub async fn run(service: WebhookService) {
    let client = match client(&service) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "webhook delivery cannot start: no HTTP client");
            return;
        }
    };
    loop {
        match deliver_due(&service, &client).await {
            Ok(0) => tokio::time::sleep(IDLE_POLL).await,
            Ok(_) => {}
            Err(error) => {
                tracing::error!(%error, "webhook delivery pass failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_with_jitter() {
        assert_eq!(retry_delay(1, 0.0), Some(5));
        assert_eq!(retry_delay(2, 1.0), Some(330));
        assert_eq!(retry_delay(3, -1.0), Some(1620));
        assert_eq!(retry_delay(7, 0.0), Some(36_000));
        assert_eq!(retry_delay(8, 0.0), None);
        assert_eq!(retry_delay(0, 0.0), None);
    }
}

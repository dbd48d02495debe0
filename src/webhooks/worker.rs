//! The delivery worker: claims due deliveries from the outbox, sends them with
//! bounded concurrency overall and per webhook, and records every attempt. 2xx is
//! delivered; anything else is retried after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and
//! 10 h (each ±10 %), then given up. `410 Gone` disables the webhook at once, and so do
//! `WEBHOOK_MAX_CONSECUTIVE_FAILURES` failed attempts in a row — exactly then: no
//! attempt is claimed that could fail past the limit. A claim is a lease,
//! not a removal: work interrupted by a crash or a restart is picked up again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use secrecy::ExposeSecret;
use uuid::Uuid;

use super::service::{Target, WebhookError, WebhookService};
use super::signing::signature_header;
use super::ssrf::{GuardedResolver, Refusal};
use crate::db::DbError;
use crate::db::webhooks::{self as sql, DeliveryRow};
use crate::telemetry::metrics::DeliveryResult;

/// Seconds to wait after failed attempt n (1-based); after the last, give up.
pub const RETRY_SCHEDULE: [i64; 7] = [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000];
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a claimed delivery stays reserved before it is due again.
const LEASE_SECONDS: i64 = 60;
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
#[derive(Clone)]
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

/// Deliveries in flight, per webhook: what the next claim must leave room for.
#[derive(Default)]
struct InFlight {
    per_webhook: HashMap<Uuid, usize>,
    deliveries: std::collections::HashSet<String>,
}

impl InFlight {
    fn started(&mut self, delivery: &DeliveryRow) {
        *self.per_webhook.entry(delivery.webhook_id).or_default() += 1;
        self.deliveries.insert(delivery.id.clone());
    }

    fn finished(&mut self, delivery: &DeliveryRow) {
        if let Some(count) = self.per_webhook.get_mut(&delivery.webhook_id) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_webhook.remove(&delivery.webhook_id);
            }
        }
        self.deliveries.remove(&delivery.id);
    }

    fn total(&self) -> usize {
        self.deliveries.len()
    }

    /// `{"<webhook id>": n, …}`, as the claim query reads it.
    fn per_webhook_json(&self) -> String {
        serde_json::Value::Object(
            self.per_webhook
                .iter()
                .map(|(id, n)| (id.to_string(), serde_json::Value::from(*n)))
                .collect(),
        )
        .to_string()
    }

    /// `["<delivery id>", …]`: never claimed again while in flight (a retry asked
    /// for meanwhile waits for the attempt under way).
    fn deliveries_json(&self) -> String {
        serde_json::Value::from(self.deliveries.iter().cloned().collect::<Vec<_>>()).to_string()
    }
}

/// Deliveries with their attempt's result, for [`record_and_claim`].
type Finished = (DeliveryRow, Option<AttemptResult>);

/// Records finished attempts and claims what is due and fits, in one transaction
/// (one commit per turn). Recording writes each delivery's new state and the
/// webhook's failure count, and disables at 410 or at the failure limit. A claim
/// fits free global slots, each webhook's free slots, and no more attempts than
/// could still fail before the webhook's failure limit.
async fn record_and_claim(
    service: &WebhookService,
    finished: &[Finished],
    in_flight: &InFlight,
) -> Result<Vec<DeliveryRow>, DbError> {
    let finished = finished.to_vec();
    let settings = service.settings();
    let now = service.clock().now();
    let max_failures = i64::from(settings.max_consecutive_failures);
    let limits = sql::ClaimLimits {
        now,
        lease: LEASE_SECONDS,
        total: settings
            .delivery_concurrency
            .saturating_sub(in_flight.total()),
        per_webhook: settings.endpoint_concurrency,
        max_failures,
    };
    let busy = sql::Busy {
        per_webhook: in_flight.per_webhook_json(),
        deliveries: in_flight.deliveries_json(),
    };
    let jitters: Vec<f64> = finished
        .iter()
        .map(|_| rand::random::<f64>() * 2.0 - 1.0)
        .collect();
    let (claimed, recorded) = service
        .db()
        .write(move |tx| {
            let mut recorded = Vec::with_capacity(finished.len());
            for ((delivery, result), jitter) in finished.iter().zip(jitters) {
                let Some(result) = result else { continue };
                recorded.push(record(tx, delivery, result, jitter, now, max_failures)?);
            }
            let claimed = if limits.total == 0 {
                Vec::new()
            } else {
                sql::claim_due(tx, &limits, &busy)?
            };
            Ok::<_, DbError>((claimed, recorded))
        })
        .await?;
    for result in recorded {
        service.metrics().attempted(result);
    }
    Ok(claimed)
}

/// Records one attempt; says where it left the delivery.
fn record(
    tx: &rusqlite::Connection,
    delivery: &DeliveryRow,
    result: &AttemptResult,
    jitter: f64,
    now: i64,
    max_failures: i64,
) -> rusqlite::Result<DeliveryResult> {
    let attempt = delivery.attempts + 1;
    let gone = result.status_code == Some(410);
    let (status, next, left) = if result.delivered() {
        ("delivered", now, DeliveryResult::Delivered)
    } else {
        match retry_delay(attempt, jitter) {
            Some(delay) if !gone => ("pending", now + delay, DeliveryResult::Retrying),
            _ => ("failed", now, DeliveryResult::Failed),
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
    Ok(left)
}

/// What each claimed delivery's webhook allows; its secrets are opened once per claim.
async fn targets(service: &WebhookService, claimed: &[DeliveryRow]) -> HashMap<Uuid, Ready> {
    let mut targets = HashMap::new();
    for delivery in claimed {
        if let std::collections::hash_map::Entry::Vacant(slot) = targets.entry(delivery.webhook_id)
        {
            slot.insert(match service.target(delivery.webhook_id).await {
                Ok(Some(target)) if target.webhook.enabled && target.owner_active => {
                    Ready::Send(Arc::new(target))
                }
                Ok(_) => Ready::Skip,
                Err(error @ WebhookError::Seal(_)) => {
                    tracing::error!(webhook = %delivery.webhook_id, %error, "webhook credentials cannot be opened; the delivery fails");
                    Ready::Unopenable
                }
                // The database did not answer: not the webhook's failure. Nothing is
                // sent and nothing counted; the lease runs out and it is tried again.
                Err(error) => {
                    tracing::warn!(webhook = %delivery.webhook_id, %error, "webhook cannot be read; its delivery waits");
                    Ready::Skip
                }
            });
        }
    }
    targets
}

async fn send(
    client: reqwest::Client,
    service: WebhookService,
    ready: Ready,
    delivery: DeliveryRow,
) -> Finished {
    let result = match &ready {
        Ready::Send(target) => Some(attempt(&client, &service, target, &delivery).await),
        // Nothing is sent without its credential: a failed attempt, retried (and
        // counted toward disabling) like any other.
        Ready::Unopenable => Some(AttemptResult {
            status_code: None,
            duration_ms: 0,
            error_class: "credential",
            excerpt: String::new(),
        }),
        // Disabled meanwhile, or its owner locked: left pending (its lease runs
        // out), not sent.
        Ready::Skip => None,
    };
    (delivery, result)
}

/// Sends what is due. There is no batch: each webhook has at most
/// `WEBHOOK_ENDPOINT_CONCURRENCY` attempts in flight, claims take the oldest due
/// delivery of each webhook in turn, and a finished attempt frees its slot for the
/// next claim at once, so a receiver that hangs holds only its own slots.
pub struct Worker {
    service: WebhookService,
    client: reqwest::Client,
    in_flight: InFlight,
    attempts: FuturesUnordered<BoxFuture<'static, Finished>>,
    finished: Vec<Finished>,
}

impl Worker {
    pub fn new(service: WebhookService, client: reqwest::Client) -> Self {
        Self {
            service,
            client,
            in_flight: InFlight::default(),
            attempts: FuturesUnordered::new(),
            finished: Vec::new(),
        }
    }

    /// Whether nothing is in flight or waiting to be recorded.
    pub fn idle(&self) -> bool {
        self.attempts.is_empty() && self.finished.is_empty()
    }

    /// One turn: record the attempts finished since the last turn and claim what is
    /// due and fits (one transaction), start the claimed attempts, then wait until
    /// one finishes (or a delivery is queued, or the poll interval passes) and
    /// collect every finished one.
    /// Returns how many attempts it recorded.
    pub async fn turn(&mut self) -> Result<usize, DbError> {
        let attempted = self.finished.iter().filter(|(_, r)| r.is_some()).count();
        // Recorded in the same transaction as the claim: their slots are free for it.
        for (delivery, _) in &self.finished {
            self.in_flight.finished(delivery);
        }
        let claimed = match record_and_claim(&self.service, &self.finished, &self.in_flight).await {
            Ok(claimed) => claimed,
            Err(error) => {
                // Kept, with their slots, to be recorded on the next turn.
                for (delivery, _) in &self.finished {
                    self.in_flight.started(delivery);
                }
                return Err(error);
            }
        };
        self.finished.clear();
        let targets = targets(&self.service, &claimed).await;
        for delivery in claimed {
            let ready = targets
                .get(&delivery.webhook_id)
                .cloned()
                .unwrap_or(Ready::Skip);
            self.in_flight.started(&delivery);
            let attempt = send(self.client.clone(), self.service.clone(), ready, delivery);
            self.attempts.push(attempt.boxed());
        }
        if self.attempts.is_empty() {
            return Ok(attempted);
        }
        let first = tokio::select! {
            done = self.attempts.next() => done,
            // Something new to claim, or a retry come due.
            () = self.service.queued().notified() => None,
            () = tokio::time::sleep(IDLE_POLL) => None,
        };
        self.finished.extend(first);
        while let Some(Some(done)) = self.attempts.next().now_or_never() {
            self.finished.push(done);
        }
        Ok(attempted)
    }
}

/// Disables the webhooks already over the failure limit, which can happen only when
/// it was lowered before this start: no claim would ever fit them again. Returns
/// whether that was done (a database that cannot write now is asked again).
async fn disable_over_the_limit(service: &WebhookService) -> bool {
    let max_failures = i64::from(service.settings().max_consecutive_failures);
    let now = service.clock().now();
    match service
        .db()
        .write(move |tx| Ok::<_, DbError>(sql::disable_over_limit(tx, max_failures, now)?))
        .await
    {
        Ok(0) => true,
        Ok(disabled) => {
            tracing::warn!(
                webhooks = disabled,
                max_failures,
                "webhooks already over WEBHOOK_MAX_CONSECUTIVE_FAILURES disabled"
            );
            true
        }
        Err(error) => {
            tracing::error!(%error, "webhooks over the failure limit cannot be disabled yet");
            false
        }
    }
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
    let mut limit_applied = false;
    let mut worker = Worker::new(service, client);
    loop {
        if !limit_applied {
            limit_applied = disable_over_the_limit(&worker.service).await;
        }
        match worker.turn().await {
            Ok(_) if worker.idle() => {
                // Woken by a queued delivery; the poll finds retries come due.
                tokio::select! {
                    () = worker.service.queued().notified() => {}
                    () = tokio::time::sleep(IDLE_POLL) => {}
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracing::error!(%error, "webhook delivery turn failed");
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

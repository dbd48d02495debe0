//! Outgoing webhooks: which private networks they may reach, when a failing one is
//! disabled, the signing-secret grace period, delivery concurrency (overall and per
//! webhook) and how long delivered deliveries are kept.
use ipnet::IpNet;

use super::variables as v;
use super::{Mode, Reader, rules};

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub allowed_private_networks: Vec<IpNet>,
    pub max_consecutive_failures: u32,
    pub secret_grace_seconds: i64,
    pub delivery_concurrency: usize,
    pub endpoint_concurrency: usize,
    /// Delivered deliveries older than this are pruned.
    pub retention_seconds: i64,
}

impl Reader<'_> {
    pub(super) fn webhooks(&mut self, mode: Mode) -> Option<WebhookSettings> {
        let nets = match self.raw.get(v::WEBHOOK_ALLOWED_PRIVATE_NETWORKS) {
            None => Vec::new(),
            Some(list) => {
                self.checked(v::WEBHOOK_ALLOWED_PRIVATE_NETWORKS, rules::networks(list))?
            }
        };
        if nets.is_empty() || mode == Mode::Demo {
            self.findings.pass(
                v::WEBHOOK_ALLOWED_PRIVATE_NETWORKS,
                "webhooks may only reach public addresses",
            );
        } else {
            self.findings.warn(
                v::WEBHOOK_ALLOWED_PRIVATE_NETWORKS,
                format!("webhooks may reach {} private network(s); keep this empty in production unless a receiver lives there", nets.len()),
            );
        }
        let max_consecutive_failures =
            self.number::<u32>(v::WEBHOOK_MAX_CONSECUTIVE_FAILURES, 1, 10_000);
        let grace_hours = self.number::<i64>(v::WEBHOOK_SECRET_GRACE_HOURS, 0, 720);
        let delivery_concurrency = self.number::<usize>(v::WEBHOOK_DELIVERY_CONCURRENCY, 1, 1024);
        let endpoint_concurrency = self.number::<usize>(v::WEBHOOK_ENDPOINT_CONCURRENCY, 1, 64);
        let retention_days = self.number::<i64>(v::WEBHOOK_RETENTION_DAYS, 1, 3650);
        Some(WebhookSettings {
            allowed_private_networks: nets,
            max_consecutive_failures: max_consecutive_failures?,
            secret_grace_seconds: grace_hours? * 3600,
            delivery_concurrency: delivery_concurrency?,
            endpoint_concurrency: endpoint_concurrency?,
            retention_seconds: retention_days? * 86_400,
        })
    }
}

//! The metrics listener: off unless `METRICS_BIND_ADDRESS` names an address, and
//! loopback only unless `METRICS_ALLOW_REMOTE=true` says otherwise — what it serves
//! (sign-in failures, refusals, sessions) is nobody else's business.
use std::net::SocketAddr;

use super::Reader;
use super::variables as v;

#[derive(Debug, Clone, Default)]
pub struct MetricsSettings {
    /// Where `GET /metrics` is served; `None`: no metrics listener.
    pub bind_address: Option<SocketAddr>,
}

impl Reader<'_> {
    /// `bind_address` is the main listener's, which the metrics listener must not
    /// take.
    pub(super) fn metrics(&mut self, main: Option<SocketAddr>) -> Option<MetricsSettings> {
        let allow_remote = self.boolean(v::METRICS_ALLOW_REMOTE)?;
        let Some(text) = self.raw.get(v::METRICS_BIND_ADDRESS) else {
            return Some(MetricsSettings::default());
        };
        let address = self.parsed::<SocketAddr>(
            v::METRICS_BIND_ADDRESS,
            "is not an address:port such as 127.0.0.1:9464",
        )?;
        if main.is_some_and(|main| main == address && address.port() != 0) {
            self.findings.fail(
                v::METRICS_BIND_ADDRESS,
                format!("{text} is BIND_ADDRESS too; give the metrics listener a port of its own, e.g. 127.0.0.1:9464"),
            );
            return None;
        }
        if !address.ip().is_loopback() {
            if !allow_remote {
                self.findings.fail(
                    v::METRICS_BIND_ADDRESS,
                    format!("{text} is not a loopback address, so anyone who can reach it reads the server's activity. Bind 127.0.0.1 (Prometheus on this host), or set METRICS_ALLOW_REMOTE=true and let only Prometheus reach the port (a firewall)"),
                );
                return None;
            }
            self.findings.warn(
                v::METRICS_BIND_ADDRESS,
                format!("{text} is reachable from other hosts (METRICS_ALLOW_REMOTE=true) and has no authentication: let only Prometheus reach it"),
            );
        }
        Some(MetricsSettings {
            bind_address: Some(address),
        })
    }
}

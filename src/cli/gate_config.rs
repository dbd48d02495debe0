//! `portcullis gate-config nginx|caddy|traefik`: the reverse-proxy configuration for
//! the configured gate, ready to use — the same text the demo writes and the tests
//! run behind real nginx, Caddy and Traefik (`gate::proxy_config`). Exits 2 when the
//! configuration is refused or the gate is off.

use std::process::ExitCode;

use super::{EXIT_CONFIG, load_settings};
use crate::config::{ConfigSources, Mode};
use crate::gate::proxy_config::ProxyPlan;

/// Which proxy to configure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProxyKind {
    Nginx,
    Caddy,
    Traefik,
}

pub fn run(sources: ConfigSources, proxy: ProxyKind, upstream: &str) -> ExitCode {
    let (settings, _) = match load_settings(&sources, Mode::Production) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let Some(gate) = &settings.gate else {
        eprintln!(
            "gate-config: the gate is off; set GATE_PORTAL_URL, GATE_HOSTS and GATE_ASSERTION_KEY first"
        );
        return ExitCode::from(EXIT_CONFIG);
    };
    // The proxy reaches Portcullis on loopback when it listens on every address.
    let bind = settings.http.bind_address;
    let portcullis = if bind.ip().is_unspecified() {
        format!("127.0.0.1:{}", bind.port())
    } else {
        bind.to_string()
    };
    let plan = ProxyPlan::for_gate(gate, &portcullis, upstream);
    print!(
        "{}",
        match proxy {
            ProxyKind::Nginx => plan.nginx(),
            ProxyKind::Caddy => plan.caddy(),
            ProxyKind::Traefik => plan.traefik(),
        }
    );
    ExitCode::SUCCESS
}

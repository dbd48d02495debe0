//! `/admin/gate`: the hosts the gate protects and, per host, what it did in the
//! last 24 hours — requests let through, signed-in users refused (each one in the
//! audit log as `gate.denied`), and signed-out visitors sent to sign in (counted
//! only, so a crawler cannot flood the audit log).

use actix_web::HttpResponse;
use askama::Template;

use crate::admin::AdminAction;
use crate::http::admin_page::{AdminPage, Chrome, PageError};

pub struct HostLine {
    pub host: String,
    pub allowed: u64,
    pub denied: u64,
    pub redirected: u64,
}

#[derive(Template)]
#[template(path = "admin/gate.html")]
struct GatePage {
    chrome: Chrome,
    /// `None`: the gate is off.
    portal: Option<String>,
    hosts: Vec<HostLine>,
}

pub async fn page(page: AdminPage) -> Result<HttpResponse, PageError> {
    page.authorize(AdminAction::GateView, None).await?;
    let gate = page.state.gate.as_ref();
    let hosts = gate
        .map(|gate| {
            gate.counts()
                .into_iter()
                .map(|(host, counts)| HostLine {
                    host: host.to_string(),
                    allowed: counts.allowed,
                    denied: counts.denied,
                    redirected: counts.redirected,
                })
                .collect()
        })
        .unwrap_or_default();
    page.render(&GatePage {
        chrome: page.chrome("gate"),
        portal: gate.map(|g| g.portal_url().to_owned()),
        hosts,
    })
}

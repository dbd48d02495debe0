//! What every handler can reach, shared through `web::Data<AppState>`.

use std::sync::Arc;

use crate::audit::AuditLog;
use crate::config::Settings;
use crate::db::Database;

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: Database,
    pub audit: AuditLog,
}

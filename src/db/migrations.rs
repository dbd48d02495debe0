//! Numbered, embedded schema migrations. A database newer than this binary is refused.

use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};

const MIGRATIONS: &[M<'static>] = &[
    M::up(include_str!("migrations/0001_audit_events.sql")),
    M::up(include_str!("migrations/0002_accounts.sql")),
    M::up(include_str!("migrations/0003_softlock.sql")),
    M::up(include_str!("migrations/0004_mfa.sql")),
    M::up(include_str!("migrations/0005_policies_documents.sql")),
    M::up(include_str!("migrations/0006_webhooks.sql")),
    M::up(include_str!("migrations/0007_admin_sessions.sql")),
    M::up(include_str!("migrations/0008_health_probe.sql")),
    M::up(include_str!("migrations/0009_reauthentication.sql")),
    M::up(include_str!("migrations/0010_email_skeleton.sql")),
    M::up(include_str!("migrations/0011_browser_sessions.sql")),
    M::up(include_str!("migrations/0012_passkeys.sql")),
];

/// The schema version this binary expects (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub fn run(conn: &mut Connection) -> Result<(), rusqlite_migration::Error> {
    Migrations::from_slice(MIGRATIONS).to_latest(conn)
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        assert!(
            rusqlite_migration::Migrations::from_slice(super::MIGRATIONS)
                .validate()
                .is_ok()
        );
    }
}

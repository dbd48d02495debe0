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
    M::up(include_str!("migrations/0013_passkey_sessions.sql")),
    M::up(include_str!("migrations/0014_handed_off_sessions.sql")),
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

    #[test]
    fn passkey_sessions_from_before_they_named_their_passkey_end() {
        use rusqlite_migration::Migrations;
        let migrations = Migrations::from_slice(super::MIGRATIONS);
        let mut conn = rusqlite::Connection::open_in_memory().expect("open");
        migrations.to_version(&mut conn, 12).expect("to 12");
        conn.execute_batch(
            "INSERT INTO users (id, email, password_hash, role, created_at, updated_at)
                 VALUES ('u', 'a@example.org', 'x', 'user', 0, 0);
             INSERT INTO sessions (id, user_id, family, created_at, last_used_at, expires_at, auth_method)
                 VALUES ('by-passkey', 'u', 'f1', 0, 0, 9999999999, 'passkey'),
                        ('by-password', 'u', 'f2', 0, 0, 9999999999, 'password');",
        )
        .expect("sessions");
        migrations.to_latest(&mut conn).expect("to latest");
        let ended: Vec<String> = conn
            .prepare("SELECT id FROM sessions WHERE ended_at IS NOT NULL")
            .and_then(|mut stmt| {
                stmt.query_map([], |row| row.get(0))?
                    .collect::<Result<Vec<String>, _>>()
            })
            .expect("ended");
        assert_eq!(ended, vec!["by-passkey".to_owned()]);
    }
}

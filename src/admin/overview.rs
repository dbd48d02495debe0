//! The state of things at a glance, for the admin dashboard: accounts, locks, live
//! revocations, failing webhooks, failed logins per hour over the last day, and the
//! configuration check's database part (the same findings `check-config` prints, so
//! the dashboard's score is its score; re-checked every few minutes at most).

use std::sync::Arc;

use parking_lot::Mutex;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::config_check::database_findings;
use crate::audit::AuditLog;
use crate::clock::{Clock, rfc3339};
use crate::config::{Findings, Settings};
use crate::db::{Database, DbError, stats};

/// How long the database findings are shown before they are checked again.
const RECHECK_SECONDS: i64 = 300;

/// Failed logins in each of the last 24 hours, oldest first; the last entry is the
/// current hour.
pub type HourlyCounts = [usize; 24];

pub struct Overview {
    pub users: i64,
    pub locked: i64,
    pub live_revocations: i64,
    pub failing_webhooks: i64,
    pub failed_logins_by_hour: HourlyCounts,
    /// The injected clock's time the counts were read at (Unix seconds).
    pub at: i64,
}

impl Overview {
    pub fn failed_logins(&self) -> usize {
        self.failed_logins_by_hour.iter().sum()
    }
}

#[derive(Clone)]
pub struct AdminOverview {
    db: Database,
    audit: AuditLog,
    clock: Clock,
    /// The database findings and when they were made.
    checked: Arc<Mutex<Option<(i64, Findings)>>>,
}

impl AdminOverview {
    pub fn new(db: Database, audit: AuditLog, clock: Clock) -> Self {
        Self {
            db,
            audit,
            clock,
            checked: Arc::default(),
        }
    }

    /// The configuration's findings with the database's, as `check-config` makes
    /// them (the database part at most a few minutes old).
    pub async fn config_findings(&self, settings: &Settings) -> Findings {
        let now = self.clock.now();
        let cached = self
            .checked
            .lock()
            .as_ref()
            .filter(|(at, _)| now - at < RECHECK_SECONDS)
            .map(|(_, findings)| findings.clone());
        let database = match cached {
            Some(findings) => findings,
            None => {
                let findings = database_findings(&self.db, &self.audit, Some(settings)).await;
                *self.checked.lock() = Some((now, findings.clone()));
                findings
            }
        };
        let mut all = settings.findings.clone();
        all.extend(database);
        all
    }

    pub async fn read(&self) -> Result<Overview, DbError> {
        let now = self.clock.now();
        let since = rfc3339(now - 24 * 3600);
        let (users, locked, live_revocations, failing_webhooks, times) = self
            .db
            .read(move |conn| {
                Ok::<_, DbError>((
                    stats::users(conn)?,
                    stats::locked(conn, now)?,
                    stats::live_revocations(conn, now)?,
                    stats::failing_webhooks(conn)?,
                    stats::failed_login_times(conn, &since)?,
                ))
            })
            .await?;
        Ok(Overview {
            users,
            locked,
            live_revocations,
            failing_webhooks,
            failed_logins_by_hour: by_hour(&times, now),
            at: now,
        })
    }
}

/// Counts RFC 3339 times into the 24 hours ending with the hour of `now`.
fn by_hour(times: &[String], now: i64) -> HourlyCounts {
    let mut counts = [0usize; 24];
    for time in times {
        if let Ok(at) = OffsetDateTime::parse(time, &Rfc3339) {
            let hours_ago = (now - at.unix_timestamp()).div_euclid(3600);
            if let Ok(ago) = usize::try_from(hours_ago)
                && ago < 24
            {
                counts[23 - ago] += 1;
            }
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_fall_into_the_hour_they_are_in() {
        let now = 1_800_000_000;
        let times = [
            rfc3339(now),
            rfc3339(now - 3599),
            rfc3339(now - 3600),
            rfc3339(now - 25 * 3600),
        ];
        let counts = by_hour(&times, now);
        assert_eq!(counts[23], 2);
        assert_eq!(counts[22], 1);
        assert_eq!(
            counts.iter().sum::<usize>(),
            3,
            "older than a day is left out"
        );
    }
}

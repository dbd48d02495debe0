//! The state of things at a glance, for the admin dashboard: accounts, locks, live
//! revocations, failing webhooks, and failed logins per hour over the last day.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::clock::{Clock, rfc3339};
use crate::db::{Database, DbError, stats};

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
    clock: Clock,
}

impl AdminOverview {
    pub fn new(db: Database, clock: Clock) -> Self {
        Self { db, clock }
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

//! Refresh: a refresh token is good once. Each use hands out a new one in the same
//! session; presenting a spent one again means it was copied, so the whole session
//! ends (`auth.refresh_reuse_detected`).
//!
//! One exception, for clients rather than thieves: two tabs, or a retry after a lost
//! answer, present the same token within moments. A second presentation within
//! `REFRESH_REUSE_GRACE_SECONDS` (2 s by default) of the rotation gets the very same
//! successor pair again (`auth.refresh_repeated`) — nothing new is issued, so a thief
//! racing the owner gains no session of their own. A third presentation, or one
//! after the window, is reuse. The successors live in memory only, for the window.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use moka::sync::Cache;
use secrecy::SecretString;
use uuid::Uuid;

use super::{AccountError, AccountService, TokenPair};
use crate::audit::{AuditEvent, Outcome, RequestMeta};
use crate::auth::refresh as refresh_token;
use crate::db::revocations::{self, RevocationKind};
use crate::db::{refresh_tokens, sessions, users};
use crate::model::UserStatus;

/// The outcome of presenting a refresh token, decided inside one transaction.
enum RefreshOutcome {
    Rotated {
        pair: TokenPair,
        presented: String,
    },
    /// The second presentation within the grace window: the same successor pair.
    Repeated(TokenPair),
    Refused,
    /// The session ended: the token was copied, or the account is no longer active.
    Ended {
        session_id: Uuid,
    },
}

/// The successor of a refresh token just rotated, kept for the grace window.
pub(super) struct Rotation {
    pair: TokenPair,
    /// Presentations so far (the first is the rotation itself).
    presented: AtomicU32,
}

impl Rotation {
    /// The successor again, for the second presentation only.
    fn repeat(&self) -> Option<TokenPair> {
        (self.presented.fetch_add(1, Ordering::SeqCst) == 1).then(|| self.pair.clone())
    }
}

/// Rotations within the grace window, by the hash of the token they spent.
pub(super) fn grace_cache(seconds: u32) -> Cache<String, Arc<Rotation>> {
    Cache::builder()
        .max_capacity(100_000)
        .time_to_live(Duration::from_secs(u64::from(seconds.max(1))))
        .build()
}

impl AccountService {
    /// Exchanges a refresh token for a new pair. A token is good once: presenting a
    /// rotated one again means it was copied, so the whole session ends.
    pub async fn refresh(
        &self,
        token: SecretString,
        meta: &RequestMeta,
    ) -> Result<TokenPair, AccountError> {
        let audit = self.audit.clone();
        let now = self.clock.now();
        let presented = refresh_token::hash(&token);
        let next = refresh_token::new_token().map_err(|e| AccountError::Unexpected(e.into()))?;
        let next_hash = refresh_token::hash(&next);
        let tokens = Arc::clone(&self.tokens);
        let until = self.revocations.session_revocation_until(now);
        let meta_in = meta.clone();
        let revocations = self.revocations.clone();
        let (grace, rotations) = (self.refresh_grace_seconds, self.rotations.clone());
        let recent = self.rotations.clone();
        let outcome = self
            .db
            .write_then(
                move |tx| {
                    let Some(row) = refresh_tokens::find(tx, &presented)? else {
                        return Ok::<_, AccountError>(RefreshOutcome::Refused);
                    };
                    let Some(session) = sessions::find(tx, row.session_id)? else {
                        return Ok(RefreshOutcome::Refused);
                    };
                    if row.rotated_at.is_some()
                        || !refresh_tokens::mark_rotated(tx, &presented, now)?
                    {
                        let within_grace = grace > 0
                            && session.is_live(now)
                            && row
                                .rotated_at
                                .is_some_and(|at| now - at <= i64::from(grace));
                        // Only while its successor is still unused: once that was
                        // spent too, this is a replay of an old token.
                        let successor_unused = |rotation: &Rotation| {
                            let hash = refresh_token::hash(&rotation.pair.refresh_token);
                            refresh_tokens::find(tx, &hash)
                                .map(|found| found.is_some_and(|r| r.rotated_at.is_none()))
                        };
                        let rotation = recent.get(&presented).filter(|_| within_grace);
                        let repeat = match rotation {
                            Some(rotation) if successor_unused(&rotation)? => rotation.repeat(),
                            _ => None,
                        };
                        if let Some(pair) = repeat {
                            audit.append(
                                tx,
                                &AuditEvent::of_request(
                                    "auth.refresh_repeated",
                                    Outcome::Success,
                                    &meta_in,
                                )
                                .with_actor(session.user_id.to_string())
                                .with_target(session.id.to_string()),
                            )?;
                            return Ok(RefreshOutcome::Repeated(pair));
                        }
                        sessions::end(tx, session.id, now, "refresh_token_reuse")?;
                        revocations::insert(
                            tx,
                            RevocationKind::Session,
                            &session.id.to_string(),
                            until,
                        )?;
                        audit.append(
                            tx,
                            &AuditEvent::of_request(
                                "auth.refresh_reuse_detected",
                                Outcome::Denied,
                                &meta_in,
                            )
                            .with_actor(session.user_id.to_string())
                            .with_target(session.id.to_string())
                            .with_detail("family", session.family.to_string()),
                        )?;
                        return Ok(RefreshOutcome::Ended {
                            session_id: session.id,
                        });
                    }
                    if !session.is_live(now) {
                        return Ok(RefreshOutcome::Refused);
                    }
                    let user = users::find(tx, session.user_id)?;
                    let Some(user) = user.filter(|u| u.status == UserStatus::Active) else {
                        sessions::end(tx, session.id, now, "account_inactive")?;
                        return Ok(RefreshOutcome::Ended {
                            session_id: session.id,
                        });
                    };
                    refresh_tokens::insert(tx, &next_hash, session.id, now)?;
                    sessions::touch(
                        tx,
                        session.id,
                        now,
                        meta_in.ip.map(|ip| ip.to_string()).as_deref(),
                        meta_in.user_agent.as_deref(),
                    )?;
                    let access = tokens.issue_access(
                        user.id,
                        session.id,
                        user.role,
                        session.auth_method,
                        now,
                    )?;
                    Ok(RefreshOutcome::Rotated {
                        pair: TokenPair::new(access, next, &session),
                        presented,
                    })
                },
                move |outcome| match outcome {
                    RefreshOutcome::Ended { session_id } => {
                        revocations.remember_session(*session_id, until);
                    }
                    RefreshOutcome::Rotated { pair, presented } if grace > 0 => {
                        rotations.insert(
                            presented.clone(),
                            Arc::new(Rotation {
                                pair: pair.clone(),
                                presented: AtomicU32::new(1),
                            }),
                        );
                    }
                    _ => {}
                },
            )
            .await?;
        match outcome {
            RefreshOutcome::Rotated { pair, .. } | RefreshOutcome::Repeated(pair) => Ok(pair),
            RefreshOutcome::Refused | RefreshOutcome::Ended { .. } => {
                Err(AccountError::InvalidRefreshToken)
            }
        }
    }
}

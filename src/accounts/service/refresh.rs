//! Refresh: a refresh token is good once. Each use hands out a new one in the same
//! session; presenting a spent one again means it was copied, so the whole session
//! ends (`auth.refresh_reuse_detected`).

use std::sync::Arc;

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
    Rotated(TokenPair),
    Refused,
    Reused { session_id: Uuid },
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
                        return Ok(RefreshOutcome::Reused {
                            session_id: session.id,
                        });
                    }
                    if !session.is_live(now) {
                        return Ok(RefreshOutcome::Refused);
                    }
                    let user = users::find(tx, session.user_id)?;
                    let Some(user) = user.filter(|u| u.status == UserStatus::Active) else {
                        sessions::end(tx, session.id, now, "account_inactive")?;
                        return Ok(RefreshOutcome::Refused);
                    };
                    refresh_tokens::insert(tx, &next_hash, session.id, now)?;
                    sessions::touch(
                        tx,
                        session.id,
                        now,
                        meta_in.ip.map(|ip| ip.to_string()).as_deref(),
                        meta_in.user_agent.as_deref(),
                    )?;
                    let access = tokens.issue_access(user.id, session.id, user.role, now)?;
                    Ok(RefreshOutcome::Rotated(TokenPair::new(
                        access, next, &session,
                    )))
                },
                move |outcome| {
                    if let RefreshOutcome::Reused { session_id } = outcome {
                        revocations.remember_session(*session_id, until);
                    }
                },
            )
            .await?;
        match outcome {
            RefreshOutcome::Rotated(pair) => Ok(pair),
            RefreshOutcome::Refused | RefreshOutcome::Reused { .. } => {
                Err(AccountError::InvalidRefreshToken)
            }
        }
    }
}

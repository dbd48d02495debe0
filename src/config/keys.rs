//! Encryption keys: one Fernet key list per purpose (the first seals, all open), and
//! the check that no key serves two purposes.
use secrecy::{ExposeSecret, SecretString};

use super::jwt::JwtSettings;
use super::variables as v;
use super::{Reader, rules};

/// What a key list protects; each has its own variable and its own keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyPurpose {
    Mfa,
    Credential,
}

impl KeyPurpose {
    pub const ALL: [KeyPurpose; 2] = [KeyPurpose::Mfa, KeyPurpose::Credential];

    /// The stored name (canary rows, audit details).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyPurpose::Mfa => "mfa",
            KeyPurpose::Credential => "credential",
        }
    }

    /// The configuration variable holding this purpose's keys.
    pub fn variable(self) -> &'static str {
        match self {
            KeyPurpose::Mfa => v::MFA_ENCRYPTION_KEY,
            KeyPurpose::Credential => v::CREDENTIAL_ENCRYPTION_KEY,
        }
    }
}

impl Reader<'_> {
    pub(super) fn fernet_keys(
        &mut self,
        name: &'static str,
        purpose: &str,
    ) -> Option<Vec<SecretString>> {
        let Some(value) = self.raw.get(name) else {
            self.findings.fail(
                name,
                format!("is missing; it encrypts {purpose} at rest. Generate one with `portcullis keygen`"),
            );
            return None;
        };
        let keys = self.checked(name, rules::fernet_keys(value))?;
        let rotation = if keys.len() > 1 {
            format!(" ({} keys: the first encrypts, all decrypt)", keys.len())
        } else {
            String::new()
        };
        self.findings
            .pass(name, format!("valid Fernet key{rotation}"));
        Some(keys)
    }

    /// One leaked key should not open everything: warn when keys are shared.
    pub(super) fn key_separation(
        &mut self,
        jwt: Option<&JwtSettings>,
        credential: Option<&[SecretString]>,
        mfa: Option<&[SecretString]>,
    ) {
        let (Some(credential), Some(mfa)) = (credential, mfa) else {
            return;
        };
        let shared = credential
            .iter()
            .any(|c| mfa.iter().any(|m| c.expose_secret() == m.expose_secret()));
        let jwt_reused = jwt.is_some_and(|j| {
            credential
                .iter()
                .chain(mfa)
                .any(|k| k.expose_secret() == j.secret.expose_secret())
        });
        if shared {
            self.findings.warn(
                v::MFA_ENCRYPTION_KEY,
                "shares a key with CREDENTIAL_ENCRYPTION_KEY; use separate keys so one leak does not expose both",
            );
        } else if jwt_reused {
            self.findings.warn(
                v::JWT_SECRET_KEY,
                "is also used as an encryption key; use separate keys",
            );
        } else {
            self.findings
                .pass("keys", "signing and encryption keys are all distinct");
        }
    }
}

//! Access tokens and MFA challenge tokens: JWT, HS256 only. Every claim is required and checked; the `kid`
//! header names the key, so keys in `JWT_PREVIOUS_SECRET_KEYS` still verify during a
//! rotation while only `JWT_SECRET_KEY` ever signs. Time checks take `now` from the
//! injected clock.

use std::time::Duration;

use crate::cache::{Cache, hasher};
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::JwtSettings;
use crate::model::{AuthMethod, Role, UserId};

pub const ISSUER: &str = "portcullis";
pub const AUDIENCE: &str = "portcullis-api";
/// Longer tokens are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 4096;
/// Tolerated clock skew for `exp`, `nbf` and `iat`.
pub const LEEWAY_SECONDS: i64 = 10;

/// What a token is for; a token of one type is useless as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    Access,
    /// Proves a password was right for an MFA account; only `verify-login` takes it.
    Mfa,
}

/// How long an MFA challenge token lives.
pub const MFA_TOKEN_SECONDS: i64 = 300;

/// The claims of every token: `typ` says which kind. No field has a default: a
/// token missing any of them does not parse. In an MFA token, `sid` names the
/// challenge, not a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: UserId,
    pub jti: Uuid,
    pub sid: Uuid,
    pub role: Role,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub typ: TokenType,
    /// How the session was signed in to (`password`, `password+totp`, `passkey`); in
    /// an MFA token, `password`: what is proved so far. A token issued before the
    /// claim existed reads as `password`, the least it can have proved: policies
    /// asking for more deny it until it is refreshed (the session knows its method).
    #[serde(default = "unproven_method")]
    pub auth_method: AuthMethod,
}

/// What a token without an `auth_method` claim has proved at least.
fn unproven_method() -> AuthMethod {
    AuthMethod::Password
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token too large")]
    TooLarge,
    #[error("token malformed")]
    Malformed,
    #[error("token signed with an unknown key")]
    UnknownKey,
    #[error("token signature or algorithm invalid")]
    BadSignature,
    #[error("token claims invalid")]
    InvalidClaims,
    #[error("token of the wrong type")]
    WrongType,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("token could not be signed")]
    Signing,
}

struct Key {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Key {
    fn new(secret: &SecretString) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        Self {
            kid: key_id(secret),
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
        }
    }
}

/// A short public name for a key: a truncated hash, which reveals nothing usable
/// about a 32+ character secret.
pub fn key_id(secret: &SecretString) -> String {
    let digest = Sha256::new()
        .chain_update(b"portcullis-jwt-kid\0")
        .chain_update(secret.expose_secret().as_bytes())
        .finalize();
    hex::encode(&digest[..8])
}

/// An access token and when it expires.
pub struct IssuedToken {
    pub token: String,
    pub claims: Claims,
}

/// Tokens whose signature and claims were already checked, keyed by the exact token
/// text: a client presents the same token on every request for its whole lifetime,
/// and parsing plus HMAC is most of the cost of an authenticated request. Only a
/// byte-identical token hits; time is still checked on every use.
const VERIFIED_CACHE_CAPACITY: u64 = 50_000;

pub struct TokenService {
    signing: Key,
    /// The signing key first, then the verify-only previous keys.
    verifying: Vec<Key>,
    access_ttl_seconds: i64,
    validation: Validation,
    verified: Cache<String, Claims>,
}

impl TokenService {
    pub fn new(jwt: &JwtSettings) -> Self {
        let verifying = std::iter::once(&jwt.secret)
            .chain(&jwt.previous_secrets)
            .map(Key::new)
            .collect();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        // Time claims are checked below against the injected clock; their presence is
        // enforced by the claims type itself.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.required_spec_claims.clear();
        validation.leeway = 0;
        let access_ttl_seconds = jwt.access_token_seconds();
        Self {
            signing: Key::new(&jwt.secret),
            verifying,
            access_ttl_seconds,
            validation,
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_CACHE_CAPACITY)
                .time_to_live(Duration::from_secs(
                    u64::try_from(access_ttl_seconds + LEEWAY_SECONDS).unwrap_or(0),
                ))
                .build_with_hasher(hasher()),
        }
    }

    pub fn access_ttl_seconds(&self) -> i64 {
        self.access_ttl_seconds
    }

    /// An access token for `session`, which was signed in to with `auth_method`.
    pub fn issue_access(
        &self,
        user: UserId,
        session: Uuid,
        role: Role,
        auth_method: AuthMethod,
        now: i64,
    ) -> Result<IssuedToken, TokenError> {
        self.issue(user, session, role, TokenType::Access, auth_method, now)
    }

    /// A short-lived token standing for "password verified, code still owed".
    pub fn issue_mfa(&self, user: UserId, role: Role, now: i64) -> Result<IssuedToken, TokenError> {
        let (challenge, proved) = (Uuid::new_v4(), AuthMethod::Password);
        self.issue(user, challenge, role, TokenType::Mfa, proved, now)
    }

    fn issue(
        &self,
        user: UserId,
        session: Uuid,
        role: Role,
        typ: TokenType,
        auth_method: AuthMethod,
        now: i64,
    ) -> Result<IssuedToken, TokenError> {
        let ttl = match typ {
            TokenType::Access => self.access_ttl_seconds,
            TokenType::Mfa => MFA_TOKEN_SECONDS,
        };
        let claims = Claims {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: user,
            jti: Uuid::new_v4(),
            sid: session,
            role,
            iat: now,
            nbf: now,
            exp: now + ttl,
            typ,
            auth_method,
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.signing.kid.clone());
        let token =
            encode(&header, &claims, &self.signing.encoding).map_err(|_| TokenError::Signing)?;
        Ok(IssuedToken { token, claims })
    }

    /// Verifies signature, algorithm, key, every claim, type and time.
    pub fn verify(&self, token: &str, expected: TokenType, now: i64) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge);
        }
        let claims = match self.verified.get(token) {
            Some(claims) => claims,
            None => {
                let claims = self.verify_signature_and_claims(token)?;
                // When full, new tokens are not cached rather than evicting others:
                // eviction costs more than the verification it would save.
                if self.verified.entry_count() < VERIFIED_CACHE_CAPACITY {
                    self.verified.insert(token.to_owned(), claims.clone());
                }
                claims
            }
        };
        check_type_and_time(claims, expected, now)
    }

    /// Everything about a token that does not depend on the time of use.
    fn verify_signature_and_claims(&self, token: &str) -> Result<Claims, TokenError> {
        check_header_parameters(token)?;
        let header = decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::HS256 {
            return Err(TokenError::BadSignature);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = self
            .verifying
            .iter()
            .find(|key| key.kid == kid)
            .ok_or(TokenError::UnknownKey)?;
        let claims = decode::<Claims>(token, &key.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature
                | jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => TokenError::BadSignature,
                jsonwebtoken::errors::ErrorKind::InvalidToken
                | jsonwebtoken::errors::ErrorKind::Base64(_)
                | jsonwebtoken::errors::ErrorKind::Utf8(_) => TokenError::Malformed,
                _ => TokenError::InvalidClaims,
            })?
            .claims;
        if claims.exp <= claims.iat || claims.nbf < claims.iat {
            return Err(TokenError::InvalidClaims);
        }
        Ok(claims)
    }
}

/// The header parameters the JWT library does not judge (RFC 7515 §4.1.11, RFC 7519
/// §5.1): `crit` names extensions the verifier must understand, and this one
/// understands none, so any `crit` is refused; `typ`, when present, must say `JWT`.
fn check_header_parameters(token: &str) -> Result<(), TokenError> {
    use base64::Engine;
    let encoded = token.split('.').next().ok_or(TokenError::Malformed)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| TokenError::Malformed)?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
    if header.contains_key("crit") {
        return Err(TokenError::Malformed);
    }
    match header.get("typ") {
        None => Ok(()),
        Some(serde_json::Value::String(typ)) if typ.eq_ignore_ascii_case("JWT") => Ok(()),
        Some(_) => Err(TokenError::Malformed),
    }
}

fn check_type_and_time(
    claims: Claims,
    expected: TokenType,
    now: i64,
) -> Result<Claims, TokenError> {
    if claims.typ != expected {
        return Err(TokenError::WrongType);
    }
    if claims.iat > now + LEEWAY_SECONDS {
        return Err(TokenError::InvalidClaims);
    }
    if now >= claims.exp + LEEWAY_SECONDS {
        return Err(TokenError::Expired);
    }
    if now + LEEWAY_SECONDS < claims.nbf {
        return Err(TokenError::NotYetValid);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::{Value, json};

    const NOW: i64 = 1_800_000_000;

    fn settings(secret: &str, previous: &[&str]) -> JwtSettings {
        JwtSettings {
            secret: SecretString::from(secret),
            previous_secrets: previous.iter().map(|s| SecretString::from(*s)).collect(),
            access_token_minutes: 15,
            refresh_token_days: 7,
            revocation_cache_capacity: 1000,
            session_cache_capacity: 1000,
            refresh_reuse_grace_seconds: 2,
        }
    }

    const KEY_A: &str = "A0b1C2d3E4f5G6h7I8j9K0l1M2n3O4p5Q6r7";
    const KEY_B: &str = "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2";

    fn service() -> TokenService {
        TokenService::new(&settings(KEY_A, &[]))
    }

    fn issue(service: &TokenService) -> IssuedToken {
        service
            .issue_access(
                UserId::new(),
                Uuid::new_v4(),
                Role::User,
                AuthMethod::Password,
                NOW,
            )
            .expect("issue")
    }

    /// Signs arbitrary header and claims with HMAC-SHA256 (or another algorithm) by
    /// hand, the way an attacker would.
    fn forge(header: &Value, claims: &Value, secret: &str, alg: Algorithm) -> String {
        let mut h = Header::new(alg);
        h.kid = header["kid"].as_str().map(str::to_owned);
        encode(&h, claims, &EncodingKey::from_secret(secret.as_bytes())).expect("encode")
    }

    fn valid_claims(service: &TokenService) -> Value {
        serde_json::to_value(issue(service).claims).expect("json")
    }

    #[test]
    fn a_fresh_token_verifies_with_its_kid() {
        let service = service();
        let issued = issue(&service);
        let claims = service
            .verify(&issued.token, TokenType::Access, NOW)
            .expect("valid");
        assert_eq!(claims, issued.claims);
        let header = decode_header(&issued.token).expect("header");
        assert_eq!(
            header.kid.as_deref(),
            Some(key_id(&SecretString::from(KEY_A)).as_str())
        );
        assert_eq!(header.alg, Algorithm::HS256);
    }

    #[test]
    fn an_mfa_token_is_no_access_token_and_the_reverse() {
        let service = service();
        let mfa = service
            .issue_mfa(UserId::new(), Role::User, NOW)
            .expect("issue");
        assert_eq!(mfa.claims.exp - mfa.claims.iat, MFA_TOKEN_SECONDS);
        assert_eq!(
            service.verify(&mfa.token, TokenType::Access, NOW),
            Err(TokenError::WrongType)
        );
        assert!(service.verify(&mfa.token, TokenType::Mfa, NOW).is_ok());
        let access = issue(&service);
        assert_eq!(
            service.verify(&access.token, TokenType::Mfa, NOW),
            Err(TokenError::WrongType)
        );
        // Forging the type needs the key.
        let mut claims = valid_claims(&service);
        claims["typ"] = serde_json::json!("mfa");
        let kid = json!({"kid": key_id(&SecretString::from(KEY_A))});
        let forged = forge(&kid, &claims, KEY_B, Algorithm::HS256);
        assert_eq!(
            service.verify(&forged, TokenType::Mfa, NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn a_cached_token_is_still_checked_for_time_and_type() {
        let service = service();
        let issued = issue(&service);
        assert!(
            service
                .verify(&issued.token, TokenType::Access, NOW)
                .is_ok()
        );
        assert!(service.verified.contains_key(&issued.token));
        assert_eq!(
            service.verify(
                &issued.token,
                TokenType::Access,
                issued.claims.exp + LEEWAY_SECONDS
            ),
            Err(TokenError::Expired)
        );
        // A token differing in one byte is not the cached one.
        let mut altered = issued.token.clone();
        altered.pop();
        altered.push('A');
        if altered != issued.token {
            assert!(service.verify(&altered, TokenType::Access, NOW).is_err());
        }
    }

    #[test]
    fn expiry_and_not_before_respect_the_leeway() {
        let service = service();
        let issued = issue(&service);
        let exp = issued.claims.exp;
        assert!(
            service
                .verify(&issued.token, TokenType::Access, exp + LEEWAY_SECONDS - 1)
                .is_ok()
        );
        assert_eq!(
            service.verify(&issued.token, TokenType::Access, exp + LEEWAY_SECONDS),
            Err(TokenError::Expired)
        );
        let mut claims = valid_claims(&service);
        claims["nbf"] = json!(NOW + 3600);
        claims["exp"] = json!(NOW + 7200);
        let kid = json!({"kid": key_id(&SecretString::from(KEY_A))});
        let token = forge(&kid, &claims, KEY_A, Algorithm::HS256);
        assert_eq!(
            service.verify(&token, TokenType::Access, NOW),
            Err(TokenError::NotYetValid)
        );
    }

    #[test]
    fn tampering_alg_none_and_other_algorithms_are_refused() {
        let service = service();
        let issued = issue(&service);
        // Tampered payload, original signature.
        let parts: Vec<&str> = issued.token.split('.').collect();
        let mut claims = valid_claims(&service);
        claims["role"] = json!("admin");
        let forged_payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert_eq!(
            service.verify(&tampered, TokenType::Access, NOW),
            Err(TokenError::BadSignature)
        );
        // alg: none in every spelling, without a signature.
        for alg in ["none", "None", "NONE", "nOnE"] {
            let header = URL_SAFE_NO_PAD.encode(
                json!({"alg": alg, "typ": "JWT", "kid": key_id(&SecretString::from(KEY_A))})
                    .to_string(),
            );
            let token = format!("{header}.{}.", URL_SAFE_NO_PAD.encode(claims.to_string()));
            assert!(
                service.verify(&token, TokenType::Access, NOW).is_err(),
                "{alg}"
            );
        }
        // HS512 with the very same secret.
        let kid = json!({"kid": key_id(&SecretString::from(KEY_A))});
        let hs512 = forge(&kid, &valid_claims(&service), KEY_A, Algorithm::HS512);
        assert_eq!(
            service.verify(&hs512, TokenType::Access, NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn every_claim_is_required_and_checked() {
        let service = service();
        let kid = json!({"kid": key_id(&SecretString::from(KEY_A))});
        for missing in [
            "exp", "jti", "sub", "sid", "iat", "nbf", "iss", "aud", "role", "typ",
        ] {
            let mut claims = valid_claims(&service);
            claims.as_object_mut().expect("object").remove(missing);
            let token = forge(&kid, &claims, KEY_A, Algorithm::HS256);
            assert!(
                service.verify(&token, TokenType::Access, NOW).is_err(),
                "missing {missing}"
            );
        }
        for (claim, value) in [
            ("iss", json!("someone-else")),
            ("aud", json!("another-api")),
            ("typ", json!("refresh")),
            ("sub", json!("not-a-uuid")),
            ("role", json!("root")),
        ] {
            let mut claims = valid_claims(&service);
            claims[claim] = value;
            let token = forge(&kid, &claims, KEY_A, Algorithm::HS256);
            assert!(
                service.verify(&token, TokenType::Access, NOW).is_err(),
                "wrong {claim}"
            );
        }
    }

    #[test]
    fn a_token_from_before_the_auth_method_claim_reads_as_a_password_sign_in() {
        let service = service();
        let kid = json!({"kid": key_id(&SecretString::from(KEY_A))});
        let mut claims = valid_claims(&service);
        claims["auth_method"] = json!("passkey");
        let token = forge(&kid, &claims, KEY_A, Algorithm::HS256);
        let verified = service
            .verify(&token, TokenType::Access, NOW)
            .expect("valid");
        assert_eq!(verified.auth_method, AuthMethod::Passkey);
        claims
            .as_object_mut()
            .expect("object")
            .remove("auth_method");
        let token = forge(&kid, &claims, KEY_A, Algorithm::HS256);
        let verified = service
            .verify(&token, TokenType::Access, NOW)
            .expect("valid");
        assert_eq!(verified.auth_method, AuthMethod::Password);
        claims["auth_method"] = json!("magic");
        let token = forge(&kid, &claims, KEY_A, Algorithm::HS256);
        assert!(service.verify(&token, TokenType::Access, NOW).is_err());
    }

    #[test]
    fn oversized_and_keyless_tokens_are_refused() {
        let service = service();
        let huge = format!(
            "{}.{}.{}",
            "a".repeat(2000),
            "b".repeat(2000),
            "c".repeat(200)
        );
        assert_eq!(
            service.verify(&huge, TokenType::Access, NOW),
            Err(TokenError::TooLarge)
        );
        let token = forge(&json!({}), &valid_claims(&service), KEY_A, Algorithm::HS256);
        assert_eq!(
            service.verify(&token, TokenType::Access, NOW),
            Err(TokenError::UnknownKey)
        );
        assert_eq!(
            service.verify("garbage", TokenType::Access, NOW),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn previous_keys_verify_only_while_listed_and_never_sign() {
        let old = TokenService::new(&settings(KEY_B, &[]));
        let old_token = issue(&old).token;
        let rotated = TokenService::new(&settings(KEY_A, &[KEY_B]));
        assert!(rotated.verify(&old_token, TokenType::Access, NOW).is_ok());
        let new_token = issue(&rotated).token;
        let kid = decode_header(&new_token).expect("header").kid;
        assert_eq!(
            kid,
            Some(key_id(&SecretString::from(KEY_A))),
            "only the current key signs"
        );
        let finished = TokenService::new(&settings(KEY_A, &[]));
        assert_eq!(
            finished.verify(&old_token, TokenType::Access, NOW),
            Err(TokenError::UnknownKey)
        );
    }
}

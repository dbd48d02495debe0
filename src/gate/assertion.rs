//! `Portcullis-Assertion`: a short-lived JWT, signed with Ed25519 (EdDSA), that an
//! upstream can verify against `/.well-known/jwks.json` to know a request really
//! passed the gate — even if the upstream can be reached some other way. Its
//! audience is the host the request was for, so an assertion for one app is
//! worthless at another, and it names the method and path it was issued for.
//!
//! Signing costs tens of microseconds, more than the rest of a decision, so an
//! assertion is reused for the same account, host, method and path while it has
//! at least two thirds of its life left.

use std::sync::Arc;

use crate::cache::{Cache, hasher};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse, ThumbprintHash,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::ed25519_seed;

/// How long an assertion is good for.
pub const ASSERTION_SECONDS: i64 = 60;
/// An assertion is reused while it is younger than this.
const REUSE_SECONDS: i64 = 20;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AssertionClaims {
    /// The portal's origin.
    pub iss: String,
    /// The host name the request was for.
    pub aud: String,
    /// The account id.
    pub sub: String,
    pub email: String,
    pub role: String,
    /// The forwarded attributes (`GATE_FORWARD_ATTRIBUTES`) the account has.
    #[serde(default)]
    pub attributes: Map<String, Value>,
    /// The request's method (upper case) and path.
    pub method: String,
    pub path: String,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum AssertionError {
    #[error("the assertion key is unusable: {0}")]
    Key(String),
    #[error("the assertion could not be signed")]
    Signing(#[from] jsonwebtoken::errors::Error),
}

/// One key: its id (the RFC 7638 thumbprint) and its public JWK.
fn public_jwk(key: &SigningKey) -> Result<(String, Jwk), AssertionError> {
    let mut jwk = Jwk {
        common: CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(KeyAlgorithm::EdDSA),
            ..CommonParameters::default()
        },
        algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
            key_type: OctetKeyPairType::OctetKeyPair,
            curve: EllipticCurve::Ed25519,
            x: URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()),
        }),
    };
    let kid = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|e| AssertionError::Key(e.to_string()))?;
    jwk.common.key_id = Some(kid.clone());
    Ok((kid, jwk))
}

fn signing_key(seed: &SecretString) -> Result<SigningKey, AssertionError> {
    ed25519_seed(seed.expose_secret())
        .map(|bytes| SigningKey::from_bytes(&bytes))
        .map_err(AssertionError::Key)
}

/// A fresh key, as `GATE_ASSERTION_KEY` takes it.
pub fn generate_key() -> Result<String, crate::crypto::keys::RandomnessUnavailable> {
    crate::crypto::keys::random_bytes::<32>().map(|seed| URL_SAFE_NO_PAD.encode(seed))
}

/// Signs assertions with the current key and publishes every key that may still
/// verify one.
#[derive(Clone)]
pub struct AssertionSigner {
    kid: String,
    key: Arc<EncodingKey>,
    issuer: String,
    published: Arc<JwkSet>,
    recent: Cache<String, (i64, Arc<str>)>,
}

impl AssertionSigner {
    pub fn new(
        current: &SecretString,
        previous: &[SecretString],
        issuer: &str,
    ) -> Result<Self, AssertionError> {
        let signing = signing_key(current)?;
        let der = signing
            .to_pkcs8_der()
            .map_err(|e| AssertionError::Key(e.to_string()))?;
        let (kid, jwk) = public_jwk(&signing)?;
        let mut keys = vec![jwk];
        for old in previous {
            keys.push(public_jwk(&signing_key(old)?)?.1);
        }
        Ok(Self {
            kid,
            key: Arc::new(EncodingKey::from_ed_der(der.as_bytes())),
            issuer: issuer.to_owned(),
            published: Arc::new(JwkSet { keys }),
            // No time-to-live: an entry's age is checked when it is read, and
            // a full cache replaces its least useful entry at each insert. (A
            // time-to-live made the cache evict every expired assertion at once,
            // tens of milliseconds on the worker that happened to read next.)
            recent: moka::sync::Cache::builder()
                .max_capacity(20_000)
                .build_with_hasher(hasher()),
        })
    }

    pub fn jwks(&self) -> &JwkSet {
        &self.published
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The assertion for these claims (`iss`, `iat` and `exp` are set here),
    /// reused while young.
    pub fn sign(&self, mut claims: AssertionClaims, now: i64) -> Result<Arc<str>, AssertionError> {
        // Every claim but the times: an assertion is reused only while everything
        // it says still holds (a changed role or e-mail signs a new one). No claim
        // holds a NUL (paths with one are refused), so the joined text is unique.
        let attributes = if claims.attributes.is_empty() {
            String::new()
        } else {
            Value::Object(claims.attributes.clone()).to_string()
        };
        let reuse_key = [
            claims.sub.as_str(),
            &claims.aud,
            &claims.email,
            &claims.role,
            &claims.method,
            &claims.path,
            &attributes,
        ]
        .join("\0");
        if let Some((issued, token)) = self.recent.get(&reuse_key)
            && now - issued < REUSE_SECONDS
            && now >= issued
        {
            return Ok(token);
        }
        claims.iss.clone_from(&self.issuer);
        claims.iat = now;
        claims.exp = now + ASSERTION_SECONDS;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        header.typ = Some("JWT".to_owned());
        let token: Arc<str> = Arc::from(jsonwebtoken::encode(&header, &claims, &self.key)?);
        self.recent.insert(reuse_key, (now, Arc::clone(&token)));
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};

    fn claims(path: &str) -> AssertionClaims {
        AssertionClaims {
            iss: String::new(),
            aud: "app.example.com".to_owned(),
            sub: "u1".to_owned(),
            email: "a@example.com".to_owned(),
            role: "user".to_owned(),
            attributes: Map::new(),
            method: "GET".to_owned(),
            path: path.to_owned(),
            iat: 0,
            exp: 0,
        }
    }

    #[test]
    fn assertions_verify_against_the_published_keys_and_only_for_their_host() {
        let current = SecretString::from(generate_key().expect("key"));
        let old = SecretString::from(generate_key().expect("key"));
        let signer =
            AssertionSigner::new(&current, &[old], "https://auth.example.com").expect("signer");
        assert_eq!(signer.jwks().keys.len(), 2);
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let token = signer.sign(claims("/x"), now).expect("signed");
        let header = decode_header(token.as_ref()).expect("header");
        assert_eq!(header.alg, Algorithm::EdDSA);
        let jwk = signer
            .jwks()
            .find(header.kid.as_deref().expect("kid"))
            .expect("published");
        let key = DecodingKey::from_jwk(jwk).expect("key");
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&["app.example.com"]);
        validation.set_issuer(&["https://auth.example.com"]);
        let data = decode::<AssertionClaims>(token.as_ref(), &key, &validation).expect("valid");
        assert_eq!(data.claims.exp - data.claims.iat, ASSERTION_SECONDS);
        assert_eq!(data.claims.path, "/x");
        validation.set_audience(&["other.example.com"]);
        assert!(decode::<AssertionClaims>(token.as_ref(), &key, &validation).is_err());
        // The retired key's public half is published, but it did not sign this.
        let other = DecodingKey::from_jwk(&signer.jwks().keys[1]).expect("key");
        validation.set_audience(&["app.example.com"]);
        assert!(decode::<AssertionClaims>(token.as_ref(), &other, &validation).is_err());
    }

    #[test]
    fn a_young_assertion_is_reused_an_older_one_is_not() {
        let signer = AssertionSigner::new(
            &SecretString::from(generate_key().expect("key")),
            &[],
            "https://auth.example.com",
        )
        .expect("signer");
        let first = signer.sign(claims("/a"), 1_000).expect("signed");
        assert_eq!(first, signer.sign(claims("/a"), 1_010).expect("signed"));
        assert_ne!(first, signer.sign(claims("/b"), 1_010).expect("signed"));
        // A claim that changed (an account demoted a moment ago) is never reused.
        let mut demoted = claims("/a");
        demoted.role = "user-demoted".to_owned();
        assert_ne!(first, signer.sign(demoted, 1_010).expect("signed"));
        assert_ne!(
            first,
            signer
                .sign(claims("/a"), 1_000 + REUSE_SECONDS)
                .expect("signed")
        );
    }
}

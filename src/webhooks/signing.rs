//! Standard Webhooks signatures: `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))
//! where the key is the base64 part of a `whsec_…` secret. While a secret rotates,
//! both the new and the old one sign and both signatures are sent, space-separated.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::crypto::keys::{RandomnessUnavailable, random_bytes};

pub const SECRET_PREFIX: &str = "whsec_";
/// How far a receiver lets `webhook-timestamp` stray from its clock.
pub const TOLERANCE_SECONDS: i64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    #[error("the signing secret is empty or not base64")]
    BadSecret,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("a webhook header is missing")]
    MissingHeader,
    #[error("webhook-timestamp is not a whole number of seconds")]
    BadTimestamp,
    #[error("webhook-timestamp is outside the tolerance")]
    Stale,
    #[error("no signature matches")]
    NoMatch,
}

/// A signing secret's key bytes.
pub struct SigningSecret(SecretSlice<u8>);

impl SigningSecret {
    /// A fresh secret: 32 random bytes, and its `whsec_` text (shown once).
    pub fn generate() -> Result<(Self, SecretString), RandomnessUnavailable> {
        let bytes = random_bytes::<32>()?;
        let text = SecretString::from(format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes)));
        Ok((Self(SecretSlice::from(bytes.to_vec())), text))
    }

    /// From its text; the `whsec_` prefix and base64 padding are optional.
    pub fn parse(text: &str) -> Result<Self, SigningError> {
        let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
        let bytes = STANDARD
            .decode(encoded)
            .or_else(|_| STANDARD_NO_PAD.decode(encoded.trim_end_matches('=')))
            .map_err(|_| SigningError::BadSecret)?;
        if bytes.is_empty() {
            return Err(SigningError::BadSecret);
        }
        Ok(Self(SecretSlice::from(bytes)))
    }

    fn mac(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
        // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
        let mut mac = match Hmac::<Sha256>::new_from_slice(self.0.expose_secret()) {
            Ok(mac) => mac,
            Err(_) => return [0; 32],
        };
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    /// `v1,<base64 signature>`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", STANDARD.encode(self.mac(msg_id, timestamp, body)))
    }
}

/// The `webhook-signature` header: one `v1,` signature per secret, space-separated.
pub fn signature_header(
    secrets: &[&SigningSecret],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| s.sign(msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Verifies a delivery as a receiver should: timestamp within the tolerance of
/// `now`, and at least one `v1` signature equal (in constant time) to the expected
/// one. Other versions are ignored.
pub fn verify(
    secret: &SigningSecret,
    msg_id: Option<&str>,
    timestamp: Option<&str>,
    signatures: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    let (Some(msg_id), Some(timestamp), Some(signatures)) = (msg_id, timestamp, signatures) else {
        return Err(VerifyError::MissingHeader);
    };
    if timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::BadTimestamp);
    }
    let timestamp: i64 = timestamp.parse().map_err(|_| VerifyError::BadTimestamp)?;
    if (now - timestamp).abs() > TOLERANCE_SECONDS {
        return Err(VerifyError::Stale);
    }
    let expected = secret.mac(msg_id, timestamp, body);
    let matched = signatures
        .split(' ')
        .filter_map(|sig| sig.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .any(|candidate| bool::from(candidate.as_slice().ct_eq(&expected)));
    if matched {
        Ok(())
    } else {
        Err(VerifyError::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn vectors() -> Value {
        let path = crate::test_vectors::path("standard-webhooks/vectors.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_json::from_str(&text).expect("vector file parses")
    }

    fn text<'a>(v: &'a Value, key: &str) -> &'a str {
        v[key].as_str().unwrap_or_else(|| panic!("{key} missing"))
    }

    #[test]
    fn both_signing_vectors() {
        let all = vectors();
        let signs = all["sign_vectors"].as_array().expect("sign vectors");
        assert_eq!(signs.len(), 2);
        for v in signs {
            let secret = SigningSecret::parse(text(v, "secret")).expect("secret");
            let timestamp = v["timestamp"].as_i64().expect("timestamp");
            let signature =
                secret.sign(text(v, "msg_id"), timestamp, text(v, "payload").as_bytes());
            assert_eq!(
                signature,
                text(v, "expected_signature"),
                "{}",
                text(v, "name")
            );
        }
    }

    /// Every verify case, with the fields a case leaves out taken from the first
    /// (the wrong-signature case), as the vector file's cases assume.
    #[test]
    fn every_verify_case() {
        let all = vectors();
        let cases = all["verify_cases"].as_array().expect("verify cases");
        let base = &cases[0];
        let now = 1_800_000_000;
        for case in cases {
            let name = text(case, "name");
            let field = |key: &str| {
                case[key]
                    .as_str()
                    .unwrap_or_else(|| text(base, key))
                    .to_owned()
            };
            let expect = text(case, "expect");
            if name.starts_with("empty secret") {
                assert!(SigningSecret::parse("").is_err(), "{name}");
                assert!(SigningSecret::parse("whsec_").is_err(), "{name}");
                continue;
            }
            let secret = SigningSecret::parse(&field("secret")).expect("secret");
            let (msg_id, payload) = (field("msg_id"), field("payload"));
            if name.starts_with("secret without whsec_") {
                let raw = text(base, "secret")
                    .trim_start_matches(SECRET_PREFIX)
                    .trim_end_matches('=');
                let bare = SigningSecret::parse(raw).expect("accepted without prefix or padding");
                let signed = bare.sign(&msg_id, now, payload.as_bytes());
                assert_eq!(signed, secret.sign(&msg_id, now, payload.as_bytes()));
                continue;
            }
            if name.starts_with("sign with timestamp") {
                for bad in ["161426533.0", "invalid timestamp", "-161426533"] {
                    let sig = secret.sign(&msg_id, now, payload.as_bytes());
                    let result = verify(
                        &secret,
                        Some(&msg_id),
                        Some(bad),
                        Some(&sig),
                        payload.as_bytes(),
                        now,
                    );
                    assert_eq!(result, Err(VerifyError::BadTimestamp), "{name}: {bad}");
                }
                continue;
            }
            let timestamp = match case["timestamp"].as_str().unwrap_or("now") {
                "now" => now,
                "now-301" => now - 301,
                "now+301" => now + 301,
                other => panic!("unknown timestamp {other}"),
            };
            let valid = secret.sign(&msg_id, timestamp, payload.as_bytes());
            let header = match case["signature_header"].as_str() {
                Some(h) => h
                    .replace("<valid>[0:8]", &valid[..8])
                    .replace("<valid-b64>", valid.trim_start_matches("v1,"))
                    .replace("<valid>", &valid),
                None => valid.clone(),
            };
            let ts = timestamp.to_string();
            let result = if name.starts_with("missing") {
                let id = Some(msg_id.as_str());
                let sig = Some(header.as_str());
                let ts = Some(ts.as_str());
                for (i, t, s) in [(None, ts, sig), (id, None, sig), (id, ts, None)] {
                    assert_eq!(
                        verify(&secret, i, t, s, payload.as_bytes(), now),
                        Err(VerifyError::MissingHeader)
                    );
                }
                Err(VerifyError::MissingHeader)
            } else {
                verify(
                    &secret,
                    Some(&msg_id),
                    Some(&ts),
                    Some(&header),
                    payload.as_bytes(),
                    now,
                )
            };
            if expect.starts_with("accept") {
                assert_eq!(result, Ok(()), "{name}");
            } else {
                assert!(result.is_err(), "{name} was accepted");
            }
        }
    }

    #[test]
    fn a_rotation_header_carries_one_signature_per_secret() {
        let (new, _) = SigningSecret::generate().expect("rng");
        let (old, _) = SigningSecret::generate().expect("rng");
        let header = signature_header(&[&new, &old], "msg_1", 1_800_000_000, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        for secret in [&new, &old] {
            assert!(
                verify(
                    secret,
                    Some("msg_1"),
                    Some("1800000000"),
                    Some(&header),
                    b"{}",
                    1_800_000_000
                )
                .is_ok()
            );
        }
    }
}

//! TOTP (RFC 6238: HMAC-SHA1, 6 digits, 30 s steps, one step of skew either way)
//! and single-use backup codes. Pure functions: storage and replay protection live
//! in the account service, which records the last accepted step.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use qrcode::QrCode;
use qrcode::render::svg;
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Secret, Totp};

use crate::crypto::keys::{RandomnessUnavailable, random_bytes};
use crate::model::UserId;

pub const ISSUER: &str = "Portcullis";
pub const DIGITS: u8 = 6;
pub const STEP_SECONDS: u64 = 30;
pub const SKEW_STEPS: u16 = 1;
/// 160 bits, as RFC 4226 recommends.
pub const SECRET_BYTES: usize = 20;
/// The shortest secret read (80 bits, common in older systems); RFC 4226's minimum
/// is 128, which every secret made here exceeds.
const MIN_LEGACY_SECRET_BYTES: usize = 10;
pub const BACKUP_CODE_COUNT: usize = 10;
/// Crockford's base32 alphabet: no I, L, O or U to misread.
const BACKUP_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// 16 characters of 5 bits: 80 bits, beyond guessing even offline.
const BACKUP_CODE_CHARS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    #[error(transparent)]
    Randomness(#[from] RandomnessUnavailable),
    #[error("the stored TOTP secret is unusable")]
    BadSecret,
}

/// A TOTP shared secret (raw bytes). Stored only through the secret box, as the
/// base32 text authenticator apps use, so legacy plaintext rows read the same.
pub struct TotpSecret(SecretSlice<u8>);

impl TotpSecret {
    pub fn generate() -> Result<Self, MfaError> {
        let bytes = random_bytes::<SECRET_BYTES>()?;
        Ok(Self(SecretSlice::from(bytes.to_vec())))
    }

    /// From its stored base32 form. Legacy secrets imported from older systems are
    /// read as those systems wrote them: any case, spaces, dashes or padding, and
    /// as short as 80 bits (secrets made here are 160).
    pub fn from_base32(text: &[u8]) -> Result<Self, MfaError> {
        let text = std::str::from_utf8(text).map_err(|_| MfaError::BadSecret)?;
        let canonical: String = text
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '=' | '\t' | '\r' | '\n'))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let secret = Secret::try_from_base32(&canonical).map_err(|_| MfaError::BadSecret)?;
        if secret.as_ref().len() < MIN_LEGACY_SECRET_BYTES {
            return Err(MfaError::BadSecret);
        }
        Ok(Self(SecretSlice::from(secret.as_ref().to_vec())))
    }

    pub fn to_base32(&self) -> SecretString {
        SecretString::from(Secret::from(self.0.expose_secret().to_vec()).to_base32())
    }

    fn totp(&self, account: &str) -> Result<Totp, MfaError> {
        build(Algorithm::SHA1, DIGITS, self.0.expose_secret(), account)
    }

    /// The time step `code` is valid for at `now` (within the skew), if any.
    pub fn matching_step(&self, code: &str, now: i64) -> Option<u64> {
        let now = u64::try_from(now).ok()?;
        let code = code.trim();
        if code.len() != usize::from(DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        self.totp("").ok()?.check(code, now)
    }

    /// The current code; the demo prints it, tests use it.
    pub fn code_at(&self, now: i64) -> Result<String, MfaError> {
        let now = u64::try_from(now).map_err(|_| MfaError::BadSecret)?;
        Ok(self.totp("")?.generate(now).to_string())
    }

    /// The `otpauth://` URI an authenticator app scans.
    pub fn otpauth_uri(&self, account: &str) -> Result<SecretString, MfaError> {
        // The key URI format forbids a colon in the account name.
        let account = account.replace(':', "_");
        self.totp(&account)?
            .to_url()
            .map(SecretString::from)
            .map_err(|_| MfaError::BadSecret)
    }
}

/// The one place a TOTP is configured. Production uses SHA1 and 6 digits; the RFC
/// vectors exercise the other algorithms through the same function.
fn build(algorithm: Algorithm, digits: u8, secret: &[u8], account: &str) -> Result<Totp, MfaError> {
    let builder = totp_rs::Builder::new()
        .with_algorithm(algorithm)
        .with_digits(digits)
        .with_skew(SKEW_STEPS)
        .with_step_duration(STEP_SECONDS)
        .with_secret(secret.to_vec())
        .with_issuer(Some(ISSUER));
    let builder = if account.is_empty() {
        builder
    } else {
        builder.with_account_name(account)
    };
    if secret.len() >= 16 {
        builder.build().map_err(|_| MfaError::BadSecret)
    } else if secret.len() >= MIN_LEGACY_SECRET_BYTES && (6..=8).contains(&digits) {
        // A legacy secret below the RFC's 128 bits: the only check the strict
        // builder would fail, everything else being fixed above.
        Ok(builder.build_noncompliant())
    } else {
        Err(MfaError::BadSecret)
    }
}

/// The URI as a QR code: an SVG `data:` URL, ready for an `<img src>`.
pub fn qr_svg_data_url(uri: &SecretString) -> Result<String, MfaError> {
    let code = QrCode::new(uri.expose_secret().as_bytes()).map_err(|_| MfaError::BadSecret)?;
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    Ok(format!(
        "data:image/svg+xml;base64,{}",
        STANDARD.encode(image.as_bytes())
    ))
}

/// Fresh backup codes, formatted `XXXX-XXXX-XXXX-XXXX`.
pub fn generate_backup_codes() -> Result<Vec<SecretString>, MfaError> {
    (0..BACKUP_CODE_COUNT)
        .map(|_| {
            let bytes = random_bytes::<BACKUP_CODE_CHARS>()?;
            let chars: Vec<char> = bytes
                .iter()
                .map(|b| char::from(BACKUP_ALPHABET[usize::from(b & 31)]))
                .collect();
            let groups: Vec<String> = chars.chunks(4).map(|c| c.iter().collect()).collect();
            Ok(SecretString::from(groups.join("-")))
        })
        .collect()
}

/// A backup code as typed, canonical: case, spaces and dashes do not matter, and
/// the letters Crockford's base32 reads as digits are mapped. `None` when it cannot
/// be a backup code.
pub fn normalize_backup_code(input: &str) -> Option<String> {
    let mut out = String::with_capacity(BACKUP_CODE_CHARS);
    for c in input.chars().filter(|c| !matches!(c, '-' | ' ')) {
        let c = match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c if c.is_ascii() && BACKUP_ALPHABET.contains(&(c as u8)) => c,
            _ => return None,
        };
        out.push(c);
    }
    (out.len() == BACKUP_CODE_CHARS).then_some(out)
}

/// What is stored for a backup code: SHA-256 over the user id and the canonical
/// code. 80 random bits need no slow hash; the user id keeps equal codes of two
/// users apart.
pub fn backup_code_hash(user: UserId, canonical: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"portcullis-backup-code\0")
        .chain_update(user.to_string().as_bytes())
        .chain_update(b"\0")
        .chain_update(canonical.as_bytes())
        .finalize();
    hex::encode(digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Vector {
        algorithm: String,
        secret_hex: String,
        secret_base32: String,
        time: u64,
        time_step: u64,
        t0: u64,
        expected_8digit: String,
        expected_6digit: String,
    }

    fn vectors() -> Vec<Vector> {
        let path = crate::test_vectors::path("totp/rfc6238.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_json::from_str(&text).expect("vector file parses")
    }

    #[test]
    fn all_rfc6238_vectors_match() {
        let all = vectors();
        assert_eq!(all.len(), 18, "RFC 6238 Appendix B has 18 cases");
        for v in all {
            assert_eq!((v.time_step, v.t0), (STEP_SECONDS, 0));
            let algorithm = match v.algorithm.as_str() {
                "SHA1" => Algorithm::SHA1,
                "SHA256" => Algorithm::SHA256,
                "SHA512" => Algorithm::SHA512,
                other => panic!("unknown algorithm {other}"),
            };
            let secret = hex::decode(&v.secret_hex).expect("hex");
            for (digits, expected) in [(8, &v.expected_8digit), (6, &v.expected_6digit)] {
                let totp = build(algorithm, digits, &secret, "").expect("builds");
                assert_eq!(
                    &totp.generate(v.time).to_string(),
                    expected,
                    "{} at {} ({digits} digits)",
                    v.algorithm,
                    v.time
                );
            }
            if v.algorithm == "SHA1" {
                // The production path: base32 secret, 6 digits, accepted in its step.
                let secret = TotpSecret::from_base32(v.secret_base32.as_bytes()).expect("b32");
                let now = i64::try_from(v.time).expect("time");
                assert_eq!(secret.code_at(now).expect("code"), v.expected_6digit);
                assert_eq!(
                    secret.matching_step(&v.expected_6digit, now),
                    Some(v.time / STEP_SECONDS)
                );
            }
        }
    }

    #[test]
    fn one_step_of_skew_either_way_and_no_more() {
        let secret = TotpSecret::generate().expect("secret");
        let now = 1_800_000_015;
        let step = u64::try_from(now).expect("now") / STEP_SECONDS;
        for (offset, accepted) in [
            (-60, false),
            (-30, true),
            (0, true),
            (30, true),
            (60, false),
        ] {
            let code = secret.code_at(now + offset).expect("code");
            let expected = accepted.then(|| step.wrapping_add_signed(offset / 30));
            // Another step might share the code by chance (1 in 10^6): skip then.
            if !accepted && secret.matching_step(&code, now).is_some() {
                continue;
            }
            assert_eq!(secret.matching_step(&code, now), expected, "{offset}");
        }
    }

    #[test]
    fn legacy_secrets_read_in_any_common_form() {
        let secret = TotpSecret::generate().expect("secret");
        let b32 = secret.to_base32();
        let b32 = b32.expose_secret();
        let now = 1_800_000_000;
        let code = secret.code_at(now).expect("code");
        let spaced: String = b32
            .to_lowercase()
            .chars()
            .collect::<Vec<_>>()
            .chunks(4)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join(" ");
        for form in [
            b32.to_owned(),
            b32.to_lowercase(),
            spaced,
            format!("{b32}===="),
        ] {
            let read = TotpSecret::from_base32(form.as_bytes()).expect("reads");
            assert_eq!(read.code_at(now).expect("code"), code, "{form}");
        }
        // 80 bits, as older systems made them, still work; 40 do not.
        let short = TotpSecret::from_base32(b"JBSWY3DPEHPK3PXP").expect("80 bits");
        assert!(
            short
                .matching_step(&short.code_at(now).expect("code"), now)
                .is_some()
        );
        assert!(TotpSecret::from_base32(b"JBSWY3DP").is_err());
        assert!(TotpSecret::from_base32("JBSWY3DPÉHPK3PXP".as_bytes()).is_err());
    }

    #[test]
    fn malformed_codes_never_match() {
        let secret = TotpSecret::generate().expect("secret");
        let now = 1_800_000_000;
        let code = secret.code_at(now).expect("code");
        for bad in ["", "12345", "1234567", "abcdef", "12 345", "-12345"] {
            assert_eq!(secret.matching_step(bad, now), None, "{bad}");
        }
        assert!(secret.matching_step(&format!(" {code} "), now).is_some());
    }

    #[test]
    fn the_uri_names_issuer_account_and_secret() {
        let secret = TotpSecret::generate().expect("secret");
        let uri = secret.otpauth_uri("alice@example.org").expect("uri");
        let uri = uri.expose_secret();
        assert!(uri.starts_with("otpauth://totp/Portcullis:alice%40example.org?"));
        assert!(uri.contains(&format!("secret={}", secret.to_base32().expose_secret())));
        assert!(uri.contains("issuer=Portcullis"));
        let svg = qr_svg_data_url(&SecretString::from(uri.to_owned())).expect("qr");
        assert!(svg.starts_with("data:image/svg+xml;base64,"));
    }

    #[test]
    fn backup_codes_are_distinct_and_normalize() {
        let codes = generate_backup_codes().expect("codes");
        assert_eq!(codes.len(), BACKUP_CODE_COUNT);
        let canonical: std::collections::HashSet<_> = codes
            .iter()
            .map(|c| normalize_backup_code(c.expose_secret()).expect("valid"))
            .collect();
        assert_eq!(canonical.len(), BACKUP_CODE_COUNT);
        let code = codes[0].expose_secret();
        assert_eq!(
            normalize_backup_code(&code.to_lowercase().replace('-', " ")),
            normalize_backup_code(code)
        );
        assert_eq!(normalize_backup_code("0000-0000"), None);
        assert_eq!(normalize_backup_code("ÅAAA-AAAA-AAAA-AAAA"), None);
        let user = UserId::new();
        assert_ne!(
            backup_code_hash(user, "A"),
            backup_code_hash(UserId::new(), "A")
        );
    }
}

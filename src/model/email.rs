//! E-mail addresses, parsed once at the edge and normalised, so `Alice@X.org`,
//! `alice@x.org` and fullwidth `ａlice@x.org` are one account: the local part is
//! NFKC-normalised and lower-cased, the domain is stored in its IDNA (ASCII) form.
//!
//! Normalisation does not catch addresses that merely *look* the same (Cyrillic `а`,
//! dotless `ı`, a combining dot over an `i`): [`Email::skeleton`] gives the Unicode
//! UTS #39 confusable skeleton, with combining marks dropped first, and registration
//! treats an address whose skeleton matches an existing account's as taken. That
//! covers every look-alike the Unicode confusables table knows; letter pairs it does
//! not list (`vv` for `w`) are left to the eye.

use std::fmt;

use email_address::{EmailAddress, Options};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;
use unicode_security::confusable_detection::skeleton;

pub const MAX_EMAIL_LENGTH: usize = 254;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Accepts a plain `local@domain.tld` address: no display name, no IP literal.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("is required");
        }
        if trimmed.len() > MAX_EMAIL_LENGTH {
            return Err("is longer than 254 characters");
        }
        let options = Options::default()
            .with_required_tld()
            .without_domain_literal()
            .without_display_text();
        match EmailAddress::parse_with_options(trimmed, options) {
            Ok(address) if !address.local_part().starts_with('"') => {
                let local: String = address
                    .local_part()
                    .nfkc()
                    .collect::<String>()
                    .to_lowercase();
                let domain = idna::domain_to_ascii(address.domain())
                    .map_err(|_| "is not a valid e-mail address")?;
                let normalised = format!("{local}@{domain}");
                if normalised.len() > MAX_EMAIL_LENGTH {
                    return Err("is longer than 254 characters");
                }
                Ok(Self(normalised))
            }
            _ => Err("is not a valid e-mail address"),
        }
    }

    /// The UTS #39 confusable skeleton of the address as people read it (the domain
    /// in its Unicode form), lower-cased: two addresses that look alike have the same
    /// skeleton. Combining marks are dropped first — a dot or accent over a letter
    /// (`İ` lower-cases to `i` plus U+0307) must not make a look-alike distinct —
    /// and the result is lower-cased again, because the confusables table maps some
    /// characters to capitals (`0` → `O`).
    pub fn skeleton(&self) -> String {
        let (domain, _) = idna::domain_to_unicode(self.domain());
        let readable: String = format!("{}@{}", self.local_part(), domain.to_lowercase())
            .nfd()
            .filter(|c| !is_combining_mark(*c))
            .collect();
        skeleton(&readable).collect::<String>().to_lowercase()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(local, _)| local)
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, domain)| domain)
    }

    /// For values read back from the database, which were parsed on the way in.
    pub(crate) fn from_trusted(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_whitespace() {
        let email = Email::parse("  Alice.Smith@Example.ORG ").expect("valid");
        assert_eq!(email.as_str(), "alice.smith@example.org");
        assert_eq!(email.local_part(), "alice.smith");
        assert_eq!(email.domain(), "example.org");
    }

    #[test]
    fn normalises_compatibility_forms_and_the_domain() {
        let fullwidth = Email::parse("\u{ff41}lice@Example.org").expect("valid");
        assert_eq!(fullwidth.as_str(), "alice@example.org");
        let unicode_domain = Email::parse("alice@b\u{fc}cher.example").expect("valid");
        assert_eq!(unicode_domain.as_str(), "alice@xn--bcher-kva.example");
    }

    #[test]
    fn look_alikes_share_a_skeleton() {
        let original = Email::parse("alice@rt.test").expect("valid").skeleton();
        for look_alike in [
            "\u{430}lice@rt.test",  // Cyrillic a
            "al\u{131}ce@rt.test",  // dotless i
            "alice@rt.t\u{435}st",  // Cyrillic e in the domain
            "\u{ff41}lice@rt.test", // fullwidth a
            "al\u{130}ce@rt.test",  // dotted capital I: i and a combining dot
            "ALICE@RT.TEST",
        ] {
            let email = Email::parse(look_alike).expect("valid");
            assert_eq!(email.skeleton(), original, "{look_alike}");
        }
        let different = Email::parse("alicia@rt.test").expect("valid");
        assert_ne!(different.skeleton(), original);
    }

    #[test]
    fn rejects_the_unusual() {
        for bad in [
            "",
            "no-at-sign",
            "a@localhost",
            "a@[127.0.0.1]",
            "Alice <alice@example.org>",
            "\"quoted\"@example.org",
            "a@b@example.org",
            "two words@example.org",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} accepted");
        }
        assert!(Email::parse(&format!("{}@example.org", "a".repeat(250))).is_err());
    }
}

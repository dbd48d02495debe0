//! E-mail addresses, parsed once at the edge and lower-cased, so `Alice@X.org` and
//! `alice@x.org` are one account.

use std::fmt;

use email_address::{EmailAddress, Options};

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
                Ok(Self(address.email().to_lowercase()))
            }
            _ => Err("is not a valid e-mail address"),
        }
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

//! What a new password must be: 12–128 characters, hard to guess (zxcvbn score 3 or
//! more, judged with the account's own e-mail as a known input), and not containing the
//! e-mail's local part. Each failure names its rule.

use secrecy::{ExposeSecret, SecretString};

use crate::model::email::Email;
use crate::validation::FieldError;

pub const MIN_LENGTH: usize = 12;
pub const MAX_LENGTH: usize = 128;
pub const MIN_STRENGTH: u8 = 3;

/// A password that passed the policy. Only constructed by [`check`].
pub struct NewPassword(SecretString);

impl NewPassword {
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn into_secret(self) -> SecretString {
        self.0
    }
}

/// Checks `password` for the account `email`. CPU-bound (zxcvbn): call it off the
/// async executor. `field` is the JSON field named in errors.
pub fn check(
    password: SecretString,
    email: &Email,
    field: &str,
) -> Result<NewPassword, Vec<FieldError>> {
    let text = password.expose_secret();
    let length = text.chars().count();
    if length < MIN_LENGTH {
        return Err(vec![FieldError::rule(
            field,
            "min_length",
            format!("must be at least {MIN_LENGTH} characters"),
        )]);
    }
    if length > MAX_LENGTH {
        return Err(vec![FieldError::rule(
            field,
            "max_length",
            format!("must be at most {MAX_LENGTH} characters"),
        )]);
    }
    let mut errors = Vec::new();
    let local = email.local_part();
    if local.chars().count() >= 3 && text.to_lowercase().contains(local) {
        errors.push(FieldError::rule(
            field,
            "contains_email",
            "must not contain your e-mail address or its name part",
        ));
    }
    let estimate = zxcvbn::zxcvbn(text, &[email.as_str(), local, email.domain()]);
    if u8::from(estimate.score()) < MIN_STRENGTH {
        let hint = estimate
            .feedback()
            .and_then(|f| f.warning().map(|w| format!(" ({w})")))
            .unwrap_or_default();
        errors.push(FieldError::rule(
            field,
            "too_weak",
            format!("is too easy to guess{hint}; use a longer phrase of unrelated words"),
        ));
    }
    if errors.is_empty() {
        Ok(NewPassword(password))
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(password: &str) -> Vec<&'static str> {
        let email = Email::parse("maria.garcia@example.org").expect("email");
        match check(SecretString::from(password), &email, "password") {
            Ok(_) => Vec::new(),
            Err(errors) => errors.into_iter().filter_map(|e| e.rule).collect(),
        }
    }

    #[test]
    fn each_rule_is_named() {
        assert_eq!(rules("Sh0rt!"), vec!["min_length"]);
        assert_eq!(rules(&"x".repeat(129)), vec!["max_length"]);
        assert_eq!(rules("password1234"), vec!["too_weak"]);
        assert!(rules("maria.garcia-lighthouse-quartz-71").contains(&"contains_email"));
        assert!(rules("orbit lantern velvet cactus 42").is_empty());
    }
}

//! How a session was signed in to: the password alone, the password and a TOTP (or
//! backup) code, or a passkey. A session keeps the method it was opened with for its
//! whole life (its refreshed tokens carry it too), so policies can ask for a strong
//! one (`subject.auth_method`) and `subject.mfa` holds for a passkey, which proves
//! possession of a device and the user's PIN or biometric in one step.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum AuthMethod {
    #[serde(rename = "password")]
    Password,
    #[serde(rename = "password+totp")]
    PasswordTotp,
    #[serde(rename = "passkey")]
    Passkey,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Password => "password",
            AuthMethod::PasswordTotp => "password+totp",
            AuthMethod::Passkey => "passkey",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "password" => Some(AuthMethod::Password),
            "password+totp" => Some(AuthMethod::PasswordTotp),
            "passkey" => Some(AuthMethod::Passkey),
            _ => None,
        }
    }

    /// The method a password sign-in of an account comes to: with MFA on, the
    /// password is never enough by itself, so the session proved a code too.
    pub fn of_password_sign_in(mfa_enabled: bool) -> Self {
        if mfa_enabled {
            AuthMethod::PasswordTotp
        } else {
            AuthMethod::Password
        }
    }

    /// Whether the sign-in proved more than one factor.
    pub fn is_multi_factor(self) -> bool {
        !matches!(self, AuthMethod::Password)
    }
}

#[cfg(test)]
mod tests {
    use super::AuthMethod;

    #[test]
    fn names_round_trip_and_only_the_password_alone_is_single_factor() {
        for method in [
            AuthMethod::Password,
            AuthMethod::PasswordTotp,
            AuthMethod::Passkey,
        ] {
            assert_eq!(AuthMethod::parse(method.as_str()), Some(method));
            assert_eq!(
                serde_json::to_value(method).ok(),
                Some(serde_json::Value::from(method.as_str()))
            );
        }
        assert_eq!(AuthMethod::parse("totp"), None);
        assert!(!AuthMethod::Password.is_multi_factor());
        assert!(AuthMethod::PasswordTotp.is_multi_factor());
        assert!(AuthMethod::Passkey.is_multi_factor());
        assert_eq!(
            AuthMethod::of_password_sign_in(true),
            AuthMethod::PasswordTotp
        );
        assert_eq!(AuthMethod::of_password_sign_in(false), AuthMethod::Password);
    }
}

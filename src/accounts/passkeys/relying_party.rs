//! The relying party: webauthn-rs configured from `WEBAUTHN_RP_ID` and
//! `WEBAUTHN_RP_ORIGINS`, what Portcullis changes in the options it sends, and how
//! the library's refusals are named in the audit log.
//!
//! Passkeys here are for signing in with nothing else, so a registration asks the
//! authenticator for a discoverable credential (`residentKey: "required"`): without
//! one, a sign-in that names no account would find nothing. webauthn-rs asks for
//! "discouraged" by default and ignores the field when it checks the answer, so
//! patching the options is safe.

use std::time::Duration;

use webauthn_rs::prelude::{
    CreationChallengeResponse, Webauthn, WebauthnBuilder, WebauthnError, WebauthnResult,
};
use webauthn_rs_proto::{AuthenticatorSelectionCriteria, ResidentKeyRequirement};

use super::ceremonies::CEREMONY_SECONDS;
use crate::config::WebauthnSettings;

/// What authenticators show beside the account's name.
const RP_NAME: &str = "Portcullis";

/// The relying party for `settings`: exact origins (no other port, no subdomain
/// beyond those listed), user verification always required (webauthn-rs's
/// passkeys), the sign counter checked, and the browser given as long as the
/// ceremony is kept.
pub(super) fn build(settings: &WebauthnSettings) -> WebauthnResult<Webauthn> {
    let (first, others) = settings
        .origins
        .split_first()
        .ok_or(WebauthnError::Configuration)?;
    let builder = WebauthnBuilder::new(&settings.rp_id, first)?
        .rp_name(RP_NAME)
        .timeout(Duration::from_secs(CEREMONY_SECONDS.unsigned_abs()))
        .allow_subdomains(false)
        .allow_any_port(false);
    others
        .iter()
        .fold(builder, |builder, origin| {
            builder.append_allowed_origin(origin)
        })
        .build()
}

/// Asks the authenticator to keep the new credential discoverable, so it can sign
/// in without the account being named first.
pub(super) fn require_discoverable(options: &mut CreationChallengeResponse) {
    let selection = options
        .public_key
        .authenticator_selection
        .get_or_insert_with(AuthenticatorSelectionCriteria::default);
    selection.resident_key = Some(ResidentKeyRequirement::Required);
    selection.require_resident_key = true;
}

/// The reason an answer was refused, for the audit log (the library's own text goes
/// to the log only, and never to the client).
pub(super) fn refusal_reason(error: &WebauthnError) -> &'static str {
    match error {
        WebauthnError::InvalidRPOrigin => "wrong_origin",
        WebauthnError::InvalidRPIDHash => "wrong_rp_id",
        WebauthnError::MismatchedChallenge => "wrong_challenge",
        WebauthnError::UserNotVerified => "user_not_verified",
        WebauthnError::CredentialPossibleCompromise => "counter_regressed",
        WebauthnError::CredentialNotFound => "unknown_credential",
        WebauthnError::InvalidClientDataType => "wrong_ceremony_type",
        _ => "invalid_answer",
    }
}

#[cfg(test)]
mod tests {
    use webauthn_rs::prelude::{Url, Uuid};

    use super::*;

    fn settings(rp_id: &str, origins: &[&str]) -> WebauthnSettings {
        WebauthnSettings {
            rp_id: rp_id.to_owned(),
            origins: origins
                .iter()
                .map(|o| Url::parse(o).expect("url"))
                .collect(),
        }
    }

    #[test]
    fn every_listed_origin_is_allowed_and_an_uncovering_rp_id_is_refused() {
        let party = build(&settings(
            "example.com",
            &["https://auth.example.com", "https://login.example.com"],
        ))
        .expect("relying party");
        assert_eq!(party.get_allowed_origins().len(), 2);
        assert!(build(&settings("example.org", &["https://auth.example.com"])).is_err());
        assert!(build(&settings("example.com", &[])).is_err());
    }

    #[test]
    fn registration_options_ask_for_a_discoverable_credential_with_user_verification() {
        let party = build(&settings("localhost", &["http://localhost:8080"])).expect("rp");
        let (mut options, _) = party
            .start_passkey_registration(Uuid::new_v4(), "a@example.org", "a@example.org", None)
            .expect("options");
        require_discoverable(&mut options);
        let json = serde_json::to_value(&options).expect("json");
        let selection = &json["publicKey"]["authenticatorSelection"];
        assert_eq!(selection["residentKey"], "required");
        assert_eq!(selection["requireResidentKey"], true);
        assert_eq!(selection["userVerification"], "required");
        assert_eq!(json["publicKey"]["rp"]["id"], "localhost");
        assert_eq!(json["publicKey"]["timeout"], 300_000);
    }

    #[test]
    fn refusals_are_named_without_the_library_text() {
        assert_eq!(
            refusal_reason(&WebauthnError::InvalidRPOrigin),
            "wrong_origin"
        );
        assert_eq!(
            refusal_reason(&WebauthnError::CredentialPossibleCompromise),
            "counter_regressed"
        );
        assert_eq!(
            refusal_reason(&WebauthnError::UserNotVerified),
            "user_not_verified"
        );
        assert_eq!(
            refusal_reason(&WebauthnError::Configuration),
            "invalid_answer"
        );
    }
}

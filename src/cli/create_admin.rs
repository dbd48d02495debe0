//! `portcullis create-admin --email E`: an administrator account. The password comes
//! from a prompt (typed twice, not echoed), from stdin (`--password-stdin`), or is
//! generated and printed once (`--generate-password`).

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Map;

use super::{EXIT_CONFIG, EXIT_FAILURE, exit_code_for, load_settings};
use crate::accounts::AccountError;
use crate::audit::RequestMeta;
use crate::clock::Clock;
use crate::config::{ConfigSources, Mode};
use crate::crypto::keys::random_password;
use crate::model::{Email, Role};
use crate::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordSource {
    /// Prompt on a terminal; read a line when stdin is not one.
    Interactive,
    Stdin,
    Generate,
}

pub fn run(sources: ConfigSources, email: &str, source: PasswordSource) -> ExitCode {
    let email = match Email::parse(email) {
        Ok(email) => email,
        Err(problem) => {
            eprintln!("create-admin: --email {problem}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let (settings, _) = match load_settings(&sources, Mode::Production) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let password = match read_password(source) {
        Ok(password) => password,
        Err(problem) => {
            eprintln!("create-admin: {problem}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    super::block_on(async move {
        let state = match AppState::open(settings, Clock::system()).await {
            Ok(state) => state,
            Err(error) => {
                eprintln!("create-admin: cannot open the database: {error:#}");
                return exit_code_for(&error);
            }
        };
        match create(&state, email, password, source).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(problem) => {
                eprintln!("create-admin: {problem}");
                ExitCode::from(EXIT_FAILURE)
            }
        }
    })
    .unwrap_or_else(|code| code)
}

fn read_password(source: PasswordSource) -> Result<Option<SecretString>, String> {
    let from_line = || {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from stdin ({})", e.kind()))?;
        Ok(Some(SecretString::from(
            line.trim_end_matches(['\r', '\n']).to_owned(),
        )))
    };
    match source {
        PasswordSource::Generate => Ok(None),
        PasswordSource::Stdin => from_line(),
        PasswordSource::Interactive if !std::io::stdin().is_terminal() => from_line(),
        PasswordSource::Interactive => {
            let first = rpassword::prompt_password("Password for the new admin: ")
                .map_err(|e| format!("cannot read the password ({})", e.kind()))?;
            let second = rpassword::prompt_password("Repeat it: ")
                .map_err(|e| format!("cannot read the password ({})", e.kind()))?;
            if first != second {
                return Err("the two passwords differ".to_owned());
            }
            Ok(Some(SecretString::from(first)))
        }
    }
}

async fn create(
    state: &AppState,
    email: Email,
    password: Option<SecretString>,
    source: PasswordSource,
) -> Result<(), String> {
    let password = match password {
        Some(password) => password,
        None => random_password().map_err(|e| e.to_string())?,
    };
    let checked = state
        .accounts
        .check_new_password(password.clone(), &email, "password")
        .await
        .map_err(describe)?;
    let user = state
        .accounts
        .create_user(
            email,
            checked,
            Role::Admin,
            Map::new(),
            &RequestMeta::default(),
        )
        .await
        .map_err(describe)?;
    println!("Created admin {} (id {}).", user.email, user.id);
    if source == PasswordSource::Generate {
        println!("Password (shown once): {}", password.expose_secret());
    }
    Ok(())
}

fn describe(error: AccountError) -> String {
    match error {
        AccountError::Validation(errors) => errors
            .iter()
            .map(|e| format!("the password {}", e.message))
            .collect::<Vec<_>>()
            .join("; "),
        AccountError::EmailTaken => "an account with this e-mail address already exists".to_owned(),
        other => other.to_string(),
    }
}

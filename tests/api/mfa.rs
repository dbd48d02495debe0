//! TOTP MFA: setup and enable, the two-step login, single-use codes, backup codes,
//! disable, admin reset, lockout, and secrets that never touch the disk unencrypted.

use std::time::Duration;

use portcullis::auth::mfa::TotpSecret;
use portcullis::clock::Clock;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::helpers::{GOOD_PASSWORD, TestApp, binary_vars, problem, spawn_with, test_settings};

const SETUP: &str = "/api/v1/auth/mfa/setup";
const ENABLE: &str = "/api/v1/auth/mfa/enable";
const DISABLE: &str = "/api/v1/auth/mfa/disable";
const VERIFY: &str = "/api/v1/auth/mfa/verify-login";

/// The password again, which MFA setup needs (a stolen token alone must not enrol).
fn reauth() -> Value {
    json!({"password": GOOD_PASSWORD})
}

/// An app on a manual clock, so TOTP steps are ours to move.
pub async fn app_with(overrides: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = test_settings(dir.path(), overrides);
    // Start mid-step, so "the same step" and "the next step" are unambiguous.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let clock = Clock::manual(now - now % 30 + 5);
    spawn_with(settings, dir, reqwest::Client::new(), clock).await
}

/// What a user with MFA on holds.
pub struct Enrolled {
    pub access_token: String,
    secret: TotpSecret,
    base32: String,
    pub backup_codes: Vec<String>,
}

impl Enrolled {
    pub fn code(&self, app: &TestApp) -> String {
        self.secret.code_at(app.clock.now()).expect("code")
    }
}

pub async fn enrolled(app: &TestApp, email: &str) -> Enrolled {
    let tokens = app.signed_up(email).await;
    let response = app
        .post_with_token(SETUP, &tokens.access_token, Some(&reauth()))
        .await;
    assert_eq!(response.status(), 200);
    let setup: Value = response.json().await.expect("json");
    let base32 = setup["secret"].as_str().expect("secret").to_owned();
    let uri = setup["otpauth_uri"].as_str().expect("uri");
    assert!(uri.starts_with("otpauth://totp/Portcullis:"), "{uri}");
    assert!(uri.contains(&format!("secret={base32}")));
    assert!(
        setup["qr_code"]
            .as_str()
            .expect("qr")
            .starts_with("data:image/svg+xml;base64,")
    );
    let secret = TotpSecret::from_base32(base32.as_bytes()).expect("base32");
    let code = secret.code_at(app.clock.now()).expect("code");
    let response = app
        .post_with_token(ENABLE, &tokens.access_token, Some(&json!({"code": code})))
        .await;
    assert_eq!(response.status(), 200);
    let enabled: Value = response.json().await.expect("json");
    let backup_codes: Vec<String> = enabled["backup_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect();
    assert_eq!(backup_codes.len(), 10);
    Enrolled {
        access_token: tokens.access_token,
        secret,
        base32,
        backup_codes,
    }
}

/// Logs in with the password and returns the MFA challenge token.
pub(crate) async fn challenge(app: &TestApp, email: &str) -> String {
    let response = app.login(email, GOOD_PASSWORD).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["mfa_required"], true, "{body}");
    assert!(
        body.get("access_token").is_none(),
        "no tokens before the code"
    );
    assert!(body.get("refresh_token").is_none());
    assert_eq!(body["expires_in"], 300);
    body["mfa_token"].as_str().expect("mfa_token").to_owned()
}

async fn verify(app: &TestApp, mfa_token: &str, code: &str) -> reqwest::Response {
    app.post_json(VERIFY, &json!({"mfa_token": mfa_token, "code": code}))
        .await
}

#[actix_web::test]
async fn setup_enable_and_the_two_step_login() {
    let app = app_with(&[]).await;
    let user = enrolled(&app, "two.step@example.org").await;
    let me: Value = app
        .get_with_token("/api/v1/auth/me", &user.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["mfa_enabled"], true);
    // Setting up again while enabled is refused.
    let again = app
        .post_with_token(SETUP, &user.access_token, Some(&reauth()))
        .await;
    problem(again, 409).await;

    app.clock.advance(30);
    let mfa_token = challenge(&app, "two.step@example.org").await;
    let response = verify(&app, &mfa_token, &user.code(&app)).await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.expect("json");
    let access = tokens["access_token"].as_str().expect("access");
    assert_eq!(app.me_status(access).await, 200);
    assert!(tokens["refresh_token"].is_string());
    // The challenge is spent with its success.
    app.clock.advance(30);
    let reused = verify(&app, &mfa_token, &user.code(&app)).await;
    assert_eq!(
        problem(reused, 401).await["detail"],
        "Invalid token",
        "a challenge token is good for one sign-in"
    );
}

#[actix_web::test]
async fn enable_needs_a_current_code_of_the_pending_secret() {
    let app = app_with(&[]).await;
    let tokens = app.signed_up("pending@example.org").await;
    let early = app
        .post_with_token(
            ENABLE,
            &tokens.access_token,
            Some(&json!({"code": "123456"})),
        )
        .await;
    problem(early, 409).await;
    let setup: Value = app
        .post_with_token(SETUP, &tokens.access_token, Some(&reauth()))
        .await
        .json()
        .await
        .expect("json");
    let secret =
        TotpSecret::from_base32(setup["secret"].as_str().expect("secret").as_bytes()).expect("b32");
    let stale = secret.code_at(app.clock.now() - 90).expect("code");
    let wrong = app
        .post_with_token(ENABLE, &tokens.access_token, Some(&json!({"code": stale})))
        .await;
    let body = problem(wrong, 422).await;
    assert_eq!(body["errors"][0]["field"], "code");
    let me: Value = app
        .get_with_token("/api/v1/auth/me", &tokens.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["mfa_enabled"], false);
    // A login still needs no code while the setup is pending.
    let login: Value = app
        .login("pending@example.org", GOOD_PASSWORD)
        .await
        .json()
        .await
        .expect("json");
    assert!(login["access_token"].is_string());
}

#[actix_web::test]
async fn an_mfa_token_is_useless_as_an_access_token_and_vice_versa() {
    let app = app_with(&[]).await;
    let user = enrolled(&app, "typed@example.org").await;
    let mfa_token = challenge(&app, "typed@example.org").await;
    assert_eq!(app.me_status(&mfa_token).await, 401);
    let logout = app
        .post_with_token("/api/v1/auth/logout", &mfa_token, None)
        .await;
    assert_eq!(logout.status(), 401);
    let setup = app.post_with_token(SETUP, &mfa_token, None).await;
    assert_eq!(setup.status(), 401);
    // An access token is no MFA challenge either.
    app.clock.advance(30);
    let swapped = verify(&app, &user.access_token, &user.code(&app)).await;
    assert_eq!(problem(swapped, 401).await["detail"], "Invalid token");
    let forged = verify(&app, "not.a.token", "123456").await;
    assert_eq!(forged.status(), 401);
}

#[actix_web::test]
async fn a_code_is_accepted_once_and_a_replay_is_audited() {
    let app = app_with(&[]).await;
    let user = enrolled(&app, "replay@example.org").await;
    // The code that enabled MFA cannot then sign in, in its own window.
    let mfa_token = challenge(&app, "replay@example.org").await;
    let replay = verify(&app, &mfa_token, &user.code(&app)).await;
    assert_eq!(
        problem(replay, 401).await["detail"],
        "Invalid authentication code"
    );
    app.clock.advance(30);
    let code = user.code(&app);
    assert_eq!(verify(&app, &mfa_token, &code).await.status(), 200);
    // A second sign-in with the same code, still inside its window (and inside the
    // one-step skew that follows), is refused.
    let second = challenge(&app, "replay@example.org").await;
    assert_eq!(verify(&app, &second, &code).await.status(), 401);
    app.clock.advance(29);
    assert_eq!(verify(&app, &second, &code).await.status(), 401);
    let replays = app.audit_events("mfa.replay_rejected");
    assert_eq!(replays.len(), 3, "{replays:?}");
    assert!(replays.iter().all(|(outcome, _, _)| outcome == "denied"));
    let failures = app.audit_events("auth.login_failed");
    assert!(
        failures
            .iter()
            .any(|(_, _, d)| d.contains("mfa_code_replayed")),
        "{failures:?}"
    );
}

#[actix_web::test]
async fn a_backup_code_works_once() {
    let app = app_with(&[]).await;
    let user = enrolled(&app, "backup@example.org").await;
    let backup = &user.backup_codes[3];
    let mfa_token = challenge(&app, "backup@example.org").await;
    // Case and dashes do not matter.
    let typed = backup.to_lowercase().replace('-', "");
    assert_eq!(verify(&app, &mfa_token, &typed).await.status(), 200);
    let used = app.audit_events("mfa.backup_code_used");
    assert_eq!(used.len(), 1);
    assert!(used[0].2.contains("\"remaining\":9"), "{:?}", used[0]);
    let again = challenge(&app, "backup@example.org").await;
    let reused = verify(&app, &again, backup).await;
    assert_eq!(
        problem(reused, 401).await["detail"],
        "Invalid authentication code"
    );
    let replays = app.audit_events("mfa.replay_rejected");
    assert_eq!(replays.len(), 1, "a reused backup code is a replay");
    assert_eq!(
        verify(&app, &again, &user.backup_codes[4]).await.status(),
        200
    );
}

#[actix_web::test]
async fn the_database_file_holds_no_totp_secret_or_backup_code() {
    let app = app_with(&[]).await;
    let user = enrolled(&app, "at.rest@example.org").await;
    let raw = data_encoding_base32(&user.base32);
    assert_eq!(raw.len(), 20, "160-bit secret");
    // Everything SQLite may have written: the file, its WAL and shared memory.
    let mut files = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", app.db_path.display());
        if let Ok(bytes) = std::fs::read(&path) {
            files.push((path, bytes));
        }
    }
    assert!(!files.is_empty());
    for (path, bytes) in &files {
        assert!(
            !contains(bytes, user.base32.as_bytes()),
            "{path} holds the base32 secret"
        );
        assert!(!contains(bytes, &raw), "{path} holds the raw secret bytes");
        for code in &user.backup_codes {
            assert!(
                !contains(bytes, code.as_bytes()),
                "{path} holds a backup code"
            );
            assert!(!contains(bytes, code.replace('-', "").as_bytes()));
        }
    }
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    let stored: String = conn
        .query_row("SELECT secret FROM mfa_factors", [], |r| r.get(0))
        .expect("row");
    assert!(stored.starts_with("fernet:v1:"), "{stored}");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Decodes RFC 4648 base32 (no padding) by hand, so the test does not trust the
/// code under test to tell it what the raw bytes are.
fn data_encoding_base32(text: &str) -> Vec<u8> {
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut value, mut out) = (0u32, 0u32, Vec::new());
    for c in text.trim_end_matches('=').chars() {
        let index = u32::try_from(ALPHABET.find(c).expect("base32 char")).expect("index");
        value = (value << 5) | index;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((value >> bits) & 0xff).expect("byte"));
        }
    }
    out
}

#[actix_web::test]
async fn wrong_codes_count_toward_the_softlock() {
    let app = app_with(&[("SOFTLOCK_STEPS", "5:60")]).await;
    let user = enrolled(&app, "guessed@example.org").await;
    app.clock.advance(30);
    let mfa_token = challenge(&app, "guessed@example.org").await;
    for guess in ["000000", "111111", "222222", "333333", "444444"] {
        // (One of these may, once in 200,000 runs, be the real code.)
        assert_eq!(verify(&app, &mfa_token, guess).await.status(), 401);
    }
    let locked = app.audit_events("auth.account_locked");
    assert_eq!(locked.len(), 1, "{locked:?}");
    // Locked: even the right code is refused, and so is the right password.
    assert_eq!(
        verify(&app, &mfa_token, &user.code(&app)).await.status(),
        401
    );
    assert_eq!(
        app.login("guessed@example.org", GOOD_PASSWORD)
            .await
            .status(),
        401
    );
    // A right password does not reset the count: only a right code does.
    app.clock.advance(61);
    let fresh = challenge(&app, "guessed@example.org").await;
    assert_eq!(verify(&app, &fresh, "555555").await.status(), 401);
    assert_eq!(
        app.audit_events("auth.account_locked").len(),
        2,
        "the sixth failure locks again"
    );
}

#[actix_web::test]
async fn code_checks_are_rate_limited_per_account() {
    let app = app_with(&[("RATE_LIMIT_MFA_ACCOUNT", "3/60")]).await;
    // Enabling took one check of the three.
    let _user = enrolled(&app, "limited@example.org").await;
    let mfa_token = challenge(&app, "limited@example.org").await;
    for _ in 0..2 {
        assert_eq!(verify(&app, &mfa_token, "000000").await.status(), 401);
    }
    let limited = verify(&app, &mfa_token, "000000").await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    // Another account is not affected.
    let _other = enrolled(&app, "unlimited@example.org").await;
}

#[actix_web::test]
async fn disable_needs_the_password_and_a_code() {
    let app = app_with(&[]).await;
    let user = enrolled(&app, "disable@example.org").await;
    app.clock.advance(30);
    let wrong_password = app
        .post_with_token(
            DISABLE,
            &user.access_token,
            Some(&json!({"password": "not my password at all", "code": user.code(&app)})),
        )
        .await;
    assert_eq!(
        problem(wrong_password, 422).await["errors"][0]["field"],
        "password"
    );
    let wrong_code = app
        .post_with_token(
            DISABLE,
            &user.access_token,
            Some(&json!({"password": GOOD_PASSWORD, "code": "000000"})),
        )
        .await;
    assert_eq!(problem(wrong_code, 422).await["errors"][0]["field"], "code");
    let disabled = app
        .post_with_token(
            DISABLE,
            &user.access_token,
            Some(&json!({"password": GOOD_PASSWORD, "code": user.code(&app)})),
        )
        .await;
    assert_eq!(disabled.status(), 200);
    assert_eq!(app.audit_events("mfa.disabled").len(), 1);
    assert_eq!(app.audit_events("mfa.enabled").len(), 1);
    let login: Value = app
        .login("disable@example.org", GOOD_PASSWORD)
        .await
        .json()
        .await
        .expect("json");
    assert!(login["access_token"].is_string(), "{login}");
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    let left: i64 = conn
        .query_row("SELECT count(*) FROM mfa_backup_codes", [], |r| r.get(0))
        .expect("count");
    assert_eq!(left, 0, "backup codes go with the factor");
}

#[actix_web::test]
async fn an_administrator_resets_a_users_mfa() {
    let app = app_with(&[]).await;
    let _user = enrolled(&app, "lost.phone@example.org").await;
    app.signed_up("root@example.org").await;
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    conn.execute(
        "UPDATE users SET role = 'admin' WHERE email = 'root@example.org'",
        [],
    )
    .expect("promote");
    let admin = app
        .signed_in("root@example.org", GOOD_PASSWORD)
        .await
        .access_token;
    let id: String = conn
        .query_row(
            "SELECT id FROM users WHERE email = 'lost.phone@example.org'",
            [],
            |r| r.get(0),
        )
        .expect("id");
    let path = format!("/api/v1/admin/users/{id}/mfa/reset");
    let other = app.signed_up("someone@example.org").await;
    let refused = app.post_with_token(&path, &other.access_token, None).await;
    problem(refused, 403).await;
    let reset = app.post_with_token(&path, &admin, None).await;
    assert_eq!(reset.status(), 200);
    assert_eq!(reset.json::<Value>().await.expect("json")["removed"], true);
    let events = app.audit_events("mfa.reset");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].1.as_deref(), Some(id.as_str()));
    let login: Value = app
        .login("lost.phone@example.org", GOOD_PASSWORD)
        .await
        .json()
        .await
        .expect("json");
    assert!(login["access_token"].is_string(), "{login}");
    let missing = app
        .post_with_token(
            "/api/v1/admin/users/00000000-0000-4000-8000-000000000000/mfa/reset",
            &admin,
            None,
        )
        .await;
    problem(missing, 404).await;
}

// ---- keys and stored secrets ----

/// Runs the binary and waits (at most 30 s) for it to exit.
fn run_to_exit(dir: &std::path::Path, args: &[&str], vars: &[(String, String)]) -> (i32, String) {
    let mut command = crate::helpers::binary();
    command
        .current_dir(dir)
        .args(args)
        .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("BIND_ADDRESS", "127.0.0.1:0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("spawn");
    for _ in 0..300 {
        if let Ok(Some(_)) = child.try_wait() {
            let output = child.wait_with_output().expect("output");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            return (output.status.code().unwrap_or(-1), text);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("{args:?} did not exit");
}

fn with_var(vars: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    vars.iter()
        .map(|(k, v)| {
            let v = if k == name { value } else { v };
            (k.clone(), v.to_owned())
        })
        .collect()
}

#[actix_web::test]
async fn a_wrong_mfa_key_refuses_to_start_naming_the_variable() {
    let app = app_with(&[]).await;
    let _user = enrolled(&app, "keyed@example.org").await;
    let vars = binary_vars(&app.settings);
    let other = portcullis::crypto::keys::fernet_key().expect("rng");
    let wrong = with_var(&vars, "MFA_ENCRYPTION_KEY", other.expose_secret());
    let (code, output) = run_to_exit(app.dir.path(), &["serve"], &wrong);
    assert_eq!(code, 2, "{output}");
    assert!(output.contains("MFA_ENCRYPTION_KEY"), "{output}");
    assert!(
        !output.contains(other.expose_secret()),
        "no key in the output"
    );
    let (code, output) = run_to_exit(app.dir.path(), &["check-config"], &wrong);
    assert_eq!(code, 2, "{output}");
    assert!(
        output
            .lines()
            .any(|l| l.contains("FAIL  MFA_ENCRYPTION_KEY")),
        "{output}"
    );
    // The canary covers a purpose with no secrets stored yet as well.
    let wrong = with_var(&vars, "CREDENTIAL_ENCRYPTION_KEY", other.expose_secret());
    let (code, output) = run_to_exit(app.dir.path(), &["serve"], &wrong);
    assert_eq!(code, 2, "{output}");
    assert!(output.contains("CREDENTIAL_ENCRYPTION_KEY"), "{output}");
    // The right keys pass the same check.
    let (code, output) = run_to_exit(app.dir.path(), &["check-config"], &vars);
    assert!(
        output
            .lines()
            .any(|l| l.contains("pass  MFA_ENCRYPTION_KEY: decrypts")),
        "{output}"
    );
    assert!(!output.contains("FAIL  MFA"), "{code}: {output}");
}

/// Stores `base32` as a legacy plaintext factor for `email`, as an import from the
/// system Portcullis replaces would.
fn import_plaintext_factor(app: &TestApp, email: &str, base32: &str) {
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    conn.execute(
        "INSERT INTO mfa_factors (user_id, secret, created_at, enabled_at)
         SELECT id, ?2, 0, 0 FROM users WHERE email = ?1",
        [email, base32],
    )
    .expect("import");
}

#[actix_web::test]
async fn a_legacy_plaintext_secret_is_read_then_encrypted_by_migrate_secrets() {
    let app = app_with(&[]).await;
    app.signed_up("imported@example.org").await;
    // As older systems often stored them: 80 bits, lower case, in groups.
    let base32 = "jbsw y3dp ehpk 3pxp".to_owned();
    let secret = TotpSecret::from_base32(base32.as_bytes()).expect("secret");
    import_plaintext_factor(&app, "imported@example.org", &base32);

    // Readable as it is.
    let mfa_token = challenge(&app, "imported@example.org").await;
    let code = secret.code_at(app.clock.now()).expect("code");
    assert_eq!(verify(&app, &mfa_token, &code).await.status(), 200);

    let vars = binary_vars(&app.settings);
    let (_, report) = run_to_exit(app.dir.path(), &["check-config"], &vars);
    assert!(
        report.contains("warn  stored secrets") && report.contains("migrate-secrets"),
        "{report}"
    );
    let (code, output) = run_to_exit(
        app.dir.path(),
        &["migrate-secrets", "--batch-size", "1"],
        &vars,
    );
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains("1 plaintext value(s) encrypted"),
        "{output}"
    );
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    let stored: String = conn
        .query_row("SELECT secret FROM mfa_factors", [], |r| r.get(0))
        .expect("row");
    assert!(stored.starts_with("fernet:v1:"), "{stored}");
    assert!(!stored.contains(&base32));
    assert_eq!(app.audit_events("secrets.migrated").len(), 1);

    // Still the same secret.
    app.clock.advance(30);
    let mfa_token = challenge(&app, "imported@example.org").await;
    let code = secret.code_at(app.clock.now()).expect("code");
    assert_eq!(verify(&app, &mfa_token, &code).await.status(), 200);
    // Running it again finds nothing to do.
    let (code, output) = run_to_exit(app.dir.path(), &["migrate-secrets"], &vars);
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains("0 plaintext value(s) encrypted"),
        "{output}"
    );
}

#[actix_web::test]
async fn rotate_keys_leaves_everything_readable_with_the_new_key_alone() {
    let app = app_with(&[]).await;
    let mut users = Vec::new();
    for name in ["r1", "r2", "r3"] {
        let email = format!("{name}@example.org");
        let user = enrolled(&app, &email).await;
        users.push((email, user.secret));
    }
    // One legacy row too: a rotation seals it as well.
    app.signed_up("r4@example.org").await;
    let legacy = TotpSecret::generate().expect("secret");
    import_plaintext_factor(&app, "r4@example.org", legacy.to_base32().expose_secret());
    users.push(("r4@example.org".to_owned(), legacy));

    let TestApp {
        handle,
        settings,
        dir,
        client,
        clock,
        ..
    } = app;
    handle.stop(true).await;
    let old_key = settings.mfa_keys[0].expose_secret().to_owned();
    let new_key = portcullis::crypto::keys::fernet_key().expect("rng");
    let new_key = new_key.expose_secret().to_owned();
    let vars = with_var(
        &binary_vars(&settings),
        "MFA_ENCRYPTION_KEY",
        &format!("{new_key},{old_key}"),
    );
    let (code, output) = run_to_exit(dir.path(), &["rotate-keys", "--batch-size", "2"], &vars);
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains("4 row(s) examined, 4 re-encrypted"),
        "{output}"
    );
    // Interrupted or not, a second run has nothing left to do.
    let (code, output) = run_to_exit(dir.path(), &["rotate-keys"], &vars);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("0 re-encrypted"), "{output}");

    // The old key is gone from the configuration: everything still opens.
    let mut settings = settings;
    settings.mfa_keys = vec![secrecy::SecretString::from(new_key)];
    let app = spawn_with(settings, dir, client, clock).await;
    app.clock.advance(30);
    for (email, secret) in &users {
        let mfa_token = challenge(&app, email).await;
        let code = secret.code_at(app.clock.now()).expect("code");
        assert_eq!(
            verify(&app, &mfa_token, &code).await.status(),
            200,
            "{email}"
        );
    }
    let rotated = app.audit_events("secrets.rotated");
    assert_eq!(rotated.len(), 2);
}

#[actix_web::test]
async fn concurrent_guesses_cannot_outrun_the_softlock() {
    let app = app_with(&[("SOFTLOCK_STEPS", "3:600")]).await;
    let _user = enrolled(&app, "raced@example.org").await;
    let mfa_token = challenge(&app, "raced@example.org").await;
    let guesses: Vec<_> = (0..20)
        .map(|i| {
            let (client, url) = (app.client.clone(), app.url(VERIFY));
            let body = json!({"mfa_token": mfa_token, "code": format!("{:06}", 100_000 + i)});
            actix_web::rt::spawn(async move { client.post(url).json(&body).send().await })
        })
        .collect();
    for guess in guesses {
        let response = guess.await.expect("task").expect("response");
        assert_eq!(response.status(), 401);
    }
    let checked = app
        .audit_events("auth.login_failed")
        .into_iter()
        .filter(|(_, _, details)| details.contains("wrong_mfa_code"))
        .count();
    assert_eq!(checked, 3, "only three codes were checked before the lock");
}

#[actix_web::test]
async fn one_challenge_opens_one_session_even_when_raced() {
    let app = app_with(&[]).await;
    let user = enrolled(&app, "once@example.org").await;
    app.clock.advance(30);
    let mfa_token = challenge(&app, "once@example.org").await;
    let attempts: Vec<_> = [user.code(&app), user.backup_codes[0].clone()]
        .into_iter()
        .map(|code| {
            let (client, url) = (app.client.clone(), app.url(VERIFY));
            let body = json!({"mfa_token": mfa_token, "code": code});
            actix_web::rt::spawn(async move { client.post(url).json(&body).send().await })
        })
        .collect();
    let mut signed_in = 0;
    for attempt in attempts {
        let response = attempt.await.expect("task").expect("response");
        signed_in += usize::from(response.status() == 200);
    }
    assert_eq!(signed_in, 1);
}

#[actix_web::test]
async fn a_softlocked_account_cannot_disable_mfa() {
    let app = app_with(&[("SOFTLOCK_STEPS", "3:600")]).await;
    let user = enrolled(&app, "stolen.token@example.org").await;
    app.clock.advance(30);
    for _ in 0..3 {
        let wrong = app
            .post_with_token(
                DISABLE,
                &user.access_token,
                Some(&json!({"password": GOOD_PASSWORD, "code": "000000"})),
            )
            .await;
        assert_eq!(wrong.status(), 422);
    }
    let locked = app
        .post_with_token(
            DISABLE,
            &user.access_token,
            Some(&json!({"password": GOOD_PASSWORD, "code": user.code(&app)})),
        )
        .await;
    problem(locked, 403).await;
    assert!(app.audit_events("mfa.disabled").is_empty());
}

#[actix_web::test]
async fn a_secret_sealed_with_a_key_not_configured_refuses_startup_and_is_skipped_by_rotation() {
    let app = app_with(&[]).await;
    let _user = enrolled(&app, "known@example.org").await;
    app.signed_up("stray@example.org").await;
    // Sealed by some other key: as a server still running with an old key would.
    let stray_key = portcullis::crypto::keys::fernet_key().expect("rng");
    let stray_box = portcullis::crypto::secret_box::SecretBox::new(
        portcullis::config::KeyPurpose::Mfa,
        std::slice::from_ref(&stray_key),
    )
    .expect("box");
    let sealed = stray_box
        .seal(
            TotpSecret::generate()
                .expect("s")
                .to_base32()
                .expose_secret()
                .as_bytes(),
        )
        .expect("seal");
    import_plaintext_factor(&app, "stray@example.org", &sealed);
    let vars = binary_vars(&app.settings);
    let (code, output) = run_to_exit(app.dir.path(), &["serve"], &vars);
    assert_eq!(code, 2, "{output}");
    assert!(
        output.contains("1 stored secret(s) cannot be decrypted")
            && output.contains("MFA_ENCRYPTION_KEY"),
        "{output}"
    );
    let (code, output) = run_to_exit(app.dir.path(), &["check-config"], &vars);
    assert_eq!(code, 2, "{output}");
    // With the stray key added after the first, rotation moves it under the first.
    let current = app.settings.mfa_keys[0].expose_secret().to_owned();
    let both = with_var(
        &vars,
        "MFA_ENCRYPTION_KEY",
        &format!("{current},{}", stray_key.expose_secret()),
    );
    let (code, output) = run_to_exit(app.dir.path(), &["rotate-keys"], &both);
    assert_eq!(code, 0, "{output}");
    let (code, output) = run_to_exit(app.dir.path(), &["check-config"], &vars);
    assert!(!output.contains("FAIL  MFA"), "{code}: {output}");
}

#[actix_web::test]
async fn a_rotation_spread_over_runs_finishes_where_it_stopped() {
    let app = app_with(&[]).await;
    for name in ["s1", "s2", "s3", "s4", "s5"] {
        enrolled(&app, &format!("{name}@example.org")).await;
    }
    let old = app.settings.mfa_keys[0].expose_secret().to_owned();
    let new = portcullis::crypto::keys::fernet_key().expect("rng");
    let vars = with_var(
        &binary_vars(&app.settings),
        "MFA_ENCRYPTION_KEY",
        &format!("{},{old}", new.expose_secret()),
    );
    let (code, output) = run_to_exit(
        app.dir.path(),
        &["rotate-keys", "--batch-size", "2", "--max-rows", "3"],
        &vars,
    );
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("stopped at --max-rows"), "{output}");
    assert!(
        output.contains("3 row(s) examined, 3 re-encrypted"),
        "{output}"
    );
    let (code, output) = run_to_exit(app.dir.path(), &["rotate-keys"], &vars);
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains("5 row(s) examined, 2 re-encrypted"),
        "{output}"
    );
    let events = app.audit_events("secrets.rotated");
    assert_eq!(events.len(), 2);
    assert!(
        events[0].2.contains("\"complete\":false"),
        "{:?}",
        events[0]
    );
    assert!(events[1].2.contains("\"complete\":true"), "{:?}", events[1]);
    // The new key alone now opens everything, the canary included.
    let alone = with_var(&vars, "MFA_ENCRYPTION_KEY", new.expose_secret());
    let (_, output) = run_to_exit(app.dir.path(), &["check-config"], &alone);
    assert!(
        output.contains("pass  MFA_ENCRYPTION_KEY: decrypts"),
        "{output}"
    );
}

/// A password change keeps what the caller's session proved, no more: a session
/// opened with the password alone (before MFA was on) does not come out of it
/// claiming a code it never gave.
#[actix_web::test]
async fn a_password_change_claims_no_more_than_the_session_proved() {
    use base64::Engine;
    let app = app_with(&[]).await;
    let enrolled = enrolled(&app, "changer@example.org").await;
    let changed = app
        .post_with_token(
            "/api/v1/auth/password",
            &enrolled.access_token,
            Some(&json!({"current_password": GOOD_PASSWORD,
                         "new_password": "another long secret phrase 77"})),
        )
        .await;
    assert_eq!(changed.status(), 200);
    let pair: Value = changed.json().await.expect("json");
    let payload = pair["access_token"]
        .as_str()
        .expect("token")
        .split('.')
        .nth(1)
        .expect("payload");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64"),
    )
    .expect("json");
    assert_eq!(claims["auth_method"], "password", "{claims}");
}

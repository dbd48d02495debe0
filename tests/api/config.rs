//! Each refusal runs the real binary: exit code 2, one line per problem naming the
//! variable, never the secret value.

use std::path::Path;
use std::process::Output;

use crate::helpers::{run_binary, secret_pairs};

/// A valid environment with `changes` applied (an empty value removes the variable).
fn env_with(dir: &Path, changes: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = secret_pairs()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    vars.push((
        "DATABASE_PATH".to_owned(),
        dir.join("p.db").to_string_lossy().into_owned(),
    ));
    for (name, value) in changes {
        vars.retain(|(k, _)| k != name);
        if !value.is_empty() {
            vars.push(((*name).to_owned(), (*value).to_owned()));
        }
    }
    vars
}

fn serve(dir: &Path, changes: &[(&str, &str)]) -> Output {
    let vars = env_with(dir, changes);
    let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    run_binary(dir, &["serve"], &borrowed)
}

/// Asserts a refusal: exit 2, every stderr line a problem, one naming `variable`,
/// and `secret` (if any) nowhere in the output.
fn assert_refused(output: &Output, variable: &str, secret: Option<&str>) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.lines().all(|l| l.starts_with("config error: ")),
        "one line per problem: {stderr}"
    );
    assert!(
        stderr.lines().any(|l| l.contains(variable)),
        "{variable} not named: {stderr}"
    );
    if let Some(secret) = secret {
        assert!(
            !stderr.contains(secret) && !stdout.contains(secret),
            "secret echoed: {stderr}"
        );
    }
    stderr
}

#[test]
fn missing_jwt_secret_exits_2_with_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = serve(dir.path(), &[("JWT_SECRET_KEY", "")]);
    let stderr = assert_refused(&output, "JWT_SECRET_KEY", None);
    assert!(
        stderr.contains("portcullis keygen"),
        "the fix is named: {stderr}"
    );
}

#[test]
fn weak_jwt_secrets_are_refused_without_echo() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Each placeholder holds exactly one of the fragments the issue names.
    for (secret, reason) in [
        ("Sh0rt-but-random-Xy9", "too short"),
        ("Kq7Vb2-change-in-production-Zx9Lm4Rt", "placeholder"),
        ("Kq7Vb2-CHANGEME-Zx9Lm4Rt8Wp3Ys6Nb1", "placeholder"),
        ("Kq7Vb2-my-secret-key-Zx9Lm4Rt8Wp3Ys", "placeholder"),
        ("Kq7Vb2-Example-Zx9Lm4Rt8Wp3Ys6Nb1Qa", "placeholder"),
        ("abcdefghiabcdefghiabcdefghiabcdefghi", "entropy"),
    ] {
        let output = serve(dir.path(), &[("JWT_SECRET_KEY", secret)]);
        let stderr = assert_refused(&output, "JWT_SECRET_KEY", Some(secret));
        assert!(stderr.contains(reason), "{secret}: {stderr}");
    }
}

#[test]
fn bad_previous_jwt_keys_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = serve(dir.path(), &[("JWT_PREVIOUS_SECRET_KEYS", "short-old-key")]);
    assert_refused(&output, "JWT_PREVIOUS_SECRET_KEYS", Some("short-old-key"));
}

#[test]
fn missing_or_invalid_fernet_keys_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let not_fernet = "this-is-not-a-fernet-key-at-all-0123456789";
    for variable in ["CREDENTIAL_ENCRYPTION_KEY", "MFA_ENCRYPTION_KEY"] {
        assert_refused(&serve(dir.path(), &[(variable, "")]), variable, None);
        assert_refused(
            &serve(dir.path(), &[(variable, not_fernet)]),
            variable,
            Some(not_fernet),
        );
        // A rotation list whose second key is broken is refused too, naming the entry.
        let good = portcullis::crypto::keys::fernet_key().expect("rng");
        let list = format!(
            "{},{not_fernet}",
            secrecy::ExposeSecret::expose_secret(&good)
        );
        let stderr = assert_refused(
            &serve(dir.path(), &[(variable, &list)]),
            variable,
            Some(not_fernet),
        );
        assert!(stderr.contains("entry 2"), "{stderr}");
        assert!(!stderr.contains(secrecy::ExposeSecret::expose_secret(&good)));
    }
}

#[test]
fn unsafe_cors_origins_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    for origins in [
        "*",
        "null",
        "https://ok.example.org,*",
        "https://app.example.org/",
        "https://app.example.org/path",
        "app.example.org",
        "ftp://app.example.org",
    ] {
        let output = serve(dir.path(), &[("CORS_ALLOWED_ORIGINS", origins)]);
        assert_refused(&output, "CORS_ALLOWED_ORIGINS", None);
    }
}

#[test]
fn an_unwritable_database_directory_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A directory that exists but takes no new files, even for root.
    let output = serve(dir.path(), &[("DATABASE_PATH", "/proc/portcullis.db")]);
    let stderr = assert_refused(&output, "DATABASE_PATH", None);
    assert!(stderr.contains("not writable"), "{stderr}");
    // A regular file where the directory should be: not creatable even for root.
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").expect("write");
    let db = blocker.join("sub").join("p.db");
    let output = serve(
        dir.path(),
        &[("DATABASE_PATH", db.to_str().expect("utf-8"))],
    );
    assert_refused(&output, "DATABASE_PATH", None);
}

#[test]
fn password_hashing_below_owasp_minimums_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (variable, value) in [
        ("PASSWORD_HASH_MEMORY_KIB", "19455"),
        ("PASSWORD_HASH_ITERATIONS", "1"),
        ("PASSWORD_HASH_PARALLELISM", "0"),
    ] {
        assert_refused(&serve(dir.path(), &[(variable, value)]), variable, None);
    }
}

#[test]
fn all_problems_are_reported_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = serve(
        dir.path(),
        &[
            ("JWT_SECRET_KEY", ""),
            ("MFA_ENCRYPTION_KEY", "nope"),
            ("CORS_ALLOWED_ORIGINS", "*"),
            ("ACCESS_TOKEN_EXPIRE_MINUTES", "forever"),
        ],
    );
    let stderr = assert_refused(&output, "JWT_SECRET_KEY", None);
    for variable in [
        "MFA_ENCRYPTION_KEY",
        "CORS_ALLOWED_ORIGINS",
        "ACCESS_TOKEN_EXPIRE_MINUTES",
    ] {
        assert!(stderr.contains(variable), "{variable}: {stderr}");
    }
    assert_eq!(stderr.lines().count(), 4, "{stderr}");
}

#[test]
fn a_toml_config_file_is_read_and_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = String::new();
    for (name, value) in secret_pairs() {
        text.push_str(&format!("{} = \"{value}\"\n", name.to_ascii_lowercase()));
    }
    text.push_str(&format!(
        "database_path = \"{}\"\ncors_allowed_origins = [\"https://app.example.org\"]\n",
        dir.path().join("p.db").display()
    ));
    let file = dir.path().join("portcullis.toml");
    std::fs::write(&file, &text).expect("write");
    let file_arg = file.to_str().expect("utf-8");
    let output = run_binary(dir.path(), &["check-config", "--config", file_arg], &[]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("CORS_ALLOWED_ORIGINS: 1 exact origin")
    );

    // The environment overrides the file, and a typo in the file is refused.
    let output = run_binary(
        dir.path(),
        &["serve", "--config", file_arg],
        &[("CORS_ALLOWED_ORIGINS", "*")],
    );
    assert_refused(&output, "CORS_ALLOWED_ORIGINS", None);
    std::fs::write(&file, format!("{text}cors_alowed_origins = \"x\"\n")).expect("write");
    let output = run_binary(dir.path(), &["serve", "--config", file_arg], &[]);
    let stderr = assert_refused(&output, "--config", None);
    assert!(stderr.contains("cors_alowed_origins"), "{stderr}");
}

#[test]
fn check_config_prints_findings_and_a_score_and_fails_on_any_failure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vars = env_with(dir.path(), &[("DEFAULT_RATE_LIMIT_CALLS", "1000")]);
    let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let output = run_binary(dir.path(), &["check-config"], &borrowed);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    for expected in [
        "pass  JWT_SECRET_KEY",
        "warn  TLS_CERT_PATH",
        "warn  HSTS_MAX_AGE_SECONDS",
        "warn  CORS_ALLOWED_ORIGINS",
        "warn  DEFAULT_RATE_LIMIT_CALLS",
        "pass  database",
        "Score: ",
    ] {
        assert!(stdout.contains(expected), "missing `{expected}`:\n{stdout}");
    }
    for (_, secret) in &vars {
        if secret.len() > 20 && !secret.contains('/') {
            assert!(!stdout.contains(secret.as_str()), "secret printed");
        }
    }

    let vars = env_with(dir.path(), &[("CORS_ALLOWED_ORIGINS", "*")]);
    let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let output = run_binary(dir.path(), &["check-config"], &borrowed);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("FAIL  CORS_ALLOWED_ORIGINS"), "{stdout}");
    let score: u32 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Score: "))
        .and_then(|s| s.split('/').next())
        .and_then(|s| s.parse().ok())
        .expect("score line");
    assert!(
        score < 50,
        "a failing configuration scores below 50: {score}"
    );
}

#[test]
fn check_config_judges_the_mfa_code_limit_per_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let check = |value: &str| {
        let vars = env_with(dir.path(), &[("RATE_LIMIT_MFA_IP", value)]);
        let borrowed: Vec<(&str, &str)> =
            vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let output = run_binary(dir.path(), &["check-config"], &borrowed);
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (code, stdout) = check("10/60");
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        !stdout.contains("RATE_LIMIT_MFA_IP"),
        "the default: {stdout}"
    );
    let (code, stdout) = check("1000/60");
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("warn  RATE_LIMIT_MFA_IP"), "{stdout}");
    let (code, stdout) = check("ten a minute");
    assert_eq!(code, Some(2), "{stdout}");
    assert!(stdout.contains("FAIL  RATE_LIMIT_MFA_IP"), "{stdout}");
}

#[test]
fn passkey_settings_browsers_would_refuse_exit_2_with_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (changes, variable, says) in [
        (
            vec![
                ("WEBAUTHN_RP_ID", "example.org"),
                ("WEBAUTHN_RP_ORIGINS", "https://auth.example.com"),
            ],
            "WEBAUTHN_RP_ID",
            "set WEBAUTHN_RP_ID to a domain every origin shares",
        ),
        (
            vec![("WEBAUTHN_RP_ORIGINS", "http://127.0.0.1:8080")],
            "WEBAUTHN_RP_ORIGINS",
            "IP address",
        ),
        (
            vec![("WEBAUTHN_RP_ORIGINS", "http://auth.example.com")],
            "WEBAUTHN_RP_ORIGINS",
            "use https",
        ),
        (
            vec![
                ("WEBAUTHN_RP_ID", "com"),
                ("WEBAUTHN_RP_ORIGINS", "https://example.com"),
            ],
            "WEBAUTHN_RP_ID",
            "top-level domain",
        ),
        (
            vec![("WEBAUTHN_RP_ID", "localhost")],
            "WEBAUTHN_RP_ORIGINS",
            "is needed with WEBAUTHN_RP_ID",
        ),
    ] {
        let stderr = assert_refused(&serve(dir.path(), &changes), variable, None);
        assert!(stderr.contains(says), "{changes:?}: {stderr}");
    }
}

#[test]
fn check_config_says_whether_passkeys_are_on_and_why_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let check = |changes: &[(&str, &str)]| {
        let vars = env_with(dir.path(), changes);
        let borrowed: Vec<(&str, &str)> =
            vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let output = run_binary(dir.path(), &["check-config"], &borrowed);
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (code, stdout) = check(&[("PUBLIC_URL", "https://auth.example.com")]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains("pass  WEBAUTHN_RP_ID") && stdout.contains("RP id auth.example.com"),
        "{stdout}"
    );
    let (code, stdout) = check(&[
        ("WEBAUTHN_RP_ID", "example.com"),
        (
            "WEBAUTHN_RP_ORIGINS",
            "https://auth.example.com,https://login.example.com:8443",
        ),
    ]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("RP id example.com"), "{stdout}");
    // Taken from a PUBLIC_URL browsers cannot use: off, with what to set.
    let (code, stdout) = check(&[("PUBLIC_URL", "http://127.0.0.1:8080")]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains("warn  WEBAUTHN_RP_ID") && stdout.contains("passkeys are off"),
        "{stdout}"
    );
    let (code, stdout) = check(&[]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("passkeys are off"), "{stdout}");
}

#[test]
fn check_config_refuses_a_public_suffix_as_the_rp_id_with_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (id, origin, fix) in [
        (
            "co.uk",
            "https://auth.example.co.uk",
            "such as example.co.uk",
        ),
        (
            "com.au",
            "https://auth.example.com.au",
            "such as example.com.au",
        ),
        // The private section too: browsers use the whole list.
        (
            "github.io",
            "https://me.github.io",
            "such as example.github.io",
        ),
    ] {
        let vars = env_with(
            dir.path(),
            &[("WEBAUTHN_RP_ID", id), ("WEBAUTHN_RP_ORIGINS", origin)],
        );
        let borrowed: Vec<(&str, &str)> =
            vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let output = run_binary(dir.path(), &["check-config"], &borrowed);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(2), "{id}: {stdout}");
        assert!(
            stdout.lines().any(|l| l.contains("FAIL  WEBAUTHN_RP_ID")
                && l.contains(&format!("`{id}` is a public suffix"))
                && l.contains("browsers refuse as an RP id")
                && l.contains(fix)),
            "{id}: {stdout}"
        );
    }
    // Its registrable domain is what it asks for, and that passes.
    let vars = env_with(
        dir.path(),
        &[
            ("WEBAUTHN_RP_ID", "example.co.uk"),
            ("WEBAUTHN_RP_ORIGINS", "https://auth.example.co.uk"),
        ],
    );
    let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let output = run_binary(dir.path(), &["check-config"], &borrowed);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("RP id example.co.uk"), "{stdout}");
}

#[test]
fn the_rp_id_taken_from_public_url_and_the_portal_is_never_a_public_suffix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let assertion_key = portcullis::gate::assertion::generate_key().expect("key");
    let check = |public: &str, portal: &str, hosts: &str, rp_id: &str| {
        let vars = env_with(
            dir.path(),
            &[
                ("PUBLIC_URL", public),
                ("GATE_PORTAL_URL", portal),
                ("GATE_HOSTS", hosts),
                ("GATE_ASSERTION_KEY", &assertion_key),
                ("TRUSTED_PROXIES", "127.0.0.1"),
                ("WEBAUTHN_RP_ID", rp_id),
            ],
        );
        let borrowed: Vec<(&str, &str)> =
            vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let output = run_binary(dir.path(), &["check-config"], &borrowed);
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    // Sibling hosts: off, naming the domain they share, not `co.uk`.
    let (public, portal) = ("https://api.example.co.uk", "https://auth.example.co.uk");
    let (code, stdout) = check(public, portal, "*.example.co.uk", "");
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains("warn  WEBAUTHN_RP_ID")
            && stdout.contains("passkeys are off")
            && stdout.contains("set WEBAUTHN_RP_ID to example.co.uk, the domain they share")
            && !stdout.contains("WEBAUTHN_RP_ID to co.uk"),
        "{stdout}"
    );
    // Which, set, covers both defaulted origins.
    let (code, stdout) = check(public, portal, "*.example.co.uk", "example.co.uk");
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains("pass  WEBAUTHN_RP_ID")
            && stdout.contains(&format!(
                "RP id example.co.uk, origin(s) {public}, {portal}"
            )),
        "{stdout}"
    );
    // Two sites under a (private) public suffix share no RP id: off, with what to do.
    let (code, stdout) = check(
        "https://a.github.io",
        "https://b.github.io",
        "app.b.github.io",
        "",
    );
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains("warn  WEBAUTHN_RP_ID")
            && stdout.contains("passkeys are off")
            && stdout.contains("are on different sites")
            && !stdout.contains("WEBAUTHN_RP_ID to github.io"),
        "{stdout}"
    );
    // A PUBLIC_URL whose host is itself a public suffix: off, with the fix.
    let vars = env_with(dir.path(), &[("PUBLIC_URL", "https://github.io")]);
    let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let output = run_binary(dir.path(), &["check-config"], &borrowed);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("passkeys are off") && stdout.contains("`github.io` is a public suffix"),
        "{stdout}"
    );
}

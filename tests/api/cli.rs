use std::os::unix::fs::PermissionsExt;

use secrecy::ExposeSecret;

use crate::helpers::{ServerProcess, raw_get, raw_request, run_binary};

fn parse_env_lines(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn keygen_output_passes_validation_and_is_fresh_each_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = run_binary(dir.path(), &["keygen"], &[]);
    assert!(first.status.success());
    let first = String::from_utf8_lossy(&first.stdout).into_owned();
    let vars = parse_env_lines(&first);
    let names: Vec<&str> = vars.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "JWT_SECRET_KEY",
            "CREDENTIAL_ENCRYPTION_KEY",
            "MFA_ENCRYPTION_KEY",
            "GATE_ASSERTION_KEY"
        ]
    );

    let db = dir.path().join("k.db");
    let mut with_db: Vec<(&str, &str)> =
        vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let db_text = db.to_string_lossy().into_owned();
    with_db.push(("DATABASE_PATH", &db_text));
    let check = run_binary(dir.path(), &["check-config"], &with_db);
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(0), "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");

    // As a .env file in the working directory, it works too.
    std::fs::write(
        dir.path().join(".env"),
        format!("{first}DATABASE_PATH={db_text}\n"),
    )
    .expect("write");
    let check = run_binary(dir.path(), &["check-config"], &[]);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    let second = run_binary(dir.path(), &["keygen"], &[]);
    let second = parse_env_lines(&String::from_utf8_lossy(&second.stdout));
    for ((name, a), (_, b)) in vars.iter().zip(&second) {
        assert_ne!(a, b, "{name} repeated");
    }
}

#[test]
fn demo_refuses_a_non_loopback_bind() {
    let dir = tempfile::tempdir().expect("tempdir");
    for bind in ["0.0.0.0", "0.0.0.0:8080", "[::]:8080", "192.0.2.10:8080"] {
        let output = run_binary(dir.path(), &["demo", "--bind", bind], &[]);
        assert_eq!(output.status.code(), Some(2), "{bind}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("loopback"), "{stderr}");
    }
    assert!(
        !dir.path().join("data").exists(),
        "nothing written before refusing"
    );
}

#[test]
fn demo_creates_private_keys_serves_health_and_stops_gracefully() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = ServerProcess::start(
        dir.path(),
        &["demo", "--bind", "127.0.0.1:0", "--data-dir", "demo-data"],
        &[],
    );
    assert!(
        server.address.starts_with("http://127.0.0.1:"),
        "{}",
        server.address
    );
    let env_file = dir.path().join("demo-data").join("demo.env");
    let mode = std::fs::metadata(&env_file)
        .expect("demo.env")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let keys = parse_env_lines(&std::fs::read_to_string(&env_file).expect("read"));
    // The three the server needs, and the gate's signing key.
    assert_eq!(keys.len(), 4);
    // The demo gate's proxy configurations, ready to run.
    let caddyfile = std::fs::read_to_string(dir.path().join("demo-data").join("demo.Caddyfile"))
        .expect("demo.Caddyfile");
    assert!(caddyfile.contains("forward_auth") && caddyfile.contains("request_header -Remote-*"));
    // Every *.localhost app, the portal on a host of its own, and the handoff that
    // carries its sign-in to each app host.
    assert!(
        caddyfile.contains("http://auth.localhost:8088 {"),
        "{caddyfile}"
    );
    assert!(
        caddyfile.contains("http://*.localhost:8088 {"),
        "{caddyfile}"
    );
    assert!(
        caddyfile.contains("handle /.portcullis/handoff {"),
        "{caddyfile}"
    );
    assert!(
        dir.path()
            .join("demo-data")
            .join("demo.nginx.conf")
            .exists()
    );

    let response = raw_get(&server.address, "/health", &[]);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    // The demo accounts are printed once, and they work.
    let printed = server.stdout();
    let accounts: Vec<&String> = printed
        .iter()
        .filter(|l| l.contains("@portcullis.test"))
        .collect();
    assert_eq!(accounts.len(), 3, "{printed:?}");
    assert!(
        accounts[0].contains("admin")
            && accounts[1].contains("engineering")
            && accounts[2].contains("sales")
    );
    let alice: Vec<&str> = accounts[1].split_whitespace().collect();
    let login = raw_request(
        &server.address,
        "POST",
        "/api/v1/auth/login",
        &[],
        Some(&format!(
            r#"{{"email":"{}","password":"{}"}}"#,
            alice[1], alice[2]
        )),
    );
    assert!(login.starts_with("HTTP/1.1 200"), "{login}");
    // Alice has MFA on: her password earns a challenge, and her URI was printed.
    assert!(login.contains(r#""mfa_required":true"#), "{login}");
    assert!(
        printed
            .iter()
            .any(|l| l.contains("otpauth://totp/Portcullis:alice%40portcullis.test?secret=")),
        "{printed:?}"
    );
    // Bob (sales) sees his documents, the public one and engineering's internal
    // roadmap, but not Alice's confidential postmortem.
    let bob: Vec<&str> = accounts[2].split_whitespace().collect();
    let login = raw_request(
        &server.address,
        "POST",
        "/api/v1/auth/login",
        &[],
        Some(&format!(
            r#"{{"email":"{}","password":"{}"}}"#,
            bob[1], bob[2]
        )),
    );
    let token = login
        .split(r#""access_token":""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("bob's access token");
    let listed = raw_get(
        &server.address,
        "/api/v1/documents",
        &[&format!("Authorization: Bearer {token}")],
    );
    for title in [
        "Welcome to Portcullis",
        "Engineering roadmap",
        "Q4 pipeline",
        "Pricing strategy",
    ] {
        assert!(listed.contains(title), "{title} missing: {listed}");
    }
    assert!(!listed.contains("Incident postmortem"), "{listed}");
    // Bob signs out: the demo's own receiver gets the signed event and says so.
    let logout = raw_request(
        &server.address,
        "POST",
        "/api/v1/auth/logout",
        &[&format!("Authorization: Bearer {token}")],
        None,
    );
    assert!(logout.starts_with("HTTP/1.1 200"), "{logout}");
    let mut seen = false;
    for _ in 0..100 {
        if server.stdout().iter().any(|l| {
            l.starts_with("demo receiver: auth.logout") && l.ends_with("signature verified")
        }) {
            seen = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(seen, "{:?}", server.stdout());
    assert!(server.terminate(), "graceful exit with status 0 on SIGTERM");

    // Startup and shutdown were both audited, and the chain verifies.
    let db = dir.path().join("demo-data").join("demo.db");
    let verify = run_binary(
        dir.path(),
        &["audit", "verify", "--database", db.to_str().expect("utf-8")],
        &[],
    );
    let stdout = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{stdout}");
    assert!(stdout.contains("Audit chain intact"), "{stdout}");
    let conn = rusqlite::Connection::open(&db).expect("open");
    let events: Vec<String> = conn
        .prepare("SELECT event FROM audit_events ORDER BY id")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("events");
    assert_eq!(events.first().map(String::as_str), Some("auth.registered"));
    assert!(events.contains(&"app.started".to_owned()));
    assert_eq!(events.last().map(String::as_str), Some("app.stopped"));

    // A second run reuses the keys instead of replacing them.
    let server = ServerProcess::start(
        dir.path(),
        &["demo", "--bind", "127.0.0.1:0", "--data-dir", "demo-data"],
        &[],
    );
    let again = parse_env_lines(&std::fs::read_to_string(&env_file).expect("read"));
    assert_eq!(keys, again);
    assert!(
        !server
            .stdout()
            .iter()
            .any(|l| l.contains(alice[2]) || l.contains(bob[2])),
        "passwords are shown only once"
    );
    drop(server);
}

/// The lines a demo printed once it is ready (up to "Press Ctrl+C to stop.").
fn ready_lines(server: &ServerProcess) -> Vec<String> {
    for _ in 0..200 {
        let lines = server.stdout();
        if lines.iter().any(|l| l.starts_with("Press Ctrl+C")) {
            return lines;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!(
        "the demo did not finish its greeting: {:?}",
        server.stdout()
    );
}

/// The demo accounts' lines: role, e-mail, password, department.
fn account_lines(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.len() >= 3 && words[1].ends_with("@portcullis.test")
        })
        .cloned()
        .collect()
}

#[test]
fn a_restarted_demo_says_where_the_passwords_went_and_reset_starts_over() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = ["demo", "--bind", "127.0.0.1:0", "--data-dir", "demo-data"];
    let reset_command = "portcullis demo --reset --bind 127.0.0.1:0 --data-dir demo-data";
    let data = dir.path().join("demo-data");

    let mut first = ServerProcess::start(dir.path(), &demo, &[]);
    let greeting = ready_lines(&first);
    let accounts = account_lines(&greeting);
    assert_eq!(accounts.len(), 3, "{greeting:?}");
    assert!(
        greeting
            .iter()
            .any(|l| l.starts_with("Demo accounts") && l.contains(reset_command)),
        "{greeting:?}"
    );
    assert!(
        greeting
            .iter()
            .any(|l| l.contains("the admin account above")),
        "{greeting:?}"
    );
    assert!(first.terminate());
    let keys = std::fs::read_to_string(data.join("demo.env")).expect("demo.env");

    // A restart has no passwords to show: it says where they went, and how to get
    // new ones.
    let mut second = ServerProcess::start(dir.path(), &demo, &[]);
    let greeting = ready_lines(&second);
    assert!(account_lines(&greeting).is_empty(), "{greeting:?}");
    assert!(
        !greeting.iter().any(|l| l.contains("account above")),
        "nothing is above: {greeting:?}"
    );
    let admin = greeting
        .iter()
        .find(|l| l.trim_start().starts_with("Admin:"))
        .expect("the admin line");
    assert!(
        admin.contains("admin@portcullis.test") && admin.contains("first started"),
        "{admin}"
    );
    let passwords = greeting
        .iter()
        .find(|l| l.trim_start().starts_with("Passwords:"))
        .expect("the passwords line");
    assert!(
        passwords.contains("first start") && passwords.ends_with(reset_command),
        "{passwords}"
    );
    assert!(second.terminate());

    // Without a terminal to confirm on, --reset alone deletes nothing.
    let refused = run_binary(
        dir.path(),
        &[
            "demo",
            "--reset",
            "--bind",
            "127.0.0.1:0",
            "--data-dir",
            "demo-data",
        ],
        &[],
    );
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--yes"), "{stderr}");
    for file in ["demo.db", "demo.db.anchor", "demo.env"] {
        assert!(data.join(file).exists(), "{file} kept");
    }

    // --reset --yes deletes the database, its anchor and the keys, then starts
    // afresh: new keys, new accounts, new passwords, printed again.
    let third = ServerProcess::start(
        dir.path(),
        &[
            "demo",
            "--reset",
            "--yes",
            "--bind",
            "127.0.0.1:0",
            "--data-dir",
            "demo-data",
        ],
        &[],
    );
    let greeting = ready_lines(&third);
    for file in ["demo.db", "demo.db.anchor", "demo.env"] {
        let deleted = format!("Deleted demo-data/{file}");
        assert!(greeting.contains(&deleted), "{deleted}: {greeting:?}");
    }
    let fresh = account_lines(&greeting);
    assert_eq!(fresh.len(), 3, "{greeting:?}");
    assert_ne!(fresh, accounts, "new passwords");
    assert_ne!(
        std::fs::read_to_string(data.join("demo.env")).expect("demo.env"),
        keys,
        "new keys"
    );
    let response = raw_get(&third.address, "/health/ready", &[]);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    // While the demo runs, a reset deletes nothing under it.
    let refused = run_binary(
        dir.path(),
        &["demo", "--reset", "--yes", "--data-dir", "demo-data"],
        &[],
    );
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("stop it first"), "{stderr}");
    let response = raw_get(&third.address, "/health/ready", &[]);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    drop(third);
}

#[test]
fn every_subcommand_has_help() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["demo", "--help"],
        vec!["keygen", "--help"],
        vec!["check-config", "--help"],
        vec!["audit", "--help"],
        vec!["restore", "--help"],
        vec!["audit", "verify", "--help"],
        vec!["migrate-secrets", "--help"],
        vec!["rotate-keys", "--help"],
    ] {
        let output = run_binary(dir.path(), &args, &[]);
        assert!(output.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("Usage:"),
            "{args:?}"
        );
    }
}

#[test]
fn sigint_stops_the_server_gracefully() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut vars: Vec<(String, String)> = crate::helpers::secret_pairs()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let db = dir.path().join("s.db");
    vars.push(("BIND_ADDRESS".into(), "127.0.0.1:0".into()));
    vars.push(("DATABASE_PATH".into(), db.to_string_lossy().into_owned()));
    let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut server = ServerProcess::start(dir.path(), &["serve"], &borrowed);
    assert!(raw_get(&server.address, "/health", &[]).starts_with("HTTP/1.1 200"));
    server.signal("-INT");
    assert!(server.wait_for_exit(), "exit status 0 after SIGINT");
    let conn = rusqlite::Connection::open(&db).expect("open");
    let last: String = conn
        .query_row(
            "SELECT event FROM audit_events ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .expect("event");
    assert_eq!(last, "app.stopped");
}

#[actix_web::test]
async fn a_graceful_stop_lets_in_flight_requests_finish() {
    let app = crate::helpers::spawn_app().await;
    let slow = {
        let client = app.client.clone();
        let url = app.url("/__test/slow");
        actix_web::rt::spawn(async move { client.get(url).send().await })
    };
    actix_web::rt::time::sleep(std::time::Duration::from_millis(200)).await;
    app.handle.stop(true).await;
    let response = slow
        .await
        .expect("task")
        .expect("the in-flight request was answered");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), "finished");
}

#[test]
fn create_admin_from_stdin_and_generated() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut vars: Vec<(String, String)> = crate::helpers::secret_pairs()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let db = dir.path().join("a.db");
    vars.push(("DATABASE_PATH".into(), db.to_string_lossy().into_owned()));

    let mut command = crate::helpers::binary();
    command
        .current_dir(dir.path())
        .args([
            "create-admin",
            "--email",
            "Root@Example.org",
            "--password-stdin",
        ])
        .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{}\n", crate::helpers::GOOD_PASSWORD).as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("Created admin root@example.org"),
        "{stdout}"
    );
    assert!(!stdout.contains(crate::helpers::GOOD_PASSWORD));

    let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let generated = run_binary(
        dir.path(),
        &[
            "create-admin",
            "--email",
            "second@example.org",
            "--generate-password",
        ],
        &borrowed,
    );
    let stdout = String::from_utf8_lossy(&generated.stdout);
    assert!(generated.status.success(), "{stdout}");
    let password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Password (shown once): "))
        .expect("the generated password is printed");
    assert!(password.len() >= 20);

    let duplicate = run_binary(
        dir.path(),
        &[
            "create-admin",
            "--email",
            "root@example.org",
            "--generate-password",
        ],
        &borrowed,
    );
    assert_eq!(duplicate.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("already exists"));

    let conn = rusqlite::Connection::open(&db).expect("open");
    let roles: Vec<String> = conn
        .prepare("SELECT role FROM users ORDER BY email")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("roles");
    assert_eq!(roles, vec!["admin", "admin"]);
}

/// Both encryption keys wrong: start-up names both variables, each with how many
/// stored secrets it cannot open, and exits 2. A corrupt database file exits 2 too.
#[actix_web::test]
async fn wrong_keys_are_all_named_and_a_corrupt_database_is_a_configuration_problem() {
    let app =
        crate::helpers::spawn_app_with(&[("WEBHOOK_ALLOWED_PRIVATE_NETWORKS", "127.0.0.0/8")])
            .await;
    let token = app.signed_up("keys@example.org").await.access_token;
    let setup: serde_json::Value = app
        .post_with_token(
            "/api/v1/auth/mfa/setup",
            &token,
            Some(&serde_json::json!({"password": crate::helpers::GOOD_PASSWORD})),
        )
        .await
        .json()
        .await
        .expect("json");
    assert!(setup["secret"].is_string());
    let created = app
        .post_with_token(
            "/api/v1/webhooks",
            &token,
            Some(&serde_json::json!({"url": "http://127.0.0.1:9/hook"})),
        )
        .await;
    assert_eq!(created.status(), 201);
    let dir = app.dir.path().to_owned();
    let mut vars = crate::helpers::binary_vars(&app.settings);
    app.handle.stop(true).await;
    for (name, value) in vars.iter_mut() {
        if name == "MFA_ENCRYPTION_KEY" || name == "CREDENTIAL_ENCRYPTION_KEY" {
            *value = portcullis::crypto::keys::fernet_key()
                .expect("rng")
                .expose_secret()
                .to_owned();
        }
    }
    vars.push(("BIND_ADDRESS".into(), "127.0.0.1:0".into()));
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let refused = run_binary(&dir, &["serve"], &refs);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("MFA_ENCRYPTION_KEY cannot decrypt the secrets already stored in this database (1 stored secret(s)"),
        "{said}"
    );
    assert!(
        said.contains("CREDENTIAL_ENCRYPTION_KEY cannot decrypt the secrets already stored in this database (1 stored secret(s)"),
        "{said}"
    );

    // A file at DATABASE_PATH that is not a database SQLite can use.
    let corrupt = tempfile::tempdir().expect("tempdir");
    let db = corrupt.path().join("portcullis.db");
    std::fs::write(&db, vec![0x5Au8; 16 * 4096]).expect("write");
    let mut vars = crate::helpers::binary_vars(&app.settings);
    vars.retain(|(k, _)| k != "DATABASE_PATH");
    vars.push(("DATABASE_PATH".into(), db.to_string_lossy().into_owned()));
    vars.push(("BIND_ADDRESS".into(), "127.0.0.1:0".into()));
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let refused = run_binary(corrupt.path(), &["serve"], &refs);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
}

#[test]
fn gate_config_prints_the_tested_proxy_configurations_for_the_gate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = run_binary(dir.path(), &["keygen"], &[]);
    let mut text = String::from_utf8_lossy(&keys.stdout).into_owned();
    text.push_str(&format!(
        "DATABASE_PATH={}\nBIND_ADDRESS=0.0.0.0:9000\n",
        dir.path().join("g.db").display()
    ));
    std::fs::write(dir.path().join(".env"), &text).expect("write");
    // The gate off: nothing to configure.
    let off = run_binary(dir.path(), &["gate-config", "nginx"], &[]);
    assert_eq!(off.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&off.stderr).contains("GATE_PORTAL_URL"));
    let gate = [
        ("GATE_PORTAL_URL", "https://auth.example.com"),
        ("GATE_HOSTS", "*.example.com"),
        ("GATE_COOKIE_DOMAIN", "example.com"),
        ("GATE_FORWARD_ATTRIBUTES", "team"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ];
    for (proxy, expected) in [
        (
            "nginx",
            "proxy_set_header Remote-Attr-team $portcullis_remote_attr_team;",
        ),
        (
            "caddy",
            "copy_headers Remote-User Remote-Email Remote-Role Remote-Name Remote-Attr-team Portcullis-Assertion",
        ),
        (
            "traefik",
            "address: \"http://127.0.0.1:9000/api/v1/gate/forward-auth\"",
        ),
    ] {
        let out = run_binary(
            dir.path(),
            &["gate-config", proxy, "--upstream", "10.0.0.5:3000"],
            &gate,
        );
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{proxy}: {printed}");
        assert!(printed.contains(expected), "{proxy}: {printed}");
        assert!(printed.contains("10.0.0.5:3000"), "{proxy}: {printed}");
        assert!(printed.contains("auth.example.com"), "{proxy}: {printed}");
    }
}

/// Secrets from files (`NAME_FILE`) and systemd credentials: the server starts on
/// them, `check-config` says where each came from and never shows a value, and a
/// secret given two ways is refused (exit 2) naming both.
#[test]
fn secrets_are_read_from_files_and_credentials_and_said_where_from() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = run_binary(dir.path(), &["keygen"], &[]);
    let vars = parse_env_lines(&String::from_utf8_lossy(&keys.stdout));
    let value = |name: &str| {
        vars.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .expect("keygen prints it")
    };
    let private = |path: &std::path::Path, text: &str| {
        std::fs::write(path, format!("{text}\n")).expect("write");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    };
    let jwt_file = dir.path().join("jwt-secret");
    private(&jwt_file, &value("JWT_SECRET_KEY"));
    let credentials = dir.path().join("credentials");
    std::fs::create_dir(&credentials).expect("mkdir");
    private(
        &credentials.join("MFA_ENCRYPTION_KEY"),
        &value("MFA_ENCRYPTION_KEY"),
    );
    let db = dir.path().join("s.db").to_string_lossy().into_owned();
    let (jwt_path, credentials_dir, credential_key) = (
        jwt_file.to_string_lossy().into_owned(),
        credentials.to_string_lossy().into_owned(),
        value("CREDENTIAL_ENCRYPTION_KEY"),
    );
    let env = [
        ("JWT_SECRET_KEY_FILE", jwt_path.as_str()),
        ("CREDENTIALS_DIRECTORY", credentials_dir.as_str()),
        ("CREDENTIAL_ENCRYPTION_KEY", credential_key.as_str()),
        ("DATABASE_PATH", db.as_str()),
    ];
    let check = run_binary(dir.path(), &["check-config"], &env);
    let out = String::from_utf8_lossy(&check.stdout).into_owned();
    assert_eq!(check.status.code(), Some(0), "{out}");
    assert!(
        out.contains("JWT_SECRET_KEY: JWT_SECRET_KEY_FILE ("),
        "{out}"
    );
    assert!(
        out.contains("MFA_ENCRYPTION_KEY: the systemd credential MFA_ENCRYPTION_KEY"),
        "{out}"
    );
    assert!(
        out.contains("CREDENTIAL_ENCRYPTION_KEY: its variable"),
        "{out}"
    );
    for secret in [
        "JWT_SECRET_KEY",
        "MFA_ENCRYPTION_KEY",
        "CREDENTIAL_ENCRYPTION_KEY",
    ] {
        assert!(!out.contains(&value(secret)), "{secret}'s value printed");
    }
    // Given two ways: refused, both named, neither value shown.
    let jwt_value = value("JWT_SECRET_KEY");
    let mut twice = env.to_vec();
    twice.push(("JWT_SECRET_KEY", jwt_value.as_str()));
    let refused = run_binary(dir.path(), &["serve"], &twice);
    let err = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(
        err.contains("is given 2 ways (JWT_SECRET_KEY, JWT_SECRET_KEY_FILE)"),
        "{err}"
    );
    assert!(!err.contains(&jwt_value));
}

//! The access log (JSON, most verbose level, every request) never contains the
//! Authorization header, cookies, or the query string — and does contain the
//! request id.

use crate::helpers::{ServerProcess, raw_get, secret_pairs};

#[test]
fn credentials_never_reach_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut vars: Vec<(String, String)> = secret_pairs()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    vars.push(("BIND_ADDRESS".into(), "127.0.0.1:0".into()));
    vars.push((
        "DATABASE_PATH".into(),
        dir.path().join("l.db").to_string_lossy().into_owned(),
    ));
    vars.push(("LOG_FORMAT".into(), "json".into()));
    vars.push(("LOG_LEVEL".into(), "trace".into()));
    vars.push(("LOG_REQUESTS".into(), "all".into()));
    let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut server = ServerProcess::start(dir.path(), &["serve"], &borrowed);

    let response = raw_get(
        &server.address,
        "/health?access_token=QUERY-SECRET-7781",
        &[
            "Authorization: Bearer BEARER-SECRET-5512",
            "Cookie: portcullis_session=COOKIE-SECRET-9034",
            "X-Request-ID: log-probe-1",
        ],
    );
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    raw_get(
        &server.address,
        "/missing",
        &["Authorization: Basic QkFTSUMtU0VDUkVULTQ0"],
    );
    assert!(server.terminate());

    let log = std::fs::read_to_string(&server.stderr_path).expect("log");
    assert!(
        log.contains("log-probe-1"),
        "the request was logged with its id:\n{log}"
    );
    for secret in [
        "BEARER-SECRET-5512",
        "COOKIE-SECRET-9034",
        "QUERY-SECRET-7781",
        "QkFTSUMtU0VDUkVULTQ0",
    ] {
        assert!(!log.contains(secret), "{secret} leaked into the log");
    }
    for (name, value) in &vars {
        if name.ends_with("_KEY") {
            assert!(!log.contains(value.as_str()), "{name} leaked into the log");
        }
    }
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "LOG_FORMAT=json writes JSON lines: {line}"
        );
    }
}

/// Requests the HTTP parser refuses, and 503s from a full login queue, cannot flood
/// the log at the ERROR level: the first are counted (reported once a minute at
/// WARN), the second are warnings.
#[test]
fn refused_requests_do_not_flood_the_error_log() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().expect("tempdir");
    let mut vars: Vec<(String, String)> = secret_pairs()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    vars.push(("BIND_ADDRESS".into(), "127.0.0.1:0".into()));
    vars.push((
        "DATABASE_PATH".into(),
        dir.path().join("l.db").to_string_lossy().into_owned(),
    ));
    // One hashing slot, hardly any queue: concurrent logins get 503.
    for (name, value) in [
        ("PASSWORD_HASH_CONCURRENCY", "1"),
        ("PASSWORD_HASH_QUEUE_TIMEOUT_MS", "10"),
        ("RATE_LIMIT_LOGIN_IP", "100000/60"),
        ("RATE_LIMIT_LOGIN_ACCOUNT", "100000/60"),
    ] {
        vars.push((name.into(), value.into()));
    }
    let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut server = ServerProcess::start(dir.path(), &["serve"], &borrowed);
    let host = server.address.trim_start_matches("http://").to_owned();
    let logins: Vec<_> = (0..12)
        .map(|_| {
            let address = server.address.clone();
            std::thread::spawn(move || {
                crate::helpers::raw_request(
                    &address,
                    "POST",
                    "/api/v1/auth/login",
                    &[],
                    Some(r#"{"email":"nobody@example.org","password":"whatever it is 123"}"#),
                )
            })
        })
        .collect();
    let answers: Vec<String> = logins
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    assert!(
        answers.iter().any(|a| a.starts_with("HTTP/1.1 503")),
        "the queue was never full"
    );
    let headers: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    for raw in [
        "GARBAGE LINE\r\n\r\n".to_owned(),
        format!("GET / HTTP/1.1\r\nHost: x\r\n{headers}\r\n"),
        format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(1 << 20)),
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            .to_owned(),
    ] {
        for _ in 0..5 {
            let mut stream = std::net::TcpStream::connect(&host).expect("connect");
            let _ = stream.write_all(raw.as_bytes());
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
            assert!(
                answer.starts_with(b"HTTP/1.1 4"),
                "{}",
                String::from_utf8_lossy(&answer)
            );
        }
    }
    assert!(server.terminate());
    let log = std::fs::read_to_string(&server.stderr_path).expect("log");
    assert!(
        !log.lines().any(|l| l.contains("ERROR")),
        "refused requests wrote ERROR lines:\n{log}"
    );
}

/// `LOG_REQUESTS`: by default a request gets a line of its own when it fails (4xx,
/// 5xx), not when it succeeds; `all` logs every one. Each line names the request's
/// id, method, route pattern (never the raw path) and status.
#[test]
fn requests_get_their_own_line_as_log_requests_says() {
    for (setting, success_logged) in [(None, false), (Some("all"), true)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut vars: Vec<(String, String)> = secret_pairs()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        vars.push(("BIND_ADDRESS".into(), "127.0.0.1:0".into()));
        vars.push((
            "DATABASE_PATH".into(),
            dir.path().join("l.db").to_string_lossy().into_owned(),
        ));
        vars.push(("LOG_FORMAT".into(), "json".into()));
        if let Some(value) = setting {
            vars.push(("LOG_REQUESTS".into(), value.into()));
        }
        let borrowed: Vec<(&str, &str)> =
            vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut server = ServerProcess::start(dir.path(), &["serve"], &borrowed);
        raw_get(&server.address, "/health", &["X-Request-ID: ok-probe"]);
        raw_get(
            &server.address,
            "/api/v1/documents/5f0c2b7e-0000-4000-8000-000000000001",
            &["X-Request-ID: denied-probe"],
        );
        assert!(server.terminate());
        let log = std::fs::read_to_string(&server.stderr_path).expect("log");
        let lines: Vec<serde_json::Value> = log
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let line_of = |id: &str| {
            lines
                .iter()
                .find(|l| l["request_id"] == id && l["status"].is_u64())
                .cloned()
        };
        let denied = line_of("denied-probe").expect("the 401 has its line");
        assert_eq!(denied["status"], 401);
        assert_eq!(denied["method"], "GET");
        assert_eq!(denied["route"], "/api/v1/documents/{id}");
        assert!(!log.contains("5f0c2b7e"), "the raw path was logged: {log}");
        assert_eq!(
            line_of("ok-probe").is_some(),
            success_logged,
            "{setting:?}: {log}"
        );
        if success_logged {
            assert_eq!(line_of("ok-probe").expect("line")["route"], "/health");
        }
    }
}

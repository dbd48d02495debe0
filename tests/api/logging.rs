//! The access log (JSON, most verbose level) never contains the Authorization
//! header, cookies, or the query string — and does contain the request id.

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

//! `portcullis demo`: the server on loopback with its own keys and database under
//! `data/`, for trying Portcullis on one machine. It refuses any non-loopback bind:
//! the demo's accounts and relaxed settings must never face a network.
//!
//! The accounts' passwords are printed on the first start only; a later start says
//! so, and `demo --reset` starts over: it deletes what the demo wrote under its data
//! directory (database, anchor, keys, proxy configurations) once confirmed — on the
//! terminal, or by `--yes` — and starts with new keys, accounts and passwords.

use std::io::{IsTerminal, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::serve::exit_code;
use super::{EXIT_CONFIG, EXIT_FAILURE, keygen, load_settings};
use crate::config::variables as v;
use crate::config::{ConfigSources, Mode};
use crate::db::OpenOptions;
use crate::gate::proxy_config::ProxyPlan;
use crate::startup::run_server;

pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "data";
const DEFAULT_PORT: u16 = 8080;

/// What the demo writes under its data directory.
const ENV_FILE: &str = "demo.env";
const DATABASE_FILE: &str = "demo.db";
const CADDYFILE: &str = "demo.Caddyfile";
const NGINX_CONF: &str = "demo.nginx.conf";

/// Whether the demo starts over before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reset {
    No,
    /// `--reset`: asks on the terminal first; refused without one.
    Ask,
    /// `--reset --yes`.
    Confirmed,
}

/// Parses `--bind`: `ip:port`, a bare IP (port 8080), or `localhost[:port]`.
pub fn parse_bind(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, DEFAULT_PORT));
    }
    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
    match text.strip_prefix("localhost") {
        Some("") => Ok(SocketAddr::new(localhost, DEFAULT_PORT)),
        Some(port) => port
            .strip_prefix(':')
            .and_then(|p| p.parse::<u16>().ok())
            .map(|port| SocketAddr::new(localhost, port))
            .ok_or_else(|| format!("`{text}` is not an address such as 127.0.0.1:8080")),
        None => Err(format!("`{text}` is not an address such as 127.0.0.1:8080")),
    }
}

pub fn run(bind: &str, data_dir: &Path, reset: Reset, mut sources: ConfigSources) -> ExitCode {
    let addr = match parse_bind(bind) {
        Ok(addr) => addr,
        Err(problem) => {
            eprintln!("demo: --bind {problem}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if !addr.ip().is_loopback() {
        eprintln!(
            "demo: refusing to bind {addr}: the demo uses well-known demo accounts and binds to loopback only (127.0.0.1 or ::1). To listen on a network, run `portcullis serve` with a real configuration."
        );
        return ExitCode::from(EXIT_CONFIG);
    }
    if reset != Reset::No
        && let Err(code) = start_over(data_dir, reset)
    {
        return code;
    }
    let env_file = data_dir.join(ENV_FILE);
    if let Err(error) = ensure_demo_env(&env_file) {
        eprintln!("demo: cannot create {}: {error}", env_file.display());
        return ExitCode::from(EXIT_FAILURE);
    }
    // The demo never touches a production database, whatever the environment says.
    let database = data_dir.join(DATABASE_FILE);
    // Demo data is disposable: deleting the demo database starts over, so the anchor
    // that would refuse a missing database goes with it.
    if !database.exists() {
        let _ = std::fs::remove_file(crate::db::anchor::path_for(&database));
    }
    sources.dotenv_file = Some(env_file.clone());
    sources.environment.insert(
        v::DATABASE_PATH.to_owned(),
        database.to_string_lossy().into_owned(),
    );
    sources
        .environment
        .insert(v::BIND_ADDRESS.to_owned(), addr.to_string());
    // The demo's own webhook receiver lives on loopback.
    sources
        .environment
        .entry(v::WEBHOOK_ALLOWED_PRIVATE_NETWORKS.to_owned())
        .or_insert_with(|| "127.0.0.0/8,::1/128".to_owned());
    // The gate, on for every *.localhost app (browsers resolve them all to
    // loopback), through the proxy on DEMO_PROXY_PORT, with the portal at
    // auth.localhost. No cookie domain (browsers refuse one on `localhost`): each
    // app host gets its own session from the portal by the handoff.
    for (name, value) in [
        (
            v::GATE_PORTAL_URL,
            format!("http://auth.localhost:{DEMO_PROXY_PORT}"),
        ),
        (v::GATE_HOSTS, "*.localhost".to_owned()),
        (v::TRUSTED_PROXIES, "127.0.0.1,::1".to_owned()),
    ] {
        sources.environment.entry(name.to_owned()).or_insert(value);
    }
    let (settings, findings) = match load_settings(&sources, Mode::Demo) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let settings_gate = settings.gate.clone();
    let data_dir_for_gate = data_dir.to_path_buf();
    let start_over_with = reset_command(bind, data_dir);
    let start_over_hint = start_over_with.clone();
    // Whether this start created the accounts (and printed their passwords).
    let seeded = Arc::new(AtomicBool::new(false));
    let seeded_now = Arc::clone(&seeded);
    exit_code(run_server(
        settings,
        OpenOptions::default(),
        &findings,
        |state| async move {
            let created = crate::demo::seed(&state).await?;
            if !created.is_empty() {
                print!("{}", crate::demo::describe(&created, &start_over_hint));
                seeded_now.store(true, Ordering::Relaxed);
            }
            Ok(())
        },
        crate::routes::demo_receiver::configure,
        |app| {
            let url = app.base_url();
            let state = app.state().clone();
            let receiver = format!("{url}{}", crate::routes::demo_receiver::PATH);
            tokio::spawn(async move {
                if let Err(error) = crate::demo::webhook::ensure_webhook(&state, &receiver).await {
                    eprintln!("demo: the demo webhook could not be set up: {error:#}");
                }
            });
            // Written before the first line, which tests and scripts wait for.
            let proxy_configs = settings_gate
                .as_ref()
                .map(|gate| write_proxy_configs(data_dir_for_gate.as_path(), &url, gate));
            println!("Portcullis demo is running on {url} (loopback only).");
            if let Some(written) = proxy_configs {
                match written {
                    Ok(files) => {
                        println!(
                            "  Gate:       http://app.localhost:{DEMO_PROXY_PORT}/ (and any *.localhost:{DEMO_PROXY_PORT}) behind the gate, once a proxy runs:"
                        );
                        println!(
                            "              python3 -m http.server {DEMO_UPSTREAM_PORT} --bind 127.0.0.1   (a sample app)"
                        );
                        println!(
                            "              caddy run --adapter caddyfile --config {}",
                            files.0.display()
                        );
                        println!("              (or nginx: {})", files.1.display());
                    }
                    Err(error) => {
                        eprintln!("demo: could not write the proxy configurations: {error}")
                    }
                }
            }
            println!("  Health:     {url}/health");
            println!("  Readiness:  {url}/health/ready");
            println!("  OpenAPI:    {url}/api/openapi.json");
            println!("  Sign in:    POST {url}/api/v1/auth/login");
            if seeded.load(Ordering::Relaxed) {
                println!("  Admin:      {url}/admin/ (sign in as the admin account above)");
            } else {
                println!(
                    "  Admin:      {url}/admin/ (sign in as {}, with the password printed when this demo first started)",
                    crate::demo::ADMIN_EMAIL
                );
                println!(
                    "  Passwords:  printed only on the demo's first start. For new ones, start over (deletes the demo's data and keys): {start_over_with}"
                );
            }
            println!(
                "  Webhooks:   every event is delivered, signed, to {url}{}; each one is printed here",
                crate::routes::demo_receiver::PATH
            );
            println!(
                "  Database:   {}   Keys: {}",
                database.display(),
                env_file.display()
            );
            println!("Press Ctrl+C to stop.");
            // Tests and scripts read these lines while the server keeps running.
            let _ = std::io::stdout().flush();
        },
    ))
}

/// The command that starts this demo over: `portcullis demo --reset`, with the
/// options this start was given where they differ from the defaults.
fn reset_command(bind: &str, data_dir: &Path) -> String {
    let mut command = "portcullis demo --reset".to_owned();
    if bind != DEFAULT_BIND {
        command.push_str(&format!(" --bind {}", shell_word(bind)));
    }
    if data_dir != Path::new(DEFAULT_DATA_DIR) {
        command.push_str(&format!(
            " --data-dir {}",
            shell_word(&data_dir.to_string_lossy())
        ));
    }
    command
}

/// `text` as one shell word: as it is when it holds nothing the shell reads, else
/// in single quotes.
fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:[]@%+=,".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// Everything the demo writes under `data_dir`: the database with SQLite's side
/// files, its anchor, the keys and the proxy configurations. The lock file stays:
/// it is held while these go, and deleting a held lock file would let the next
/// opener lock another one.
fn demo_files(data_dir: &Path) -> Vec<PathBuf> {
    let database = data_dir.join(DATABASE_FILE);
    let anchor = crate::db::anchor::path_for(&database);
    let beside = |path: &Path, suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    vec![
        beside(&database, "-wal"),
        beside(&database, "-shm"),
        beside(&database, "-journal"),
        database,
        anchor,
        data_dir.join(ENV_FILE),
        data_dir.join(CADDYFILE),
        data_dir.join(NGINX_CONF),
    ]
}

/// `--reset`: deletes what the demo wrote under `data_dir`, once confirmed. Without
/// a terminal to ask on, only `--yes` confirms (exit 2 otherwise); a "no" deletes
/// nothing (exit 1).
fn start_over(data_dir: &Path, reset: Reset) -> Result<(), ExitCode> {
    let present: Vec<PathBuf> = demo_files(data_dir)
        .into_iter()
        .filter(|path| path.symlink_metadata().is_ok())
        .collect();
    if present.is_empty() {
        println!(
            "Nothing to reset in {}: starting afresh.",
            data_dir.display()
        );
        return Ok(());
    }
    // A running demo has the database open: deleting it under the server would
    // leave it writing to a file nobody reads. Held until the files are gone.
    let _nobody_else =
        crate::db::lock::take_exclusive(&data_dir.join(DATABASE_FILE)).map_err(|error| {
            eprintln!("demo: {error}");
            ExitCode::from(EXIT_FAILURE)
        })?;
    if reset == Reset::Ask && !confirmed(&present)? {
        println!("Nothing deleted.");
        return Err(ExitCode::from(EXIT_FAILURE));
    }
    for path in &present {
        match std::fs::remove_file(path) {
            Ok(()) => println!("Deleted {}", path.display()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                eprintln!("demo: cannot delete {}: {error}", path.display());
                return Err(ExitCode::from(EXIT_FAILURE));
            }
        }
    }
    Ok(())
}

/// Asks on the terminal whether to delete `files`; only `y` or `yes` agrees.
fn confirmed(files: &[PathBuf]) -> Result<bool, ExitCode> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        eprintln!(
            "demo: --reset deletes the demo's accounts, data and keys, and there is no terminal to confirm on; add --yes to go ahead."
        );
        return Err(ExitCode::from(EXIT_CONFIG));
    }
    println!(
        "demo --reset deletes the demo's accounts, data and keys (stop a running demo first):"
    );
    for path in files {
        println!("  {}", path.display());
    }
    print!("Delete them and start afresh? [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    if let Err(error) = stdin.read_line(&mut answer) {
        eprintln!("demo: cannot read the answer ({})", error.kind());
        return Err(ExitCode::from(EXIT_FAILURE));
    }
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Writes fresh random keys to `path` (mode 0600) unless it already exists.
fn ensure_demo_env(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if path.exists() {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = keygen::render().map_err(std::io::Error::other)?;
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(file) => file,
        // Another demo process created it a moment ago: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    };
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    println!(
        "Created {} with fresh random keys (mode 0600).",
        path.display()
    );
    Ok(())
}

/// The port the demo's proxy configurations listen on, and the sample app's.
const DEMO_PROXY_PORT: u16 = 8088;
const DEMO_UPSTREAM_PORT: u16 = 3000;

/// Writes a ready Caddyfile and nginx configuration for the demo gate beside the
/// demo database (`gate::proxy_config`, as `portcullis gate-config` prints them);
/// returns their paths.
fn write_proxy_configs(
    dir: &Path,
    portcullis: &str,
    gate: &crate::config::GateSettings,
) -> std::io::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let backend = portcullis.trim_start_matches("http://");
    let mut plan = ProxyPlan::for_gate(gate, backend, &format!("127.0.0.1:{DEMO_UPSTREAM_PORT}"));
    plan.listen_address = Some("127.0.0.1".to_owned());
    let caddy = format!(
        "# The Portcullis demo gate: http://<any name>.localhost:{DEMO_PROXY_PORT}/ -> the sample app on :{DEMO_UPSTREAM_PORT};\n\
         # the portal at http://auth.localhost:{DEMO_PROXY_PORT}/gate/.\n\
         {{\n    admin off\n    auto_https off\n}}\n\n{}",
        plan.caddy()
    );
    let nginx = format!(
        "# The Portcullis demo gate: http://<any name>.localhost:{DEMO_PROXY_PORT}/ -> the sample app on :{DEMO_UPSTREAM_PORT};\n\
         # the portal at http://auth.localhost:{DEMO_PROXY_PORT}/gate/.\n{}",
        plan.nginx()
    );
    let (caddy_path, nginx_path) = (dir.join(CADDYFILE), dir.join(NGINX_CONF));
    std::fs::write(&caddy_path, caddy)?;
    std::fs::write(&nginx_path, nginx)?;
    Ok((caddy_path, nginx_path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_forms() {
        assert_eq!(parse_bind("127.0.0.1:9000").map(|a| a.port()), Ok(9000));
        assert_eq!(parse_bind("0.0.0.0").map(|a| a.port()), Ok(8080));
        assert_eq!(
            parse_bind("localhost:81").map(|a| a.ip().is_loopback()),
            Ok(true)
        );
        assert!(parse_bind("[::1]:8080").is_ok_and(|a| a.ip().is_loopback()));
        assert!(parse_bind("example.com:80").is_err());
        assert!(parse_bind("localhost:x").is_err());
    }

    #[test]
    fn the_reset_command_repeats_the_options_that_differ_from_the_defaults() {
        assert_eq!(
            reset_command(DEFAULT_BIND, Path::new(DEFAULT_DATA_DIR)),
            "portcullis demo --reset"
        );
        assert_eq!(
            reset_command("127.0.0.1:9000", Path::new("/tmp/my demo's data")),
            r"portcullis demo --reset --bind 127.0.0.1:9000 --data-dir '/tmp/my demo'\''s data'"
        );
    }

    #[test]
    fn a_reset_deletes_every_file_the_demo_writes_and_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let written = demo_files(dir.path());
        for path in &written {
            std::fs::write(path, "x").expect("write");
        }
        let other = dir.path().join("notes.txt");
        std::fs::write(&other, "mine").expect("write");
        assert_eq!(start_over(dir.path(), Reset::Confirmed), Ok(()));
        for path in &written {
            assert!(!path.exists(), "{} left behind", path.display());
        }
        assert!(other.exists());
        // Nothing there: nothing to ask about, and the demo starts afresh.
        assert_eq!(start_over(dir.path(), Reset::Ask), Ok(()));
    }
}

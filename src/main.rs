//! The `portcullis` command line. Parsing only; each command lives in `portcullis::cli`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use portcullis::cli;
use portcullis::cli::create_admin::PasswordSource;
use portcullis::config::{ConfigSources, Settings};
use portcullis::crypto::stored_secrets::{ResealMode, ResealOptions};

/// mimalloc: a request allocates and frees dozens of small objects, and glibc's
/// allocator spent a tenth of the server's time on them; with mimalloc a gate
/// decision costs a quarter less (`cargo bench --bench http`). Without
/// transparent huge pages (`no_thp`), its memory stays within a few MB of glibc's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Portcullis: a fail-closed security backend for single-host deployments.
/// When a part breaks — the database, a policy, a key — the answer is "denied".
#[derive(Parser)]
#[command(name = "portcullis", version, propagate_version = true)]
struct Cli {
    /// Read settings from this TOML file (keys are the variable names, any case).
    /// `.env` and the environment override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server with the configured settings (refuses to start on any failed check).
    Serve {
        /// Start on a database older than the one this server last wrote (a restored
        /// backup): every session in it ends, and the rollback is audited.
        #[arg(long)]
        accept_rollback: bool,
    },
    /// Run a local demo on loopback with fresh keys in data/demo.env and its own database.
    Demo {
        /// Loopback address to listen on; anything else is refused.
        #[arg(long, default_value = cli::demo::DEFAULT_BIND, value_name = "ADDR")]
        bind: String,
        /// Where demo.env and demo.db live.
        #[arg(long, default_value = cli::demo::DEFAULT_DATA_DIR, value_name = "DIR")]
        data_dir: PathBuf,
        /// Start over: delete the demo database, its anchor and the demo keys (asks
        /// first), then start with new accounts and passwords.
        #[arg(long)]
        reset: bool,
        /// With --reset: do not ask (needed when there is no terminal to ask on).
        #[arg(long, requires = "reset")]
        yes: bool,
    },
    /// Print fresh values for every secret variable, ready to paste into a .env file.
    Keygen,
    /// Copy the database while the server runs (SQLite's online backup), check the
    /// copy (integrity, audit chain) and write FILE.json beside it.
    Backup {
        /// Where the copy goes (a new file).
        file: PathBuf,
        /// Database to copy; defaults to DATABASE_PATH from the configuration.
        #[arg(long, value_name = "FILE")]
        database: Option<PathBuf>,
    },
    /// Put a backup in the database's place (the server stopped): check it (integrity,
    /// audit chain, schema, keys), keep the replaced database beside it, end every
    /// session in it, audit the restore.
    Restore {
        /// The backup to restore (made by `portcullis backup`).
        file: PathBuf,
        /// Database to replace; defaults to DATABASE_PATH from the configuration.
        #[arg(long, value_name = "FILE")]
        database: Option<PathBuf>,
    },
    /// Exit 0 when the server's readiness probe (/health/ready) answers 200, 1
    /// otherwise: a container health check that needs no curl.
    Healthcheck {
        /// The readiness URL to ask (default: the configured BIND_ADDRESS on loopback).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },
    /// Run every configuration check; print pass/warn/fail per line and a score.
    /// Exits 2 when any check fails.
    CheckConfig,
    /// Create an administrator account (password prompted, from stdin, or generated).
    CreateAdmin {
        /// The administrator's e-mail address.
        #[arg(long, value_name = "EMAIL")]
        email: String,
        /// Read the password from the first line of stdin.
        #[arg(long, conflicts_with = "generate_password")]
        password_stdin: bool,
        /// Generate a strong password and print it once.
        #[arg(long)]
        generate_password: bool,
    },
    /// Encrypt secrets stored in plaintext by an older system (TOTP secrets, webhook
    /// credentials). Safe to interrupt and run again.
    MigrateSecrets {
        /// Rows per transaction.
        #[arg(long, default_value_t = cli::secrets::DEFAULT_BATCH_SIZE, value_name = "ROWS")]
        batch_size: usize,
        /// Stop after this many rows; run again to go on (spreads a long pass).
        #[arg(long, value_name = "ROWS")]
        max_rows: Option<u64>,
    },
    /// Re-encrypt every stored secret with the first key of MFA_ENCRYPTION_KEY and
    /// CREDENTIAL_ENCRYPTION_KEY, so older keys can then be removed. Safe to
    /// interrupt and run again.
    RotateKeys {
        /// Rows per transaction.
        #[arg(long, default_value_t = cli::secrets::DEFAULT_BATCH_SIZE, value_name = "ROWS")]
        batch_size: usize,
        /// Stop after this many rows; run again to go on (spreads a long pass).
        #[arg(long, value_name = "ROWS")]
        max_rows: Option<u64>,
    },
    /// Print the reverse-proxy configuration for the gate (forward-auth) as
    /// configured: nginx (auth_request), Caddy (forward_auth) or Traefik v3
    /// (forwardAuth, a file-provider dynamic configuration). It strips and
    /// overwrites the identity headers, closes the gate's endpoints to clients, and
    /// keeps Portcullis's cookie from the app.
    GateConfig {
        #[arg(value_enum)]
        proxy: cli::gate_config::ProxyKind,
        /// The protected app, as the proxy reaches it.
        #[arg(long, default_value = "127.0.0.1:3000", value_name = "HOST:PORT")]
        upstream: String,
    },
    /// Work with the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Work with the access policies on the host (the break-glass when a policy
    /// locks administrators out).
    Policies {
        #[command(subcommand)]
        command: PoliciesCommand,
    },
}

#[derive(Subcommand)]
enum PoliciesCommand {
    /// List every policy: id, status, effect, resource type, actions, name.
    List,
    /// Deactivate one policy (audited; the built-in administrator policy is
    /// read-only). A running server applies it within a few seconds.
    Deactivate {
        /// The policy's id, as `policies list` shows it.
        id: uuid::Uuid,
    },
    /// Write every policy as a file to keep in git: highest priority first, no
    /// timestamps or versions, so a diff shows only the rules that changed.
    Export {
        /// `json` (the default) or `toml`; by default what --output's name says.
        #[arg(long, value_parser = ["json", "toml"], value_name = "FORMAT")]
        format: Option<String>,
        /// Write here instead of standard output.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Make the stored policies what FILE (JSON or TOML, as `export` writes it)
    /// says: print what it creates, changes and deletes, then apply it all in one
    /// audited transaction. Built-in policies are kept; a file that would lock
    /// every administrator out is refused.
    Import {
        /// The policy file.
        file: PathBuf,
        /// Print the plan and change nothing (exit 1 when it would be refused).
        #[arg(long)]
        dry_run: bool,
    },
    /// Run the assertion cases of CASES (JSON or TOML) against a policy file, or
    /// against the live database; exit 1 when any case fails.
    Test {
        /// The test-case file.
        cases: PathBuf,
        /// Decide with this policy file's policies (no database or configuration
        /// needed) instead of the database's.
        #[arg(long, value_name = "FILE")]
        policies: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify the audit log's hash chain and report the first broken link (exit 1);
    /// with --file, an export on its own.
    Verify {
        /// Database file to check; defaults to DATABASE_PATH from the configuration.
        #[arg(long, value_name = "FILE", conflicts_with = "file")]
        database: Option<PathBuf>,
        /// An `audit export` file (JSON lines) to verify instead of a database.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Write the audit events as JSON lines (for a SIEM), each with its chain hashes,
    /// so the export can be verified on its own (`audit verify --file`).
    Export {
        /// Only events that occurred at or after this time (RFC 3339, or a date
        /// YYYY-MM-DD); every event when not given.
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Database file to read; defaults to DATABASE_PATH from the configuration.
        #[arg(long, value_name = "FILE")]
        database: Option<PathBuf>,
        /// Write here instead of standard output.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let sources = ConfigSources::from_process(cli.config);
    match cli.command {
        Command::Serve { accept_rollback } => cli::serve::run(sources, accept_rollback),
        Command::Demo {
            bind,
            data_dir,
            reset,
            yes,
        } => {
            let reset = match (reset, yes) {
                (false, _) => cli::demo::Reset::No,
                (true, false) => cli::demo::Reset::Ask,
                (true, true) => cli::demo::Reset::Confirmed,
            };
            cli::demo::run(&bind, &data_dir, reset, sources)
        }
        Command::Keygen => match cli::keygen::render() {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("keygen: {error}");
                ExitCode::from(cli::EXIT_FAILURE)
            }
        },
        Command::CheckConfig => cli::check_config::run(sources),
        Command::Healthcheck { url } => cli::healthcheck::run(sources, url),
        Command::Backup { file, database } => {
            let path = database.unwrap_or_else(|| Settings::database_path(&sources));
            cli::backup::run(&path, &file)
        }
        Command::Restore { file, database } => cli::restore::run(sources, &file, database),
        Command::CreateAdmin {
            email,
            password_stdin,
            generate_password,
        } => {
            let source = match (password_stdin, generate_password) {
                (true, _) => PasswordSource::Stdin,
                (_, true) => PasswordSource::Generate,
                _ => PasswordSource::Interactive,
            };
            cli::create_admin::run(sources, &email, source)
        }
        Command::MigrateSecrets {
            batch_size,
            max_rows,
        } => cli::secrets::run(
            sources,
            ResealOptions {
                mode: ResealMode::MigratePlaintext,
                batch_size,
                max_rows,
            },
        ),
        Command::RotateKeys {
            batch_size,
            max_rows,
        } => cli::secrets::run(
            sources,
            ResealOptions {
                mode: ResealMode::RotateKeys,
                batch_size,
                max_rows,
            },
        ),
        Command::GateConfig { proxy, upstream } => cli::gate_config::run(sources, proxy, &upstream),
        Command::Audit {
            command: AuditCommand::Verify { database, file },
        } => match file {
            Some(file) => cli::audit::verify_file(&file),
            None => {
                let path = database.unwrap_or_else(|| Settings::database_path(&sources));
                cli::audit::verify(&path)
            }
        },
        Command::Audit {
            command:
                AuditCommand::Export {
                    since,
                    database,
                    output,
                },
        } => {
            let path = database.unwrap_or_else(|| Settings::database_path(&sources));
            cli::audit::export(&path, since.as_deref(), output.as_deref())
        }
        Command::Policies {
            command: PoliciesCommand::List,
        } => cli::policies::list(sources),
        Command::Policies {
            command: PoliciesCommand::Deactivate { id },
        } => cli::policies::deactivate(sources, id),
        Command::Policies {
            command: PoliciesCommand::Export { format, output },
        } => cli::policies::export(sources, format.as_deref(), output.as_deref()),
        Command::Policies {
            command: PoliciesCommand::Import { file, dry_run },
        } => cli::policies::import(sources, &file, dry_run),
        Command::Policies {
            command: PoliciesCommand::Test { cases, policies },
        } => cli::policies::test(sources, &cases, policies.as_deref()),
    }
}

//! `portcullis migrate-secrets` and `portcullis rotate-keys`: re-seal stored secrets
//! in batches, with a progress bar. Both can be interrupted and run again; they
//! carry on where they stopped.

use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};

use super::{EXIT_CONFIG, EXIT_FAILURE, load_settings};
use crate::clock::Clock;
use crate::config::{ConfigSources, Mode};
use crate::crypto::stored_secrets::{
    self, KeyCheckError, Keyring, Progress, ResealMode, ResealOptions, ResealReport,
};
use crate::db::Database;
use crate::state::audit_log;

pub const DEFAULT_BATCH_SIZE: usize = 500;

pub fn run(sources: ConfigSources, options: ResealOptions) -> ExitCode {
    let mode = options.mode;
    let (settings, _) = match load_settings(&sources, Mode::Production) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let name = match mode {
        ResealMode::MigratePlaintext => "migrate-secrets",
        ResealMode::RotateKeys => "rotate-keys",
    };
    let keyring = match Keyring::new(&settings) {
        Ok(keyring) => keyring,
        Err(error) => {
            eprintln!("{name}: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    super::block_on(async move {
        let db = match Database::open(&settings.database).await {
            Ok(db) => db,
            Err(error) => {
                eprintln!("{name}: cannot open the database: {error}");
                return ExitCode::from(EXIT_FAILURE);
            }
        };
        match stored_secrets::check_keys(&db, &keyring, false).await {
            Ok(_) => {}
            Err(
                error @ KeyCheckError::Mismatch(_),
            ) => {
                eprintln!("{name}: {error}");
                return ExitCode::from(EXIT_CONFIG);
            }
            Err(error) => {
                eprintln!("{name}: cannot check the keys: {error}");
                return ExitCode::from(EXIT_FAILURE);
            }
        }
        let bar = ProgressBar::new(0).with_style(
            ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} rows ({eta} left)")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(name);
        let report = |p: Progress| {
            bar.set_length(p.total);
            bar.set_position(p.done);
        };
        let audit = audit_log(&db, &Clock::system(), Default::default());
        let result = stored_secrets::reseal_all(&db, &audit, &keyring, options, report).await;
        bar.finish_and_clear();
        match result {
            Ok(report) => {
                print!("{}", summary(name, mode, &report));
                if report.unreadable() > 0 {
                    eprintln!(
                        "{name}: {} row(s) could not be decrypted with any configured key and were left as they are; add the key they were encrypted with and run it again.",
                        report.unreadable()
                    );
                    ExitCode::from(EXIT_FAILURE)
                } else {
                    ExitCode::SUCCESS
                }
            }
            Err(error) => {
                eprintln!(
                    "{name}: stopped: {error}. The batches before it are done; run it again to go on."
                );
                ExitCode::from(EXIT_FAILURE)
            }
        }
    })
    .unwrap_or_else(|code| code)
}

fn summary(name: &str, mode: ResealMode, report: &ResealReport) -> String {
    let mut out = if report.complete {
        format!("{name}: done.\n")
    } else {
        format!("{name}: stopped at --max-rows; run it again to go on.\n")
    };
    for count in &report.columns {
        let what = match mode {
            ResealMode::MigratePlaintext => {
                format!("{} plaintext value(s) encrypted", count.legacy_sealed)
            }
            ResealMode::RotateKeys => format!(
                "{} re-encrypted with the first key ({} of them plaintext before)",
                count.resealed, count.legacy_sealed
            ),
        };
        out.push_str(&format!(
            "  {}: {} row(s) examined, {what}, {} unreadable\n",
            count.column, count.examined, count.unreadable
        ));
    }
    out
}

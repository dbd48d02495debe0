//! `portcullis policies …` on the host, with no network:
//!
//! - `list` and `deactivate ID`: the break-glass. A deny policy on resource type
//!   `admin` can shut every administrator out of the admin pages and the admin API
//!   alike; whoever has a shell on the host can still see the policies and switch
//!   one off. The built-in administrator policy is read-only here too.
//! - `export`, `import FILE [--dry-run]` and `test CASES [--policies FILE]`:
//!   policies as code (`crate::policy::as_code`). Export writes every policy in a
//!   stable, diff-friendly file; import shows what the file would create, change
//!   and delete and applies it all in one audited transaction; test runs assertion
//!   cases against a file (no database, no configuration: CI) or the live database.
//!
//! Every change is audited with the actor `cli`, and a running server picks it up
//! within seconds. Exit codes: 0 done (or nothing to do), 1 refused or failed (a
//! file that does not read or validate, a failing case, an import that would lock
//! every administrator out), 2 the configuration refused.

use std::path::Path;
use std::process::ExitCode;

use uuid::Uuid;

use super::{EXIT_FAILURE, block_on, load_settings};
use crate::audit::{AdminActor, RequestMeta};
use crate::clock::Clock;
use crate::config::{ConfigSources, Mode};
use crate::db::{Database, DbError, policies};
use crate::model::policy::{ADMIN_POLICY_ID, OWNER_POLICY_ID, PolicyStatus};
use crate::policy::as_code::{self, FileFormat, PolicyFile};
use crate::policy::cases::{self, CaseFile};
use crate::policy::engine::{Context, PolicySet};
use crate::policy::plan::{ChangeKind, ImportPlan};
use crate::policy::service::{PolicyError, PolicyService};
use crate::state::audit_log;
use crate::validation::FieldError;

/// Runs `work` against the configured database; a failure is one line on stderr
/// and exit 1.
fn with_database<F, Fut>(sources: &ConfigSources, command: &str, work: F) -> ExitCode
where
    F: FnOnce(Database) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let (settings, _) = match load_settings(sources, Mode::Production) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let done = block_on(async move {
        match Database::open(&settings.database).await {
            Ok(db) => work(db).await,
            Err(error) => Err(format!("cannot open the database: {error}")),
        }
    });
    match done {
        Ok(done) => finish(command, done),
        Err(code) => code,
    }
}

/// Exit 0 when done; otherwise one line on stderr and exit 1.
fn finish(command: &str, done: Result<(), String>) -> ExitCode {
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("policies {command}: {problem}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Prints every policy, highest priority first: id, status, effect, resource type,
/// actions and name. Read as stored, without compiling them, so it works even when
/// a row edited outside Portcullis keeps the server from starting.
pub fn list(sources: ConfigSources) -> ExitCode {
    with_database(&sources, "list", |db| async move {
        let stored = db
            .read(|conn| Ok::<_, DbError>(policies::all(conn)?))
            .await
            .map_err(|e| format!("cannot read the policies: {e}"))?;
        println!(
            "{:<36}  {:<8}  {:<5}  {:<12}  {:<24}  name",
            "id", "status", "effect", "resource", "actions"
        );
        for policy in stored {
            let built_in = if policy.system { " (built in)" } else { "" };
            println!(
                "{:<36}  {:<8}  {:<5}  {:<12}  {:<24}  {}{built_in}",
                policy.id,
                policy.status.as_str(),
                policy.effect.as_str(),
                policy.resource_type,
                policy.actions.join(","),
                policy.name,
            );
        }
        Ok(())
    })
}

/// Deactivates one policy, as the operator on the host.
pub fn deactivate(sources: ConfigSources, id: Uuid) -> ExitCode {
    with_database(&sources, "deactivate", |db| async move {
        let clock = Clock::system();
        let audit = audit_log(&db, &clock, Default::default());
        let policies = PolicyService::load(db, audit, clock)
            .await
            .map_err(|e| format!("cannot load the policies: {e}"))?;
        let current = policies.get(id).map_err(|_| {
            format!("no policy has the id {id}; `portcullis policies list` shows them")
        })?;
        if current.status == PolicyStatus::Inactive {
            println!("“{}” is already inactive.", current.name);
            return Ok(());
        }
        match policies
            .set_status(
                id,
                PolicyStatus::Inactive,
                &AdminActor::HostOperator,
                &RequestMeta::default(),
            )
            .await
        {
            Ok(policy) => {
                println!(
                    "Deactivated “{}” (now version {}). A running server applies it within a few seconds.",
                    policy.name, policy.version
                );
                Ok(())
            }
            Err(PolicyError::ReadOnly) => Err(
                "the built-in administrator policy is read-only: it is what keeps administrators able to administer"
                    .to_owned(),
            ),
            Err(other) => Err(format!("cannot deactivate it: {other}")),
        }
    })
}

/// Writes every policy as a policy file, to `output` or standard output, as
/// `format` (`json` or `toml`; by default what `output`'s name says, else JSON).
/// Read as stored, without compiling, like `list`.
pub fn export(sources: ConfigSources, format: Option<&str>, output: Option<&Path>) -> ExitCode {
    let format = format
        .and_then(FileFormat::parse)
        .or_else(|| output.and_then(|path| FileFormat::of_name(&path.to_string_lossy())))
        .unwrap_or(FileFormat::Json);
    let output = output.map(Path::to_path_buf);
    with_database(&sources, "export", |db| async move {
        let stored = db
            .read(|conn| Ok::<_, DbError>(policies::all(conn)?))
            .await
            .map_err(|e| format!("cannot read the policies: {e}"))?;
        let text =
            as_code::render(&as_code::file_of(&stored), format).map_err(|e| format!("{e:#}"))?;
        match output {
            Some(path) => std::fs::write(&path, text)
                .map_err(|e| format!("cannot write {}: {e}", path.display())),
            None => {
                print!("{text}");
                Ok(())
            }
        }
    })
}

/// One problem of a file, as `FILE: JSON.path: message`.
fn located(file: &Path, problem: &FieldError) -> String {
    if problem.field.is_empty() {
        format!("{}: {}", file.display(), problem.message)
    } else {
        format!("{}: {}: {}", file.display(), problem.field, problem.message)
    }
}

/// Reads and parses a file (JSON or TOML, by its name or its text); a problem is
/// said on stderr, located, and is an error naming the file.
fn read_file<T: serde::de::DeserializeOwned>(file: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let format = FileFormat::detect(Some(&file.to_string_lossy()), &text);
    as_code::read(&text, format).map_err(|problem| {
        eprintln!("{}", located(file, &problem));
        format!(
            "{} does not read as a {} file",
            file.display(),
            format.as_str()
        )
    })
}

/// Says each problem, located, and returns the error that ends the command.
fn refused(file: &Path, problems: &[FieldError]) -> String {
    for problem in problems {
        eprintln!("{}", located(file, problem));
    }
    let count = problems.len();
    format!(
        "{count} problem{} in {}; nothing was changed",
        if count == 1 { "" } else { "s" },
        file.display()
    )
}

/// Makes the stored policies what `file` says: prints the plan (what it creates,
/// changes and deletes), then, unless `dry_run`, applies it in one audited
/// transaction. Exit 1 when the file does not read or validate, or the import would
/// leave no administrator able to mend the policies (a dry run says so too).
pub fn import(sources: ConfigSources, file: &Path, dry_run: bool) -> ExitCode {
    let parsed: PolicyFile = match read_file(file) {
        Ok(parsed) => parsed,
        Err(problem) => return finish("import", Err(problem)),
    };
    let file = file.to_path_buf();
    with_database(&sources, "import", |db| async move {
        let clock = Clock::system();
        let audit = audit_log(&db, &clock, Default::default());
        let policies = PolicyService::load(db, audit, clock.clone())
            .await
            .map_err(|e| format!("cannot load the policies: {e}"))?;
        let operator = AdminActor::HostOperator;
        let context = Context {
            now: clock.now(),
            ..Context::default()
        };
        let plan = match policies.plan_import(parsed, &operator, &context).await {
            Ok(plan) => plan,
            Err(PolicyError::Validation(problems)) => return Err(refused(&file, &problems)),
            Err(other) => return Err(format!("cannot plan the import: {other}")),
        };
        print!("{}", plan_text(&plan, &file));
        if plan.locks_out_administrators {
            return Err(format!(
                "refused: {}; nothing was changed",
                PolicyError::LocksOutAdministrators
            ));
        }
        if plan.is_empty() {
            println!(
                "Nothing to do: the policies already are what {} says.",
                file.display()
            );
            return Ok(());
        }
        if dry_run {
            println!("Dry run: nothing was changed.");
            return Ok(());
        }
        // The file's name, not its path: the audit log says what, not where on a
        // host (as restore records its backup).
        let name = file.file_name().map_or_else(
            || file.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let source = format!("file {name}");
        match policies
            .apply_plan(&plan, &operator, &RequestMeta::default(), &source)
            .await
        {
            Ok(()) => {
                let counts = plan.counts();
                println!(
                    "Applied in one transaction: {} created, {} changed, {} deleted, {} unchanged; audited as `policy.imported`. A running server applies it within a few seconds.",
                    counts.created, counts.changed, counts.deleted, counts.unchanged
                );
                Ok(())
            }
            Err(error @ (PolicyError::LocksOutAdministrators | PolicyError::Stale)) => {
                Err(format!("refused: {error}; nothing was changed"))
            }
            Err(other) => Err(format!("cannot apply it: {other}; nothing was changed")),
        }
    })
}

/// The plan as the command prints it: one line per policy created, changed or
/// deleted (a change with a line per field), what administrators would lose, notes.
fn plan_text(plan: &ImportPlan, file: &Path) -> String {
    let mut out = format!("Import of {}: {}.\n", file.display(), plan.counts());
    for change in &plan.changes {
        let mark = match change.kind {
            ChangeKind::Create => '+',
            ChangeKind::Change => '~',
            ChangeKind::Delete => '-',
        };
        out.push_str(&format!(
            "  {mark} {:<6}  “{}”  ({})\n",
            change.kind.as_str(),
            change.name,
            change.id
        ));
        for field in &change.fields {
            let shown = match change.kind {
                ChangeKind::Create => field.after.clone(),
                ChangeKind::Delete => field.before.clone(),
                ChangeKind::Change => format!("{} → {}", field.before, field.after),
            };
            out.push_str(&format!("        {}: {shown}\n", field.field));
        }
    }
    if !plan.admin_losses.is_empty() {
        out.push_str("Administrators would lose actions:\n");
        for loss in &plan.admin_losses {
            out.push_str(&format!("  {loss}\n"));
        }
    }
    for note in &plan.notes {
        out.push_str(&format!("Note: {note}\n"));
    }
    out
}

/// Runs the assertion cases of `cases_file` against the policies of
/// `policies_file` (no database and no configuration needed), or against the live
/// database's. Prints ✓ or ✗ per case with the deciding policy, and a summary;
/// exit 1 on any failure, or when a file does not read or validate.
pub fn test(sources: ConfigSources, cases_file: &Path, policies_file: Option<&Path>) -> ExitCode {
    let cases: CaseFile = match read_file(cases_file) {
        Ok(cases) => cases,
        Err(problem) => return finish("test", Err(problem)),
    };
    let now = Clock::system().now();
    let cases_file = cases_file.to_path_buf();
    match policies_file {
        Some(policies_file) => {
            let done = read_file::<PolicyFile>(policies_file).and_then(|file| {
                let set = as_code::policy_set(&file, now)
                    .map_err(|problems| refused(policies_file, &problems))?;
                for note in missing_built_ins(&file) {
                    println!("Note: {note}");
                }
                let against = policies_file.display().to_string();
                report(&set, cases, &cases_file, &against, now)
            });
            finish("test", done)
        }
        None => with_database(&sources, "test", |db| async move {
            let clock = Clock::system();
            let audit = audit_log(&db, &clock, Default::default());
            let policies = PolicyService::load(db, audit, clock)
                .await
                .map_err(|e| format!("cannot load the policies: {e}"))?;
            report(&policies.current(), cases, &cases_file, "the database", now)
        }),
    }
}

/// Notes for the built-in policies a file does not list: the database keeps them
/// whatever a file says, so cases run against the file decide without them.
fn missing_built_ins(file: &PolicyFile) -> Vec<String> {
    [
        (OWNER_POLICY_ID, "owner policy"),
        (ADMIN_POLICY_ID, "administrator policy"),
    ]
    .into_iter()
    .filter(|(id, _)| !file.policies.iter().any(|p| p.id == Some(*id)))
    .map(|(id, what)| {
        format!("the file does not list the built-in {what} ({id}); a database keeps it whatever the file says, so these cases decide without it")
    })
    .collect()
}

fn report(
    set: &PolicySet,
    cases: CaseFile,
    cases_file: &Path,
    against: &str,
    now: i64,
) -> Result<(), String> {
    let results = cases::run(set, cases, now).map_err(|problems| {
        for problem in &problems {
            eprintln!("{}", located(cases_file, problem));
        }
        format!("{} does not run: nothing was tested", cases_file.display())
    })?;
    let failed = results.iter().filter(|r| !r.passed).count();
    for result in &results {
        if result.passed {
            println!("✓ {}: {}", result.name, result.decided);
        } else {
            println!(
                "✗ {}: expected {}, got {}",
                result.name, result.expected, result.decided
            );
        }
    }
    println!(
        "{} cases against {against}: {} passed, {failed} failed.",
        results.len(),
        results.len() - failed
    );
    if failed == 0 {
        Ok(())
    } else {
        Err(format!("{failed} of {} cases failed", results.len()))
    }
}

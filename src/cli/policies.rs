//! `portcullis policies list` and `portcullis policies deactivate ID`: the
//! break-glass that needs the host, not the network. A deny policy on resource type
//! `admin` can shut every administrator out of the admin pages and the admin API
//! alike; whoever has a shell on the host can still see the policies and switch one
//! off. Deactivating is audited (actor `cli`), and a running server picks the
//! change up within seconds. The built-in administrator policy is read-only here
//! too.

use std::process::ExitCode;

use uuid::Uuid;

use super::{EXIT_FAILURE, block_on, load_settings};
use crate::audit::{AdminActor, RequestMeta};
use crate::clock::Clock;
use crate::config::{ConfigSources, Mode};
use crate::db::{Database, DbError, policies};
use crate::model::policy::PolicyStatus;
use crate::policy::service::{PolicyError, PolicyService};
use crate::state::audit_log;

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
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(problem)) => {
            eprintln!("policies {command}: {problem}");
            ExitCode::from(EXIT_FAILURE)
        }
        Err(code) => code,
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

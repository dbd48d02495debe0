//! The layering rules of `DESIGN.md`, checked on the sources themselves (the
//! `crate::` paths of every file under `src/`, comments left out):
//!
//! - the core knows nothing of HTTP: no core module uses actix, `crate::http`,
//!   `crate::routes`, or the wiring (`state`, `startup`, `cli`, `demo`);
//! - only `http`, `routes` and `startup` use actix at all;
//! - handlers never touch SQL: nothing in `routes` or `http` reaches the database
//!   (`state.db`, `.database()`, `rusqlite`, `crate::db` other than its error type);
//! - no import cycle between top-level modules.
//!
//! The checker checks itself too: each edge that once tied the tree into one cycle
//! (`error` → `limits`, `limits` → `state`, `audit` → `webhooks`), and a handler
//! reading the database, put back into the real sources, must be reported.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules that know HTTP.
const WEB: &[&str] = &["http", "routes"];
/// Top-level modules that wire the others together, above the core.
const WIRING: &[&str] = &["cli", "demo", "lib", "main", "startup", "state"];
/// Top-level modules that know nothing of HTTP.
const CORE: &[&str] = &[
    "accounts",
    "admin",
    "audit",
    "auth",
    "authz",
    "cache",
    "clock",
    "config",
    "crypto",
    "db",
    "documents",
    "gate",
    "limits",
    "model",
    "policy",
    "telemetry",
    "test_vectors",
    "validation",
    "webhooks",
];
/// Only these may use actix.
const ACTIX_ALLOWED: &[&str] = &["http", "routes", "startup"];
const ACTIX_PATHS: &[&str] = &["actix_web::", "actix_cors::"];

struct Source {
    /// Relative to `src/`, e.g. `routes/api/documents.rs`.
    path: String,
    /// The text without comment lines.
    code: String,
}

impl Source {
    fn new(path: &str, text: &str) -> Self {
        let code = text
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        Self {
            path: path.to_owned(),
            code,
        }
    }

    /// The top-level module the file belongs to.
    fn module(&self) -> &str {
        let first = self.path.split('/').next().unwrap_or("");
        first.strip_suffix(".rs").unwrap_or(first)
    }

    /// Every top-level module this file names through `crate::`, including the
    /// ones inside `crate::{a, b::c}` groups.
    fn uses(&self) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        let mut rest = self.code.as_str();
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    if let Some(name) = leading_name(item.trim()) {
                        found.insert(name.to_owned());
                    }
                }
            } else if let Some(name) = leading_name(rest) {
                found.insert(name.to_owned());
            }
        }
        found
    }
}

fn leading_name(text: &str) -> Option<&str> {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    (end > 0).then(|| &text[..end])
}

fn read_tree(dir: &Path, root: &Path, out: &mut Vec<Source>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read src/")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            read_tree(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path
                .strip_prefix(root)
                .expect("under src/")
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(&path).expect("read a source file");
            out.push(Source::new(&relative, &text));
        }
    }
}

fn sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    read_tree(&root, &root, &mut out);
    out
}

/// Every broken rule, one line each.
fn violations(sources: &[Source]) -> Vec<String> {
    let mut found = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for source in sources {
        let module = source.module();
        let known = WEB.contains(&module) || WIRING.contains(&module) || CORE.contains(&module);
        if !known {
            found.push(format!(
                "{}: top-level module `{module}` is in no layer; add it to the layering test",
                source.path
            ));
        }
        let uses = source.uses();
        if CORE.contains(&module) {
            for upper in WEB.iter().chain(WIRING) {
                if uses.contains(*upper) {
                    found.push(format!(
                        "{}: core module `{module}` uses `crate::{upper}`",
                        source.path
                    ));
                }
            }
        }
        if !ACTIX_ALLOWED.contains(&module) {
            for actix in ACTIX_PATHS {
                if source.code.contains(actix) {
                    found.push(format!(
                        "{}: `{module}` uses `{actix}` (only http, routes and startup may)",
                        source.path
                    ));
                }
            }
        }
        if WEB.contains(&module) {
            let reaches_db = ["state.db", ".database()", "rusqlite"]
                .iter()
                .any(|needle| source.code.contains(needle))
                || source
                    .code
                    .match_indices("crate::db::")
                    .any(|(at, _)| !source.code[at..].starts_with("crate::db::DbError"));
            if reaches_db {
                found.push(format!(
                    "{}: a web module reaches the database; call a service instead",
                    source.path
                ));
            }
        }
        let edges = graph.entry(module.to_owned()).or_default();
        for used in uses {
            if used != module {
                edges.insert(used);
            }
        }
    }
    found.extend(cycles(&graph));
    found
}

/// The import cycles between top-level modules, each named once.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut found = BTreeSet::new();
    for start in graph.keys() {
        // Depth-first from `start`, looking for a path back to it.
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((node, path)) = stack.pop() {
            for next in graph.get(&node).into_iter().flatten() {
                if next == start {
                    let mut cycle = path.clone();
                    // Named from its smallest module, so each cycle appears once.
                    let smallest = cycle
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, m)| (*m).clone())
                        .map_or(0, |(i, _)| i);
                    cycle.rotate_left(smallest);
                    let first = cycle[0].clone();
                    cycle.push(first);
                    found.insert(format!("import cycle: {}", cycle.join(" -> ")));
                } else if seen.insert(next.clone()) {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    found.into_iter().collect()
}

#[test]
fn the_tree_keeps_its_layers() {
    let sources = sources();
    assert!(sources.len() > 50, "the sources were found");
    let found = violations(&sources);
    assert!(found.is_empty(), "layering broken:\n{}", found.join("\n"));
}

/// The real sources with `line` added to the file at `path`.
fn with_line(path: &str, line: &str) -> Vec<Source> {
    sources()
        .into_iter()
        .map(|source| {
            if source.path == path {
                Source::new(&source.path, &format!("{}\n{line}\n", source.code))
            } else {
                source
            }
        })
        .collect()
}

fn assert_reported(path: &str, line: &str, expected: &[&str]) {
    let found = violations(&with_line(path, line));
    for needle in expected {
        assert!(
            found.iter().any(|f| f.contains(needle)),
            "`{line}` in {path} was not reported as `{needle}`: {found:?}"
        );
    }
}

#[test]
fn the_edges_that_once_made_one_cycle_are_caught() {
    // `error.rs` → `limits`: the HTTP error type used from the core.
    assert_reported(
        "limits/mod.rs",
        "use crate::http::problem::ApiError;",
        &[
            "core module `limits` uses `crate::http`",
            "import cycle: http -> limits -> http",
        ],
    );
    // `limits` → `state`: a core service reaching for the application state.
    assert_reported(
        "limits/mod.rs",
        "pub async fn sweep_and_report(state: &crate::state::AppState) {}",
        &[
            "core module `limits` uses `crate::state`",
            "import cycle: limits -> state -> limits",
        ],
    );
    // `audit` → `webhooks`: the log calling one of its readers.
    assert_reported(
        "audit/mod.rs",
        "fn offer(c: &Connection, e: &AuditEvent) { crate::webhooks::events::offer(c, e) }",
        &["import cycle: audit -> webhooks -> audit"],
    );
}

#[test]
fn handlers_reaching_the_database_or_core_using_actix_are_caught() {
    assert_reported(
        "routes/api/documents.rs",
        "async fn peek(state: &AppState) { state.database().read(|_| Ok::<_, ()>(())).await.ok(); }",
        &["routes/api/documents.rs: a web module reaches the database"],
    );
    assert_reported(
        "routes/admin/users.rs",
        "use crate::db::users;",
        &["routes/admin/users.rs: a web module reaches the database"],
    );
    assert_reported(
        "policy/service.rs",
        "use actix_web::HttpResponse;",
        &["policy/service.rs: `policy` uses `actix_web::`"],
    );
    assert_reported(
        "cli/serve.rs",
        "fn run() { actix_web::rt::System::new(); }",
        &["cli/serve.rs: `cli` uses `actix_web::`"],
    );
}

#[test]
fn a_module_in_no_layer_is_caught() {
    let mut sources = sources();
    sources.push(Source::new("gatehouse/mod.rs", "pub fn decide() {}"));
    let found = violations(&sources);
    assert!(
        found
            .iter()
            .any(|f| f.contains("`gatehouse` is in no layer"))
    );
}

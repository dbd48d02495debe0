//! Where configuration values come from, merged in one order:
//! defaults < `--config file.toml` < `.env` file < process environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::findings::Findings;
use super::variables;

/// What to read. `environment` is passed in (not read from the process) so tests can
/// evaluate any configuration without touching global state.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    pub environment: BTreeMap<String, String>,
    pub dotenv_file: Option<PathBuf>,
    pub config_file: Option<PathBuf>,
}

impl ConfigSources {
    /// The process environment (only the variables Portcullis knows), `./.env` when it
    /// exists, and the optional TOML file.
    pub fn from_process(config_file: Option<PathBuf>) -> Self {
        let environment = std::env::vars()
            .filter(|(k, _)| variables::find(k).is_some())
            .collect();
        let dotenv = PathBuf::from(".env");
        Self {
            environment,
            dotenv_file: dotenv.is_file().then_some(dotenv),
            config_file,
        }
    }

    /// A configuration given entirely as name/value pairs (tests, embedding).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            environment: pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            ..Self::default()
        }
    }
}

/// The merged raw values, by variable name.
#[derive(Debug, Clone, Default)]
pub struct RawConfig {
    values: BTreeMap<String, String>,
}

impl RawConfig {
    /// The value of `name`, trimmed, with empty treated as unset.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Reads every source; problems reading a file become findings, never panics.
    pub fn gather(sources: &ConfigSources) -> (Self, Findings) {
        let mut findings = Findings::default();
        let mut values = BTreeMap::new();
        if let Some(path) = &sources.config_file {
            read_toml(path, &mut values, &mut findings);
        }
        if let Some(path) = &sources.dotenv_file {
            read_dotenv(path, &mut values, &mut findings);
        }
        for (k, v) in &sources.environment {
            values.insert(k.clone(), v.clone());
        }
        (Self { values }, findings)
    }
}

const CONFIG_FILE: &str = "--config";

fn read_toml(path: &Path, values: &mut BTreeMap<String, String>, findings: &mut Findings) {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            findings.fail(
                CONFIG_FILE,
                format!(
                    "cannot read {} ({}); check the path and its permissions",
                    path.display(),
                    e.kind()
                ),
            );
            return;
        }
    };
    warn_if_readable_by_others(path, CONFIG_FILE, findings);
    let table: toml::Table = match text.parse() {
        Ok(table) => table,
        Err(e) => {
            // The parser's own message quotes the offending line, which may hold a
            // secret: report the line number only.
            let line = e
                .span()
                .map(|span| text[..span.start.min(text.len())].lines().count().max(1));
            let at = line.map(|l| format!(" at line {l}")).unwrap_or_default();
            findings.fail(
                CONFIG_FILE,
                format!("{} is not valid TOML{at}; fix the syntax", path.display()),
            );
            return;
        }
    };
    for (key, value) in table {
        let name = key.to_ascii_uppercase();
        if variables::find(&name).is_none() {
            findings.fail(
                CONFIG_FILE,
                format!(
                    "unknown setting `{key}` in {}; see the configuration table in the README",
                    path.display()
                ),
            );
            continue;
        }
        match toml_value_to_text(&value) {
            Some(text) => {
                values.insert(name, text);
            }
            None => findings.fail(
                name,
                format!(
                    "in {} must be a string, number, boolean or list of strings",
                    path.display()
                ),
            ),
        }
    }
}

fn toml_value_to_text(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Array(items) => items
            .iter()
            .map(|item| match item {
                toml::Value::String(s) => Some(s.clone()),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(|parts| parts.join(",")),
        _ => None,
    }
}

fn read_dotenv(path: &Path, values: &mut BTreeMap<String, String>, findings: &mut Findings) {
    let label = path.display().to_string();
    let entries = match dotenvy::from_path_iter(path) {
        Ok(entries) => entries,
        Err(_) => {
            findings.fail(label, "cannot be read; check its permissions");
            return;
        }
    };
    warn_if_readable_by_others(path, &label, findings);
    for (index, entry) in entries.enumerate() {
        match entry {
            Ok((key, value)) => {
                if variables::find(&key).is_some() {
                    values.insert(key, value);
                }
            }
            Err(_) => {
                // dotenvy's error text contains the line itself: never echo it.
                findings.fail(
                    label.clone(),
                    format!("entry {} cannot be parsed; expected NAME=value", index + 1),
                );
                return;
            }
        }
    }
}

/// Files holding secrets should be private to their owner.
fn warn_if_readable_by_others(path: &Path, label: &str, findings: &mut Findings) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            findings.warn(
                label,
                format!(
                    "{} is readable by other users (mode {mode:o}); run `chmod 600 {}`",
                    path.display(),
                    path.display()
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn environment_overrides_dotenv_overrides_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let toml_path = dir.path().join("portcullis.toml");
        std::fs::write(
            &toml_path,
            "log_level = \"warn\"\nlog_format = \"json\"\ncors_allowed_origins = [\"https://a.example.org\", \"https://b.example.org\"]\naccess_token_expire_minutes = 10\n",
        )
        .expect("write toml");
        let env_path = dir.path().join(".env");
        let mut f = std::fs::File::create(&env_path).expect("create .env");
        writeln!(f, "LOG_FORMAT=text\nLOG_LEVEL=debug\nUNRELATED=1").expect("write .env");
        let sources = ConfigSources {
            environment: [("LOG_LEVEL".to_owned(), "trace".to_owned())].into(),
            dotenv_file: Some(env_path),
            config_file: Some(toml_path),
        };
        let (raw, findings) = RawConfig::gather(&sources);
        assert_eq!(findings.count(super::super::Status::Fail), 0);
        assert_eq!(raw.get("LOG_LEVEL"), Some("trace"));
        assert_eq!(raw.get("LOG_FORMAT"), Some("text"));
        assert_eq!(
            raw.get("CORS_ALLOWED_ORIGINS"),
            Some("https://a.example.org,https://b.example.org")
        );
        assert_eq!(raw.get("ACCESS_TOKEN_EXPIRE_MINUTES"), Some("10"));
        assert_eq!(raw.get("UNRELATED"), None);
    }

    #[test]
    fn unknown_toml_key_and_bad_syntax_fail_without_echoing_values() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "jwt_secret_kee = \"s3cr3t-value\"\n").expect("write");
        let sources = ConfigSources {
            config_file: Some(path.clone()),
            ..Default::default()
        };
        let (_, findings) = RawConfig::gather(&sources);
        let text: Vec<String> = findings.iter().map(|f| f.to_string()).collect();
        assert!(
            text.iter()
                .any(|t| t.contains("unknown setting `jwt_secret_kee`"))
        );
        assert!(text.iter().all(|t| !t.contains("s3cr3t-value")));

        std::fs::write(&path, "jwt_secret_key = \"s3cr3t-value\nbroken").expect("write");
        let (_, findings) = RawConfig::gather(&sources);
        let text: Vec<String> = findings.iter().map(|f| f.to_string()).collect();
        assert!(text.iter().any(|t| t.contains("not valid TOML at line")));
        assert!(text.iter().all(|t| !t.contains("s3cr3t-value")));
    }
}

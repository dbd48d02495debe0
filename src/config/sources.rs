//! Where configuration values come from, merged in one order:
//! defaults < `--config file.toml` < `.env` file < process environment.
//!
//! A secret may instead come from a file: `NAME_FILE` names it (Docker and
//! Kubernetes secrets), or systemd hands it over as `$CREDENTIALS_DIRECTORY/NAME`
//! (`LoadCredential=`). A secret given more than one way is refused, so nobody
//! wonders which one is in force; where each secret came from is kept (never its
//! value) for `check-config` to say.

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
            .filter(|(k, _)| {
                variables::find(k).is_some()
                    || k == CREDENTIALS_DIRECTORY
                    || secret_of_file_variable(k).is_some()
            })
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

/// systemd's directory of the credentials it hands a service (`LoadCredential=`).
pub const CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";

/// The secret variable `name` (`JWT_SECRET_KEY_FILE`) gives the file of, if any.
fn secret_of_file_variable(name: &str) -> Option<&'static variables::Variable> {
    let stem = name.strip_suffix("_FILE")?;
    variables::find(stem).filter(|v| v.secret)
}

/// The merged raw values, by variable name.
#[derive(Debug, Clone, Default)]
pub struct RawConfig {
    values: BTreeMap<String, String>,
    /// Where each secret that is set came from (never its value).
    origins: BTreeMap<&'static str, String>,
}

impl RawConfig {
    /// The value of `name`, trimmed, with empty treated as unset.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Where each secret that is set came from: (variable, source), never a value.
    pub fn secret_origins(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.origins
            .iter()
            .map(|(name, origin)| (*name, origin.as_str()))
    }

    /// Reads every source; problems reading a file become findings, never panics.
    pub fn gather(sources: &ConfigSources) -> (Self, Findings) {
        Self::gather_with(sources, true)
    }

    /// [`RawConfig::gather`] without reading the secret files: for commands that need
    /// a setting or two (where the database is, where the server listens), not the
    /// keys.
    pub fn gather_settings(sources: &ConfigSources) -> (Self, Findings) {
        Self::gather_with(sources, false)
    }

    fn gather_with(sources: &ConfigSources, secrets: bool) -> (Self, Findings) {
        let mut findings = Findings::default();
        let mut values = BTreeMap::new();
        if let Some(path) = &sources.config_file {
            read_toml(path, &mut values, &mut findings);
        }
        if let Some(path) = &sources.dotenv_file {
            read_dotenv(path, &mut values, &mut findings);
        }
        for (k, v) in &sources.environment {
            if variables::find(k).is_some() {
                values.insert(k.clone(), v.clone());
            }
        }
        let origins = if secrets {
            read_secret_files(sources, &mut values, &mut findings)
        } else {
            BTreeMap::new()
        };
        (Self { values, origins }, findings)
    }
}

/// The most a secret file may hold: keys are short, and a FIFO or a device must not
/// be read forever.
const SECRET_FILE_LIMIT: u64 = 64 * 1024;

/// Fills in the secrets given as files (`NAME_FILE`, systemd credentials), refuses
/// a secret given more than one way (or a file path given as the secret itself),
/// and says where each came from. A file's path is shown, never its content; a
/// `NAME_FILE` that names no path (the secret pasted in by mistake) is not shown.
fn read_secret_files(
    sources: &ConfigSources,
    values: &mut BTreeMap<String, String>,
    findings: &mut Findings,
) -> BTreeMap<&'static str, String> {
    let given = |name: &str| {
        sources
            .environment
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    };
    let credentials = given(CREDENTIALS_DIRECTORY).map(PathBuf::from);
    if let Some(dir) = &credentials
        && !dir.is_dir()
    {
        findings.fail(
            CREDENTIALS_DIRECTORY,
            format!(
                "{} is not a directory this process can read; no systemd credential is read from it",
                dir.display()
            ),
        );
    }
    let mut origins = BTreeMap::new();
    for var in variables::ALL.iter().filter(|v| v.secret) {
        let direct = values
            .get(var.name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty());
        if let Some(value) = direct
            && looks_like_a_path(value)
        {
            findings.fail(
                var.name,
                format!(
                    "looks like a file path, not a secret; to read the secret from a file, set {}_FILE instead",
                    var.name
                ),
            );
            continue;
        }
        let file_variable = format!("{}_FILE", var.name);
        let file = given(&file_variable);
        if let Some(text) = file
            && !text.contains('/')
        {
            findings.fail(
                file_variable.clone(),
                "must name a file by its path (it looks like a value; put a secret in the variable itself, or its path here)",
            );
            continue;
        }
        let file = file.map(PathBuf::from);
        let credential = credentials
            .as_ref()
            .map(|dir| dir.join(var.name))
            .filter(|path| path.exists());
        let ways: Vec<String> = [
            direct.map(|_| var.name.to_owned()),
            file.as_ref().map(|_| file_variable.clone()),
            credential
                .as_ref()
                .map(|_| format!("the systemd credential {}", var.name)),
        ]
        .into_iter()
        .flatten()
        .collect();
        if ways.len() > 1 {
            findings.fail(
                var.name,
                format!(
                    "is given {} ways ({}); keep one",
                    ways.len(),
                    ways.join(", ")
                ),
            );
            continue;
        }
        let (path, origin) = match (file, credential) {
            (Some(path), _) => {
                let origin = format!("{file_variable} ({})", path.display());
                (path, origin)
            }
            (None, Some(path)) => {
                let origin = format!("the systemd credential {} ({})", var.name, path.display());
                (path, origin)
            }
            (None, None) => {
                if direct.is_some() {
                    origins.insert(var.name, "its variable".to_owned());
                }
                continue;
            }
        };
        match read_secret_file(&path) {
            Ok(text) => {
                warn_if_readable_by_others(&path, var.name, findings);
                values.insert(var.name.to_owned(), text);
                origins.insert(var.name, origin);
            }
            Err(problem) => findings.fail(var.name, format!("{} {problem}", path.display())),
        }
    }
    origins
}

/// Why `NAME_FILE` in a file of settings is refused: it is read from the
/// environment only, and silently ignoring it would leave the secret unset (or a
/// rotation key unloaded).
fn file_variable_misplaced(name: &str) -> String {
    format!(
        "{name} is read from the environment only (as systemd or a container sets it); set it there, or put the secret itself in this file"
    )
}

/// A secret given where a path was meant (`JWT_SECRET_KEY=/run/secrets/jwt`) would
/// otherwise pass as a long random-looking key.
fn looks_like_a_path(value: &str) -> bool {
    value.starts_with('/') || value.starts_with("./") || value.starts_with("~/")
}

/// A secret file's content: a regular file of at most [`SECRET_FILE_LIMIT`] bytes,
/// UTF-8, one line (a trailing line break is dropped). `Err` says what is wrong,
/// never what the file holds.
fn read_secret_file(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| {
        format!(
            "cannot be read ({}); check the path and its permissions",
            e.kind()
        )
    })?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot be read ({})", e.kind()))?;
    if !meta.is_file() {
        return Err("is not a regular file".to_owned());
    }
    let mut bytes = Vec::new();
    file.take(SECRET_FILE_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot be read ({})", e.kind()))?;
    if bytes.len() as u64 > SECRET_FILE_LIMIT {
        return Err(format!(
            "holds more than {} KiB; a secret file holds one key (or a comma list)",
            SECRET_FILE_LIMIT / 1024
        ));
    }
    let text = String::from_utf8(bytes).map_err(|_| "is not UTF-8 text".to_owned())?;
    let text = text.trim_end_matches(['\n', '\r']);
    if text.chars().any(char::is_control) {
        return Err(
            "holds a line break or another control character; put a list on one line, separated by commas"
                .to_owned(),
        );
    }
    Ok(text.to_owned())
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
        if secret_of_file_variable(&name).is_some() {
            findings.fail(CONFIG_FILE, file_variable_misplaced(&name));
            continue;
        }
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
                } else if secret_of_file_variable(&key).is_some() {
                    findings.fail(label.clone(), file_variable_misplaced(&key));
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
    if let Ok(meta) = std::fs::metadata(path)
        && meta.is_file()
    {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            findings.warn(
                label,
                format!(
                    "{} is readable by other users (mode {mode:o}); make it private to this service's user: `chmod 600` it, or mount the secret with mode 0400 (Docker `mode: 0400`, Kubernetes `defaultMode: 0400`)",
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

    fn private_file(dir: &Path, name: &str, text: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        path
    }

    fn fails(findings: &Findings) -> Vec<String> {
        findings
            .with_status(super::super::Status::Fail)
            .map(|f| f.to_string())
            .collect()
    }

    #[test]
    fn secrets_come_from_files_and_systemd_credentials_and_say_so() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = private_file(dir.path(), "jwt", "from-a-file-secret\n");
        let credentials = dir.path().join("credentials");
        std::fs::create_dir(&credentials).expect("mkdir");
        private_file(&credentials, "MFA_ENCRYPTION_KEY", "from-a-credential");
        let sources = ConfigSources::from_pairs([
            ("JWT_SECRET_KEY_FILE", file.to_str().expect("utf-8")),
            (
                "CREDENTIALS_DIRECTORY",
                credentials.to_str().expect("utf-8"),
            ),
            ("CREDENTIAL_ENCRYPTION_KEY", "from-the-environment"),
        ]);
        let (raw, findings) = RawConfig::gather(&sources);
        assert!(fails(&findings).is_empty(), "{findings:?}");
        assert_eq!(raw.get("JWT_SECRET_KEY"), Some("from-a-file-secret"));
        assert_eq!(raw.get("MFA_ENCRYPTION_KEY"), Some("from-a-credential"));
        let origins: BTreeMap<&str, &str> = raw.secret_origins().collect();
        assert!(origins["JWT_SECRET_KEY"].starts_with("JWT_SECRET_KEY_FILE ("));
        assert!(
            origins["MFA_ENCRYPTION_KEY"].starts_with("the systemd credential MFA_ENCRYPTION_KEY")
        );
        assert_eq!(origins["CREDENTIAL_ENCRYPTION_KEY"], "its variable");
        assert!(
            origins.values().all(|o| !o.contains("from-")),
            "never a value"
        );
    }

    #[test]
    fn a_secret_given_twice_or_unreadable_is_refused_without_its_value() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = private_file(dir.path(), "jwt", "the-file-one");
        let path = file.to_str().expect("utf-8").to_owned();
        let twice = ConfigSources::from_pairs([
            ("JWT_SECRET_KEY", "the-variable-one"),
            ("JWT_SECRET_KEY_FILE", path.as_str()),
        ]);
        let (_, findings) = RawConfig::gather(&twice);
        let text = fails(&findings).join("\n");
        assert!(text.contains("JWT_SECRET_KEY: is given 2 ways"), "{text}");
        assert!(!text.contains("the-file-one") && !text.contains("the-variable-one"));
        let missing = dir.path().join("nowhere");
        let unreadable = ConfigSources::from_pairs([(
            "GATE_ASSERTION_KEY_FILE",
            missing.to_str().expect("utf-8"),
        )]);
        let (raw, findings) = RawConfig::gather(&unreadable);
        assert!(
            fails(&findings).join("\n").contains("cannot be read"),
            "{findings:?}"
        );
        assert_eq!(raw.get("GATE_ASSERTION_KEY"), None);
    }

    #[test]
    fn secret_files_that_are_not_one_short_line_are_refused_without_their_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let two_lines = private_file(dir.path(), "two", "key-one\nkey-two\n");
        let big = private_file(dir.path(), "big", &"k".repeat(70 * 1024));
        let gather = |name: &str, path: &Path| {
            let path = path.to_str().expect("utf-8").to_owned();
            let (raw, findings) =
                RawConfig::gather(&ConfigSources::from_pairs([(name, path.as_str())]));
            (
                raw.get(name.trim_end_matches("_FILE")).map(str::to_owned),
                fails(&findings).join("\n"),
            )
        };
        let (value, text) = gather("JWT_PREVIOUS_SECRET_KEYS_FILE", &two_lines);
        assert_eq!(value, None);
        assert!(text.contains("line break"), "{text}");
        assert!(!text.contains("key-one"));
        let (value, text) = gather("JWT_SECRET_KEY_FILE", &big);
        assert_eq!(value, None);
        assert!(text.contains("more than 64 KiB"), "{text}");
        let (value, text) = gather("JWT_SECRET_KEY_FILE", dir.path());
        assert_eq!(value, None);
        assert!(text.contains("not a regular file"), "{text}");
    }

    #[test]
    fn a_path_given_as_the_secret_or_a_secret_as_its_path_is_refused() {
        let (raw, findings) = RawConfig::gather(&ConfigSources::from_pairs([(
            "JWT_SECRET_KEY",
            "/run/secrets/portcullis_jwt_signing_key",
        )]));
        assert_eq!(
            raw.get("JWT_SECRET_KEY"),
            Some("/run/secrets/portcullis_jwt_signing_key")
        );
        let text = fails(&findings).join("\n");
        assert!(
            text.contains("looks like a file path") && text.contains("JWT_SECRET_KEY_FILE"),
            "{text}"
        );
        let pasted = "HtwkBJF2AywPsOaMlWuw7kKGDKohhBsrfi-nGEa8qSbz";
        let (_, findings) = RawConfig::gather(&ConfigSources::from_pairs([(
            "JWT_SECRET_KEY_FILE",
            pasted,
        )]));
        let text = fails(&findings).join("\n");
        assert!(text.contains("must name a file by its path"), "{text}");
        assert!(!text.contains(pasted), "the pasted secret is not echoed");
    }

    #[test]
    fn a_file_variable_in_a_settings_file_or_a_missing_credentials_directory_is_said() {
        let dir = tempfile::tempdir().expect("tempdir");
        let env_path = private_file(dir.path(), ".env", "JWT_SECRET_KEY_FILE=/run/secrets/jwt\n");
        let sources = ConfigSources {
            dotenv_file: Some(env_path),
            ..Default::default()
        };
        let (_, findings) = RawConfig::gather(&sources);
        assert!(
            fails(&findings)
                .join("\n")
                .contains("read from the environment only")
        );
        let (_, findings) = RawConfig::gather(&ConfigSources::from_pairs([(
            "CREDENTIALS_DIRECTORY",
            "/nonexistent/credentials",
        )]));
        assert!(fails(&findings).join("\n").contains("is not a directory"));
    }
}

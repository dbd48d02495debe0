//! Logging: text or JSON lines, and the filter.
use super::variables as v;
use super::{Reader, default_of};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Which requests get a line of their own (`LOG_REQUESTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogRequests {
    All,
    /// Responses with a 4xx or 5xx status.
    Failures,
    /// Responses with a 5xx status.
    ServerErrors,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
    pub requests: LogRequests,
}

impl Reader<'_> {
    pub(super) fn log(&mut self) -> Option<LogSettings> {
        let format = match self
            .raw
            .get(v::LOG_FORMAT)
            .unwrap_or(default_of(v::LOG_FORMAT))
        {
            f if f.eq_ignore_ascii_case("text") => Some(LogFormat::Text),
            f if f.eq_ignore_ascii_case("json") => Some(LogFormat::Json),
            _ => {
                self.findings
                    .fail(v::LOG_FORMAT, "must be `text` or `json`");
                None
            }
        };
        let level = self
            .raw
            .get(v::LOG_LEVEL)
            .unwrap_or(default_of(v::LOG_LEVEL));
        let level = if tracing_subscriber::EnvFilter::try_new(level).is_ok() {
            Some(level.to_owned())
        } else {
            self.findings.fail(
                v::LOG_LEVEL,
                "is not a valid log filter; use e.g. `info` or `portcullis=debug`",
            );
            None
        };
        let requests = match self
            .raw
            .get(v::LOG_REQUESTS)
            .unwrap_or(default_of(v::LOG_REQUESTS))
            .to_ascii_lowercase()
            .as_str()
        {
            "all" => Some(LogRequests::All),
            "failures" => Some(LogRequests::Failures),
            "server-errors" => Some(LogRequests::ServerErrors),
            _ => {
                self.findings.fail(
                    v::LOG_REQUESTS,
                    "must be `all`, `failures` or `server-errors`",
                );
                None
            }
        };
        Some(LogSettings {
            format: format?,
            level: level?,
            requests: requests?,
        })
    }
}

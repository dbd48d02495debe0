//! Logging: text or JSON lines, and the filter.
use super::variables as v;
use super::{Reader, default_of};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
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
        Some(LogSettings {
            format: format?,
            level: level?,
        })
    }
}

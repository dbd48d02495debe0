//! The outcome of each configuration check: pass, warn or fail, and a score from them.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }
}

/// One checked fact about the configuration. `message` says what is wrong and how to
/// fix it; it never contains a secret value.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    pub status: Status,
    pub variable: String,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.message)
    }
}

/// All findings of one configuration evaluation.
#[derive(Debug, Clone, Default)]
pub struct Findings(Vec<Finding>);

impl Findings {
    pub fn pass(&mut self, variable: impl Into<String>, message: impl Into<String>) {
        self.push(Status::Pass, variable, message);
    }

    pub fn warn(&mut self, variable: impl Into<String>, message: impl Into<String>) {
        self.push(Status::Warn, variable, message);
    }

    pub fn fail(&mut self, variable: impl Into<String>, message: impl Into<String>) {
        self.push(Status::Fail, variable, message);
    }

    fn push(&mut self, status: Status, variable: impl Into<String>, message: impl Into<String>) {
        self.0.push(Finding {
            status,
            variable: variable.into(),
            message: message.into(),
        });
    }

    pub fn extend(&mut self, other: Findings) {
        self.0.extend(other.0);
    }

    pub fn iter(&self) -> impl Iterator<Item = &Finding> {
        self.0.iter()
    }

    pub fn with_status(&self, status: Status) -> impl Iterator<Item = &Finding> {
        self.0.iter().filter(move |f| f.status == status)
    }

    pub fn count(&self, status: Status) -> usize {
        self.with_status(status).count()
    }

    pub fn has_failures(&self) -> bool {
        self.count(Status::Fail) > 0
    }

    /// 0–100: a pass counts fully, a warning half, a failure nothing. Any failure caps
    /// the score at 49 so a broken configuration never looks "mostly fine".
    pub fn score(&self) -> u8 {
        let total = self.0.len();
        if total == 0 {
            return 0;
        }
        let earned: usize = self
            .0
            .iter()
            .map(|f| match f.status {
                Status::Pass => 2,
                Status::Warn => 1,
                Status::Fail => 0,
            })
            .sum();
        let score = (earned * 100 + total) / (total * 2);
        let score = u8::try_from(score).unwrap_or(100);
        if self.has_failures() {
            score.min(49)
        } else {
            score
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_weights_pass_warn_fail() {
        let mut f = Findings::default();
        f.pass("A", "ok");
        f.pass("B", "ok");
        f.warn("C", "hm");
        f.warn("D", "hm");
        assert_eq!(f.score(), 75);
        f.fail("E", "bad");
        assert!(f.score() <= 49);
        assert!(Findings::default().score() == 0);
    }

    #[test]
    fn all_passing_scores_100() {
        let mut f = Findings::default();
        f.pass("A", "ok");
        assert_eq!(f.score(), 100);
    }
}

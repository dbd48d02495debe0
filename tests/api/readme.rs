//! The README's "The API by example", run for real: every fenced block marked
//! `sh readme-test` is executed in order against a fresh server, and the answer to its
//! `curl` is held to the `http readme-expect` block that follows it. Nothing runs in
//! a shell: the commands are parsed here (curl, variable assignments, `sleep`, and
//! the two command substitutions the walk-through uses, `tail -n1 /tmp/answer | jq -r
//! FILTER` and `oathtool --totp -b SECRET`), and anything else in a marked block is
//! an error, so the README cannot drift into commands this test does not check.
//!
//! The server is set up as the demo is for these requests: the default rate limits,
//! webhooks allowed to reach loopback, and an administrator `admin@portcullis.test`
//! (the README's `ADMIN_PASSWORD` placeholder is filled in with its password). Its
//! clock is manual, so `sleep 30` moves it 30 s (and the TOTP codes with it) without
//! waiting.
//!
//! An expected answer is a status line, optional header lines, a blank line and a
//! JSON body. The body matches when every key it shows is in the answer with a
//! matching value (the answer may have more keys, but `{}` means empty); a list of
//! objects matches when each object shown matches a different one in the answer (in
//! any order); any other list must match item by item. A value in angle brackets stands for one that
//! differs every run: `"<uuid>"`, `"<time>"` (RFC 3339), `"<jwt>"` and
//! `"<backup code>"` must be one of those; any other `"<…>"` matches any value; and
//! inside a text (`"prt_<random>"`) it matches one or more characters.

use std::collections::HashMap;

use portcullis::auth::mfa::TotpSecret;
use portcullis::clock::Clock;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::helpers::{GOOD_PASSWORD, TestApp, spawn_with, test_settings};

const COMMANDS: &str = "readme-test";
const EXPECTED: &str = "readme-expect";
/// Where the README's commands keep the last answer (`| tee /tmp/answer`).
const ANSWER_FILE: &str = "/tmp/answer";
/// The demo's address, which the README's `BASE` must name.
const DEMO_BASE: &str = "http://127.0.0.1:8080";
const DEMO_ADMIN: &str = "admin@portcullis.test";
/// Paths the walk-through must visit: every flow the section promises.
const COVERED: &[(&str, &str)] = &[
    ("POST", "/api/v1/auth/register"),
    ("POST", "/api/v1/auth/login"),
    ("GET", "/api/v1/auth/me"),
    ("POST", "/api/v1/auth/refresh"),
    ("POST", "/api/v1/auth/mfa/setup"),
    ("POST", "/api/v1/auth/mfa/enable"),
    ("POST", "/api/v1/auth/mfa/verify-login"),
    ("POST", "/api/v1/auth/logout"),
    ("POST", "/api/v1/documents"),
    ("GET", "/api/v1/documents/"),
    ("POST", "/api/v1/authz/check"),
    ("POST", "/api/v1/webhooks"),
    ("GET", "/deliveries"),
    ("GET", "/api/v1/admin/policies"),
    ("POST", "/api/v1/admin/policies"),
];

#[derive(Debug, PartialEq)]
enum Block {
    Commands(String),
    Expected(String),
}

/// The marked fenced blocks, in order.
fn marked_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    // While inside a fence: its kind (commands, expected, or unmarked) and its text.
    let mut open: Option<(Option<bool>, String)> = None;
    for line in markdown.lines() {
        let fence = line.trim_start().strip_prefix("```");
        if let Some((kind, text)) = open.as_mut() {
            if fence.is_some_and(|rest| rest.trim().is_empty()) {
                match *kind {
                    Some(true) => blocks.push(Block::Commands(std::mem::take(text))),
                    Some(false) => blocks.push(Block::Expected(std::mem::take(text))),
                    None => {}
                }
                open = None;
            } else {
                text.push_str(line);
                text.push('\n');
            }
        } else if let Some(info) = fence {
            let words: Vec<&str> = info.split_whitespace().collect();
            let kind = if words.contains(&COMMANDS) {
                Some(true)
            } else if words.contains(&EXPECTED) {
                Some(false)
            } else {
                None
            };
            open = Some((kind, String::new()));
        }
    }
    assert!(open.is_none(), "README.md ends inside a fenced block");
    blocks
}

/// Splits a block into commands: a newline ends one unless it is quoted, inside
/// `$(…)`, or escaped with a backslash; `#` at the start of a word begins a comment.
fn split_commands(text: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    let (mut single, mut double, mut depth) = (false, false, 0usize);
    while let Some(c) = chars.next() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '\\' if !single => {
                match chars.next() {
                    Some('\n') => current.push(' '),
                    Some(next) => {
                        current.push('\\');
                        current.push(next);
                    }
                    None => current.push('\\'),
                }
                continue;
            }
            '(' if !single && current.ends_with('$') => depth += 1,
            ')' if !single && depth > 0 => depth -= 1,
            '#' if !single
                && !double
                && depth == 0
                && current.chars().last().is_none_or(char::is_whitespace) =>
            {
                while chars.peek().is_some_and(|&next| next != '\n') {
                    chars.next();
                }
                continue;
            }
            '\n' if !single && !double && depth == 0 => {
                commands.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    assert!(
        !single && !double && depth == 0,
        "unbalanced quotes in:\n{text}"
    );
    commands.push(current);
    commands
        .into_iter()
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Pipe,
}

/// `NAME=` at the start of a command.
fn assignment(command: &str) -> Option<(&str, &str)> {
    let (name, value) = command.split_once('=')?;
    let mut chars = name.chars();
    let first = chars.next()?;
    let valid = (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then_some((name, value))
}

/// An answer as curl showed it.
struct Answer {
    command: String,
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

struct Walkthrough<'a> {
    app: &'a TestApp,
    vars: HashMap<String, String>,
    /// Values the test fills in for the README's `NAME='<…>'` placeholders.
    supplied: HashMap<&'static str, String>,
    /// The last answer, until its expected block checks it.
    unchecked: Option<Answer>,
    /// What `/tmp/answer` holds: the body of the last answer sent through `tee`.
    answer_file: Option<String>,
    /// Every request sent, as (method, path).
    sent: Vec<(String, String)>,
}

impl<'a> Walkthrough<'a> {
    fn new(app: &'a TestApp, supplied: HashMap<&'static str, String>) -> Self {
        Self {
            app,
            vars: HashMap::new(),
            supplied,
            unchecked: None,
            answer_file: None,
            sent: Vec::new(),
        }
    }

    async fn run(&mut self, block: &Block) {
        match block {
            Block::Commands(text) => {
                if let Some(answer) = &self.unchecked {
                    panic!(
                        "README: no `{EXPECTED}` block after\n{}\n(answered {})",
                        answer.command, answer.status
                    );
                }
                let mut curls = 0;
                for command in split_commands(text) {
                    if self.command(&command).await {
                        curls += 1;
                    }
                }
                assert!(
                    curls <= 1,
                    "README: one curl per `{COMMANDS}` block, so each has its answer:\n{text}"
                );
            }
            Block::Expected(text) => {
                let answer = self.unchecked.take().unwrap_or_else(|| {
                    panic!("README: a `{EXPECTED}` block follows no curl command:\n{text}")
                });
                check(&answer, text);
            }
        }
    }

    fn finish(&self) {
        if let Some(answer) = &self.unchecked {
            panic!("README: no `{EXPECTED}` block after\n{}", answer.command);
        }
    }

    /// Runs one command; whether it was a request.
    async fn command(&mut self, command: &str) -> bool {
        if let Some((name, value)) = assignment(command) {
            let words = self.words(value);
            let value = match words.as_slice() {
                [] => String::new(),
                [Token::Word(word)] => word.clone(),
                _ => panic!("README: `{command}` assigns more than one word"),
            };
            let value = if is_placeholder(&value) {
                self.supplied
                    .get(name)
                    .unwrap_or_else(|| panic!("README: nothing to fill in for {name}={value}"))
                    .clone()
            } else if name == "BASE" {
                assert_eq!(value, DEMO_BASE, "README: BASE is the demo's address");
                self.app.address.clone()
            } else {
                value
            };
            self.vars.insert(name.to_owned(), value);
            return false;
        }
        let tokens = self.words(command);
        match tokens.first() {
            Some(Token::Word(word)) if word == "sleep" => {
                let seconds = match tokens.as_slice() {
                    [_, Token::Word(n)] => n.parse::<i64>().ok(),
                    _ => None,
                }
                .unwrap_or_else(|| panic!("README: `{command}`: sleep takes whole seconds"));
                assert!(self.app.clock.advance(seconds), "the clock is manual");
                false
            }
            Some(Token::Word(word)) if word == "curl" => {
                self.curl(command, &tokens).await;
                true
            }
            _ => panic!("README: this test runs curl, sleep and NAME=value only, not `{command}`"),
        }
    }

    async fn curl(&mut self, command: &str, tokens: &[Token]) {
        let mut segments = tokens.split(|t| *t == Token::Pipe);
        let args: Vec<&str> = segments
            .next()
            .unwrap_or_default()
            .iter()
            .skip(1)
            .map(|t| match t {
                Token::Word(w) => w.as_str(),
                Token::Pipe => "|",
            })
            .collect();
        let mut teed = false;
        for segment in segments {
            assert_eq!(
                segment,
                [Token::Word("tee".into()), Token::Word(ANSWER_FILE.into())],
                "README: a curl's answer goes only to `tee {ANSWER_FILE}`: {command}"
            );
            teed = true;
        }
        let (mut method, mut url, mut body) = (None, None, None);
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut include = false;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = || {
                args.next()
                    .unwrap_or_else(|| panic!("README: {arg} needs a value: {command}"))
                    .to_owned()
            };
            match arg {
                "-s" | "--silent" => {}
                "-i" | "--include" | "-si" | "-is" => include = true,
                "-X" | "--request" => method = Some(value()),
                "-H" | "--header" => {
                    let header = value();
                    let (name, text) = header
                        .split_once(':')
                        .unwrap_or_else(|| panic!("README: a header without `:`: {header}"));
                    headers.push((name.trim().to_owned(), text.trim().to_owned()));
                }
                "-d" | "--data" | "--data-raw" => {
                    let data = value();
                    assert!(
                        arg == "--data-raw" || !data.starts_with('@'),
                        "README: no bodies from files: {command}"
                    );
                    body = Some(data);
                }
                _ if arg.starts_with("http://") || arg.starts_with("https://") => {
                    url = Some(arg.to_owned());
                }
                _ => panic!("README: this test does not know curl's `{arg}`: {command}"),
            }
        }
        assert!(
            include,
            "README: curl -i, so the reader sees the status line: {command}"
        );
        let url = url.unwrap_or_else(|| panic!("README: curl without a URL: {command}"));
        let path = url
            .strip_prefix(&self.app.address)
            .unwrap_or_else(|| panic!("README: requests go to $BASE: {command}"))
            .to_owned();
        let method =
            method.unwrap_or_else(|| String::from(if body.is_some() { "POST" } else { "GET" }));
        let mut request = self.app.client.request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method"),
            url.as_str(),
        );
        let has_content_type = headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if let Some(body) = body {
            if !has_content_type {
                // What curl sends with -d when told nothing else.
                request = request.header("content-type", "application/x-www-form-urlencoded");
            }
            request = request.body(body);
        }
        let response = request.send().await.expect("the request is answered");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.expect("the answer's body");
        if teed {
            self.answer_file = Some(body.clone());
        }
        let path_only = path.split('?').next().unwrap_or_default().to_owned();
        self.sent.push((method, path_only));
        self.unchecked = Some(Answer {
            command: command.to_owned(),
            status,
            headers,
            body,
        });
    }

    /// The command's words, expanded as the shell would: quotes removed, `$NAME`,
    /// `${NAME}` and `$(…)` filled in, `|` kept as a token.
    fn words(&self, text: &str) -> Vec<Token> {
        let chars: Vec<char> = text.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            if chars[i].is_whitespace() {
                i += 1;
                continue;
            }
            if chars[i] == '|' {
                tokens.push(Token::Pipe);
                i += 1;
                continue;
            }
            let mut word = String::new();
            while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '|' {
                match chars[i] {
                    '\'' => {
                        let end = find(&chars, i + 1, '\'', text);
                        word.extend(&chars[i + 1..end]);
                        i = end + 1;
                    }
                    '"' => {
                        i += 1;
                        while chars.get(i).is_some_and(|&c| c != '"') {
                            match chars[i] {
                                '\\' if chars
                                    .get(i + 1)
                                    .is_some_and(|c| matches!(c, '"' | '\\' | '$' | '`')) =>
                                {
                                    word.push(chars[i + 1]);
                                    i += 2;
                                }
                                '$' => i = self.expand(&chars, i, &mut word, text),
                                c => {
                                    word.push(c);
                                    i += 1;
                                }
                            }
                        }
                        assert!(i < chars.len(), "README: unclosed `\"` in {text}");
                        i += 1;
                    }
                    '\\' if i + 1 < chars.len() => {
                        word.push(chars[i + 1]);
                        i += 2;
                    }
                    '$' => i = self.expand(&chars, i, &mut word, text),
                    c => {
                        word.push(c);
                        i += 1;
                    }
                }
            }
            tokens.push(Token::Word(word));
        }
        tokens
    }

    /// Expands the `$…` at `at` into `word`; returns the index after it.
    fn expand(&self, chars: &[char], at: usize, word: &mut String, text: &str) -> usize {
        match chars.get(at + 1) {
            Some('(') => {
                let end = closing_paren(chars, at + 2, text);
                let inner: String = chars[at + 2..end].iter().collect();
                word.push_str(&self.substitute(&inner));
                end + 1
            }
            Some('{') => {
                let end = find(chars, at + 2, '}', text);
                let name: String = chars[at + 2..end].iter().collect();
                word.push_str(self.var(&name));
                end + 1
            }
            _ => {
                let mut end = at + 1;
                while chars
                    .get(end)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
                {
                    end += 1;
                }
                assert!(end > at + 1, "README: a bare `$` in {text}");
                let name: String = chars[at + 1..end].iter().collect();
                word.push_str(self.var(&name));
                end
            }
        }
    }

    fn var(&self, name: &str) -> &str {
        self.vars
            .get(name)
            .unwrap_or_else(|| panic!("README: ${name} is used before a block sets it"))
    }

    /// The two command substitutions the walk-through uses.
    fn substitute(&self, command: &str) -> String {
        let tokens = self.words(command);
        let segments: Vec<Vec<&str>> = tokens
            .split(|t| *t == Token::Pipe)
            .map(|segment| {
                segment
                    .iter()
                    .map(|t| match t {
                        Token::Word(w) => w.as_str(),
                        Token::Pipe => "|",
                    })
                    .collect()
            })
            .collect();
        let segments: Vec<&[&str]> = segments.iter().map(Vec::as_slice).collect();
        match segments.as_slice() {
            [["tail", "-n1", file], ["jq", "-r", filter]] if *file == ANSWER_FILE => {
                let saved = self
                    .answer_file
                    .as_deref()
                    .unwrap_or_else(|| panic!("README: `{command}` before any `tee`"));
                let last_line = saved.lines().last().unwrap_or_default();
                let json: Value = serde_json::from_str(last_line).unwrap_or_else(|_| {
                    panic!("README: `{command}`: the saved answer is no JSON: {saved}")
                });
                match jq(&json, filter) {
                    Some(Value::String(text)) => text.clone(),
                    Some(Value::Null) | None => {
                        panic!("README: `{command}` finds nothing in {json}")
                    }
                    Some(other) => other.to_string(),
                }
            }
            [["oathtool", "--totp", "-b", secret]] => TotpSecret::from_base32(secret.as_bytes())
                .expect("README: oathtool is given the base32 secret")
                .code_at(self.app.clock.now())
                .expect("a TOTP code"),
            _ => panic!("README: this test cannot run `$({command})`"),
        }
    }
}

/// The index of the next `target` from `from`.
fn find(chars: &[char], from: usize, target: char, text: &str) -> usize {
    (from..chars.len())
        .find(|&i| chars[i] == target)
        .unwrap_or_else(|| panic!("README: no closing `{target}` in {text}"))
}

/// The index of the `)` closing a `$(` whose inside starts at `from`.
fn closing_paren(chars: &[char], from: usize, text: &str) -> usize {
    let (mut depth, mut single, mut double) = (0usize, false, false);
    for (i, &c) in chars.iter().enumerate().skip(from) {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '(' if !single && !double => depth += 1,
            ')' if !single && !double && depth == 0 => return i,
            ')' if !single && !double => depth -= 1,
            _ => {}
        }
    }
    panic!("README: no closing `)` in {text}")
}

/// A jq path: `.a.b`, `.a[0].b`, `.[1]`.
fn jq<'v>(json: &'v Value, filter: &str) -> Option<&'v Value> {
    let mut rest = filter.strip_prefix('.')?;
    let mut at = json;
    while !rest.is_empty() {
        if let Some(index) = rest.strip_prefix('[') {
            let (number, after) = index.split_once(']')?;
            at = at.get(number.parse::<usize>().ok()?)?;
            rest = after.strip_prefix('.').unwrap_or(after);
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            at = at.get(&rest[..end])?;
            rest = rest[end..].strip_prefix('.').unwrap_or(&rest[end..]);
        }
    }
    Some(at)
}

/// Holds `answer` to the expected block: status line, header lines, JSON body.
fn check(answer: &Answer, expected: &str) {
    let context = || {
        format!(
            "README example\n  {}\nanswered {} with\n  {}",
            answer.command, answer.status, answer.body
        )
    };
    let (head, body) = expected.split_once("\n\n").unwrap_or((expected, ""));
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (version, code, reason) = (parts.next(), parts.next(), parts.next());
    assert_eq!(version, Some("HTTP/1.1"), "{status_line}\n{}", context());
    assert_eq!(
        code,
        Some(answer.status.as_str()),
        "the status differs\n{}",
        context()
    );
    assert_eq!(
        reason,
        answer.status.canonical_reason(),
        "the status line's reason\n{}",
        context()
    );
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("README: not a header line: {line}"));
        let actual = answer
            .headers
            .get(name.trim())
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no `{name}` header\n{}", context()));
        assert!(
            text_matches(value.trim(), actual),
            "`{name}: {actual}` is not `{}`\n{}",
            value.trim(),
            context()
        );
    }
    if body.trim().is_empty() {
        assert!(
            answer.body.is_empty(),
            "the answer has a body\n{}",
            context()
        );
        return;
    }
    let expected: Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("README: the expected body is no JSON ({e}):\n{body}"));
    let actual: Value = serde_json::from_str(&answer.body)
        .unwrap_or_else(|_| panic!("the answer is no JSON\n{}", context()));
    if let Err(problem) = value_matches(&expected, &actual, "$") {
        panic!("{problem}\n{}", context());
    }
}

/// A whole `<…>` value.
fn is_placeholder(text: &str) -> bool {
    text.len() > 2 && text.starts_with('<') && text.ends_with('>') && !text[1..].contains('<')
}

fn value_matches(expected: &Value, actual: &Value, at: &str) -> Result<(), String> {
    let differs = || Err(format!("at {at}: expected {expected}, got {actual}"));
    match expected {
        Value::String(text) if is_placeholder(text) => {
            if kind_matches(&text[1..text.len() - 1], actual) {
                Ok(())
            } else {
                differs()
            }
        }
        Value::String(text) => match actual {
            Value::String(got) if text_matches(text, got) => Ok(()),
            _ => differs(),
        },
        Value::Object(fields) => {
            let Value::Object(got) = actual else {
                return differs();
            };
            if fields.is_empty() && !got.is_empty() {
                return differs();
            }
            for (key, value) in fields {
                let inner = format!("{at}.{key}");
                let found = got
                    .get(key)
                    .ok_or_else(|| format!("at {inner}: missing; the answer is {actual}"))?;
                value_matches(value, found, &inner)?;
            }
            Ok(())
        }
        Value::Array(items) => {
            let Value::Array(got) = actual else {
                return differs();
            };
            if !items.is_empty() && items.iter().all(Value::is_object) {
                // Objects: each shown one matches a different one in the answer.
                let mut used = vec![false; got.len()];
                for (n, item) in items.iter().enumerate() {
                    let inner = format!("{at}[{n}]");
                    let found = got.iter().enumerate().position(|(i, candidate)| {
                        !used[i] && value_matches(item, candidate, &inner).is_ok()
                    });
                    match found {
                        Some(i) => used[i] = true,
                        None => {
                            return Err(format!(
                                "at {inner}: nothing in the answer matches {item}; the answer is {actual}"
                            ));
                        }
                    }
                }
                Ok(())
            } else if items.len() == got.len() {
                items
                    .iter()
                    .zip(got)
                    .enumerate()
                    .try_for_each(|(n, (item, found))| {
                        value_matches(item, found, &format!("{at}[{n}]"))
                    })
            } else {
                differs()
            }
        }
        _ if expected == actual => Ok(()),
        _ => differs(),
    }
}

/// Whether a value fits a placeholder's kind; unknown kinds take anything.
fn kind_matches(kind: &str, actual: &Value) -> bool {
    let text = actual.as_str();
    match kind {
        "uuid" => text.is_some_and(|t| uuid::Uuid::parse_str(t).is_ok()),
        "time" => text.is_some_and(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).is_ok()
        }),
        "jwt" => text.is_some_and(|t| {
            let parts: Vec<&str> = t.split('.').collect();
            parts.len() == 3 && parts.iter().all(|p| !p.is_empty())
        }),
        "backup code" => text.is_some_and(|t| {
            let groups: Vec<&str> = t.split('-').collect();
            groups.len() == 4
                && groups.iter().all(|g| {
                    g.len() == 4
                        && g.bytes()
                            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
                })
        }),
        _ => true,
    }
}

/// Text with `<…>` placeholders, each standing for one or more characters.
fn text_matches(pattern: &str, text: &str) -> bool {
    let Some(start) = pattern.find('<') else {
        return pattern == text;
    };
    let Some(length) = pattern[start..].find('>') else {
        return pattern == text;
    };
    let rest = &pattern[start + length + 1..];
    let Some(tail) = text.strip_prefix(&pattern[..start]) else {
        return false;
    };
    tail.char_indices()
        .map(|(i, _)| i)
        .skip(1)
        .chain([tail.len()])
        .filter(|&i| i > 0)
        .any(|i| text_matches(rest, &tail[i..]))
}

/// A server as the demo serves these requests: default rate limits, webhooks that
/// may reach loopback, a manual clock, and the demo's administrator.
async fn demo_like_app() -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut overrides: Vec<(&str, &str)> = portcullis::config::variables::ALL
        .iter()
        .filter(|v| v.name.starts_with("RATE_LIMIT_") || v.name.starts_with("DEFAULT_RATE_LIMIT_"))
        .filter_map(|v| Some((v.name, v.default?)))
        .collect();
    overrides.push(("WEBHOOK_ALLOWED_PRIVATE_NETWORKS", "127.0.0.0/8,::1/128"));
    let settings = test_settings(dir.path(), &overrides);
    // Mid-step, so `sleep 30` lands in the next TOTP step and no other.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let clock = Clock::manual(now - now % 30 + 5);
    let app = spawn_with(settings, dir, reqwest::Client::new(), clock).await;
    assert_eq!(app.register(DEMO_ADMIN, GOOD_PASSWORD).await.status(), 201);
    let conn = rusqlite::Connection::open(&app.db_path).expect("open the database");
    conn.execute(
        "UPDATE users SET role = 'admin', attributes = '{\"department\":\"security\"}' WHERE email = ?1",
        [DEMO_ADMIN],
    )
    .expect("make the demo's administrator");
    app
}

#[actix_web::test]
async fn the_readme_api_examples_give_the_answers_shown() {
    let app = demo_like_app().await;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).expect("README.md is readable");
    let blocks = marked_blocks(&readme);
    let supplied = HashMap::from([("ADMIN_PASSWORD", GOOD_PASSWORD.to_owned())]);
    let mut walk = Walkthrough::new(&app, supplied);
    for block in &blocks {
        walk.run(block).await;
    }
    walk.finish();
    for (method, path) in COVERED {
        assert!(
            walk.sent
                .iter()
                .any(|(m, p)| m == method && p.contains(path)),
            "README: the walk-through shows no {method} {path}"
        );
    }
}

#[test]
fn readme_blocks_are_found_and_commands_split_as_a_shell_would() {
    let markdown = "text\n```sh readme-test\nA=1 # one\ncurl -si \"$BASE/x\" \\\n  -d '{\"a\":\n 1}'\n```\n```sh\nignored\n```\n```http readme-expect\nHTTP/1.1 200 OK\n```\n";
    let blocks = marked_blocks(markdown);
    assert_eq!(blocks.len(), 2);
    let Block::Commands(text) = &blocks[0] else {
        panic!("commands first");
    };
    assert_eq!(
        split_commands(text),
        ["A=1", "curl -si \"$BASE/x\"    -d '{\"a\":\n 1}'"]
    );
    assert_eq!(blocks[1], Block::Expected("HTTP/1.1 200 OK\n".into()));
}

#[test]
fn readme_answers_must_match_what_is_shown() {
    let json = |text: &str| serde_json::from_str::<Value>(text).expect("json");
    let shown = json(
        r#"{"id": "<uuid>", "at": "<time>", "token": "prt_<random>", "n": 900,
            "list": [{"k": 1}], "codes": ["<backup code>"], "any": "<whatever>", "attrs": {}}"#,
    );
    let good = json(
        r#"{"id": "67e55044-10b1-426f-9247-bb680e5fe0c8", "at": "2026-12-06T23:00:00Z",
            "token": "prt_abc", "n": 900, "list": [{"k": 2}, {"k": 1, "x": 0}],
            "codes": ["AB12-CD34-EF56-GH78"], "any": null, "attrs": {}, "extra": true}"#,
    );
    assert_eq!(value_matches(&shown, &good, "$"), Ok(()));
    for bad in [
        r#"{"id": "not-a-uuid"}"#,
        r#"{"at": "yesterday"}"#,
        r#"{"token": "prt_"}"#,
        r#"{"n": 899}"#,
        r#"{"list": [{"k": 2}]}"#,
        r#"{"codes": ["AB12-CD34-EF56-GH78", "AB12-CD34-EF56-GH79"]}"#,
        r#"{"codes": ["ab12"]}"#,
        r#"{"attrs": {"a": 1}}"#,
    ] {
        let mut answer = good.clone();
        if let (Value::Object(fields), Value::Object(changes)) = (&mut answer, json(bad)) {
            fields.extend(changes);
        }
        assert!(
            value_matches(&shown, &answer, "$").is_err(),
            "{bad} should not match"
        );
    }
    let mut missing = good.clone();
    if let Value::Object(fields) = &mut missing {
        fields.remove("n");
    }
    assert!(value_matches(&shown, &missing, "$").is_err());
    assert!(text_matches("a<x>c<y>", "abbcd"));
    assert!(!text_matches("a<x>c", "ac"));
    assert_eq!(
        jq(&json(r#"{"a": [{"b": "c"}]}"#), ".a[0].b"),
        Some(&json("\"c\""))
    );
}

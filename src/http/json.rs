//! The JSON body extractor every API handler uses instead of `web::Json`, so a bad
//! body always gets a precise 4xx: 415 wrong content type, 413 too large, 408 too
//! slow to arrive, 400 not JSON (or more than one JSON value), 422 valid JSON whose
//! fields are wrong or unknown (each one named, in JSON's terms, never Rust's).
//!
//! [`Body`] is the bounded read under it, which form posts use too: at most
//! `MAX_JSON_BODY_BYTES`, and all of it within `REQUEST_BODY_TIMEOUT_SECONDS` — a
//! body that stalls is cut off, not waited on forever.

use std::collections::HashSet;
use std::ops::Deref;
use std::sync::OnceLock;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;
use regex::Regex;
use serde::de::DeserializeOwned;

use crate::http::problem::ApiError;
use crate::validation::FieldError;

/// How much of a body is read and how long it may take to arrive, kept in app data
/// (`MAX_JSON_BODY_BYTES`, `REQUEST_BODY_TIMEOUT_SECONDS`).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max_bytes: usize,
    pub timeout: Duration,
}

impl Default for BodyLimits {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024,
            timeout: Duration::from_secs(10),
        }
    }
}

/// A request body, read whole within the limits: 413 when larger, 408 when it does
/// not arrive in time.
pub struct Body(pub web::Bytes);

impl Body {
    fn read(
        req: &HttpRequest,
        payload: &mut Payload,
    ) -> LocalBoxFuture<'static, Result<Self, ApiError>> {
        let limits = req
            .app_data::<web::Data<BodyLimits>>()
            .map(|l| *l.get_ref())
            .unwrap_or_default();
        let declared_length = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            let limit = limits.max_bytes;
            if declared_length.is_some_and(|len| len > limit) {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            let read = async {
                let mut body =
                    web::BytesMut::with_capacity(declared_length.unwrap_or(0).min(limit));
                while let Some(chunk) = payload.next().await {
                    let chunk = chunk.map_err(|_| {
                        ApiError::BadRequest("The request body could not be read.".to_owned())
                    })?;
                    if body.len() + chunk.len() > limit {
                        return Err(ApiError::PayloadTooLarge { limit });
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(body.freeze())
            };
            match tokio::time::timeout(limits.timeout, read).await {
                Ok(body) => body.map(Body),
                Err(_) => Err(ApiError::RequestTimeout {
                    seconds: limits.timeout.as_secs(),
                }),
            }
        })
    }
}

impl FromRequest for Body {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        Body::read(req, payload)
    }
}

/// A 422 names at most this many fields.
pub const MAX_FIELD_ERRORS: usize = 20;

/// A JSON request body of type `T`.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if !is_json_content_type(req.headers()) {
            return Box::pin(async {
                Err(ApiError::UnsupportedMediaType {
                    expected: "application/json",
                })
            });
        }
        let body = Body::read(req, payload);
        Box::pin(async move { parse(&body.await?.0).map(Json) })
    }
}

/// A JSON body that may be left out (a `DELETE` whose proof may be recent): no body
/// at all is `None`; a body is checked exactly as [`Json`] checks it.
#[derive(Debug)]
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = is_json_content_type(req.headers());
        let body = Body::read(req, payload);
        Box::pin(async move {
            let body = body.await?;
            match (body.0.is_empty(), is_json) {
                (true, _) => Ok(OptionalJson(None)),
                (false, false) => Err(ApiError::UnsupportedMediaType {
                    expected: "application/json",
                }),
                (false, true) => parse(&body.0).map(|value| OptionalJson(Some(value))),
            }
        })
    }
}

fn is_json_content_type(headers: &header::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses a body: syntax errors are 400, type and field errors are 422.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // Fast path: straight into T, noting unknown fields on the way.
    let mut unknown = Vec::new();
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let attempt = deserialize_tracked::<T, _>(&mut deserializer, &mut unknown);
    match attempt {
        // One JSON value and nothing after it but whitespace.
        Ok(value) if unknown.is_empty() => match deserializer.end() {
            Ok(()) => Ok(value),
            Err(_) => Err(ApiError::BadRequest(
                "The request body holds more than one JSON value; send exactly one.".to_owned(),
            )),
        },
        _ => Err(describe_problems::<T>(body)),
    }
}

fn deserialize_tracked<'de, T, D>(
    deserializer: D,
    unknown: &mut Vec<String>,
) -> Result<T, serde_path_to_error::Error<D::Error>>
where
    T: DeserializeOwned,
    D: serde::Deserializer<'de>,
{
    let mut record_unknown = |path: serde_ignored::Path<'_>| unknown.push(field_path(&path));
    serde_path_to_error::deserialize(serde_ignored::Deserializer::new(
        deserializer,
        &mut record_unknown,
    ))
}

/// A field's path as `a.b[2].c`, the form serde_path_to_error uses too.
fn field_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", field_path(parent)),
        Path::Map { parent, key } => match field_path(parent) {
            p if p.is_empty() => key.clone(),
            p => format!("{p}.{key}"),
        },
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => field_path(parent),
    }
}

/// The slow path, only for bad bodies: find every problem, not just the first. Each
/// wrongly typed field is taken out and the body tried again, so one response lists
/// all the fields to fix.
fn describe_problems<T: DeserializeOwned>(body: &[u8]) -> ApiError {
    let mut document: serde_json::Value = match serde_json::from_slice(body) {
        Ok(document) => document,
        Err(e) if e.is_syntax() && e.to_string().starts_with("trailing characters") => {
            return ApiError::BadRequest(
                "The request body holds more than one JSON value; send exactly one.".to_owned(),
            );
        }
        Err(e) if e.is_eof() && body.iter().all(u8::is_ascii_whitespace) => {
            return ApiError::BadRequest(
                "The request body is empty; send a JSON document.".to_owned(),
            );
        }
        Err(e) => {
            return ApiError::BadRequest(format!(
                "The request body is not valid JSON (line {}, column {}).",
                e.line(),
                e.column()
            ));
        }
    };
    let mut errors: Vec<FieldError> = Vec::new();
    let mut named = HashSet::new();
    // Bounded twice: each round removes one field, and a response lists at most
    // MAX_FIELD_ERRORS fields however many a hostile body holds.
    while errors.len() < MAX_FIELD_ERRORS {
        let mut unknown = Vec::new();
        let result = deserialize_tracked::<T, _>(document.clone(), &mut unknown);
        for field in unknown {
            if errors.len() < MAX_FIELD_ERRORS && named.insert(field.clone()) {
                errors.push(FieldError::new(field, "unknown field"));
            }
        }
        let Err(e) = result else { break };
        let error = field_error(&e);
        if !named.insert(error.field.clone()) || errors.len() >= MAX_FIELD_ERRORS {
            break;
        }
        errors.push(error);
        if !remove_at(&mut document, e.path()) {
            break;
        }
    }
    if errors.is_empty() {
        errors.push(FieldError::new("body", "is not valid"));
    }
    ApiError::Validation(errors)
}

/// Removes the object member at `path`; false when the path is not a member.
fn remove_at(document: &mut serde_json::Value, path: &serde_path_to_error::Path) -> bool {
    use serde_path_to_error::Segment;
    let segments: Vec<&Segment> = path.iter().collect();
    let Some((last, parents)) = segments.split_last() else {
        return false;
    };
    let mut node = document;
    for segment in parents {
        node = match (segment, node) {
            (Segment::Map { key }, serde_json::Value::Object(map)) => match map.get_mut(key) {
                Some(child) => child,
                None => return false,
            },
            (Segment::Seq { index }, serde_json::Value::Array(items)) => {
                match items.get_mut(*index) {
                    Some(child) => child,
                    None => return false,
                }
            }
            _ => return false,
        };
    }
    match (last, node) {
        (Segment::Map { key }, serde_json::Value::Object(map)) => map.remove(key).is_some(),
        _ => false,
    }
}

/// Says serde's message in JSON's terms: no Rust type is named (`struct Login`,
/// `u16`, `a sequence`), only what the JSON should have held.
fn in_json_terms(message: &str) -> String {
    static RULES: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    let rules = RULES.get_or_init(|| {
        [
            (r"\bstruct variant `?[\w:]+`?", "a JSON object"),
            (r"\b(struct|tuple struct) `?\w+`?", "a JSON object"),
            (r"\benum `?\w+`?", "one of the allowed values"),
            (r"\b[ui](8|16|32|64|128|size)\b", "a whole number"),
            (r"\bf(32|64)\b", "a number"),
            (r"\b(a )?map\b", "a JSON object"),
            (r"\b(a )?(sequence|tuple)\b", "a JSON array"),
            (r"\bunit( value)?\b", "null"),
            (r"\ba borrowed string\b", "a string"),
            (r"\b(integer|floating point) `([^`]*)`", "the number $2"),
            (r"\bboolean `([^`]*)`", "$1"),
            (r#"\bstring ""#, r#"the string ""#),
        ]
        .into_iter()
        .filter_map(|(pattern, with)| Regex::new(pattern).ok().map(|r| (r, with)))
        .collect()
    });
    rules.iter().fold(message.to_owned(), |text, (rule, with)| {
        rule.replace_all(&text, *with).into_owned()
    })
}

/// Names the field from serde's path and message, and drops serde's position suffix.
fn field_error<E: std::fmt::Display>(e: &serde_path_to_error::Error<E>) -> FieldError {
    let inner = e.inner().to_string();
    let message = in_json_terms(match inner.find(" at line ") {
        Some(i) => &inner[..i],
        None => &inner,
    });
    let parent = match e.path().to_string() {
        p if p == "." => String::new(),
        p => p,
    };
    // "missing field `x`" is reported at the parent object: name the field itself.
    if let Some(name) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        let field = if parent.is_empty() {
            name.to_owned()
        } else {
            format!("{parent}.{name}")
        };
        return FieldError::new(field, "is required");
    }
    let field = if parent.is_empty() {
        "body".to_owned()
    } else {
        parent
    };
    FieldError::new(field, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Sample {
        name: String,
        count: u32,
        #[serde(default)]
        inner: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    struct Inner {
        flag: bool,
    }

    fn fields(err: ApiError) -> Vec<String> {
        match err {
            ApiError::Validation(errors) => {
                let mut fields: Vec<String> = errors.into_iter().map(|e| e.field).collect();
                fields.sort();
                fields
            }
            other => panic!("expected validation error, got {other:?}"),
        }
    }

    #[test]
    fn good_body_parses() {
        let s: Sample = parse(br#"{"name":"a","count":2,"inner":{"flag":true}}"#).expect("parses");
        assert_eq!(s.count, 2);
        assert!(s.inner.is_some_and(|i| i.flag));
        assert_eq!(s.name, "a");
    }

    #[test]
    fn syntax_errors_are_bad_requests() {
        assert!(matches!(
            parse::<Sample>(b"{\"name\":"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(parse::<Sample>(b""), Err(ApiError::BadRequest(_))));
        assert!(matches!(
            parse::<Sample>(b"nope"),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn messages_speak_json_not_rust() {
        for (serde, json) in [
            (
                "invalid type: null, expected struct LoginRequest",
                "invalid type: null, expected a JSON object",
            ),
            (
                "invalid value: integer `2000`, expected u16",
                "invalid value: the number 2000, expected a whole number",
            ),
            (
                "invalid type: sequence, expected a map",
                "invalid type: a JSON array, expected a JSON object",
            ),
            (
                "invalid type: string \"x\", expected f64",
                "invalid type: the string \"x\", expected a number",
            ),
            ("expected enum Effect", "expected one of the allowed values"),
        ] {
            assert_eq!(in_json_terms(serde), json);
        }
    }

    #[test]
    fn one_json_value_and_nothing_after_it() {
        for body in [
            &br#"{"name":"a","count":1} {"x":1}"#[..],
            br#"{"name":"a","count":1} GARBAGE"#,
            br#"{"name":"a","count":1}}"#,
        ] {
            assert!(
                matches!(parse::<Sample>(body), Err(ApiError::BadRequest(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(parse::<Sample>(b"{\"name\":\"a\",\"count\":1}  \n").is_ok());
    }

    #[test]
    fn wrong_and_unknown_fields_are_named() {
        let err = parse::<Sample>(br#"{"name":"a","count":"two","extra":1}"#).expect_err("invalid");
        assert_eq!(fields(err), vec!["count", "extra"]);
        let err = parse::<Sample>(br#"{"name":7,"count":"two","x":1,"y":2}"#).expect_err("invalid");
        assert_eq!(fields(err), vec!["count", "name", "x", "y"]);
        let err = parse::<Sample>(br#"{"name":"a"}"#).expect_err("invalid");
        assert_eq!(fields(err), vec!["count"]);
        let err = parse::<Sample>(br#"{"name":"a","count":1,"inner":{"flag":1,"x":2}}"#)
            .expect_err("invalid");
        assert_eq!(fields(err), vec!["inner.flag", "inner.x"]);
        let err = parse::<Sample>(br#"{"name":"a","count":1,"inner":{}}"#).expect_err("invalid");
        assert_eq!(fields(err), vec!["inner.flag"]);
        let err = parse::<Sample>(br#""text""#).expect_err("invalid");
        assert_eq!(fields(err), vec!["body"]);
    }
}

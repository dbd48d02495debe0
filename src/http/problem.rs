//! Every error leaves as RFC 9457 `application/problem+json`. 4xx bodies say what to fix;
//! 5xx bodies are generic and carry only the request id — the cause goes to the log.
//! `ApiError` is the web layer's error; every domain error becomes one in
//! `routes::errors`.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::DbError;
use crate::limits::Decision;
use crate::validation::FieldError;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// The body of every error response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Quote this when reporting a problem; it finds the log lines of the request.
    pub request_id: Option<String>,
    /// The fields at fault, for validation problems.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl Problem {
    pub fn new(kind: &str, status: StatusCode, title: &str, detail: impl Into<String>) -> Self {
        Self {
            problem_type: format!("urn:portcullis:problem:{kind}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            request_id: None,
            errors: Vec::new(),
        }
    }

    /// A generic problem for a bare status code, used for errors raised outside our
    /// handlers (the router, CORS, actix extractors). Never includes their text.
    pub fn for_status(status: StatusCode) -> Self {
        let (kind, title, detail) = match status.as_u16() {
            400 => (
                "bad-request",
                "Bad request",
                "The request could not be understood.",
            ),
            401 => (
                "unauthorized",
                "Unauthorized",
                "Authentication is required.",
            ),
            403 => ("forbidden", "Forbidden", "This request is not allowed."),
            404 => (
                "not-found",
                "Not found",
                "No resource exists at this address.",
            ),
            405 => (
                "method-not-allowed",
                "Method not allowed",
                "This resource does not support that method.",
            ),
            406 => (
                "not-acceptable",
                "Not acceptable",
                "No acceptable representation is available.",
            ),
            408 => (
                "request-timeout",
                "Request timeout",
                "The request took too long to arrive.",
            ),
            413 => (
                "payload-too-large",
                "Payload too large",
                "The request body is larger than allowed.",
            ),
            414 => (
                "uri-too-long",
                "URI too long",
                "The request address is too long.",
            ),
            415 => (
                "unsupported-media-type",
                "Unsupported media type",
                "The request body has an unsupported content type.",
            ),
            422 => (
                "validation",
                "Validation failed",
                "The request body is not valid.",
            ),
            429 => (
                "rate-limited",
                "Too many requests",
                "Slow down and retry later.",
            ),
            503 => (
                "unavailable",
                "Service unavailable",
                "The service is temporarily unavailable. Please try again later.",
            ),
            s if s >= 500 => (
                "internal",
                "Internal server error",
                "An unexpected error occurred. Please try again later.",
            ),
            _ => (
                "client-error",
                "Request error",
                "The request cannot be processed.",
            ),
        };
        Self::new(kind, status, title, detail)
    }

    pub fn internal() -> Self {
        Self::for_status(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn with_request_id(mut self, request_id: &str) -> Self {
        self.request_id = Some(request_id.to_owned());
        self
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// Serializes the body; a serialization failure (impossible for these types) still
    /// yields a valid problem document.
    pub fn to_body(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            format!(
                r#"{{"type":"urn:portcullis:problem:internal","title":"Internal server error","status":{},"detail":"An unexpected error occurred.","request_id":null}}"#,
                self.status
            )
        })
    }

    pub fn into_response(self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)))
            .body(self.to_body())
    }
}

/// Errors shared by every API area. Area-specific enums convert into this.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("malformed request: {0}")]
    BadRequest(String),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("unsupported media type")]
    UnsupportedMediaType { expected: &'static str },
    #[error("payload too large")]
    PayloadTooLarge { limit: usize },
    #[error("request body timed out")]
    RequestTimeout { seconds: u64 },
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("not found")]
    NotFound,
    #[error("rate limited")]
    RateLimited(Decision),
    #[error("service unavailable: {reason}")]
    Unavailable {
        /// Shown to the client: must stay generic.
        reason: &'static str,
        retry_after_seconds: Option<u64>,
    },
    /// The policy engine could not evaluate an applicable policy: denied, with the
    /// one generic text (the cause is audited and logged).
    #[error("access control evaluation failed")]
    AccessEvaluationFailed,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The exact text of a failed access-control evaluation.
pub const ACCESS_EVALUATION_FAILED: &str =
    "Access control evaluation failed. Please try again later.";

impl ApiError {
    pub fn problem(&self) -> Problem {
        match self {
            ApiError::BadRequest(detail) => Problem::new(
                "bad-request",
                StatusCode::BAD_REQUEST,
                "Bad request",
                detail.clone(),
            ),
            ApiError::Validation(errors) => {
                let detail = match errors.as_slice() {
                    [only] => format!("The field `{}` {}.", only.field, only.message),
                    _ => format!("{} fields need attention; see `errors`.", errors.len()),
                };
                let mut problem = Problem::new(
                    "validation",
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Validation failed",
                    detail,
                );
                problem.errors = errors.clone();
                problem
            }
            ApiError::UnsupportedMediaType { expected } => Problem::new(
                "unsupported-media-type",
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported media type",
                format!("Send the body as {expected}."),
            ),
            ApiError::RequestTimeout { seconds } => Problem::new(
                "request-timeout",
                StatusCode::REQUEST_TIMEOUT,
                "Request timeout",
                format!("The request body did not arrive within {seconds} seconds."),
            ),
            ApiError::PayloadTooLarge { limit } => Problem::new(
                "payload-too-large",
                StatusCode::PAYLOAD_TOO_LARGE,
                "Payload too large",
                format!("The request body exceeds the limit of {limit} bytes."),
            ),
            ApiError::Unauthorized(detail) => Problem::new(
                "unauthorized",
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                *detail,
            ),
            ApiError::Forbidden(detail) => {
                Problem::new("forbidden", StatusCode::FORBIDDEN, "Forbidden", *detail)
            }
            ApiError::Conflict(detail) => {
                Problem::new("conflict", StatusCode::CONFLICT, "Conflict", *detail)
            }
            ApiError::NotFound => Problem::for_status(StatusCode::NOT_FOUND),
            ApiError::RateLimited(decision) => Problem::new(
                "rate-limited",
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests",
                format!(
                    "Rate limit reached; retry in {} second(s).",
                    decision.retry_after_seconds
                ),
            ),
            ApiError::Unavailable { reason, .. } => Problem::new(
                "unavailable",
                StatusCode::SERVICE_UNAVAILABLE,
                "Service unavailable",
                *reason,
            ),
            ApiError::AccessEvaluationFailed => Problem::new(
                "access-evaluation-failed",
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal server error",
                ACCESS_EVALUATION_FAILED,
            ),
            ApiError::Unexpected(cause) if storage_outage(cause) => {
                Problem::for_status(StatusCode::SERVICE_UNAVAILABLE)
            }
            ApiError::Unexpected(_) => Problem::internal(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.problem().status_code()
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Unexpected(cause) = self {
            // The only place the cause of a 500 is written: the log, within the
            // request's span (so it carries the request id).
            tracing::error!(error = ?cause, "unexpected error");
        }
        let mut response = self.problem().into_response();
        if let ApiError::Unexpected(cause) = self
            && storage_outage(cause)
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if let ApiError::RateLimited(decision) = self {
            crate::http::rate_limit::write_headers(response.headers_mut(), decision);
        }
        if let ApiError::Unauthorized(_) = self {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let ApiError::Unavailable {
            retry_after_seconds: Some(seconds),
            ..
        } = self
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// Whether an unexpected failure is the storage being unavailable (a failing or
/// full disk, a deleted database, a busy writer): the answer is 503, to retry later,
/// not a 500.
fn storage_outage(cause: &anyhow::Error) -> bool {
    cause
        .chain()
        .any(|c| c.downcast_ref::<DbError>().is_some_and(DbError::is_outage))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unexpected_errors_hide_their_cause() {
        let err = ApiError::Unexpected(anyhow::anyhow!("no such table: users at /var/lib/x.db"));
        let body = err.problem().to_body();
        assert!(!body.contains("users"));
        assert!(!body.contains("/var/lib"));
        assert!(body.contains("\"status\":500"));
    }

    #[test]
    fn validation_lists_fields() {
        let err = ApiError::Validation(vec![
            FieldError::new("name", "missing"),
            FieldError::new("extra", "unknown field"),
        ]);
        let problem = err.problem();
        assert_eq!(problem.status, 422);
        assert!(problem.detail.contains("2 fields"));
        assert_eq!(problem.errors.len(), 2);
    }
}

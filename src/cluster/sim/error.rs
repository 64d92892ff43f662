//! Kubernetes `Status` errors as the real API server returns them.

use serde_json::{json, Value};

/// An API error rendered as a `Status` body with the matching HTTP code.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    /// HTTP status code.
    pub(crate) code: u16,
    /// `Status.reason` (NotFound, Conflict, ...).
    pub(crate) reason: &'static str,
    /// `Status.message`.
    pub(crate) message: String,
    /// `Status.details`.
    pub(crate) details: Option<Value>,
    /// `Retry-After` seconds (429).
    pub(crate) retry_after: Option<u32>,
}

impl ApiError {
    pub(crate) fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }
    /// 404 `<resource> "<name>" not found`.
    pub(crate) fn not_found(qualified: &str, name: &str) -> Self {
        Self::new(404, "NotFound", format!("{qualified} \"{name}\" not found"))
            .about(qualified, name)
    }
    /// 404 for a path that names no resource.
    pub(crate) fn no_resource() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }
    /// 409 AlreadyExists.
    pub(crate) fn already_exists(qualified: &str, name: &str) -> Self {
        let message = format!("{qualified} \"{name}\" already exists");
        Self::new(409, "AlreadyExists", message).about(qualified, name)
    }
    /// 409 Conflict on a stale resourceVersion.
    pub(crate) fn conflict(qualified: &str, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {qualified} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"),
        )
        .about(qualified, name)
    }
    /// `Status.details` naming the object.
    fn about(mut self, qualified: &str, name: &str) -> Self {
        let (kind, group) = qualified.split_once('.').unwrap_or((qualified, ""));
        self.details = Some(json!({"name": name, "group": group, "kind": kind}));
        self
    }
    /// 400 BadRequest.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }
    /// 422 Invalid.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(422, "Invalid", message)
    }
    /// 415 UnsupportedMediaType.
    pub(crate) fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(415, "UnsupportedMediaType", message)
    }
    /// 405 MethodNotAllowed.
    pub(crate) fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }
    /// 500 InternalError.
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }
    /// The `Status` JSON body.
    pub(crate) fn to_status(&self) -> Value {
        let mut v = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            v["details"] = d.clone();
        }
        v
    }
}

//! Request bodies read within the limit, JSON in and out.

use axum::body::Body;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};

use super::error::ApiError;

/// The body, whole, or 413 once it passes `limit` bytes (at once when `Content-Length` says
/// so). A body that arrives in one piece is not copied.
pub(crate) async fn read(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::too_large(limit));
    }
    let mut stream = body.into_data_stream();
    let mut first: Option<Bytes> = None;
    let mut more: Option<BytesMut> = None;
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("the request body could not be read: {e}")))?;
        total = total.saturating_add(chunk.len());
        if total > limit {
            return Err(ApiError::too_large(limit));
        }
        match (&mut first, &mut more) {
            (None, _) => first = Some(chunk),
            (Some(head), None) => {
                let mut buf = BytesMut::with_capacity(declared.map_or(head.len() + chunk.len(), |n| n as usize));
                buf.extend_from_slice(head);
                buf.extend_from_slice(&chunk);
                more = Some(buf);
            }
            (Some(_), Some(buf)) => buf.extend_from_slice(&chunk),
        }
    }
    Ok(match (more, first) {
        (Some(buf), _) => buf.freeze(),
        (None, Some(one)) => one,
        (None, None) => Bytes::new(),
    })
}

/// `bytes` as a `T`, or 400 naming the field at fault (found again, on the error path only).
pub(crate) fn parse<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| invalid_json::<T>(bytes, &e))
}

/// The 400 of a body that did not parse as `T`: the path of the field at fault, when the
/// body is JSON at all.
pub(crate) fn invalid_json<'a, T: Deserialize<'a>>(bytes: &'a [u8], error: &serde_json::Error) -> ApiError {
    if error.is_syntax() || error.is_eof() || bytes.is_empty() {
        return ApiError::bad_request(format!("the request body is not valid JSON: {error}"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Err(e) => {
            let path = e.path().to_string();
            let message = format!("invalid request body: {}", e.inner());
            if path.is_empty() || path == "." {
                ApiError::bad_request(message)
            } else {
                ApiError::invalid_param(path, message)
            }
        }
        Ok(_) => ApiError::bad_request(format!("invalid request body: {error}")),
    }
}

/// A JSON response of `bytes`.
pub(crate) fn json_bytes(status: StatusCode, bytes: impl Into<Body>) -> Response {
    let mut response = Response::new(bytes.into());
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `value` as a JSON response.
pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => json_bytes(status, bytes),
        Err(e) => axum::response::IntoResponse::into_response(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            None,
            format!("the response could not be written: {e}"),
        )),
    }
}

/// An event stream response of `body`.
pub(crate) fn event_stream(body: Body) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies that buffer (nginx) pass the stream through as it comes.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

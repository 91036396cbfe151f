//! Strict request extractors. actix's own `Json`/`Query` report errors as plain text without
//! naming the field; these decode with `serde_path_to_error` so a wrong type or an unknown
//! enum value answers `400 validation_failed` with the offending `field`, through the same
//! envelope as every other error.
//!
//! actix-web resolves a handler's extractors concurrently and answers with the first error,
//! so a body error would beat a credential check still waiting on the database: an
//! unauthenticated caller would learn how its body was judged. These extractors therefore never
//! fail; they carry their outcome, and handlers open it (`let body = body?;`) after the
//! authentication extractor has succeeded.

use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;

use actix_web::dev::Payload;
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The largest JSON body accepted (64 KiB); larger bodies get `413 payload_too_large`.
pub const MAX_JSON_BODY: usize = 64 * 1024;

/// A JSON request body decoded strictly: an object, nothing after it, no unknown or duplicate
/// keys. Holds the decoding outcome; see the module docs for why it is not an extractor error.
pub struct Json<T>(pub Result<T, ApiError>);

fn decode_error(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    let message = inner.to_string();
    match inner.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof | serde_json::error::Category::Io => {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", format!("the body is not valid JSON: {message}"))
        }
        serde_json::error::Category::Data => {
            // serde names unknown and missing fields in the message, not in the path.
            let field = match path.as_str() {
                "." | "?" | "" => field_named_in(&message).unwrap_or_default(),
                _ => path,
            };
            ApiError::invalid(&field, message)
        }
    }
}

/// serde names unknown, missing and duplicate fields in its message, not in the path.
fn field_named_in(message: &str) -> Option<String> {
    unknown_field_name(message).or_else(|| missing_field_name(message)).or_else(|| duplicate_field_name(message))
}

fn duplicate_field_name(message: &str) -> Option<String> {
    let rest = message.strip_prefix("duplicate field `")?;
    Some(rest.split('`').next()?.to_owned())
}

fn missing_field_name(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_owned())
}

fn unknown_field_name(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_owned())
}

fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", "a JSON body is required"));
    }
    // serde would read a struct from a positional array; request bodies are objects.
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "validation_failed", "the body must be a JSON object, not an array"));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(decode_error)?;
    de.end().map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let decoded = read_json(req, payload, &["application/json"], "send the body as Content-Type: application/json");
        Box::pin(async move { Ok(Json(decoded.await)) })
    }
}

/// A JSON body that may also come as `text/plain`: what `navigator.sendBeacon` sends without a
/// CORS preflight. Only the anonymous browser-tracking endpoints take it. Decoded as [`Json`].
pub struct BeaconJson<T>(pub Result<T, ApiError>);

impl<T: DeserializeOwned + 'static> FromRequest for BeaconJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let decoded = read_json(req, payload, &["application/json", "text/plain"], "send the body as application/json or text/plain");
        Box::pin(async move { Ok(BeaconJson(decoded.await)) })
    }
}

/// Reads the body (at most [`MAX_JSON_BODY`]) and decodes it strictly when its media type is one
/// of `accepted`.
fn read_json<T: DeserializeOwned + 'static>(
    req: &HttpRequest,
    payload: &mut Payload,
    accepted: &'static [&'static str],
    hint: &'static str,
) -> impl Future<Output = Result<T, ApiError>> {
    let body = read_body(req, payload, accepted, hint);
    async move { decode_body(&body.await?) }
}

/// Reads the body as it was sent: at most [`MAX_JSON_BODY`] bytes (`413` otherwise, also when
/// `Content-Length` announces more), and a non-empty body only when its media type is one of
/// `accepted` (`415`).
fn read_body(
    req: &HttpRequest,
    payload: &mut Payload,
    accepted: &'static [&'static str],
    hint: &'static str,
) -> impl Future<Output = Result<web::Bytes, ApiError>> {
    let content_type_ok = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .is_some_and(|media| accepted.contains(&media.as_str()));
    let declared_len = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    let mut payload = payload.take();
    async move {
        if declared_len.is_some_and(|n| n > MAX_JSON_BODY) {
            return Err(too_large());
        }
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", "the request body could not be read"))?;
            if body.len() + chunk.len() > MAX_JSON_BODY {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        if !body.is_empty() && !content_type_ok {
            return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", hint));
        }
        Ok(body.freeze())
    }
}

/// A JSON request body kept as the exact bytes sent, for bodies a signature covers
/// (`POST /api/tracking/s2s`): read with [`Json`]'s limits and media-type check, then decoded
/// with [`RawJson::decode`], as strictly as [`Json`], once the signature is verified. Holds the
/// reading outcome like [`Json`].
pub struct RawJson(pub Result<web::Bytes, ApiError>);

impl RawJson {
    /// Decodes `body` as [`Json`] would.
    ///
    /// # Errors
    /// `400 invalid_json` or `400 validation_failed` naming the field.
    pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
        decode_body(body)
    }
}

impl FromRequest for RawJson {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_body(req, payload, &["application/json"], "send the body as Content-Type: application/json");
        Box::pin(async move { Ok(RawJson(body.await)) })
    }
}

fn too_large() -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", format!("the body exceeds {MAX_JSON_BODY} bytes"))
}

/// An optional JSON body: absent or empty is `None` (for `{}`-or-nothing endpoints such as
/// approve), otherwise decoded as [`Json`]. Holds the outcome like [`Json`].
pub struct OptionalJson<T>(pub Result<Option<T>, ApiError>);

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let empty = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() == "0")
            || (req.headers().get(header::CONTENT_LENGTH).is_none() && req.headers().get(header::TRANSFER_ENCODING).is_none());
        if empty {
            return Box::pin(async { Ok(OptionalJson(Ok(None))) });
        }
        let inner = Json::<T>::from_request(req, payload);
        Box::pin(async move {
            let Json(decoded) = inner.await?;
            Ok(OptionalJson(decoded.map(Some)))
        })
    }
}

/// A query string decoded strictly (unknown parameters are refused so a typo such as
/// `?stauts=` is not silently ignored). Holds the outcome like [`Json`].
pub struct Query<T>(pub Result<T, ApiError>);

impl<T: DeserializeOwned + 'static> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(req.query_string()));
        let decoded = serde_path_to_error::deserialize(de).map_err(|err| {
            let path = err.path().to_string();
            let message = err.into_inner().to_string();
            let field = match path.as_str() {
                "." | "?" | "" => field_named_in(&message).unwrap_or_default(),
                _ => path,
            };
            ApiError::invalid(&field, message)
        });
        std::future::ready(Ok(Query(decoded)))
    }
}

fn form_urlencoded_parse(query: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(query.as_bytes())
}

/// Parses a path segment as an id, answering `400 validation_failed` naming `field`.
///
/// # Errors
/// When the segment is not a UUID.
pub fn parse_id<T: FromStr>(raw: &str, field: &str) -> Result<T, ApiError> {
    raw.parse::<T>().map_err(|_| ApiError::invalid(field, format!("{field} must be a UUID")))
}

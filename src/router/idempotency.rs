//! The HTTP side of `Idempotency-Key`: the header parameter every write takes, the rendering
//! of a result into the answer that is stored, and the answer type that sends a stored
//! answer as it is (with `Idempotent-Replayed: true` on a replay).
//!
//! The rules live in `service::idempotency`; the router only reads the header, hashes the
//! request and says how a result looks on the wire.

use futures_util::FutureExt as _;
use poem::{
    Body, IntoResponse, Request, RequestBody, Response,
    http::{HeaderName, HeaderValue, StatusCode},
};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions,
    registry::{MetaHeader, MetaParamIn, MetaResponses, MetaSchema, MetaSchemaRef, Registry},
};

use crate::{
    error::ApiError,
    service::{
        Caller,
        idempotency::{
            ANONYMOUS, Keyed, MAX_KEY_LENGTH, Render, Rendered, RequestKey, Written,
            is_replayed_header, is_valid_key, request_hash,
        },
    },
};

/// Name of the response header that marks a replayed answer.
pub const REPLAYED: &str = "Idempotent-Replayed";

/// The `Idempotency-Key` of a write, with the hash of the request it came with; `None`
/// without the header. Declared before the body parameter: it reads the body (and puts it
/// back) to hash it.
pub struct IdempotencyKey(Option<KeyedRequest>);

struct KeyedRequest {
    key: String,
    request_hash: String,
}

impl IdempotencyKey {
    /// The key in the caller's scope, for a write answered by `render`.
    pub fn of<'r, T>(&self, caller: &Caller, render: &'r Render<T>) -> Option<Keyed<'r, T>> {
        self.keyed(caller.id.to_string(), render, false)
    }

    /// The key in the caller's scope, for an answer that carries a secret: it is stored
    /// sealed.
    pub fn of_sealed<'r, T>(&self, caller: &Caller, render: &'r Render<T>) -> Option<Keyed<'r, T>> {
        self.keyed(caller.id.to_string(), render, true)
    }

    /// The key in the anonymous scope (requests without a bearer token).
    pub fn anonymous<'r, T>(&self, render: &'r Render<T>) -> Option<Keyed<'r, T>> {
        self.keyed(ANONYMOUS.to_owned(), render, false)
    }

    /// The key in the anonymous scope, for an answer that carries credentials: it is
    /// stored sealed.
    pub fn anonymous_sealed<'r, T>(&self, render: &'r Render<T>) -> Option<Keyed<'r, T>> {
        self.keyed(ANONYMOUS.to_owned(), render, true)
    }

    fn keyed<'r, T>(
        &self,
        scope: String,
        render: &'r Render<T>,
        sealed: bool,
    ) -> Option<Keyed<'r, T>> {
        self.0.as_ref().map(|k| Keyed {
            key: RequestKey {
                scope,
                key: k.key.clone(),
                request_hash: k.request_hash.clone(),
            },
            render,
            sealed,
        })
    }
}

fn bad_key() -> poem::Error {
    ApiError::bad_request(format!(
        "Idempotency-Key must be 1 to {MAX_KEY_LENGTH} visible ASCII characters, sent once"
    ))
    .into()
}

impl<'a> ApiExtractor<'a> for IdempotencyKey {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::Parameter];
    const PARAM_IS_REQUIRED: bool = false;

    type ParamType = ();
    type ParamRawType = ();

    fn param_in() -> Option<MetaParamIn> {
        Some(MetaParamIn::Header)
    }

    fn param_schema_ref() -> Option<MetaSchemaRef> {
        Some(MetaSchemaRef::Inline(Box::new(MetaSchema {
            min_length: Some(1),
            max_length: Some(MAX_KEY_LENGTH),
            pattern: Some("^[!-~]+$".to_owned()),
            ..MetaSchema::new("string")
        })))
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let mut values = request.headers().get_all(param_opts.name).iter();
        let Some(value) = values.next() else {
            return Ok(Self(None));
        };
        if values.next().is_some() {
            return Err(bad_key());
        }
        let key = value
            .to_str()
            .ok()
            .filter(|k| is_valid_key(k))
            .ok_or_else(bad_key)?
            .to_owned();
        // The body was buffered by the body limit: reading it here and putting the bytes
        // back costs a copy, and only for keyed requests.
        let bytes = match body.take() {
            Ok(taken) => taken.into_bytes().await?,
            Err(_) => Default::default(),
        };
        *body = RequestBody::new(Body::from(bytes.clone()));
        let uri = request.original_uri();
        let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
        Ok(Self(Some(KeyedRequest {
            key,
            request_hash: request_hash(request.method().as_str(), path, &bytes),
        })))
    }
}

/// Renders an answer as it goes on the wire: its status, the headers a replay repeats, and
/// the exact body bytes.
pub fn render(answer: impl IntoResponse) -> Rendered {
    let response = answer.into_response();
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter(|(name, _)| is_replayed_header(name.as_str()))
        .filter_map(|(name, value)| Some((wire_name(name), value.to_str().ok()?.to_owned())))
        .collect();
    // Our answers are built from bytes in memory: their bodies are ready at once.
    let body = response
        .into_body()
        .into_bytes()
        .now_or_never()
        .and_then(Result::ok)
        .map(|b| b.to_vec())
        .unwrap_or_default();
    Rendered {
        status,
        headers,
        body,
    }
}

/// A header name as HTTP documents write it (`Content-Type`, `ETag`).
fn wire_name(name: &HeaderName) -> String {
    match name.as_str() {
        "etag" => "ETag".to_owned(),
        "ratelimit-limit" => "RateLimit-Limit".to_owned(),
        "ratelimit-remaining" => "RateLimit-Remaining".to_owned(),
        "ratelimit-reset" => "RateLimit-Reset".to_owned(),
        other => other
            .split('-')
            .map(|part| {
                let mut chars = part.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            })
            .collect::<Vec<_>>()
            .join("-"),
    }
}

/// The answer of a write that honours `Idempotency-Key`: `R` as usual, or the stored answer
/// sent as it is. The spec documents `R`'s responses plus the `Idempotent-Replayed` header.
pub enum Idempotent<R> {
    /// Written without a key.
    Plain(R),
    /// The answer just stored for the key.
    Stored(Rendered),
    /// The answer an earlier request with the same key stored.
    Replayed(Rendered),
}

impl<R> Idempotent<R> {
    /// The answer of a service's write.
    pub fn from_written<T>(written: Written<T>) -> Self
    where
        R: From<T>,
    {
        match written {
            Written::Fresh {
                value,
                stored: None,
            } => Idempotent::Plain(R::from(value)),
            Written::Fresh {
                stored: Some(answer),
                ..
            } => Idempotent::Stored(answer),
            Written::Replayed(answer) => Idempotent::Replayed(answer),
        }
    }
}

fn raw(answer: Rendered) -> Response {
    let mut response = Response::builder()
        .status(StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK))
        .body(answer.body);
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

impl<R: IntoResponse> IntoResponse for Idempotent<R> {
    fn into_response(self) -> Response {
        match self {
            Idempotent::Plain(answer) => answer.into_response(),
            Idempotent::Stored(answer) => raw(answer),
            Idempotent::Replayed(answer) => {
                let mut response = raw(answer);
                response.headers_mut().insert(
                    HeaderName::from_static("idempotent-replayed"),
                    HeaderValue::from_static("true"),
                );
                response
            }
        }
    }
}

impl<R: ApiResponse> ApiResponse for Idempotent<R> {
    fn meta() -> MetaResponses {
        let mut meta = R::meta();
        for response in &mut meta.responses {
            response.headers.push(MetaHeader {
                name: REPLAYED.to_owned(),
                description: Some(
                    "`true` when this is the stored answer to an earlier request with the same \
                     `Idempotency-Key`, method, path and body; absent otherwise."
                        .to_owned(),
                ),
                required: false,
                deprecated: false,
                schema: MetaSchemaRef::Inline(Box::new(MetaSchema {
                    enum_items: vec!["true".into()],
                    ..MetaSchema::new("string")
                })),
            });
        }
        meta
    }

    fn register(registry: &mut Registry) {
        R::register(registry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replayed_headers_are_named_as_http_writes_them() {
        for (name, wire) in [
            ("content-type", "Content-Type"),
            ("location", "Location"),
            ("etag", "ETag"),
            ("ratelimit-remaining", "RateLimit-Remaining"),
        ] {
            assert_eq!(wire_name(&HeaderName::from_static(name)), wire);
        }
    }
}

//! Request bodies: JSON parsed by serde (strict types, no coercion of `97` into `"97"`) and
//! JSON Patch documents. Malformed bodies become 400 problems naming the offending field.

use poem::{FromRequest, Request, RequestBody};
use poem_openapi::{
    Enum, Object, impl_apirequest_for_payload,
    payload::{ParsePayload, Payload},
    registry::{MetaSchemaRef, Registry},
    types::Type,
};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body of type `T`.
pub struct JsonBody<T>(pub T);

impl<T: Type + Send> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(content_type: &str) -> bool {
        matches!(content_type.parse::<mime::Mime>(), Ok(m)
            if m.type_() == mime::APPLICATION && m.subtype() == mime::JSON)
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Type + DeserializeOwned + Send> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let data = Vec::<u8>::from_request(request, body).await?;
        parse_json(&data).map(JsonBody)
    }
}

impl_apirequest_for_payload!(JsonBody<T>, T: Type + DeserializeOwned + Send);

/// Parses a JSON body, or a 400 problem that says where it went wrong.
fn parse_json<T: DeserializeOwned>(data: &[u8]) -> poem::Result<T> {
    if data.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "the request body is empty; a JSON document is required",
        )
        .into());
    }
    let de = &mut serde_json::Deserializer::from_slice(data);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let detail = if path.is_empty() || path == "." || path == "?" {
            format!("the request body is not valid: {}", e.inner())
        } else {
            format!("the request body is not valid at `{path}`: {}", e.inner())
        };
        ApiError::bad_request(detail).into()
    })
}

/// Media type of JSON Patch documents (RFC 6902).
pub const JSON_PATCH: &str = "application/json-patch+json";

/// A JSON Patch document (RFC 6902).
pub struct JsonPatch(pub json_patch::Patch);

/// The operation of a JSON Patch step.
#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename_all = "lowercase")]
pub enum PatchOp {
    /// Add a member or array element.
    Add,
    /// Remove the value at `path`.
    Remove,
    /// Replace the value at `path`.
    Replace,
    /// Move the value at `from` to `path`.
    Move,
    /// Copy the value at `from` to `path`.
    Copy,
    /// Check that `path` holds `value`; the whole patch fails otherwise.
    Test,
}

/// One step of a JSON Patch document (RFC 6902); documentation of the wire format.
#[derive(Debug, Clone, Object)]
#[oai(rename = "JsonPatchOperation")]
pub struct PatchOperationDoc {
    /// The operation.
    pub op: PatchOp,
    /// JSON Pointer (RFC 6901) to the target member, such as `/title`.
    pub path: String,
    /// The value (`add`, `replace`, `test`).
    pub value: Option<serde_json::Value>,
    /// JSON Pointer to the source (`move`, `copy`).
    pub from: Option<String>,
}

impl Payload for JsonPatch {
    const CONTENT_TYPE: &'static str = JSON_PATCH;

    fn check_content_type(content_type: &str) -> bool {
        // Parameters such as `; charset=utf-8` are allowed: JSON is UTF-8 anyway.
        matches!(content_type.parse::<mime::Mime>(), Ok(m) if m.essence_str() == JSON_PATCH)
    }

    fn schema_ref() -> MetaSchemaRef {
        Vec::<PatchOperationDoc>::schema_ref()
    }

    fn register(registry: &mut Registry) {
        Vec::<PatchOperationDoc>::register(registry);
    }
}

impl ParsePayload for JsonPatch {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let data = Vec::<u8>::from_request(request, body).await?;
        parse_json(&data).map(JsonPatch)
    }
}

impl_apirequest_for_payload!(JsonPatch,);

/// A JSON body that may be left out entirely (no body, no `Content-Type`): then `T::default()`.
pub struct OptionalJsonBody<T>(pub T);

impl<'a, T: Type + DeserializeOwned + Default + Send> poem_openapi::ApiExtractor<'a>
    for OptionalJsonBody<T>
{
    const TYPES: &'static [poem_openapi::ApiExtractorType] =
        &[poem_openapi::ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<poem_openapi::registry::MetaRequest> {
        Some(poem_openapi::registry::MetaRequest {
            description: None,
            content: vec![poem_openapi::registry::MetaMediaType {
                content_type: "application/json",
                schema: T::schema_ref(),
            }],
            required: false,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: poem_openapi::ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let data = <Vec<u8> as FromRequest>::from_request(request, body).await?;
        if data.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(T::default()));
        }
        match request.content_type() {
            Some(ct) if JsonBody::<T>::check_content_type(ct) => {
                parse_json(&data).map(OptionalJsonBody)
            }
            Some(ct) => Err(poem_openapi::error::ContentTypeError::NotSupported {
                content_type: ct.to_owned(),
            }
            .into()),
            None => Err(poem_openapi::error::ContentTypeError::ExpectContentType.into()),
        }
    }
}

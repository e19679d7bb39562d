//! Request bodies: JSON parsed by serde (strict types, no coercion of `97` into `"97"`) and
//! JSON Patch documents. Malformed bodies become 400 problems naming the offending field.

use poem::{FromRequest, IntoResponse, Request, RequestBody, Response};
use poem_openapi::{
    ApiResponse, Object, Union, impl_apirequest_for_payload,
    payload::{ParsePayload, Payload},
    registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry},
    types::{ToJSON, Type},
};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body of type `T`: parsed from requests, written in responses as plain
/// `application/json` (poem-openapi's own `Json` says `application/json; charset=utf-8`, a
/// media type that generated clients do not recognise as JSON).
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

impl<T: ToJSON> IntoResponse for JsonBody<T> {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.0.to_json()).unwrap_or_default();
        Response::builder()
            .content_type(<Self as Payload>::CONTENT_TYPE)
            .body(body)
    }
}

impl<T: ToJSON + Send> ApiResponse for JsonBody<T> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "OK.",
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: <Self as Payload>::CONTENT_TYPE,
                    schema: T::schema_ref(),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

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

/// `add`: insert `value` at `path` (a member is created or replaced).
#[derive(Debug, Clone, Object)]
#[oai(rename = "JsonPatchAdd")]
pub struct PatchAdd {
    /// JSON Pointer (RFC 6901) to the target, such as `/title`; never `""` (the whole
    /// resource cannot be replaced).
    #[oai(validator(pattern = r"^(/([^/~]|~[01])*)+$"))]
    pub path: String,
    /// The value to add.
    pub value: serde_json::Value,
}

/// `remove`: delete the value at `path`.
#[derive(Debug, Clone, Object)]
#[oai(rename = "JsonPatchRemove")]
pub struct PatchRemove {
    /// JSON Pointer to the value to remove.
    #[oai(validator(pattern = r"^(/([^/~]|~[01])*)+$"))]
    pub path: String,
}

/// `replace`: replace the existing value at `path`.
#[derive(Debug, Clone, Object)]
#[oai(rename = "JsonPatchReplace")]
pub struct PatchReplace {
    /// JSON Pointer to the value to replace.
    #[oai(validator(pattern = r"^(/([^/~]|~[01])*)+$"))]
    pub path: String,
    /// The new value.
    pub value: serde_json::Value,
}

/// `move`: remove the value at `from` and add it at `path`.
#[derive(Debug, Clone, Object)]
#[oai(rename = "JsonPatchMove")]
pub struct PatchMove {
    /// JSON Pointer to the source.
    #[oai(validator(pattern = r"^(/([^/~]|~[01])*)+$"))]
    pub from: String,
    /// JSON Pointer to the target.
    #[oai(validator(pattern = r"^(/([^/~]|~[01])*)+$"))]
    pub path: String,
}

/// `copy`: add a copy of the value at `from` at `path`.
#[derive(Debug, Clone, Object)]
#[oai(rename = "JsonPatchCopy")]
pub struct PatchCopy {
    /// JSON Pointer to the source.
    #[oai(validator(pattern = r"^(/([^/~]|~[01])*)*$"))]
    pub from: String,
    /// JSON Pointer to the target.
    #[oai(validator(pattern = r"^(/([^/~]|~[01])*)+$"))]
    pub path: String,
}

/// `test`: the whole patch fails unless the value at `path` equals `value`.
#[derive(Debug, Clone, Object)]
#[oai(rename = "JsonPatchTest")]
pub struct PatchTest {
    /// JSON Pointer to the value to compare.
    #[oai(validator(pattern = r"^(/([^/~]|~[01])*)*$"))]
    pub path: String,
    /// The expected value.
    pub value: serde_json::Value,
}

/// One step of a JSON Patch document (RFC 6902), told apart by `op`; documentation of the
/// wire format (the `json-patch` crate parses and applies it).
#[derive(Debug, Clone, Union)]
#[oai(discriminator_name = "op", one_of, rename = "JsonPatchOperation")]
pub enum PatchOperationDoc {
    /// Add.
    #[oai(mapping = "add")]
    Add(PatchAdd),
    /// Remove.
    #[oai(mapping = "remove")]
    Remove(PatchRemove),
    /// Replace.
    #[oai(mapping = "replace")]
    Replace(PatchReplace),
    /// Move.
    #[oai(mapping = "move")]
    Move(PatchMove),
    /// Copy.
    #[oai(mapping = "copy")]
    Copy(PatchCopy),
    /// Test.
    #[oai(mapping = "test")]
    Test(PatchTest),
}

impl Payload for JsonPatch {
    const CONTENT_TYPE: &'static str = JSON_PATCH;

    fn check_content_type(content_type: &str) -> bool {
        // Parameters such as `; charset=utf-8` are allowed: JSON is UTF-8 anyway.
        matches!(content_type.parse::<mime::Mime>(), Ok(m) if m.essence_str() == JSON_PATCH)
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            items: Some(Box::new(PatchOperationDoc::schema_ref())),
            max_items: Some(crate::service::patch::MAX_OPERATIONS),
            ..MetaSchema::new("array")
        }))
    }

    fn register(registry: &mut Registry) {
        PatchOperationDoc::register(registry);
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

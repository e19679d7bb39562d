//! Request bodies: JSON parsed by serde (strict types, no coercion of `97` into `"97"`) and
//! JSON Patch documents. Malformed bodies become 400 problems naming the offending field.

use poem::{FromRequest, IntoResponse, Request, RequestBody, Response};
use poem_openapi::{
    ApiResponse, impl_apirequest_for_payload,
    payload::{ParsePayload, Payload},
    registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry},
    types::{ToJSON, Type},
};
use std::marker::PhantomData;

use serde::de::DeserializeOwned;

use crate::{
    error::ApiError,
    model::{AttendeeStatus, EventCreate, EventStatus, Role, UserCreate, WebhookCreate},
};

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

/// A JSON Patch document (RFC 6902) for the resource `R`, which names the members a patch may
/// write and their rules, so that the spec states them.
pub struct JsonPatch<R>(pub json_patch::Patch, PhantomData<R>);

/// A member that a JSON Patch may write, with the schema of its values.
pub struct PatchMember {
    /// The member's JSON Pointer, such as `/title`.
    pub path: &'static str,
    /// The values it takes.
    pub value: MetaSchemaRef,
    /// Whether `remove` clears it (optional members); removing a required member is 422.
    pub removable: bool,
}

/// A resource that JSON Patch documents change.
pub trait PatchTarget: Send + Sync + 'static {
    /// Schema name of one operation of its patches (`EventPatchOperation`).
    const OPERATION: &'static str;
    /// Its writable members.
    fn members(registry: &mut Registry) -> Vec<PatchMember>;
}

/// The property `name` of the object `T`, as a patch value: the same rules, no default.
fn property_of<T: Type>(registry: &mut Registry, name: &str) -> MetaSchemaRef {
    T::register(registry);
    let mut schema = registry
        .schemas
        .get(&*T::name())
        .and_then(|s| s.properties.iter().find(|(n, _)| *n == name))
        .map(|(_, s)| s.clone())
        .unwrap_or_else(|| panic!("{} has no property {name}", T::name()));
    if let MetaSchemaRef::Inline(inline) = &mut schema {
        inline.default = None;
    }
    schema
}

fn string_enum(values: &[&str]) -> MetaSchemaRef {
    MetaSchemaRef::Inline(Box::new(MetaSchema {
        enum_items: values.iter().map(|v| (*v).into()).collect(),
        ..MetaSchema::new("string")
    }))
}

/// A JSON Pointer (RFC 6901); `""` (the whole document) only where `whole` allows it.
fn pointer(whole: bool) -> MetaSchemaRef {
    MetaSchemaRef::Inline(Box::new(MetaSchema {
        description: Some("JSON Pointer (RFC 6901), such as `/title`."),
        pattern: Some(if whole {
            r"^(/([^/~]|~[01])*)*$".into()
        } else {
            r"^(/([^/~]|~[01])*)+$".into()
        }),
        ..MetaSchema::new("string")
    }))
}

fn operation(title: String, properties: Vec<(&'static str, MetaSchemaRef)>) -> MetaSchemaRef {
    MetaSchemaRef::Inline(Box::new(MetaSchema {
        title: Some(title),
        required: properties.iter().map(|(name, _)| *name).collect(),
        properties,
        ..MetaSchema::new("object")
    }))
}

/// The schema of one operation of a patch of `R`: `add`/`replace` of each writable member
/// with its value rules, `remove` of the optional ones, and `move`, `copy` and `test`
/// (whose results are checked like any other, 422 when they break a rule).
fn operation_schema<R: PatchTarget>(registry: &mut Registry) -> MetaSchema {
    let members = R::members(registry);
    let mut variants: Vec<MetaSchemaRef> = members
        .iter()
        .map(|m| {
            operation(
                format!("set {}", m.path),
                vec![
                    ("op", string_enum(&["add", "replace"])),
                    ("path", string_enum(&[m.path])),
                    ("value", m.value.clone()),
                ],
            )
        })
        .collect();
    let removable: Vec<&str> = members
        .iter()
        .filter(|m| m.removable)
        .map(|m| m.path)
        .collect();
    if !removable.is_empty() {
        variants.push(operation(
            "remove".into(),
            vec![
                ("op", string_enum(&["remove"])),
                ("path", string_enum(&removable)),
            ],
        ));
    }
    let any = || MetaSchemaRef::Inline(Box::new(MetaSchema::ANY));
    variants.extend([
        operation(
            "move".into(),
            vec![
                ("op", string_enum(&["move"])),
                ("from", pointer(false)),
                ("path", pointer(false)),
            ],
        ),
        operation(
            "copy".into(),
            vec![
                ("op", string_enum(&["copy"])),
                ("from", pointer(true)),
                ("path", pointer(false)),
            ],
        ),
        operation(
            "test".into(),
            vec![
                ("op", string_enum(&["test"])),
                ("path", pointer(true)),
                ("value", any()),
            ],
        ),
    ]);
    MetaSchema {
        rust_typename: Some(std::any::type_name::<R>()),
        description: Some(
            "One step of a JSON Patch document (RFC 6902). The whole resource (path `\"\"`) \
             cannot be replaced; the patched result must pass the same rules as a create.",
        ),
        one_of: variants,
        ..MetaSchema::new("object")
    }
}

/// A user's writable members: `/role` only for administrators (403 for others).
pub struct UserPatch;

impl PatchTarget for UserPatch {
    const OPERATION: &'static str = "UserPatchOperation";

    fn members(registry: &mut Registry) -> Vec<PatchMember> {
        let email = MetaSchemaRef::Inline(Box::new(MetaSchema {
            format: Some("email"),
            max_length: Some(254),
            ..MetaSchema::new("string")
        }));
        let mut password = property_of::<UserCreate>(registry, "password");
        if let MetaSchemaRef::Inline(inline) = &mut password {
            // `null` leaves the password unchanged.
            inline.nullable = true;
        }
        Role::register(registry);
        vec![
            PatchMember {
                path: "/email",
                value: email,
                removable: false,
            },
            PatchMember {
                path: "/full_name",
                value: property_of::<UserCreate>(registry, "full_name"),
                removable: false,
            },
            PatchMember {
                path: "/password",
                value: password,
                removable: true,
            },
            PatchMember {
                path: "/role",
                value: Role::schema_ref(),
                removable: false,
            },
        ]
    }
}

/// An event's writable members.
pub struct EventPatch;

impl PatchTarget for EventPatch {
    const OPERATION: &'static str = "EventPatchOperation";

    fn members(registry: &mut Registry) -> Vec<PatchMember> {
        let field = |registry: &mut Registry, path: &'static str, removable| PatchMember {
            path,
            value: property_of::<EventCreate>(registry, &path[1..]),
            removable,
        };
        EventStatus::register(registry);
        vec![
            field(registry, "/title", false),
            field(registry, "/description", true),
            field(registry, "/location", true),
            field(registry, "/starts_at", false),
            field(registry, "/ends_at", false),
            field(registry, "/capacity", true),
            field(registry, "/waitlist_enabled", false),
            PatchMember {
                path: "/status",
                value: EventStatus::schema_ref(),
                removable: false,
            },
        ]
    }
}

/// A webhook's writable members.
pub struct WebhookPatch;

impl PatchTarget for WebhookPatch {
    const OPERATION: &'static str = "WebhookPatchOperation";

    fn members(registry: &mut Registry) -> Vec<PatchMember> {
        let field = |registry: &mut Registry, path: &'static str, removable| PatchMember {
            path,
            value: property_of::<WebhookCreate>(registry, &path[1..]),
            removable,
        };
        vec![
            field(registry, "/url", false),
            field(registry, "/types", false),
            field(registry, "/active", false),
            field(registry, "/description", true),
        ]
    }
}

/// An attendee record's writable member: its status.
pub struct AttendeePatch;

impl PatchTarget for AttendeePatch {
    const OPERATION: &'static str = "AttendeePatchOperation";

    fn members(registry: &mut Registry) -> Vec<PatchMember> {
        AttendeeStatus::register(registry);
        vec![PatchMember {
            path: "/status",
            value: AttendeeStatus::schema_ref(),
            removable: false,
        }]
    }
}

impl<R: PatchTarget> Payload for JsonPatch<R> {
    const CONTENT_TYPE: &'static str = JSON_PATCH;

    fn check_content_type(content_type: &str) -> bool {
        // Parameters such as `; charset=utf-8` are allowed: JSON is UTF-8 anyway.
        matches!(content_type.parse::<mime::Mime>(), Ok(m) if m.essence_str() == JSON_PATCH)
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            items: Some(Box::new(MetaSchemaRef::Reference(R::OPERATION.into()))),
            max_items: Some(crate::service::patch::MAX_OPERATIONS),
            ..MetaSchema::new("array")
        }))
    }

    fn register(registry: &mut Registry) {
        registry.create_schema::<R, _>(R::OPERATION.into(), operation_schema::<R>);
    }
}

impl<R: PatchTarget> ParsePayload for JsonPatch<R> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let data = Vec::<u8>::from_request(request, body).await?;
        let patch = parse_json(&data)?;
        // A document that breaks the schema's own rules (too long, a path that is no member
        // pointer) is refused as the request is read, like a malformed one: it never reaches
        // `If-Match` (412).
        crate::service::patch::check_document(&patch).map_err(ApiError::from)?;
        Ok(JsonPatch(patch, PhantomData))
    }
}

impl_apirequest_for_payload!(JsonPatch<R>, R: PatchTarget);

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

//! The served OpenAPI document: poem-openapi's output, finished once at start-up with what
//! its attributes cannot express. Everything a type or an annotation can say is said there;
//! this module only does the rest, each step named below:
//!
//! - tags in reading order (poem-openapi sorts them by name);
//! - `security: []` on public operations (poem-openapi leaves them without `security`,
//!   which reads as "not stated");
//! - response header names as HTTP writes them (`ETag`, not poem-openapi's `ETAG`);
//! - `format: email` on sign-up emails;
//! - no `default` in request body schemas: openapi-typescript (with its default options)
//!   makes every property with a `default` required, which would force clients to send the
//!   optional fields; the defaults are stated in the field descriptions instead;
//! - request body examples (Swagger UI otherwise invents ~2 KB of text from the patterns);
//! - `links` from each create to the read of what it created.

use serde_json::{Map, Value, json};

/// Order of the tags section: as a reader meets the API.
const TAG_ORDER: [&str; 8] = [
    "Auth",
    "Users",
    "Events",
    "Attendees",
    "Access",
    "Changes",
    "Webhooks",
    "Health",
];

/// Response header names as they are written on the wire.
const HEADER_NAMES: [&str; 9] = [
    "ETag",
    "Location",
    "Retry-After",
    "WWW-Authenticate",
    "Accept-Patch",
    "Allow",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
];

/// `(schema, property)` pairs that hold an email address the server checks as one.
const EMAIL_FIELDS: [(&str, &str); 1] = [("UserCreate", "email")];

/// A create operation, the read operation of what it creates, and the read's path parameters
/// taken from the created body.
struct Link {
    create: &'static str,
    read: &'static str,
    name: &'static str,
    parameters: &'static [(&'static str, &'static str)],
}

const LINKS: [Link; 3] = [
    Link {
        create: "createUser",
        read: "getUser",
        name: "GetCreatedUser",
        parameters: &[("id", "$response.body#/id")],
    },
    Link {
        create: "createEvent",
        read: "getEvent",
        name: "GetCreatedEvent",
        parameters: &[("id", "$response.body#/id")],
    },
    Link {
        create: "registerAttendee",
        read: "getAttendee",
        name: "GetCreatedAttendee",
        parameters: &[
            ("id", "$response.body#/event_id"),
            ("attendee_id", "$response.body#/id"),
        ],
    },
];

/// Request body examples by operation id.
fn request_example(operation_id: &str) -> Option<Value> {
    Some(match operation_id {
        "createUser" => json!({
            "email": "ada@example.com",
            "password": "correct horse battery",
            "full_name": "Ada Lovelace"
        }),
        "createToken" => json!({
            "email": "ada@example.com",
            "password": "correct horse battery"
        }),
        "refreshToken" | "logout" => json!({
            "refresh_token": "q3Jv8Vd2yY1bN0kzR7fA4sT9wL6cXe5HmPoUgKiEjZa"
        }),
        "createEvent" => json!({
            "title": "Rust meetup",
            "description": "Talks and pizza.",
            "location": "Berlin",
            "starts_at": "2030-03-01T18:00:00Z",
            "ends_at": "2030-03-01T21:00:00Z",
            "capacity": 50,
            "waitlist_enabled": true,
            "status": "published"
        }),
        "registerAttendee" => json!({}),
        "patchUser" => json!([{"op": "replace", "path": "/full_name", "value": "Ada King"}]),
        "patchEvent" => json!([{"op": "replace", "path": "/title", "value": "Rust meetup"}]),
        "patchAttendee" => json!([{"op": "replace", "path": "/status", "value": "checked_in"}]),
        "createWebhook" => json!({
            "url": "https://crm.example.com/hooks/event-manager",
            "types": ["attendee.registered", "attendee.cancelled"],
            "description": "CRM sync"
        }),
        "patchWebhook" => json!([{"op": "replace", "path": "/active", "value": false}]),
        "putStaff" => json!({"role": "checker"}),
        "createInvitation" => json!({"max_uses": 20}),
        "checkIn" => json!({
            "scans": [{"attendee_id": "0192f3a4-5b6c-7d8e-9f00-112233445566", "scanned_at": "2026-03-01T18:05:00Z"}]
        }),
        "createImport" => json!(
            "title,location,starts_at,ends_at,capacity,status\n\
             Rust meetup,Berlin,2030-03-01T18:00:00Z,2030-03-01T21:00:00Z,50,published\n"
        ),
        _ => return None,
    })
}

/// Finishes poem-openapi's JSON document (see the module docs); the result is what
/// `/openapi.json` and the Swagger UI serve.
pub fn finish(document: &str) -> String {
    let mut doc: Value = serde_json::from_str(document).expect("poem-openapi emits JSON");
    order_tags(&mut doc);
    for (schema, property) in EMAIL_FIELDS {
        if let Some(p) = doc.pointer_mut(&format!(
            "/components/schemas/{schema}/properties/{property}"
        )) {
            p["format"] = json!("email");
        }
    }
    drop_request_defaults(&mut doc);
    type_nullable_members(&mut doc);
    let ids: Vec<String> = operations(&mut doc)
        .filter_map(|op| op["operationId"].as_str().map(str::to_owned))
        .collect();
    let stream_message = stream_message_schema(&mut doc);
    for op in operations(&mut doc) {
        finish_operation(op, &stream_message);
    }
    for link in &LINKS {
        debug_assert!(
            ids.iter().any(|id| id == link.read),
            "no operation {}",
            link.read
        );
        let Some(created) = operations(&mut doc)
            .find(|op| op["operationId"] == link.create)
            .and_then(|op| op.pointer_mut("/responses/201"))
        else {
            continue;
        };
        let parameters: Map<String, Value> = link
            .parameters
            .iter()
            .map(|(name, expr)| ((*name).to_owned(), json!(expr)))
            .collect();
        created["links"] = json!({
            link.name: {
                "operationId": link.read,
                "parameters": parameters,
                "description": "Read what was created."
            }
        });
    }
    serde_json::to_string(&doc).expect("a JSON value serialises")
}

/// Removes `default` from the properties of the schemas that request bodies refer to.
fn drop_request_defaults(doc: &mut Value) {
    let names: Vec<String> = operations(doc)
        .filter_map(|op| {
            op.pointer("/requestBody/content")
                .and_then(Value::as_object)
        })
        .flat_map(|content| content.values())
        .filter_map(|media| media.pointer("/schema/$ref").and_then(Value::as_str))
        .filter_map(|r| r.strip_prefix("#/components/schemas/"))
        .map(str::to_owned)
        .collect();
    for name in names {
        let properties = doc
            .pointer_mut(&format!("/components/schemas/{name}/properties"))
            .and_then(Value::as_object_mut);
        for property in properties.into_iter().flat_map(|p| p.values_mut()) {
            if let Some(property) = property.as_object_mut() {
                property.remove("default");
            }
        }
    }
}

/// Every operation object of the document.
fn operations(doc: &mut Value) -> impl Iterator<Item = &mut Value> {
    doc["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.iter_mut())
        .filter(|(method, _)| {
            matches!(
                method.as_str(),
                "get" | "put" | "post" | "patch" | "delete" | "head" | "options"
            )
        })
        .map(|(_, op)| op)
}

fn finish_operation(op: &mut Value, stream_message: &Value) {
    if op.get("security").is_none() {
        op["security"] = json!([]);
    }
    if let Some(responses) = op["responses"].as_object_mut() {
        for response in responses.values_mut() {
            if let Some(headers) = response.get_mut("headers").and_then(Value::as_object_mut) {
                *headers = std::mem::take(headers)
                    .into_iter()
                    .map(|(name, header)| (wire_name(&name), header))
                    .collect();
            }
            if let Some(stream) = response.pointer_mut("/content/text~1event-stream") {
                describe_event_stream(stream, stream_message);
            }
        }
    }
    let example = op["operationId"].as_str().and_then(request_example);
    if let (Some(example), Some(content)) = (
        example,
        op.pointer_mut("/requestBody/content")
            .and_then(Value::as_object_mut),
    ) {
        for media in content.values_mut() {
            media["example"] = example.clone();
        }
    }
}

/// poem-openapi documents an event stream as an array of its messages (`type: array, format:
/// event-stream`); a stream is a sequence of events, each `{event, id, data}` with `data` the
/// message as JSON text, as OpenAPI 3.2 and its tools read `text/event-stream`. The message's
/// own schema goes inline into `x-data-schema` (linters do not follow references there).
fn describe_event_stream(media: &mut Value, message: &Value) {
    media["schema"] = json!({
        "type": "object",
        "description": "One Server-Sent Event. A stream is a sequence of them.",
        "required": ["data"],
        "properties": {
            "event": {"type": "string", "description": "`snapshot`, or the change's type"},
            "id": {"type": "string", "description": "The `seq` the message brings the client to"},
            "data": {
                "type": "string",
                "description": "The message as JSON: the snapshot, then each `Change`",
                "x-data-schema": message.clone(),
            },
        },
    });
}

/// Takes the stream's message schemas (`StreamMessage`, `StreamSnapshot`) out of the
/// components, where nothing would reference them once the stream is described as events,
/// and returns the message schema with the snapshot inline.
fn stream_message_schema(doc: &mut Value) -> Value {
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return Value::Null;
    };
    let snapshot = schemas.remove("StreamSnapshot").unwrap_or(Value::Null);
    let mut message = schemas.remove("StreamMessage").unwrap_or(Value::Null);
    for key in ["anyOf", "oneOf"] {
        if let Some(variants) = message.get_mut(key).and_then(Value::as_array_mut) {
            for variant in variants {
                if variant["$ref"] == "#/components/schemas/StreamSnapshot" {
                    *variant = snapshot.clone();
                }
            }
        }
    }
    message
}

/// OpenAPI 3.0 wants a `type` beside every `nullable`: poem-openapi leaves it out for a
/// nullable reference (an enum) and for free-form JSON. The enum is written inline, and the
/// free-form member, always an object when present, says so.
fn type_nullable_members(doc: &mut Value) {
    let schemas = doc["components"]["schemas"].clone();
    let mut inlined = Vec::new();
    let Some(all) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for schema in all.values_mut() {
        let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
            continue;
        };
        for property in properties.values_mut() {
            if property["nullable"] != true || property.get("type").is_some() {
                continue;
            }
            let referenced = property["allOf"][0]["$ref"]
                .as_str()
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
                .map(|name| schemas[name].clone());
            match referenced {
                Some(target) if target.get("enum").is_some() => {
                    inlined.extend(property["allOf"][0]["$ref"].as_str().map(str::to_owned));
                    let description = property["description"].clone();
                    // A nullable enum lists null among its values (OpenAPI 3.0.3), or validators
                    // refuse the null it allows.
                    let mut values = target["enum"].as_array().cloned().unwrap_or_default();
                    values.push(Value::Null);
                    *property = json!({
                        "type": target["type"],
                        "enum": values,
                        "nullable": true,
                    });
                    if !description.is_null() {
                        property["description"] = description;
                    }
                }
                Some(_) => {}
                None => property["type"] = json!("object"),
            }
        }
    }
    // An enum written inline everywhere it was used is no component of its own any more.
    for reference in inlined {
        let text = doc.to_string();
        if !text.contains(&format!("\"{reference}\"")) {
            let name = reference.trim_start_matches("#/components/schemas/");
            if let Some(all) = doc
                .pointer_mut("/components/schemas")
                .and_then(Value::as_object_mut)
            {
                all.remove(name);
            }
        }
    }
}

/// `ETAG` -> `ETag`: the casing of [`HEADER_NAMES`], else the name as it came.
fn wire_name(name: &str) -> String {
    HEADER_NAMES
        .iter()
        .find(|known| known.eq_ignore_ascii_case(name))
        .map_or_else(|| name.to_owned(), |known| (*known).to_owned())
}

fn order_tags(doc: &mut Value) {
    if let Some(tags) = doc["tags"].as_array_mut() {
        let rank = |tag: &Value| {
            TAG_ORDER
                .iter()
                .position(|name| tag["name"] == *name)
                .unwrap_or(TAG_ORDER.len())
        };
        tags.sort_by_key(rank);
    }
}

/// The Swagger UI page for `document`, keeping the authorization across reloads.
/// `generated_html` is poem-openapi's page, which embeds `original`, the unfinished document.
pub fn swagger_ui_html(original: &str, generated_html: &str, document: &str) -> String {
    debug_assert!(
        generated_html.contains(original),
        "the page embeds the document"
    );
    let html = generated_html.replacen(original, document, 1);
    html.replacen(
        "SwaggerUIBundle({",
        "SwaggerUIBundle({\n        persistAuthorization: true,",
        1,
    )
}

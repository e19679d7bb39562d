//! The OpenAPI 3 document and the Swagger UI.

use serde_json::{Value, json};

use crate::{backend_tests, helpers::TestApp};

async fn spec(app: &TestApp) -> Value {
    let resp = app.get("/openapi.json", None).await;
    resp.expect(200);
    assert!(
        resp.header("content-type")
            .is_some_and(|ct| ct.starts_with("application/json")),
        "content type: {:?}",
        resp.header("content-type")
    );
    assert!(resp.body.is_object(), "the spec is a JSON object");
    resp.body
}

/// Follows a `$ref` such as `#/components/schemas/UserCreate`.
fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => spec
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("dangling $ref {r}")),
        None => schema,
    }
}

/// A documented response header, by case-insensitive name.
fn header_doc<'a>(response: &'a Value, name: &str) -> Option<&'a Value> {
    response["headers"]
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// The schema of a JSON response body, whatever parameters its media type carries.
fn json_schema<'a>(spec: &'a Value, response: &'a Value) -> &'a Value {
    let content = response["content"].as_object().expect("content");
    let (_, media) = content
        .iter()
        .find(|(ct, _)| ct.starts_with("application/json"))
        .expect("an application/json body");
    resolve(spec, &media["schema"])
}

/// An enum's values, whether inline, behind a `$ref`, or in an `allOf` wrapper (the `null` of
/// a nullable enum left out).
fn enum_values<'a>(spec: &'a Value, schema: &'a Value) -> Vec<&'a str> {
    let schema = match schema["allOf"].as_array() {
        Some(parts) => parts
            .iter()
            .find(|p| p.get("$ref").is_some())
            .unwrap_or(schema),
        None => schema,
    };
    resolve(spec, schema)["enum"]
        .as_array()
        .expect("an enum")
        .iter()
        .filter(|v| !v.is_null())
        .map(|v| v.as_str().unwrap())
        .collect()
}

/// The values of an inline enum (none when the schema has no enum).
fn enum_values_of(schema: &Value) -> Vec<&str> {
    schema["enum"]
        .as_array()
        .map(|values| values.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default()
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Every operation of the spec: `(method, path, operation)`.
fn operations(spec: &Value) -> Vec<(&'static str, &str, &Value)> {
    let mut out = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                out.push((method, path.as_str(), op));
            }
        }
    }
    out
}

/// The operation with this `operationId`.
fn operation<'a>(spec: &'a Value, id: &str) -> &'a Value {
    operations(spec)
        .into_iter()
        .find(|(_, _, op)| op["operationId"] == id)
        .unwrap_or_else(|| panic!("no operation {id}"))
        .2
}

/// A property of a component schema.
fn property<'a>(spec: &'a Value, schema: &str, name: &str) -> &'a Value {
    let p = &spec["components"]["schemas"][schema]["properties"][name];
    assert!(p.is_object(), "{schema}.{name} is documented");
    p
}

/// Whether `value` matches the (ECMA-262) `pattern` of a schema; the patterns used here
/// are also valid for the `regex` crate.
fn matches_pattern(schema: &Value, value: &str) -> bool {
    let pattern = schema["pattern"].as_str().expect("a pattern");
    regex::Regex::new(pattern)
        .unwrap_or_else(|e| panic!("pattern {pattern}: {e}"))
        .is_match(value)
}

/// The documented variants of one operation of an operation's JSON Patch body.
fn patch_variants<'a>(spec: &'a Value, id: &str) -> Vec<&'a Value> {
    let body = &operation(spec, id)["requestBody"]["content"]["application/json-patch+json"];
    let items = resolve(spec, &body["schema"]["items"]);
    items["oneOf"]
        .as_array()
        .unwrap_or_else(|| panic!("{id}: one schema per kind of operation"))
        .iter()
        .map(|v| resolve(spec, v))
        .collect()
}

/// A query parameter of an operation.
fn parameter<'a>(op: &'a Value, name: &str) -> &'a Value {
    op["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("parameter {name}"))
}

/// The error statuses each operation can really return.
const ERROR_STATUSES: &[(&str, &[&str])] = &[
    ("getEventStats", &["401", "403", "404", "500", "503"]),
    (
        "createImport",
        &["400", "401", "409", "413", "415", "422", "500", "503"],
    ),
    ("getImport", &["401", "404", "500", "503"]),
    ("metrics", &["401", "404", "500"]),
    (
        "createUser",
        &["400", "409", "413", "415", "422", "500", "503"],
    ),
    (
        "createToken",
        &[
            "400", "401", "409", "413", "415", "422", "429", "500", "503",
        ],
    ),
    (
        "refreshToken",
        &["400", "401", "409", "413", "415", "422", "500", "503"],
    ),
    ("logout", &["400", "409", "413", "415", "422", "500", "503"]),
    (
        "listEventChanges",
        &["400", "401", "404", "410", "500", "503"],
    ),
    ("listChanges", &["400", "401", "403", "410", "500", "503"]),
    ("streamEvent", &["400", "401", "404", "410", "500", "503"]),
    ("getMe", &["401", "404", "500", "503"]),
    ("listUsers", &["400", "401", "403", "500", "503"]),
    ("getUser", &["401", "404", "500", "503"]),
    (
        "patchUser",
        &[
            "400", "401", "403", "404", "409", "412", "413", "415", "422", "500", "503",
        ],
    ),
    (
        "deleteUser",
        &["400", "401", "404", "409", "412", "422", "500", "503"],
    ),
    (
        "createEvent",
        &["400", "401", "409", "413", "415", "422", "500", "503"],
    ),
    ("listEvents", &["400", "401", "500", "503"]),
    ("getEvent", &["401", "404", "500", "503"]),
    (
        "patchEvent",
        &[
            "400", "401", "403", "404", "409", "412", "413", "415", "422", "500", "503",
        ],
    ),
    (
        "deleteEvent",
        &[
            "400", "401", "403", "404", "409", "412", "422", "500", "503",
        ],
    ),
    (
        "registerAttendee",
        &[
            "400", "401", "403", "404", "409", "413", "415", "422", "500", "503",
        ],
    ),
    ("listAttendees", &["400", "401", "403", "404", "500", "503"]),
    ("listStaff", &["401", "403", "404", "500", "503"]),
    (
        "putStaff",
        &[
            "400", "401", "403", "404", "409", "413", "415", "422", "500", "503",
        ],
    ),
    (
        "deleteStaff",
        &["400", "401", "403", "404", "409", "422", "500", "503"],
    ),
    (
        "createInvitation",
        &[
            "400", "401", "403", "404", "409", "413", "415", "422", "500", "503",
        ],
    ),
    (
        "listInvitations",
        &["400", "401", "403", "404", "500", "503"],
    ),
    ("getInvitation", &["401", "403", "404", "500", "503"]),
    (
        "revokeInvitation",
        &["400", "401", "403", "404", "409", "422", "500", "503"],
    ),
    ("getInvitationByToken", &["400", "404", "410", "500", "503"]),
    (
        "checkIn",
        &[
            "400", "401", "403", "404", "409", "413", "415", "422", "500", "503",
        ],
    ),
    ("getAttendee", &["401", "404", "500", "503"]),
    (
        "patchAttendee",
        &[
            "400", "401", "403", "404", "409", "412", "413", "415", "422", "500", "503",
        ],
    ),
    (
        "cancelAttendee",
        &[
            "400", "401", "403", "404", "409", "412", "422", "500", "503",
        ],
    ),
    ("listMyRegistrations", &["400", "401", "500", "503"]),
    (
        "createWebhook",
        &[
            "400", "401", "403", "404", "409", "413", "415", "422", "500", "503",
        ],
    ),
    ("listWebhooks", &["400", "401", "500", "503"]),
    ("getWebhook", &["401", "404", "500", "503"]),
    (
        "patchWebhook",
        &[
            "400", "401", "404", "409", "412", "413", "415", "422", "500", "503",
        ],
    ),
    (
        "deleteWebhook",
        &["400", "401", "404", "409", "412", "422", "500", "503"],
    ),
    (
        "listWebhookDeliveries",
        &["400", "401", "404", "500", "503"],
    ),
    (
        "redeliverWebhookDelivery",
        &["400", "401", "404", "409", "422", "500", "503"],
    ),
    ("live", &["413"]),
    ("ready", &["413"]),
    ("health", &["413"]),
];

/// The single-resource reads, which honour `If-None-Match`.
const SINGLE_READS: [&str; 5] = ["getMe", "getUser", "getEvent", "getAttendee", "getWebhook"];

/// The lists, which share one paging definition.
const LISTS: [&str; 6] = [
    "listUsers",
    "listEvents",
    "listAttendees",
    "listMyRegistrations",
    "listWebhooks",
    "listWebhookDeliveries",
];

backend_tests! {
    async fn the_spec_is_openapi_3_with_every_users_auth_and_health_path(app) {
        let spec = spec(&app).await;
        assert!(
            spec["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.")),
            "openapi: {}",
            spec["openapi"]
        );
        assert!(spec["info"]["title"].is_string());
        assert!(spec["info"]["version"].is_string());
        for (path, methods) in [
            ("/api/v1/users", &["get", "post"][..]),
            ("/api/v1/users/me", &["get"][..]),
            ("/api/v1/users/{id}", &["get", "patch", "delete"][..]),
            ("/api/v1/auth/token", &["post"][..]),
            ("/health", &["get"][..]),
            ("/health/live", &["get"][..]),
            ("/health/ready", &["get"][..]),
        ] {
            for method in methods {
                assert!(
                    spec["paths"][path][method].is_object(),
                    "{method} {path} is documented"
                );
            }
        }
    }

    async fn patch_documents_a_json_patch_request_body(app) {
        let spec = spec(&app).await;
        let patch = &spec["paths"]["/api/v1/users/{id}"]["patch"];
        let content = patch["requestBody"]["content"]
            .as_object()
            .expect("a request body");
        assert_eq!(
            content.keys().collect::<Vec<_>>(),
            vec!["application/json-patch+json"]
        );
        assert_eq!(patch["requestBody"]["required"], true);
        let schema = resolve(&spec, &content["application/json-patch+json"]["schema"]);
        assert_eq!(schema["type"], "array");
        // Every RFC 6902 operation is documented, each requiring its own members.
        let variants = patch_variants(&spec, "patchUser");
        for (name, required) in [
            ("add", &["op", "path", "value"][..]),
            ("remove", &["op", "path"][..]),
            ("replace", &["op", "path", "value"][..]),
            ("move", &["op", "from", "path"][..]),
            ("copy", &["op", "from", "path"][..]),
            ("test", &["op", "path", "value"][..]),
        ] {
            let variant = variants
                .iter()
                .find(|v| enum_values_of(&v["properties"]["op"]).contains(&name))
                .unwrap_or_else(|| panic!("a variant for {name}"));
            let listed: Vec<&str> = variant["required"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|v| v.as_str())
                .collect();
            assert_eq!(listed, required, "{name} requires its members");
        }
        let params = patch["parameters"].as_array().expect("parameters");
        assert!(
            params
                .iter()
                .any(|p| p["name"] == "If-Match" && p["in"] == "header"),
            "If-Match documented"
        );
        assert!(
            header_doc(&patch["responses"]["200"], "ETag").is_some(),
            "ETag documented"
        );
    }

    async fn patch_schemas_name_the_writable_members_and_the_rules_of_their_values(app) {
        let spec = spec(&app).await;
        for (id, writable, removable) in [
            ("patchUser", &["/email", "/full_name", "/password", "/role"][..], &["/password"][..]),
            (
                "patchEvent",
                &[
                    "/title",
                    "/description",
                    "/location",
                    "/starts_at",
                    "/ends_at",
                    "/capacity",
                    "/waitlist_enabled",
                    "/status",
                ][..],
                &["/description", "/location", "/capacity"][..],
            ),
            ("patchAttendee", &["/status"][..], &[][..]),
        ] {
            let variants = patch_variants(&spec, id);
            let paths_of = |op: &str| -> Vec<&str> {
                variants
                    .iter()
                    .filter(|v| enum_values_of(&v["properties"]["op"]).contains(&op))
                    .flat_map(|v| enum_values_of(&v["properties"]["path"]))
                    .collect()
            };
            assert_eq!(paths_of("replace"), writable, "{id}: replace");
            assert_eq!(paths_of("add"), writable, "{id}: add");
            assert_eq!(paths_of("remove"), removable, "{id}: remove");
            // move, copy and test take any pointer, but only test and copy's source may
            // name the whole document.
            for (op, member, whole) in [
                ("move", "from", false),
                ("move", "path", false),
                ("copy", "from", true),
                ("copy", "path", false),
                ("test", "path", true),
            ] {
                let variant = variants
                    .iter()
                    .find(|v| enum_values_of(&v["properties"]["op"]) == [op])
                    .unwrap_or_else(|| panic!("{id}: {op}"));
                let pointer = &variant["properties"][member];
                assert_eq!(matches_pattern(pointer, ""), whole, "{id}: {op} {member} \"\"");
                assert!(matches_pattern(pointer, "/a~1b/0"), "{id}: {op} {member}");
                assert!(!matches_pattern(pointer, "title"), "{id}: {op} {member}");
            }
        }
        let value = |id: &str, path: &str| -> Value {
            patch_variants(&spec, id)
                .into_iter()
                .find(|v| enum_values_of(&v["properties"]["path"]) == [path])
                .unwrap_or_else(|| panic!("{id} {path}"))["properties"]["value"]
                .clone()
        };
        assert_eq!(value("patchEvent", "/capacity")["maximum"], json!(1_000_000.0));
        assert_eq!(value("patchEvent", "/capacity")["nullable"], true);
        assert!(!matches_pattern(&value("patchEvent", "/title"), "   "));
        assert_eq!(value("patchEvent", "/starts_at")["format"], "date-time");
        assert_eq!(
            enum_values(&spec, &value("patchEvent", "/status")),
            ["draft", "published", "cancelled", "completed"]
        );
        assert_eq!(value("patchUser", "/email")["format"], "email");
        assert_eq!(value("patchUser", "/password")["minLength"], 8);
        assert_eq!(enum_values(&spec, &value("patchUser", "/role")), ["member", "admin"]);
        assert_eq!(
            enum_values(&spec, &value("patchAttendee", "/status")),
            ["confirmed", "waitlisted", "cancelled", "checked_in"]
        );

        // Each documented write really is accepted.
        let organizer = app.user().await;
        let event = app.create_event(&organizer.token, json!({})).await;
        let path = format!("/api/v1/events/{}", event.expect(201).body["id"].as_str().unwrap());
        for (member, sample) in [
            ("/title", json!("Renamed")),
            ("/description", json!("Line one\nline two")),
            ("/location", json!("Hall 2")),
            ("/capacity", json!(10)),
            ("/waitlist_enabled", json!(true)),
            ("/status", json!("published")),
        ] {
            app.patch(&path, Some(&organizer.token), json!([{"op": "replace", "path": member, "value": sample}]), None)
                .await
                .expect(200);
        }
        // `remove` of an optional member clears it, as if it had been replaced with null.
        for (member, cleared) in [("/description", json!("")), ("/location", json!("")), ("/capacity", Value::Null)] {
            let resp = app
                .patch(&path, Some(&organizer.token), json!([{"op": "remove", "path": member}]), None)
                .await;
            assert_eq!(resp.expect(200).body[&member[1..]], cleared, "{member} is cleared");
        }
        let me = format!("/api/v1/users/{}", organizer.id);
        app.patch(&me, Some(&organizer.token), json!([{"op": "remove", "path": "/password"}]), None)
            .await
            .expect(200);
    }

    async fn a_bearer_security_scheme_protects_the_private_operations(app) {
        let spec = spec(&app).await;
        let schemes = spec["components"]["securitySchemes"]
            .as_object()
            .expect("securitySchemes");
        let (name, _) = schemes
            .iter()
            .find(|(_, s)| {
                s["type"] == "http"
                    && s["scheme"]
                        .as_str()
                        .is_some_and(|s| s.eq_ignore_ascii_case("bearer"))
            })
            .expect("an http bearer scheme");
        let uses_bearer = |op: &Value| {
            op["security"]
                .as_array()
                .is_some_and(|reqs| reqs.iter().any(|r| r.get(name).is_some()))
        };
        for (path, method) in [
            ("/api/v1/users/me", "get"),
            ("/api/v1/users", "get"),
            ("/api/v1/users/{id}", "get"),
            ("/api/v1/users/{id}", "patch"),
            ("/api/v1/users/{id}", "delete"),
        ] {
            assert!(
                uses_bearer(&spec["paths"][path][method]),
                "{method} {path} requires the bearer scheme"
            );
        }
        for (path, method) in [
            ("/api/v1/users", "post"),
            ("/api/v1/auth/token", "post"),
            ("/health/ready", "get"),
        ] {
            assert!(
                !uses_bearer(&spec["paths"][path][method]),
                "{method} {path} is open to anyone"
            );
        }
    }

    async fn every_error_response_is_a_problem_document_with_its_headers(app) {
        let spec = spec(&app).await;
        let mut checked = 0;
        for (path, item) in spec["paths"].as_object().unwrap() {
            for method in METHODS {
                let Some(op) = item.get(method) else { continue };
                let responses = op["responses"].as_object().expect("responses");
                for (status, response) in responses {
                    if !status.starts_with('4') && !status.starts_with('5') {
                        continue;
                    }
                    if path.starts_with("/health") && status == "503" {
                        continue; // readiness answers 503 with its own body
                    }
                    let content = response["content"]
                        .as_object()
                        .unwrap_or_else(|| panic!("{method} {path} {status} has content"));
                    let problem = content.get("application/problem+json").unwrap_or_else(|| {
                        panic!("{method} {path} {status} is application/problem+json")
                    });
                    let schema = resolve(&spec, &problem["schema"]);
                    for field in ["type", "title", "status"] {
                        assert!(
                            schema["properties"][field].is_object(),
                            "problem schema has {field}"
                        );
                    }
                    checked += 1;
                }
                if let Some(unauthorized) = responses.get("401") {
                    assert!(
                        header_doc(unauthorized, "WWW-Authenticate").is_some(),
                        "{method} {path} 401 documents WWW-Authenticate"
                    );
                }
            }
        }
        assert!(checked >= 50, "checked {checked} error responses");
        let patch = &spec["paths"]["/api/v1/users/{id}"]["patch"]["responses"];
        assert!(header_doc(&patch["415"], "Accept-Patch").is_some());
        assert!(header_doc(&patch["412"], "ETag").is_some());
        let token = &spec["paths"]["/api/v1/auth/token"]["post"]["responses"];
        assert!(header_doc(&token["429"], "Retry-After").is_some());
    }

    async fn user_schemas_carry_the_field_rules_and_never_a_password(app) {
        let spec = spec(&app).await;
        let schemas = &spec["components"]["schemas"];
        let create = &schemas["UserCreate"];
        assert_eq!(create["properties"]["email"]["maxLength"], 254);
        assert_eq!(create["properties"]["password"]["minLength"], 8);
        assert_eq!(create["properties"]["password"]["maxLength"], 128);
        assert_eq!(create["properties"]["password"]["writeOnly"], true);
        assert_eq!(create["properties"]["full_name"]["minLength"], 1);
        assert_eq!(create["properties"]["full_name"]["maxLength"], 100);
        let required: Vec<&str> = create["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        for field in ["email", "password", "full_name"] {
            assert!(required.contains(&field), "{field} is required");
        }
        assert!(
            create["properties"].get("role").is_none(),
            "sign-up takes no role"
        );

        let read = &schemas["UserRead"];
        let props: Vec<&String> = read["properties"].as_object().unwrap().keys().collect();
        for field in [
            "id",
            "email",
            "full_name",
            "role",
            "created_at",
            "updated_at",
            "version",
        ] {
            assert!(props.iter().any(|p| *p == field), "UserRead has {field}");
        }
        assert!(
            !props.iter().any(|p| p.contains("password")),
            "UserRead has no password: {props:?}"
        );
        assert_eq!(read["properties"]["created_at"]["format"], "date-time");

        let created = &spec["paths"]["/api/v1/users"]["post"]["responses"]["201"];
        assert!(
            header_doc(created, "Location").is_some(),
            "201 documents Location"
        );
        assert!(header_doc(created, "ETag").is_some(), "201 documents ETag");
        assert!(json_schema(&spec, created)["properties"]["version"].is_object());
        let token = json_schema(
            &spec,
            &spec["paths"]["/api/v1/auth/token"]["post"]["responses"]["200"],
        );
        for field in ["access_token", "token_type", "expires_in"] {
            assert!(
                token["properties"][field].is_object(),
                "token response has {field}"
            );
        }
    }

    async fn docs_serve_the_swagger_ui(app) {
        let resp = app
            .client
            .get(app.url("/docs"))
            .send()
            .await
            .expect("request sent");
        assert_eq!(resp.status().as_u16(), 200);
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            content_type.starts_with("text/html"),
            "content type: {content_type}"
        );
        let html = resp.text().await.expect("body");
        assert!(html.to_lowercase().contains("<html"), "an HTML page");
        assert!(html.contains("swagger"), "the Swagger UI");
    }

    async fn each_operation_lists_only_the_error_statuses_it_can_return(app) {
        let spec = spec(&app).await;
        let ops = operations(&spec);
        assert_eq!(ops.len(), ERROR_STATUSES.len(), "every operation is in the table");
        for (method, path, op) in ops {
            let id = op["operationId"].as_str().expect("an operationId");
            let (_, expected) = ERROR_STATUSES
                .iter()
                .find(|(name, _)| *name == id)
                .unwrap_or_else(|| panic!("{id} is in the table"));
            let listed: Vec<&str> = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .filter(|s| s.starts_with('4') || s.starts_with('5'))
                .filter(|s| !(path.starts_with("/health") && *s == "503"))
                .collect();
            assert_eq!(&listed, expected, "{method} {path} ({id})");
            // The rules behind the table.
            let has = |s: &str| listed.contains(&s);
            let has_body = op.get("requestBody").is_some();
            let has_if_match = op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == "If-Match"));
            assert_eq!(has("413") || has("415"), has_body || path.starts_with("/health"), "{id}");
            assert_eq!(has("412"), has_if_match, "{id}: 412 only with If-Match");
            assert_eq!(has("429"), id == "createToken", "{id}: 429 only on login");
            assert_eq!(has("503"), path.starts_with("/api/"), "{id}: 503 where the database is used");
            if matches!(method, "post" | "patch" | "delete") {
                for status in ["400", "409", "422"] {
                    assert!(has(status), "{id}: writes take Idempotency-Key, so {status}");
                }
            }
        }
    }

    async fn responses_are_plain_application_json_without_a_charset(app) {
        let spec = spec(&app).await;
        let text = spec.to_string();
        assert!(!text.contains("charset"), "no media type carries a charset");
        for (method, path, op) in operations(&spec) {
            for (status, response) in op["responses"].as_object().unwrap() {
                for media in response["content"].as_object().into_iter().flat_map(|c| c.keys()) {
                    let expected = if path.ends_with("/stream") && status == "200" {
                        "text/event-stream"
                    } else if path == "/metrics" && status == "200" {
                        "text/plain; version=0.0.4"
                    } else if path.ends_with("/attendees") && status == "200" && media == "text/csv" {
                        "text/csv"
                    } else if status.starts_with('2')
                        || (path.starts_with("/health") && status == "503")
                    {
                        "application/json"
                    } else {
                        "application/problem+json"
                    };
                    assert_eq!(media, expected, "{method} {path} {status}");
                }
            }
        }
        // The server sends what the document says.
        let live = app.get("/health/live", None).await;
        assert_eq!(live.expect(200).header("content-type"), Some("application/json"));
        let user = app.user().await;
        let me = app.get("/api/v1/users/me", Some(&user.token)).await;
        assert_eq!(me.expect(200).header("content-type"), Some("application/json"));
    }

    async fn header_names_are_written_as_http_writes_them(app) {
        let spec = spec(&app).await;
        let mut seen = Vec::new();
        for (method, path, op) in operations(&spec) {
            for response in op["responses"].as_object().unwrap().values() {
                for name in response["headers"].as_object().into_iter().flat_map(|h| h.keys()) {
                    assert!(
                        [
                            "ETag",
                            "Location",
                            "Retry-After",
                            "WWW-Authenticate",
                            "Accept-Patch",
                            "RateLimit-Limit",
                            "RateLimit-Remaining",
                            "RateLimit-Reset",
                            "Idempotent-Replayed",
                        ]
                        .contains(&name.as_str()),
                        "{method} {path}: header {name}"
                    );
                    seen.push(name.clone());
                }
            }
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["in"] == "header" {
                    let name = p["name"].as_str().unwrap();
                    assert!(
                        ["If-Match", "If-None-Match", "Last-Event-ID", "Idempotency-Key"]
                            .contains(&name),
                        "{name}"
                    );
                }
            }
        }
        for name in ["ETag", "Location", "Retry-After", "WWW-Authenticate", "Accept-Patch"] {
            assert!(seen.iter().any(|s| s == name), "{name} is documented somewhere");
        }
    }

    async fn the_stream_is_documented_as_server_sent_events_resumed_by_a_seq(app) {
        let spec = spec(&app).await;
        let op = operation(&spec, "streamEvent");
        let media = &op["responses"]["200"]["content"]["text/event-stream"];
        // Each event, as OpenAPI 3.2 tools read a stream: `data` is the message as JSON text.
        let event = &media["schema"];
        assert_eq!(event["type"], "object");
        assert_eq!(event["properties"]["data"]["type"], "string");
        let message = &event["properties"]["data"]["x-data-schema"];
        assert!(message["anyOf"].as_array().is_some_and(|v| v.len() == 2), "{message}");
        let last_event_id = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "Last-Event-ID")
            .expect("Last-Event-ID is documented");
        assert_eq!(last_event_id["schema"]["type"], "integer");
        assert_eq!(last_event_id["schema"]["minimum"], json!(0.0));
        // No component is left that nothing references.
        let text = spec.to_string();
        for name in spec["components"]["schemas"].as_object().unwrap().keys() {
            assert!(
                text.contains(&format!("\"#/components/schemas/{name}\"")),
                "{name} is referenced"
            );
        }
    }

    async fn schema_names_are_plain_words(app) {
        let spec = spec(&app).await;
        let names: Vec<&String> = spec["components"]["schemas"].as_object().unwrap().keys().collect();
        for name in &names {
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric())
                    && name.starts_with(|c: char| c.is_ascii_uppercase()),
                "schema name {name}"
            );
        }
        for name in [
            "UserPage",
            "EventPage",
            "AttendeePage",
            "RegistrationPage",
            "UserPatchOperation",
            "EventPatchOperation",
            "AttendeePatchOperation",
            "HealthStatus",
        ] {
            assert!(names.iter().any(|n| *n == name), "{name} is a schema");
        }
        let list = json_schema(&spec, &operation(&spec, "listEvents")["responses"]["200"]);
        assert_eq!(list["title"], "EventPage");
    }

    async fn the_document_names_a_server_and_lists_tags_in_reading_order(app) {
        let spec = spec(&app).await;
        let servers = spec["servers"].as_array().expect("servers");
        assert_eq!(servers.len(), 1);
        assert_eq!(servers[0]["url"], "/");
        let tags: Vec<&str> = spec["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            tags,
            ["Auth", "Users", "Events", "Attendees", "Access", "Changes", "Webhooks", "Health"]
        );
    }

    async fn public_operations_say_so_and_anonymous_friendly_ones_allow_both(app) {
        let spec = spec(&app).await;
        let bearer = json!({"BearerAuth": []});
        for (method, path, op) in operations(&spec) {
            let id = op["operationId"].as_str().unwrap();
            let security = op["security"].as_array().unwrap_or_else(|| panic!("{id} states security"));
            match id {
                // `/metrics` takes its own token (`METRICS_TOKEN`), not a user's.
                "createUser" | "createToken" | "refreshToken" | "logout" | "live" | "ready"
                | "health" | "getInvitationByToken" | "metrics" => {
                    assert!(security.is_empty(), "{method} {path} is public: {security:?}")
                }
                "listEvents" | "getEvent" | "listEventChanges" | "streamEvent" => {
                    assert_eq!(security.len(), 2, "{id}");
                    assert!(security.contains(&json!({})), "{id} allows anonymous callers");
                    assert!(security.contains(&bearer), "{id} accepts a token");
                }
                _ => assert_eq!(security, &vec![bearer.clone()], "{method} {path} needs a token"),
            }
        }
        // Anonymous callers really are served where the document says so.
        app.get("/api/v1/events", None).await.expect(200);
    }

    async fn every_operation_has_a_short_plain_summary_and_a_description(app) {
        let spec = spec(&app).await;
        for (method, path, op) in operations(&spec) {
            let summary = op["summary"].as_str().unwrap_or_else(|| panic!("{method} {path} summary"));
            assert!(
                !summary.is_empty()
                    && summary.len() <= 40
                    && !summary.contains(['`', '\n', '*', '_'])
                    && !summary.ends_with('.'),
                "{method} {path}: summary {summary:?} is short plain text"
            );
            let description = op["description"].as_str().unwrap_or_default();
            assert!(description.len() > summary.len(), "{method} {path} has a description");
        }
    }

    async fn creates_link_to_the_read_of_what_they_created(app) {
        let spec = spec(&app).await;
        for (create, read, params) in [
            ("createUser", "getUser", &[("id", "$response.body#/id")][..]),
            ("createEvent", "getEvent", &[("id", "$response.body#/id")][..]),
            (
                "registerAttendee",
                "getAttendee",
                &[("id", "$response.body#/event_id"), ("attendee_id", "$response.body#/id")][..],
            ),
        ] {
            let links = operation(&spec, create)["responses"]["201"]["links"]
                .as_object()
                .unwrap_or_else(|| panic!("{create} 201 has links"));
            let link = links
                .values()
                .find(|l| l["operationId"] == read)
                .unwrap_or_else(|| panic!("{create} links to {read}"));
            let read_params: Vec<&Value> = operation(&spec, read)["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["in"] == "path")
                .collect();
            assert_eq!(read_params.len(), params.len(), "{read} path parameters");
            for (name, expression) in params {
                assert_eq!(link["parameters"][name], *expression, "{create} -> {read}: {name}");
            }
        }
    }

    async fn single_resource_reads_document_if_none_match_and_304(app) {
        let spec = spec(&app).await;
        for id in SINGLE_READS {
            let op = operation(&spec, id);
            let header = parameter(op, "If-None-Match");
            assert_eq!(header["in"], "header", "{id}");
            assert_eq!(header["required"], false, "{id}");
            let not_modified = &op["responses"]["304"];
            assert!(header_doc(not_modified, "ETag").is_some(), "{id} 304 carries the ETag");
            assert!(not_modified.get("content").is_none(), "{id} 304 has no body");
        }
        for (method, path, op) in operations(&spec) {
            let id = op["operationId"].as_str().unwrap();
            if !SINGLE_READS.contains(&id) {
                assert!(op["responses"].get("304").is_none(), "{method} {path} has no 304");
            }
        }
    }

    async fn every_list_shares_one_paging_definition_from_max_limit(app) {
        use event_manager::model::{DEFAULT_LIMIT, MAX_LIMIT};
        let spec = spec(&app).await;
        let first = &parameter(operation(&spec, LISTS[0]), "limit")["schema"];
        assert_eq!(first["maximum"], json!(MAX_LIMIT as f64));
        assert_eq!(first["minimum"], json!(1.0));
        assert_eq!(first["default"], json!(DEFAULT_LIMIT));
        for id in LISTS {
            let op = operation(&spec, id);
            assert_eq!(&parameter(op, "limit")["schema"], first, "{id} limit");
            assert_eq!(parameter(op, "limit")["required"], false, "{id} limit");
            assert_eq!(
                parameter(op, "offset")["schema"],
                parameter(operation(&spec, LISTS[0]), "offset")["schema"],
                "{id} offset"
            );
            assert_eq!(parameter(op, "offset")["schema"]["minimum"], json!(0.0));
        }
        // The server checks what the document states.
        let admin = app.admin().await;
        let over = (MAX_LIMIT + 1).to_string();
        let max = MAX_LIMIT.to_string();
        app.get_query("/api/v1/users", Some(&admin.token), &[("limit", over.as_str())])
            .await
            .expect_problem(400);
        app.get_query("/api/v1/users", Some(&admin.token), &[("limit", "0")])
            .await
            .expect_problem(400);
        app.get_query("/api/v1/users", Some(&admin.token), &[("offset", "-1")])
            .await
            .expect_problem(400);
        let page = app
            .get_query("/api/v1/users", Some(&admin.token), &[("limit", max.as_str())])
            .await;
        assert_eq!(page.expect(200).body["limit"], json!(MAX_LIMIT));
        let page = app.get("/api/v1/events", None).await;
        assert_eq!(page.expect(200).body["limit"], json!(DEFAULT_LIMIT));
        assert_eq!(page.body["offset"], 0);
    }

    async fn schemas_state_the_formats_lengths_and_enums_the_server_checks(app) {
        let spec = spec(&app).await;
        let email = property(&spec, "UserCreate", "email");
        assert_eq!(email["format"], "email");
        assert_eq!(email["maxLength"], 254);
        let title = property(&spec, "EventCreate", "title");
        assert_eq!((&title["minLength"], &title["maxLength"]), (&json!(1), &json!(200)));
        assert_eq!(property(&spec, "EventCreate", "description")["maxLength"], 5000);
        assert_eq!(property(&spec, "EventCreate", "location")["maxLength"], 300);
        let capacity = property(&spec, "EventCreate", "capacity");
        assert_eq!(capacity["minimum"], json!(1.0));
        assert_eq!(capacity["maximum"], json!(1_000_000.0));
        assert_eq!(capacity["nullable"], true);
        // The server takes a null status as the default (draft): the document says so.
        assert_eq!(property(&spec, "EventCreate", "status")["nullable"], true);
        app.create_event(&app.user().await.token, json!({"status": null}))
            .await
            .expect(201);
        // A new event is a draft or published, nothing else.
        // Optional request fields are optional for generated clients too: no `default`, which
        // openapi-typescript turns into "required"; the default is in the description.
        let create = &spec["components"]["schemas"]["EventCreate"];
        assert_eq!(create["required"], json!(["title", "starts_at", "ends_at"]));
        for (field, p) in create["properties"].as_object().unwrap() {
            assert!(p.get("default").is_none(), "EventCreate.{field} has no default");
        }
        assert!(property(&spec, "EventCreate", "waitlist_enabled")["description"]
            .as_str()
            .unwrap()
            .contains("default false"));
        let status = property(&spec, "EventCreate", "status");
        assert_eq!(enum_values(&spec, status), ["draft", "published"]);
        // Nullable, so null is among its values, as OpenAPI 3.0.3 asks.
        assert!(status["enum"].as_array().unwrap().contains(&Value::Null));
        let read_status = property(&spec, "EventRead", "status");
        assert_eq!(
            enum_values(&spec, read_status),
            ["draft", "published", "cancelled", "completed"]
        );
        // Ids are UUIDs and instants RFC 3339, in every schema and parameter.
        for (name, schema) in spec["components"]["schemas"].as_object().unwrap() {
            for (field, p) in schema["properties"].as_object().into_iter().flatten() {
                // A request id may come from the client: any short printable text.
                if field == "id" || (field.ends_with("_id") && field != "request_id") {
                    assert_eq!(p["format"], "uuid", "{name}.{field}");
                }
                if field.ends_with("_at") {
                    assert_eq!(p["format"], "date-time", "{name}.{field}");
                }
            }
        }
        let list = operation(&spec, "listEvents");
        assert_eq!(parameter(list, "organizer_id")["schema"]["format"], "uuid");
        assert_eq!(parameter(list, "starts_after")["schema"]["format"], "date-time");
        assert_eq!(
            enum_values(&spec, &parameter(list, "sort")["schema"]),
            ["starts_at", "-starts_at", "created_at", "-created_at", "title"]
        );
        assert_eq!(parameter(list, "q")["schema"]["maxLength"], 200);
        assert_eq!(parameter(operation(&spec, "listUsers"), "q")["schema"]["maxLength"], 254);
        assert_eq!(
            enum_values(&spec, &parameter(operation(&spec, "listAttendees"), "status")["schema"]),
            ["confirmed", "waitlisted", "cancelled", "checked_in"]
        );
        // JSON Patch: at most 100 operations, none replacing the whole document.
        let body = &operation(&spec, "patchEvent")["requestBody"]["content"]["application/json-patch+json"]["schema"];
        assert_eq!(body["maxItems"], 100);
        for variant in patch_variants(&spec, "patchEvent") {
            let ops = enum_values_of(&variant["properties"]["op"]);
            if ops.iter().any(|op| ["add", "replace", "remove", "move"].contains(op)) {
                let path = &variant["properties"]["path"];
                let allows_whole = match path.get("pattern") {
                    Some(_) => matches_pattern(path, ""),
                    None => enum_values_of(path).contains(&""),
                };
                assert!(!allows_whole, "{ops:?} never writes the whole document");
            }
        }
    }

    async fn text_patterns_agree_with_the_server_on_control_characters_and_blanks(app) {
        let spec = spec(&app).await;
        let organizer = app.user().await;
        let samples = [
            "Rust meetup",
            "  Rust meetup  ",
            "Café ☕ 東京",
            "",
            "   ",
            "\u{a0}",
            "nul\u{0}inside",
            "tab\there",
            "new\nline",
            "carriage\rreturn",
            "bell\u{7}",
            "del\u{7f}",
            "c1\u{85}control",
        ];
        for field in ["title", "description", "location"] {
            let schema = property(&spec, "EventCreate", field);
            for sample in samples {
                let documented = matches_pattern(schema, sample)
                    && schema["minLength"].as_u64().is_none_or(|m| sample.chars().count() as u64 >= m);
                let resp = app.create_event(&organizer.token, json!({field: sample})).await;
                let accepted = match resp.status {
                    201 => true,
                    422 => false,
                    other => panic!("{field} = {sample:?}: status {other}: {}", resp.body),
                };
                assert_eq!(documented, accepted, "{field} = {sample:?}: the spec and the server agree");
            }
        }
        let schema = property(&spec, "UserCreate", "full_name");
        for (n, sample) in samples.iter().enumerate() {
            let documented = matches_pattern(schema, sample) && !sample.is_empty();
            let resp = app
                .post(
                    "/api/v1/users",
                    None,
                    json!({"email": format!("pattern{n}@example.com"), "password": "correct horse", "full_name": sample}),
                )
                .await;
            assert_eq!(documented, resp.status == 201, "full_name = {sample:?}: {}", resp.body);
        }
        // Query text is held to the same rule: refused with 400, never passed to the database.
        let q = parameter(operation(&spec, "listEvents"), "q");
        assert!(!matches_pattern(&q["schema"], "a\u{0}b"));
        app.get_query("/api/v1/events", None, &[("q", "a\u{0}b")])
            .await
            .expect_problem(400);
        app.get_query("/api/v1/events", None, &[("q", "meetup")]).await.expect(200);
    }

    async fn nullable_fields_are_exactly_those_returned_as_null(app) {
        let spec = spec(&app).await;
        let organizer = app.user().await;
        let event = app.create_event(&organizer.token, json!({"status": "published"})).await;
        event.expect(201);
        let attendee = app.register(&organizer.token, event.body["id"].as_str().unwrap()).await;
        attendee.expect(201);
        let me = app.get("/api/v1/users/me", Some(&organizer.token)).await;
        for (schema, body, nullable) in [
            ("EventRead", &event.body, &["capacity", "available_seats"][..]),
            ("AttendeeRead", &attendee.body, &["waitlist_position", "checked_in_at"][..]),
            ("UserRead", &me.body, &[][..]),
        ] {
            let documented = &spec["components"]["schemas"][schema];
            let properties = documented["properties"].as_object().unwrap();
            let required: Vec<&str> = documented["required"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            let returned = body.as_object().unwrap();
            assert_eq!(
                returned.keys().collect::<Vec<_>>(),
                properties.keys().collect::<Vec<_>>(),
                "{schema}: the body has exactly the documented fields"
            );
            for (field, p) in properties {
                assert!(required.contains(&field.as_str()), "{schema}.{field} is always returned");
                assert_eq!(
                    p["nullable"] == true,
                    nullable.contains(&field.as_str()),
                    "{schema}.{field} nullable"
                );
            }
        }
    }

    async fn request_bodies_carry_small_real_examples_the_server_accepts(app) {
        let spec = spec(&app).await;
        let example = |id: &str| -> Value {
            let content = operation(&spec, id)["requestBody"]["content"].as_object().unwrap();
            let (_, media) = content.iter().next().unwrap();
            let example = media["example"].clone();
            assert!(!example.is_null(), "{id} has an example");
            assert!(example.to_string().len() < 400, "{id}: a short example");
            example
        };
        for (_, _, op) in operations(&spec) {
            if op.get("requestBody").is_some() {
                example(op["operationId"].as_str().unwrap());
            }
        }
        // Each example works as it stands.
        let created = app.post("/api/v1/users", None, example("createUser")).await;
        created.expect(201);
        let token = app.post("/api/v1/auth/token", None, example("createToken")).await;
        let token = token.expect(200).body["access_token"].as_str().unwrap().to_owned();
        let user_path = format!("/api/v1/users/{}", created.body["id"].as_str().unwrap());
        app.patch(&user_path, Some(&token), example("patchUser"), None).await.expect(200);
        let event = app.post("/api/v1/events", Some(&token), example("createEvent")).await;
        event.expect(201);
        let event_path = format!("/api/v1/events/{}", event.body["id"].as_str().unwrap());
        app.patch(&event_path, Some(&token), example("patchEvent"), None).await.expect(200);
        let attendee = app
            .post(&format!("{event_path}/attendees"), Some(&token), example("registerAttendee"))
            .await;
        attendee.expect(201);
        let attendee_path = format!("{event_path}/attendees/{}", attendee.body["id"].as_str().unwrap());
        app.patch(&attendee_path, Some(&token), example("patchAttendee"), None)
            .await
            .expect(200);
        let staff_path = format!("{event_path}/staff/{}", app.user().await.id);
        let staffed = app
            .send(app.request(reqwest::Method::PUT, &staff_path, Some(&token)).json(&example("putStaff")))
            .await;
        staffed.expect(201);
        app.post(&format!("{event_path}/invitations"), Some(&token), example("createInvitation"))
            .await
            .expect(201);
        let scanned = app.post(&format!("{event_path}/check-ins"), Some(&token), example("checkIn")).await;
        scanned.expect(200);
        assert_eq!(scanned.body["results"][0]["result"], "not_found");
        // The session examples have the shape of a refresh token; the token itself is made up.
        app.post("/api/v1/auth/refresh", None, example("refreshToken"))
            .await
            .expect_problem(401);
        app.post("/api/v1/auth/logout", None, example("logout"))
            .await
            .expect(204);
    }

    async fn swagger_ui_shows_the_finished_document_and_keeps_the_authorization(app) {
        let html = app
            .client
            .get(app.url("/docs"))
            .send()
            .await
            .expect("request sent")
            .text()
            .await
            .expect("body");
        assert!(html.contains("persistAuthorization: true"), "authorization survives reloads");
        assert!(html.contains("GetCreatedEvent"), "the page embeds the finished document");
        assert!(!html.contains("JsonPatchOperation_"), "with its plain schema names");
    }
}

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

/// An enum's values, whether inline, behind a `$ref`, or in an `allOf` wrapper.
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
        // One schema per operation, told apart by `op`, each requiring its own members.
        let op = resolve(&spec, &schema["items"]);
        assert_eq!(op["discriminator"]["propertyName"], "op");
        let mapping = op["discriminator"]["mapping"].as_object().expect("a mapping");
        for (name, required) in [
            ("add", &["path", "value"][..]),
            ("remove", &["path"][..]),
            ("replace", &["path", "value"][..]),
            ("move", &["from", "path"][..]),
            ("copy", &["from", "path"][..]),
            ("test", &["path", "value"][..]),
        ] {
            let reference = json!({"$ref": mapping[name]});
            let variant = resolve(&spec, &reference);
            // The variant is `allOf: [{op: enum [name]}, {$ref: the operation's object}]`.
            let parts: Vec<&Value> = match variant["allOf"].as_array() {
                Some(parts) => parts.iter().map(|p| resolve(&spec, p)).collect(),
                None => vec![variant],
            };
            let ops: Vec<&str> = parts.iter().flat_map(|p| enum_values_of(&p["properties"]["op"])).collect();
            assert_eq!(ops, vec![name], "the {name} variant pins op");
            let listed: Vec<&str> = parts
                .iter()
                .filter_map(|p| p["required"].as_array())
                .flatten()
                .filter_map(|v| v.as_str())
                .collect();
            for member in required {
                assert!(listed.contains(member), "{name} requires {member}: {variant}");
            }
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

    async fn every_api_operation_documents_its_4xx_problems(app) {
        let spec = spec(&app).await;
        let mut checked = 0;
        for (path, item) in spec["paths"].as_object().unwrap() {
            // The health probes answer 200 or 503 and have no client errors to document.
            if !path.starts_with("/api/") {
                continue;
            }
            for method in METHODS {
                let Some(op) = item.get(method) else { continue };
                let responses = op["responses"].as_object().expect("responses");
                let client_errors: Vec<&String> =
                    responses.keys().filter(|s| s.starts_with('4')).collect();
                assert!(
                    client_errors.iter().any(|s| *s == "400"),
                    "{method} {path} documents 400"
                );
                assert!(
                    client_errors.iter().any(|s| *s == "422")
                        || method == "get"
                        || method == "delete",
                    "{method} {path} documents 422"
                );
                for status in client_errors {
                    let content = responses[status]["content"]
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
                }
                if op.get("security").is_some() {
                    let unauthorized = &responses["401"];
                    assert!(
                        header_doc(unauthorized, "WWW-Authenticate").is_some(),
                        "{method} {path} 401 documents WWW-Authenticate"
                    );
                }
                checked += 1;
            }
        }
        assert!(checked >= 7, "checked {checked} operations");
        let patch = &spec["paths"]["/api/v1/users/{id}"]["patch"]["responses"];
        for status in ["401", "403", "404", "409", "412", "415", "422"] {
            assert!(patch[status].is_object(), "PATCH documents {status}");
        }
        assert!(header_doc(&patch["415"], "Accept-Patch").is_some());
        assert!(header_doc(&patch["412"], "ETag").is_some());
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
}

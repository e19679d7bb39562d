//! The route template of each request (`/api/v1/events/{id}`), for logs and metrics, and
//! the methods each route accepts, for the `Allow` header of 405 answers.

use std::sync::Arc;

use poem::{Endpoint, Request};

/// Template of requests that match no route: one label for every unknown path.
pub const UNMATCHED: &str = "unmatched";

/// A documented route: its template and the methods it accepts.
#[derive(Debug)]
pub struct RouteInfo {
    /// The path template, as in the OpenAPI document (`/api/v1/users/{id}`).
    pub template: String,
    /// The `Allow` value (`DELETE, GET, HEAD, PATCH`); empty when unknown.
    pub allow: String,
}

/// The route a request matched, as a request extension set before any handler runs.
#[derive(Debug, Clone)]
pub struct MatchedRoute(pub Arc<RouteInfo>);

/// The route template of a request (`unmatched` for unknown paths). Never the raw path: ids
/// would make every log or metric label unique.
pub fn route_template(req: &Request) -> &str {
    req.extensions()
        .get::<MatchedRoute>()
        .map_or(UNMATCHED, |route| route.0.template.as_str())
}

/// Every route of the application, built once from the OpenAPI document.
#[derive(Debug)]
pub struct RouteTable {
    routes: Vec<(Vec<String>, Arc<RouteInfo>)>,
    docs: Arc<RouteInfo>,
    unmatched: Arc<RouteInfo>,
}

impl Default for RouteTable {
    fn default() -> Self {
        let info = |template: &str, allow: &str| {
            Arc::new(RouteInfo {
                template: template.to_owned(),
                allow: allow.to_owned(),
            })
        };
        Self {
            routes: Vec::new(),
            docs: info("/docs", "GET, HEAD"),
            unmatched: info(UNMATCHED, ""),
        }
    }
}

impl RouteTable {
    /// Reads the paths and methods of an OpenAPI document (JSON); `/openapi.json` and
    /// `/docs` are added, as the document does not describe itself.
    pub fn from_spec(spec: &str) -> Self {
        let mut table = Self::default();
        let doc = serde_json::from_str::<serde_json::Value>(spec).unwrap_or_default();
        let mut paths: Vec<(String, Vec<String>)> = vec![("/openapi.json".to_owned(), vec![])];
        if let Some(documented) = doc.get("paths").and_then(|p| p.as_object()) {
            for (template, item) in documented {
                let methods = item
                    .as_object()
                    .map(|ops| ops.keys().map(|m| m.to_uppercase()).collect())
                    .unwrap_or_default();
                paths.push((template.clone(), methods));
            }
        }
        paths[0].1.push("GET".to_owned());
        for (template, mut methods) in paths {
            if methods.iter().any(|m| m == "GET") {
                methods.push("HEAD".to_owned());
            }
            methods.sort();
            let segments = template.split('/').map(str::to_owned).collect();
            let info = RouteInfo {
                template,
                allow: methods.join(", "),
            };
            table.routes.push((segments, Arc::new(info)));
        }
        table
    }

    /// The route a request path belongs to.
    pub fn for_path(&self, path: &str) -> &Arc<RouteInfo> {
        if path == "/docs" || path.starts_with("/docs/") {
            return &self.docs;
        }
        let segments: Vec<&str> = path.split('/').collect();
        self.routes
            .iter()
            .filter(|(template, _)| template.len() == segments.len())
            .filter(|(template, _)| {
                template.iter().zip(&segments).all(|(t, s)| {
                    t == s || (t.starts_with('{') && t.ends_with('}') && !s.is_empty())
                })
            })
            // Literal segments beat parameters (`/users/me` over `/users/{id}`).
            .max_by_key(|(template, _)| template.iter().filter(|t| !t.starts_with('{')).count())
            .map_or(&self.unmatched, |(_, info)| info)
    }
}

/// Records the route of the request (see `route_template`) before anything else looks at it.
pub async fn tag_route<E: Endpoint>(
    ep: Arc<E>,
    mut req: Request,
    table: Arc<RouteTable>,
) -> poem::Result<E::Output> {
    let route = table.for_path(req.uri().path()).clone();
    req.extensions_mut().insert(MatchedRoute(route));
    ep.call(req).await
}

/// The matched route of a request, when `tag_route` ran.
pub(super) fn matched(req: &Request) -> Option<Arc<RouteInfo>> {
    req.extensions().get::<MatchedRoute>().map(|r| r.0.clone())
}

#[cfg(test)]
mod tests {
    use super::{RouteTable, UNMATCHED};

    const SPEC: &str = r#"{"paths": {
        "/users/{id}": {"get": {}, "patch": {}, "delete": {}},
        "/users/me": {"get": {}},
        "/events/{id}/attendees/{attendee_id}": {"get": {}},
        "/health": {"get": {}}
    }}"#;

    #[test]
    fn allow_lists_the_documented_methods_of_the_matching_path() {
        let table = RouteTable::from_spec(SPEC);
        assert_eq!(
            table.for_path("/users/42").allow,
            "DELETE, GET, HEAD, PATCH"
        );
        assert_eq!(table.for_path("/users/me").allow, "GET, HEAD");
        assert_eq!(table.for_path("/openapi.json").allow, "GET, HEAD");
        assert_eq!(table.for_path("/nowhere").allow, "");
    }

    #[test]
    fn a_path_maps_to_its_template_never_to_its_ids() {
        let table = RouteTable::from_spec(SPEC);
        let cases = [
            ("/users/0190a1b2-0000-7000-8000-000000000000", "/users/{id}"),
            ("/users/me", "/users/me"),
            (
                "/events/e1/attendees/a2",
                "/events/{id}/attendees/{attendee_id}",
            ),
            ("/health", "/health"),
            ("/openapi.json", "/openapi.json"),
            ("/docs", "/docs"),
            ("/docs/oauth-receiver.html", "/docs"),
            ("/users/", UNMATCHED),
            ("/users/42/extra", UNMATCHED),
            ("/documents", UNMATCHED),
        ];
        for (path, template) in cases {
            assert_eq!(table.for_path(path).template, template, "{path}");
        }
    }
}

//! The OpenAPI document of the HTTP API, served at `/openapi.json` with a Swagger UI at `/docs`.
//!
//! Each route is declared once, with `utoipa_axum::routes!` over a handler that carries its
//! `#[utoipa::path]`: the router and the document are built from the same declarations (see
//! [`crate::routes`]), so a route cannot be served without being documented. Every authenticated
//! operation names the one scope it needs in its security requirement (`bearer: [messages:read]`);
//! the handler asks for the same scope with [`crate::auth::Authorized`].
//!
//! Non-goal: describing types of the crates below field by field where they are large and shown
//! as they are (the doctor's report): those get a schema here that names their main fields.
//!
//! Key decision: the answers every authenticated operation shares (401, 403, 429, 500, 503) are
//! added to each operation here, as references to one response each, all with the one
//! [`ErrorBody`] schema; an operation's own description of a status wins over the shared one.

use crate::error::{ErrorBody, ErrorFields};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

/// The name of the bearer-token security scheme every authenticated operation refers to.
pub const BEARER: &str = "bearer";

/// The document's fixed parts: title, the security scheme and the error schema.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Postern",
        description = "Postern's HTTP API: mail accounts, their messages, sending, search, webhooks \
            and events. Authenticate with `Authorization: Bearer <token>`; each operation names the \
            scope its token needs (`admin` holds them all). Every error answers \
            `{\"error\": {\"code\", \"message\", \"details\"?}}`."
    ),
    components(schemas(ErrorBody, ErrorFields)),
    modifiers(&BearerScheme),
    tags(
        (name = "health", description = "Liveness."),
        (name = "tokens", description = "API tokens (scope `admin`)."),
        (name = "audit", description = "The audit log (scope `admin`)."),
        (name = "oauth-apps", description = "OAuth clients."),
        (name = "accounts", description = "Mail accounts."),
        (name = "messages", description = "Mailboxes and messages of an account."),
        (name = "send", description = "Sending and the outbox."),
        (name = "search", description = "Full-text search over stored mail."),
        (name = "webhooks", description = "Webhooks and the event stream."),
        (name = "oauth", description = "The OAuth redirect target, for browsers."),
        (name = "metrics", description = "Prometheus metrics."),
    )
)]
pub(crate) struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "An API token (`pst_...`). The requirement of each operation lists the scope it \
                 needs; `admin` implies every scope.",
            ))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .security_schemes
            .insert(BEARER.to_owned(), RefOr::T(SecurityScheme::Http(scheme)));
    }
}

/// The answers every authenticated operation can give: status, component name, description.
const SHARED_ANSWERS: [(&str, &str, &str); 5] = [
    (
        "401",
        "Unauthorized",
        "No token, or one that is malformed, unknown, revoked or expired.",
    ),
    (
        "403",
        "Forbidden",
        "The token lacks the scope this operation needs.",
    ),
    (
        "429",
        "RateLimited",
        "Too many requests with this token; `Retry-After` says when to come back.",
    ),
    (
        "500",
        "Internal",
        "The server failed; the log has the details under the request's id.",
    ),
    (
        "503",
        "Unavailable",
        "The server is busy for a moment; retry shortly.",
    ),
];

/// Adds the shared error answers to every authenticated operation and their definitions to the
/// components. Applied to the document the routes produced, before it is served.
pub(crate) fn complete(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let components = doc.components.get_or_insert_with(Default::default);
    for (status, name, description) in SHARED_ANSWERS {
        let mut answer = ResponseBuilder::new()
            .description(description)
            .content("application/json", json_error());
        if status == "429" {
            let seconds = ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .build();
            answer = answer.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(Some(seconds))
                    .description(Some("Seconds to wait before the next request."))
                    .build(),
            );
        }
        components
            .responses
            .insert(name.to_owned(), RefOr::T(answer.build()));
    }
    for item in doc.paths.paths.values_mut() {
        for operation in operations(item) {
            if is_authenticated(operation) {
                for (status, name, _) in SHARED_ANSWERS {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
                }
            }
        }
    }
    doc
}

/// An `application/json` body of the error shape.
pub(crate) fn json_error() -> utoipa::openapi::Content {
    ContentBuilder::new()
        .schema(Some(RefOr::Ref(Ref::from_schema_name(ErrorBody::name()))))
        .build()
}

fn is_authenticated(operation: &Operation) -> bool {
    operation
        .security
        .as_ref()
        .is_some_and(|requirements| !requirements.is_empty())
}

/// Every operation of a path item, whatever its method.
pub(crate) fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// A string schema whose values are `names`, for fields that carry one of the store's enums as
/// text: the list comes from the enum itself, so the document follows when a variant is added.
pub(crate) fn one_of<'a>(names: impl IntoIterator<Item = &'a str>) -> Schema {
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(names))
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use crate::api_token::Scope;
    use serde_json::Value;
    use std::collections::BTreeSet;

    fn document() -> Value {
        serde_json::to_value(crate::openapi()).unwrap()
    }

    /// `(METHOD, path, operation)` for every operation of the document.
    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut found = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                found.push((method.to_uppercase(), path.clone(), operation.clone()));
            }
        }
        found
    }

    #[test]
    fn every_v1_operation_but_health_needs_exactly_one_known_scope() {
        let doc = document();
        let known: BTreeSet<&str> = Scope::ALL.iter().map(|scope| scope.as_str()).collect();
        let mut wrong = Vec::new();
        for (method, path, operation) in operations(&doc) {
            let security = &operation["security"];
            if path == "/v1/health" || path == "/oauth/callback" {
                if !security.is_null() {
                    wrong.push(format!("{method} {path} is public but names {security}"));
                }
                continue;
            }
            let scopes = security[0][super::BEARER].as_array();
            let ok = security.as_array().map(Vec::len) == Some(1)
                && scopes.is_some_and(|scopes| {
                    scopes.len() == 1 && scopes[0].as_str().is_some_and(|s| known.contains(s))
                });
            if !ok {
                wrong.push(format!("{method} {path}: {security}"));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
        assert!(doc["components"]["securitySchemes"][super::BEARER]["scheme"] == "bearer");
    }

    #[test]
    fn every_json_error_answer_is_the_one_error_shape() {
        let doc = document();
        let shared: BTreeSet<String> = super::SHARED_ANSWERS
            .iter()
            .map(|(_, name, _)| format!("#/components/responses/{name}"))
            .collect();
        let mut wrong = Vec::new();
        for (method, path, operation) in operations(&doc) {
            for (status, answer) in operation["responses"].as_object().unwrap() {
                if !(status.starts_with('4') || status.starts_with('5')) {
                    continue;
                }
                if let Some(reference) = answer["$ref"].as_str() {
                    if !shared.contains(reference) {
                        wrong.push(format!("{method} {path} {status}: {reference}"));
                    }
                    continue;
                }
                let schema = &answer["content"]["application/json"]["schema"]["$ref"];
                let html_only = answer["content"]
                    .as_object()
                    .is_some_and(|c| c.keys().all(|k| k.starts_with("text/html")));
                if schema != "#/components/schemas/ErrorBody" && !html_only {
                    wrong.push(format!("{method} {path} {status}: {answer}"));
                }
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
        for (_, name, _) in super::SHARED_ANSWERS {
            let content = &doc["components"]["responses"][name]["content"]["application/json"];
            assert_eq!(content["schema"]["$ref"], "#/components/schemas/ErrorBody");
        }
        let error = &doc["components"]["schemas"]["ErrorBody"];
        assert_eq!(error["required"], serde_json::json!(["error"]));
    }

    #[test]
    fn authenticated_operations_document_401_403_and_429() {
        let doc = document();
        for (method, path, operation) in operations(&doc) {
            if operation["security"].is_null() {
                continue;
            }
            for status in ["401", "403", "429"] {
                assert!(
                    !operation["responses"][status].is_null(),
                    "{method} {path} lacks {status}"
                );
            }
        }
    }

    #[test]
    fn operation_ids_are_unique_and_the_known_routes_are_there() {
        let doc = document();
        let all = operations(&doc);
        let ids: BTreeSet<&str> = all
            .iter()
            .map(|(_, _, operation)| operation["operationId"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), all.len(), "an operationId is used twice");
        let listed: BTreeSet<(String, String)> = all
            .iter()
            .map(|(method, path, _)| (method.clone(), path.clone()))
            .collect();
        for (method, path) in [
            ("GET", "/v1/health"),
            ("GET", "/v1/accounts/{id}/messages"),
            ("PATCH", "/v1/accounts/{id}"),
            ("PATCH", "/v1/accounts/{id}/messages/{message}"),
            ("POST", "/v1/accounts/{id}/send"),
            ("POST", "/v1/tokens"),
            ("GET", "/v1/events"),
            ("GET", "/metrics"),
            ("GET", "/oauth/callback"),
        ] {
            assert!(
                listed.contains(&(method.to_owned(), path.to_owned())),
                "{method} {path} is missing"
            );
        }
    }
}

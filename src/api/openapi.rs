//! The one list of `/api/v1` operations, from which both the router and the OpenAPI 3.1
//! document (`GET /api/v1/openapi.json`) are built, so that no route is served undocumented.
//!
//! To add an endpoint: write the handler with `#[utoipa::path(...)]` (a unique camelCase
//! `operation_id`, a `tag`, its typed params and body, every status it answers itself) and add
//! one `.routes(routes!(module::handler))` line to [`operations`] (handlers of one path and
//! different methods share one `routes!`). [`document`] then adds the error answers every
//! operation shares and marks every problem answer `application/problem+json`.

use std::sync::OnceLock;

use axum::Json;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::error::PROBLEM_JSON;
use crate::api::{arrangements, decisions, evaluate, lifecycle, terminations};
use crate::state::AppState;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Fairline API",
        description = "Contact arrangements, call evaluation, the decision log, ended calls and their review. Every error answer is an RFC 9457 problem document (`application/problem+json`); validation problems list every invalid field in `errors`."
    ),
    tags(
        (name = "evaluate", description = "The decision for a caller, without side effects (SPEC §6)"),
        (name = "arrangements", description = "Contact arrangements (SPEC §5); manager tokens"),
        (name = "decisions", description = "The decision log (SPEC §6); manager tokens"),
        (name = "terminations", description = "Ending a call and manager review (SPEC §9)"),
        (name = "reviews", description = "Reviews of an arrangement (SPEC §13); manager tokens"),
        (name = "appeals", description = "Appeals against an arrangement and their decisions (SPEC §13); manager tokens"),
        (name = "letters", description = "Letters to the customer (SPEC §13); manager tokens"),
        (name = "meta", description = "This document"),
    ),
    components(schemas(
        crate::api::error::Problem,
        crate::api::schemas::ProviderName,
        crate::api::schemas::ReviewStatusName,
        crate::api::schemas::ArrangementStatusName,
        crate::terminations::TerminationNotification,
        crate::api::lifecycle::AppealStatusName,
        crate::api::lifecycle::LetterKindName,
        crate::api::lifecycle::LetterFormatName
    )),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// Every `/api/v1` operation: the router and the document both come from here.
pub fn operations() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(evaluate::evaluate))
        .routes(routes!(arrangements::create, arrangements::list))
        .routes(routes!(arrangements::get_one, arrangements::update))
        .routes(routes!(arrangements::revoke))
        .routes(routes!(arrangements::history))
        .routes(routes!(decisions::list))
        .routes(routes!(terminations::terminate))
        .routes(routes!(terminations::list))
        .routes(routes!(terminations::get_one))
        .routes(routes!(terminations::review))
        .routes(routes!(lifecycle::create_review, lifecycle::list_reviews))
        .routes(routes!(lifecycle::create_appeal))
        .routes(routes!(lifecycle::list_appeals))
        .routes(routes!(lifecycle::get_appeal))
        .routes(routes!(lifecycle::decide_appeal))
        .routes(routes!(lifecycle::letter))
        .routes(routes!(openapi_json))
}

/// The finished document (built once).
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = operations().into_openapi();
        ProblemAnswers.modify(&mut doc);
        doc
    })
}

/// Adds the error answers every operation can give (from the extractors, the body limit, the
/// timeout and the store) and serves every `Problem` answer as `application/problem+json`.
struct ProblemAnswers;

fn problem(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                PROBLEM_JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build(),
    )
}

fn add_shared_answers(op: &mut Operation) {
    let authenticated = op.security.as_ref().is_some_and(|s| !s.is_empty());
    if !authenticated {
        return;
    }
    let has_body = op.request_body.is_some();
    let mut shared: Vec<(&str, &str)> = vec![
        ("400", "The request cannot be read: a query or path parameter of the wrong type, a malformed header, or a body that is not JSON"),
        ("401", "No bearer token, or an unknown one"),
        ("500", "Something went wrong inside; it has been logged"),
        ("503", "The store is unavailable, or the request took longer than server.request_timeout_ms"),
    ];
    if has_body {
        shared.push(("413", "The body is larger than server.max_body_bytes"));
        shared.push((
            "415",
            "The body is not application/json (or another +json type)",
        ));
        shared.push(("422", "Invalid fields: `errors` names every one"));
    }
    for (status, description) in shared {
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| problem(description));
    }
    for (status, answer) in op.responses.responses.iter_mut() {
        let RefOr::T(response) = answer else { continue };
        if response.description.is_empty() {
            response.description = default_description(status).to_string();
        }
        let problem_json = response.content.get("application/json").is_some_and(
            |c| matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem")),
        );
        if problem_json {
            if let Some(content) = response.content.shift_remove("application/json") {
                response.content.insert(PROBLEM_JSON.to_string(), content);
            }
        }
    }
}

/// The description of an answer whose operation gave none.
fn default_description(status: &str) -> &'static str {
    match status {
        "200" => "OK",
        "201" => "Created",
        "400" => "The request cannot be read",
        "401" => "No bearer token, or an unknown one",
        "403" => "This token's role may not do that (a manager token is needed)",
        "404" => "No such resource",
        "409" => "Conflict with the current state",
        "413" => "The body is larger than server.max_body_bytes",
        "415" => "The body is not application/json (or another +json type)",
        "422" => "Invalid fields: `errors` names every one",
        _ => "See the problem document",
    }
}

impl Modify for ProblemAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                add_shared_answers(op);
            }
        }
    }
}

/// The OpenAPI 3.1 document of `/api/v1` (no token needed).
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "getOpenApiDocument",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object))
)]
pub async fn openapi_json() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(document())
}

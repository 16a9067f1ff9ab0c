//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document, generated from the handlers.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

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
        description = "Contact arrangements, call evaluation, the decision log, ended calls and their review."
    ),
    paths(
        crate::api::evaluate::evaluate,
        crate::api::arrangements::create,
        crate::api::arrangements::list,
        crate::api::arrangements::get_one,
        crate::api::arrangements::update,
        crate::api::arrangements::revoke,
        crate::api::arrangements::history,
        crate::api::decisions::list,
        crate::api::terminations::terminate,
        crate::api::terminations::list,
        crate::api::terminations::get_one,
        crate::api::terminations::review,
        crate::api::lifecycle::create_review,
        crate::api::lifecycle::list_reviews,
        crate::api::lifecycle::create_appeal,
        crate::api::lifecycle::decide_appeal,
        crate::api::lifecycle::get_appeal,
        crate::api::lifecycle::list_appeals,
        crate::api::lifecycle::letter,
        openapi_json,
    ),
    components(schemas(crate::terminations::TerminationNotification)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// The OpenAPI 3.1 document of `/api/v1` (no token needed).
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object))
)]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

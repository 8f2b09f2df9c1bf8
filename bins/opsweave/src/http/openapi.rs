//! The OpenAPI description, generated from the handlers' annotations, and interactive docs.

use super::{jobs, matching, metering, metrics, problem, recall, tasks, webhooks, AppState};
use axum::Json;
use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_scalar::{Scalar, Servable};

#[derive(OpenApi)]
#[openapi(
    info(title = "opsweave", description = "Tasks, graph, search, jobs, usage and keys over one work graph. Errors are application/problem+json with a stable `code`."),
    paths(
        super::healthz, super::readyz, metrics::scrape,
        tasks::list_tasks, tasks::complete, tasks::undo, tasks::record, tasks::search, tasks::graph, tasks::graph_filters,
        recall::recall,
        recall::remember,
        matching::start_run, matching::review, matching::accept, matching::reject,
        jobs::enqueue, jobs::list, jobs::get_job, jobs::cancel, jobs::events, jobs::ingest,
        webhooks::receive,
        metering::record_events, metering::totals, metering::create_key, metering::list_keys, metering::revoke_key,
    ),
    components(schemas(problem::Problem, jobs::NewJobBody, jobs::IngestBody, matching::MatchRunBody, matching::DecisionBody,
        metering::UsageEventBody, metering::UsageEventsBody, metering::NewKeyBody,
        recall::RecallBody,
        recall::MemoryBody)),
    modifiers(&KeyAuth)
)]
struct ApiDoc;

struct KeyAuth;

impl Modify for KeyAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("ow_ API key")
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The OpenAPI 3.1 description of this API.
pub async fn spec() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}

/// Interactive docs at `/docs` (Scalar; its script loads from a CDN in the browser).
pub fn docs() -> Router<AppState> {
    Router::new().merge(Scalar::with_url("/docs", document()))
}

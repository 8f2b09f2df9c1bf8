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
        recall::remember, recall::update_memory, recall::forget,
        matching::start_run, matching::review, matching::accept, matching::reject,
        jobs::enqueue, jobs::list, jobs::get_job, jobs::cancel, jobs::events, jobs::ingest,
        webhooks::receive,
        metering::record_events, metering::totals, metering::create_key, metering::list_keys, metering::revoke_key,
    ),
    components(schemas(problem::Problem, jobs::JobView, jobs::JobList, jobs::NewJobBody, jobs::IngestBody, matching::MatchRunBody, matching::DecisionBody,
        metering::UsageEventBody, metering::UsageEventsBody, metering::NewKeyBody,
        recall::RecallBody,
        recall::MemoryBody, recall::MemoryUpdateBody, recall::MemoryCreated, recall::RecallHits, tasks::SearchHits,
        metering::UsageReport, metering::Recorded, metering::NewKey, metering::KeyList,
        tasks::TaskListing, tasks::FocusTasks, tasks::DoneTasks, tasks::GraphFilters, matching::ReviewPairs, webhooks::Delivered, super::Health)),
    modifiers(&KeyAuth, &CommonProblems, &Links)
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

/// Adds the error answers every operation of a kind can give, so the document lists each status
/// the server may send (clients and schema-based fuzzing rely on it): 401 / 403 / 429 where a key
/// is needed, 400 / 413 / 415 / 422 where a body or parameters are read, 404 where a path names
/// something, and 408 / 503 on the API routes (request timeout, store unavailable).
struct CommonProblems;

impl Modify for CommonProblems {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let body = op.request_body.is_some();
                let params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
                let api = path.starts_with("/api/");
                let common = [
                    ("400", body || params, "malformed or invalid input"),
                    (
                        "401",
                        secured,
                        "no key, or one that is unknown, revoked or expired",
                    ),
                    (
                        "403",
                        secured,
                        "the key's role or scope does not allow this",
                    ),
                    (
                        "404",
                        path.contains('{'),
                        "no such resource in the caller's scope",
                    ),
                    (
                        "408",
                        api,
                        "the request took longer than the server's limit",
                    ),
                    ("413", body, "the body is larger than the server's limit"),
                    (
                        "415",
                        body,
                        "the body is not of a content type this operation reads",
                    ),
                    ("422", body, "the body does not fit the operation's schema"),
                    (
                        "429",
                        secured,
                        "the key's rate limit is reached (see Retry-After)",
                    ),
                    ("503", api, "the store (or another backend) does not answer"),
                ];
                for (status, applies, description) in common {
                    if applies && !op.responses.responses.contains_key(status) {
                        op.responses
                            .responses
                            .insert(status.to_string(), problem_response(description).into());
                    }
                }
            }
        }
    }
}

/// Links from answers to the operations that take what they hold (the tasks listed to complete,
/// undo or read; a queued job to read or cancel; a new memory note to change, forget or read), so
/// clients and stateful fuzzing can chain them. A job's event stream is left out: it lasts as
/// long as the job.
struct Links;

impl Modify for Links {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let chains: [(&str, &str, &str, &str, &[&str]); 4] = [
            (
                "/api/tasks",
                "get",
                "200",
                "$response.body#/tasks/0/id",
                &["complete", "undo", "record"],
            ),
            (
                "/api/jobs",
                "post",
                "202",
                "$response.body#/id",
                &["get_job", "cancel"],
            ),
            (
                "/api/ingest",
                "post",
                "202",
                "$response.body#/id",
                &["get_job", "cancel"],
            ),
            (
                "/api/memory",
                "post",
                "201",
                "$response.body#/id",
                &["update_memory", "forget", "record"],
            ),
        ];
        for (path, method, status, id, targets) in chains {
            let Some(item) = openapi.paths.paths.get_mut(path) else {
                continue;
            };
            let op = if method == "get" {
                &mut item.get
            } else {
                &mut item.post
            };
            let Some(utoipa::openapi::RefOr::T(response)) = op
                .as_mut()
                .and_then(|op| op.responses.responses.get_mut(status))
            else {
                continue;
            };
            for target in targets {
                // utoipa 5 writes `operation_id` in snake case, which OpenAPI tools do not read:
                // the field goes in by its OpenAPI name instead.
                let link = utoipa::openapi::link::LinkBuilder::new()
                    .parameter("id", id)
                    .extensions(Some(utoipa::openapi::extensions::Extensions::from_iter([
                        ("operationId", *target),
                    ])))
                    .build();
                response.links.insert((*target).to_string(), link.into());
            }
        }
    }
}

fn problem_response(description: &str) -> utoipa::openapi::Response {
    utoipa::openapi::ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            utoipa::openapi::ContentBuilder::new()
                .schema(Some(utoipa::openapi::Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

/// A string schema of exactly `values` (for fields the server matches exactly).
fn one_of<'a>(values: impl IntoIterator<Item = &'a str>) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(values))
        .build()
}

/// Key roles.
pub(super) fn roles() -> utoipa::openapi::Object {
    one_of(opsweave::Role::ALL.iter().map(|r| r.as_str()))
}

/// Graph lanes.
pub(super) fn lanes() -> utoipa::openapi::Object {
    one_of(opsweave::Lane::ALL.iter().map(|l| l.as_str()))
}

/// Job states.
pub(super) fn job_statuses() -> utoipa::openapi::Object {
    one_of(opsweave::JobStatus::ALL.iter().map(|s| s.as_str()))
}

/// Usage groupings.
pub(super) fn usage_groups() -> utoipa::openapi::Object {
    one_of(["org", "client", "project", "model"])
}

/// Model call operations.
pub(super) fn operations() -> utoipa::openapi::Object {
    one_of(["embed", "chat"])
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

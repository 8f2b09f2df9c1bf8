//! What the API must refuse or survive whatever a caller sends: jobs that would make a worker
//! open server-side paths, absurd usage counts, keys reaching outside their client, and errors
//! that are not problems.

use super::*;
use base64::Engine as _;

/// A jira-issue mapping as the JSON object an inline ingest payload carries.
fn jira_mapping() -> Value {
    serde_json::to_value(opsweave::preset("jira-issue").unwrap()).unwrap()
}

#[tokio::test]
async fn jobs_queued_over_http_never_name_server_paths() {
    let s = Server::start(|_| {}).await;
    let member = s.key(&s.acme, "member").await;
    let issues: Value = serde_json::from_str::<Value>(JIRA).unwrap()["issues"].clone();
    let refused = [
        (
            json!({"kind": "ingest", "payload": {"file": "/etc/passwd", "preset": "odoo-crm-lead"}}),
            "payload.file",
        ),
        (
            json!({"kind": "ingest", "payload": {"mapping": "/etc/passwd", "rows": issues}}),
            "payload.mapping",
        ),
        (
            json!({"kind": "ingest", "payload": {"preset": "jira-issue", "rows": issues}}),
            "payload.preset",
        ),
        (
            json!({"kind": "ingest", "payload": "/etc/passwd"}),
            "payload",
        ),
        (
            json!({"kind": "ingest", "payload": {"mapping": jira_mapping()}}),
            "payload.rows",
        ),
        (
            json!({"kind": "embed", "payload": {"model": "onnx:/etc"}}),
            "payload.model",
        ),
    ];
    for (body, field) in refused {
        let (status, headers, problem) = s
            .call("POST", "/api/jobs", Some(&member), Some(body.clone()))
            .await;
        assert_problem(
            status,
            &headers,
            &problem,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        );
        assert_eq!(problem["field"], field, "{body}: {problem}");
    }
    let (_, _, jobs) = s.call("GET", "/api/jobs", Some(&member), None).await;
    assert_eq!(jobs["jobs"], json!([]), "nothing was queued: {jobs}");

    // The inline form (what /api/ingest queues) is accepted and runs.
    let (status, _, job) = s
        .call(
            "POST",
            "/api/jobs",
            Some(&member),
            Some(json!({"kind": "ingest", "payload": {"mapping": jira_mapping(), "rows": issues, "name": "jira.json"}})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let done = s.finish_job(&member, job["id"].as_i64().unwrap()).await;
    assert_eq!(done["status"], "done", "{done}");
    let content = base64::engine::general_purpose::STANDARD.encode(ODOO);
    let (status, _, job) = s
        .call(
            "POST",
            "/api/jobs",
            Some(&member),
            Some(json!({"kind": "ingest", "payload": {
                "mapping": serde_json::to_value(opsweave::preset("odoo-crm-lead").unwrap()).unwrap(),
                "content_b64": content, "format": "csv", "name": "odoo.csv"}})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let done = s.finish_job(&member, job["id"].as_i64().unwrap()).await;
    assert_eq!(done["status"], "done", "{done}");
}

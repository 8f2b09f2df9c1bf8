//! The embedder against a local server speaking OpenAI's wire format, scripted per test.
#![allow(clippy::unwrap_used)] // a test: a failed step should stop it loudly

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use opsweave_core::embed::{EmbedKind, Embedder};
use opsweave_core::ErrorKind;
use opsweave_openai::{OpenAiConfig, OpenAiEmbedder, RetryPolicy};
use serde_json::{json, Value};

/// What the server does with one request.
#[derive(Clone)]
enum Reply {
    /// 200 with a proper response: vectors of `dim` for each input (value = input length and
    /// position), indices reversed so the client must reorder.
    Ok { dim: usize },
    /// 200 with vectors of the wrong length.
    WrongDim { dim: usize },
    /// A status with an OpenAI-style error body and extra headers.
    Status {
        code: u16,
        message: &'static str,
        headers: Vec<(&'static str, String)>,
    },
    /// 200 with this raw body.
    Raw(&'static str),
    /// Waits this long, then answers like `Ok`.
    Slow { delay: Duration, dim: usize },
    /// 200 with a body of this many bytes (JSON whitespace after an opening brace).
    Huge(usize),
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    body: Value,
    authorization: Option<String>,
    at: std::time::Instant,
}

#[derive(Clone, Default)]
struct Script {
    replies: Arc<Mutex<VecDeque<Reply>>>,
    /// Used once the script runs out.
    fallback: Arc<Mutex<Option<Reply>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Script {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// The vector the mock gives an input: recognisable from the text and position.
fn vector_for(text: &str, dim: usize) -> Vec<f32> {
    (0..dim)
        .map(|j| text.len() as f32 + j as f32 / 1000.0)
        .collect()
}

fn tokens_of(inputs: &[Value]) -> u64 {
    inputs
        .iter()
        .map(|t| t.as_str().unwrap_or("").split_whitespace().count() as u64)
        .sum()
}

fn ok_body(inputs: &[Value], dim: usize) -> Value {
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .rev()
        .map(|(i, t)| {
            json!({"object": "embedding", "index": i,
                   "embedding": vector_for(t.as_str().unwrap_or(""), dim)})
        })
        .collect();
    let tokens = tokens_of(inputs);
    json!({"object": "list", "data": data, "model": "mock-embed",
           "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
}

async fn embeddings(State(script): State<Script>, headers: HeaderMap, body: String) -> Response {
    let body: Value = serde_json::from_str(&body).expect("client sent JSON");
    script.seen.lock().unwrap().push(Seen {
        body: body.clone(),
        authorization: headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned()),
        at: std::time::Instant::now(),
    });
    let reply = {
        let next = script.replies.lock().unwrap().pop_front();
        next.or_else(|| script.fallback.lock().unwrap().clone())
            .expect("the test scripted a reply for every request")
    };
    let inputs = body["input"].as_array().cloned().unwrap_or_default();
    match reply {
        Reply::Ok { dim } => axum::Json(ok_body(&inputs, dim)).into_response(),
        Reply::WrongDim { dim } => axum::Json(ok_body(&inputs, dim)).into_response(),
        Reply::Slow { delay, dim } => {
            tokio::time::sleep(delay).await;
            axum::Json(ok_body(&inputs, dim)).into_response()
        }
        Reply::Raw(text) => (StatusCode::OK, text).into_response(),
        Reply::Huge(size) => {
            let mut body = String::with_capacity(size);
            body.push('{');
            body.extend(std::iter::repeat_n(' ', size.saturating_sub(1)));
            (StatusCode::OK, body).into_response()
        }
        Reply::Status {
            code,
            message,
            headers,
        } => {
            let mut response = (
                StatusCode::from_u16(code).unwrap(),
                axum::Json(json!({"error": {"message": message, "type": "mock_error",
                                            "param": null, "code": null}})),
            )
                .into_response();
            for (name, value) in headers {
                response.headers_mut().insert(name, value.parse().unwrap());
            }
            response
        }
    }
}

/// Starts the mock on 127.0.0.1:0 with `replies`; returns its base URL and the script.
async fn serve(replies: Vec<Reply>, fallback: Option<Reply>) -> (String, Script) {
    let script = Script {
        replies: Arc::new(Mutex::new(replies.into())),
        fallback: Arc::new(Mutex::new(fallback)),
        seen: Arc::default(),
    };
    let app = Router::new()
        .route("/v1/embeddings", post(embeddings))
        .with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1"), script)
}

/// A config for the mock: a stated dimension and fast retries.
fn config(base_url: &str, dim: usize) -> OpenAiConfig {
    OpenAiConfig::new("mock-embed")
        .with_base_url(base_url)
        .with_dim(dim)
        .with_retry(RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            max_retry_after: Duration::from_secs(5),
        })
}

fn texts(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn status(code: u16, message: &'static str) -> Reply {
    Reply::Status {
        code,
        message,
        headers: Vec::new(),
    }
}

#[tokio::test]
async fn vectors_come_back_in_input_order_with_usage() {
    let (url, script) = serve(vec![Reply::Ok { dim: 4 }], None).await;
    let embedder = OpenAiEmbedder::new(config(&url, 4).with_api_key("sk-test-key")).unwrap();
    let input = texts(&["a", "renewal call", "the Q3 renewal for Acme"]);
    let out = embedder.embed(&input, EmbedKind::Query).await.unwrap();

    assert_eq!(out.vectors.len(), 3);
    for (text, vector) in input.iter().zip(&out.vectors) {
        assert_eq!(vector, &vector_for(text, 4), "vector of {text:?}");
    }
    assert_eq!(out.tokens, 1 + 2 + 5);
    assert_eq!(out.calls.len(), 1);
    assert_eq!(out.calls[0].embedding_tokens, 8);

    let seen = script.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].body,
        json!({"model": "mock-embed", "input": input, "encoding_format": "float"})
    );
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer sk-test-key"));
}

/// A text longer than the model takes (OpenAI answers 400 to it) is sent as pieces within the
/// limit and comes back as one vector: the pieces' vectors weighted by length, scaled to length
/// 1. Texts that fit go as they are.
#[tokio::test]
async fn a_text_over_the_model_limit_goes_in_pieces_and_comes_back_as_one_vector() {
    let (url, script) = serve(vec![Reply::Ok { dim: 4 }], None).await;
    // 8 tokens: pieces of at most 16 bytes.
    let embedder = OpenAiEmbedder::new(config(&url, 4).with_max_tokens(8)).unwrap();
    let long = "renewal terms for Acme were agreed on the call today".to_owned();
    let input = vec!["short one".to_owned(), long.clone(), "tail".to_owned()];
    let out = embedder.embed(&input, EmbedKind::Document).await.unwrap();

    let seen = script.seen();
    assert_eq!(seen.len(), 1, "one request for all the pieces");
    let sent: Vec<String> = seen[0].body["input"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert!(sent.iter().all(|p| p.len() <= 16), "{sent:?}");
    assert_eq!(sent.first().map(String::as_str), Some("short one"));
    assert_eq!(sent.last().map(String::as_str), Some("tail"));
    let pieces = &sent[1..sent.len() - 1];
    assert!(pieces.len() >= 4, "{pieces:?}");
    assert_eq!(pieces.concat(), long, "the pieces are the whole text");

    assert_eq!(out.vectors.len(), 3);
    assert_eq!(out.vectors[0], vector_for("short one", 4));
    assert_eq!(out.vectors[2], vector_for("tail", 4));
    let mut want = vec![0f64; 4];
    for piece in pieces {
        for (w, x) in want.iter_mut().zip(vector_for(piece, 4)) {
            *w += piece.len() as f64 * f64::from(x);
        }
    }
    let norm = want.iter().map(|x| x * x).sum::<f64>().sqrt();
    for (got, want) in out.vectors[1].iter().zip(&want) {
        assert!(
            (f64::from(*got) - want / norm).abs() < 1e-6,
            "{:?}",
            out.vectors[1]
        );
    }
    // Usage is what the server counted for every piece.
    assert_eq!(out.tokens, 2 + 10 + 1);
    assert_eq!(out.calls.len(), 1);
}

/// A server that sends far more than vectors of the model's size could take is refused once
/// the body passes the limit (about 1 MiB for one short vector), not read into memory whole.
#[tokio::test]
async fn an_oversized_response_is_refused() {
    let (url, script) = serve(vec![Reply::Huge(64 << 20)], None).await;
    let embedder = OpenAiEmbedder::new(config(&url, 2)).unwrap();
    let err = embedder
        .embed(&texts(&["renewal"]), EmbedKind::Query)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.message().contains("more than"), "{err}");
    assert_eq!(script.seen().len(), 1, "not retried");
    // A big honest answer (300 vectors of 1,536 values in one response) is within the limit.
    let (url, _script) = serve(vec![Reply::Ok { dim: 1_536 }], None).await;
    let embedder = OpenAiEmbedder::new(config(&url, 1_536)).unwrap();
    let many: Vec<String> = (0..300).map(|i| format!("record {i}")).collect();
    let out = embedder.embed(&many, EmbedKind::Document).await.unwrap();
    assert_eq!(out.vectors.len(), 300);
}

#[tokio::test]
async fn dimensions_are_sent_and_no_key_means_no_header() {
    let (url, script) = serve(vec![Reply::Ok { dim: 8 }], None).await;
    let embedder = OpenAiEmbedder::new(
        OpenAiConfig::new("text-embedding-3-small")
            .with_base_url(format!("{url}/"))
            .with_dimensions(8),
    )
    .unwrap();
    assert_eq!(embedder.info().dim, 8);
    assert_eq!(embedder.info().max_tokens, 8191);
    embedder
        .embed(&texts(&["x"]), EmbedKind::Document)
        .await
        .unwrap();
    let seen = script.seen();
    assert_eq!(seen[0].body["dimensions"], json!(8));
    assert_eq!(seen[0].authorization, None);
}

#[tokio::test]
async fn batches_split_by_count_and_token_budget_and_usage_sums() {
    let (url, script) = serve(Vec::new(), Some(Reply::Ok { dim: 3 })).await;
    let input: Vec<String> = (0..7).map(|i| format!("text number {i}")).collect();
    let embedder = OpenAiEmbedder::new(config(&url, 3).with_max_batch_inputs(3)).unwrap();
    let out = embedder.embed(&input, EmbedKind::Document).await.unwrap();
    let seen = script.seen();
    let sizes: Vec<usize> = seen
        .iter()
        .map(|s| s.body["input"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![3, 3, 1]);
    assert_eq!(out.calls.len(), 3);
    assert_eq!(out.tokens, 7 * 3);
    assert_eq!(
        out.calls
            .iter()
            .map(|c| c.embedding_tokens)
            .collect::<Vec<_>>(),
        vec![9, 9, 3]
    );
    for (text, vector) in input.iter().zip(&out.vectors) {
        assert_eq!(vector, &vector_for(text, 3));
    }

    // "text number N" is 13 bytes = 5 estimated tokens: a budget of 10 holds two per request.
    let (url, script) = serve(Vec::new(), Some(Reply::Ok { dim: 3 })).await;
    let embedder = OpenAiEmbedder::new(config(&url, 3).with_max_batch_tokens(10)).unwrap();
    let out = embedder.embed(&input, EmbedKind::Document).await.unwrap();
    let sizes: Vec<usize> = script
        .seen()
        .iter()
        .map(|s| s.body["input"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![2, 2, 2, 1]);
    assert_eq!(out.vectors.len(), 7);
    assert_eq!(out.vectors[6], vector_for(&input[6], 3));
}

#[tokio::test]
async fn concurrent_requests_keep_input_order() {
    let (url, script) = serve(Vec::new(), Some(Reply::Ok { dim: 2 })).await;
    let input: Vec<String> = (0..50).map(|i| "w ".repeat(i + 1)).collect();
    let embedder = OpenAiEmbedder::new(
        config(&url, 2)
            .with_max_batch_inputs(4)
            .with_max_concurrent_requests(4),
    )
    .unwrap();
    let out = embedder.embed(&input, EmbedKind::Document).await.unwrap();
    assert_eq!(script.seen().len(), 13);
    for (text, vector) in input.iter().zip(&out.vectors) {
        assert_eq!(vector, &vector_for(text, 2));
    }
}

/// The tokens of each model call an error reports as spent before it.
fn spent_tokens(err: &opsweave_core::Error) -> Vec<u64> {
    err.spent().iter().map(|c| c.embedding_tokens).collect()
}

#[tokio::test]
async fn a_failed_request_reports_the_calls_answered_before_it_and_sends_no_more() {
    let (url, script) = serve(
        vec![
            Reply::Ok { dim: 2 },
            Reply::Ok { dim: 2 },
            status(400, "input 2 is too long"),
        ],
        Some(Reply::Ok { dim: 2 }),
    )
    .await;
    let embedder = OpenAiEmbedder::new(config(&url, 2).with_max_batch_inputs(1)).unwrap();
    let input = texts(&["one", "two words", "three more words", "four"]);
    let err = embedder
        .embed(&input, EmbedKind::Document)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert_eq!(script.seen().len(), 3, "no request after the failure");
    assert_eq!(spent_tokens(&err), vec![1, 2], "{err:?}");
    assert!(err.spent().iter().all(|c| c.latency_ms < 60_000));
}

#[tokio::test]
async fn requests_in_flight_when_one_fails_are_awaited_and_reported() {
    // Four requests at once: whichever arrives first fails at once, the other three answer
    // later, and each of them is billed.
    let (url, script) = serve(
        vec![status(400, "rejected")],
        Some(Reply::Slow {
            delay: Duration::from_millis(150),
            dim: 2,
        }),
    )
    .await;
    let embedder = OpenAiEmbedder::new(
        config(&url, 2)
            .with_max_batch_inputs(1)
            .with_max_concurrent_requests(4),
    )
    .unwrap();
    let input = texts(&["a", "a b", "a b c", "a b c d", "a b c d e", "f"]);
    let err = embedder
        .embed(&input, EmbedKind::Document)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let seen = script.seen();
    assert_eq!(seen.len(), 4, "the two batches not yet sent never are");
    let first = seen[0].body["input"][0].as_str().unwrap();
    let mut answered: Vec<u64> = seen[1..]
        .iter()
        .map(|s| {
            s.body["input"][0]
                .as_str()
                .unwrap()
                .split_whitespace()
                .count() as u64
        })
        .collect();
    answered.sort_unstable();
    let mut spent = spent_tokens(&err);
    spent.sort_unstable();
    assert_eq!(spent, answered, "the failed request was {first:?}");
}

#[tokio::test]
async fn an_answer_refused_after_it_was_billed_reports_its_call() {
    // (A wrong dimension reports its call too: a_wrong_dimension_is_an_error_not_a_vector.)
    for raw in [
        r#"{"data": [], "usage": {"prompt_tokens": 7, "total_tokens": 7}}"#,
        r#"{"data": "not a list", "usage": {"prompt_tokens": 7, "total_tokens": 7}}"#,
    ] {
        let (url, _script) = serve(vec![Reply::Raw(raw)], None).await;
        let embedder = OpenAiEmbedder::new(config(&url, 2)).unwrap();
        let err = embedder
            .embed(&texts(&["a", "b"]), EmbedKind::Document)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{raw}: {err}");
        assert_eq!(spent_tokens(&err), vec![7], "{raw}");
    }
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_then_succeeds() {
    let (url, script) = serve(
        vec![
            Reply::Status {
                code: 429,
                message: "Rate limit reached",
                headers: vec![("retry-after", "1".to_owned())],
            },
            Reply::Ok { dim: 2 },
        ],
        None,
    )
    .await;
    let embedder = OpenAiEmbedder::new(config(&url, 2)).unwrap();
    let out = embedder
        .embed(&texts(&["hello"]), EmbedKind::Document)
        .await
        .unwrap();
    assert_eq!(out.vectors, vec![vector_for("hello", 2)]);
    assert_eq!(
        out.calls.len(),
        1,
        "only the request that returned vectors is a call"
    );
    let seen = script.seen();
    assert_eq!(seen.len(), 2);
    // The client's own backoff is at most 5 ms here; a gap of about a second is Retry-After.
    let gap = seen[1].at - seen[0].at;
    assert!(gap >= Duration::from_millis(950), "waited only {gap:?}");
}

#[tokio::test]
async fn retry_after_ms_is_honoured() {
    let (url, script) = serve(
        vec![
            Reply::Status {
                code: 429,
                message: "slow down",
                headers: vec![
                    ("retry-after-ms", "300".to_owned()),
                    ("retry-after", "60".to_owned()),
                ],
            },
            Reply::Ok { dim: 2 },
        ],
        None,
    )
    .await;
    let embedder = OpenAiEmbedder::new(config(&url, 2)).unwrap();
    embedder
        .embed(&texts(&["hello"]), EmbedKind::Document)
        .await
        .unwrap();
    let seen = script.seen();
    let gap = seen[1].at - seen[0].at;
    assert!(gap >= Duration::from_millis(290), "waited only {gap:?}");
    // The 60 s Retry-After was not used (the test would have timed out in practice).
    assert!(gap < Duration::from_secs(30), "waited {gap:?}");
}

#[tokio::test]
async fn two_500s_then_success_takes_three_attempts() {
    let (url, script) = serve(
        vec![
            status(500, "internal"),
            status(502, "bad gateway"),
            Reply::Ok { dim: 2 },
        ],
        None,
    )
    .await;
    let embedder = OpenAiEmbedder::new(config(&url, 2)).unwrap();
    let out = embedder
        .embed(&texts(&["a b", "c"]), EmbedKind::Document)
        .await
        .unwrap();
    assert_eq!(script.seen().len(), 3);
    assert_eq!(out.vectors.len(), 2);
    assert_eq!(out.calls.len(), 1);
    assert_eq!(out.tokens, 3);
}

#[tokio::test]
async fn persistent_500_is_unavailable_after_max_attempts() {
    let (url, script) = serve(Vec::new(), Some(status(503, "overloaded right now"))).await;
    let embedder = OpenAiEmbedder::new(config(&url, 2).with_max_attempts(3)).unwrap();
    let err = embedder
        .embed(&texts(&["a"]), EmbedKind::Document)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.message().contains("3 time(s)"), "{err}");
    assert!(err.message().contains("overloaded right now"), "{err}");
    assert_eq!(script.seen().len(), 3);
}

#[tokio::test]
async fn a_retry_after_beyond_the_limit_stops_at_once() {
    let (url, script) = serve(
        vec![Reply::Status {
            code: 429,
            message: "quota",
            headers: vec![("retry-after", "3600".to_owned())],
        }],
        None,
    )
    .await;
    let embedder = OpenAiEmbedder::new(config(&url, 2)).unwrap();
    let err = embedder
        .embed(&texts(&["a"]), EmbedKind::Document)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.message().contains("3600"), "{err}");
    assert_eq!(script.seen().len(), 1);
}

#[tokio::test]
async fn a_401_is_unauthorized_names_the_server_and_never_the_key() {
    let (url, script) = serve(
        vec![status(
            401,
            "Incorrect API key provided: sk-sec***4242. You can find your API key at \
             https://platform.openai.com/account/api-keys.",
        )],
        None,
    )
    .await;
    let key = "sk-secret-key-4242";
    let embedder = OpenAiEmbedder::new(config(&url, 2).with_api_key(key)).unwrap();
    let err = embedder
        .embed(&texts(&["a"]), EmbedKind::Document)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    let shown = format!("{err} {err:?}");
    assert!(shown.contains(&url), "{shown}");
    assert!(!shown.contains(key), "{shown}");
    assert!(!shown.contains("4242"), "{shown}");
    assert!(!format!("{embedder:?}").contains(key));
    assert_eq!(script.seen().len(), 1, "401 is not retried");
}

#[tokio::test]
async fn a_403_is_unauthorized_too() {
    let (url, _script) = serve(vec![status(403, "not allowed in this project")], None).await;
    let embedder = OpenAiEmbedder::new(config(&url, 2)).unwrap();
    let err = embedder
        .embed(&texts(&["a"]), EmbedKind::Document)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert!(err.message().contains("no API key was set"), "{err}");
}

#[tokio::test]
async fn a_400_is_invalid_input_with_the_server_message() {
    let (url, script) = serve(
        vec![status(
            400,
            "This model's maximum context length is 8192 tokens",
        )],
        None,
    )
    .await;
    let embedder = OpenAiEmbedder::new(config(&url, 2)).unwrap();
    let err = embedder
        .embed(&texts(&["a", "b"]), EmbedKind::Document)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("maximum context length"), "{err}");
    assert!(err.message().contains("inputs 0..2"), "{err}");
    assert_eq!(script.seen().len(), 1);
}

#[tokio::test]
async fn a_404_is_not_found_naming_the_model() {
    let (url, _script) = serve(
        vec![status(404, "The model `mock-embed` does not exist")],
        None,
    )
    .await;
    let embedder = OpenAiEmbedder::new(config(&url, 2)).unwrap();
    let err = embedder
        .embed(&texts(&["a"]), EmbedKind::Document)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.message().contains("`mock-embed`"), "{err}");
}

#[tokio::test]
async fn a_wrong_dimension_is_an_error_not_a_vector() {
    let (url, _script) = serve(vec![Reply::WrongDim { dim: 3 }], None).await;
    let embedder = OpenAiEmbedder::new(config(&url, 4)).unwrap();
    let err = embedder
        .embed(&texts(&["a b", "c"]), EmbedKind::Document)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(spent_tokens(&err), vec![3], "the refused answer was billed");
    assert!(err.message().contains("3-dimensional"), "{err}");
    assert!(err.message().contains("4 dimensions"), "{err}");
}

#[tokio::test]
async fn malformed_or_incomplete_responses_are_errors() {
    // With the calls each reports as spent: a body that parses is an answered call (it names
    // no usage: the estimate of its two one-byte inputs, 2 tokens); one that does not parse
    // says nothing of its cost.
    for (raw, spent) in [
        ("{not json", vec![]),
        (r#"{"data": [{"index": 0, "embedding": "AAAA"}]}"#, vec![]),
        (r#"{"data": []}"#, vec![2]),
        (
            r#"{"data": [{"index": 0, "embedding": [1.0, 2.0]}, {"index": 0, "embedding": [1.0, 2.0]}]}"#,
            vec![2],
        ),
        (
            r#"{"data": [{"index": 0, "embedding": [1.0, 2.0]}, {"index": 5, "embedding": [1.0, 2.0]}]}"#,
            vec![2],
        ),
    ] {
        let (url, script) = serve(vec![Reply::Raw(raw)], None).await;
        let embedder = OpenAiEmbedder::new(config(&url, 2)).unwrap();
        let err = embedder
            .embed(&texts(&["a", "b"]), EmbedKind::Document)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{raw}: {err}");
        assert!(err.message().contains(&url), "{err}");
        assert_eq!(script.seen().len(), 1, "{raw} is not retried");
        assert_eq!(spent_tokens(&err), spent, "{raw}: {err:?}");
    }
}

/// A server that reports no usage (or zeros) is metered by the estimate of what it was sent
/// (one token per three bytes, rounding up), not as free.
#[tokio::test]
async fn a_response_without_usage_is_metered_by_an_estimate() {
    for raw in [
        r#"{"data": [{"index": 0, "embedding": [1.0, 2.0]}, {"index": 1, "embedding": [3.0, 4.0]}]}"#,
        r#"{"data": [{"index": 0, "embedding": [1.0, 2.0]}, {"index": 1, "embedding": [3.0, 4.0]}], "usage": {"prompt_tokens": 0, "total_tokens": 0}}"#,
    ] {
        let (url, _script) = serve(vec![Reply::Raw(raw)], None).await;
        let embedder = OpenAiEmbedder::new(config(&url, 2)).unwrap();
        // 12 bytes = 4 tokens, 7 bytes = 3 (rounded up).
        let out = embedder
            .embed(&texts(&["renewal call", "for Q3!"]), EmbedKind::Document)
            .await
            .unwrap();
        assert_eq!(out.tokens, 7, "{raw}");
        assert_eq!(out.calls[0].embedding_tokens, 7, "{raw}");
    }
}

#[tokio::test]
async fn a_timeout_is_retried_then_reported() {
    let slow = Reply::Slow {
        delay: Duration::from_secs(3),
        dim: 2,
    };
    let (url, script) = serve(Vec::new(), Some(slow)).await;
    let embedder = OpenAiEmbedder::new(
        config(&url, 2)
            .with_request_timeout(Duration::from_millis(200))
            .with_max_attempts(2),
    )
    .unwrap();
    let err = embedder
        .embed(&texts(&["a"]), EmbedKind::Document)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.message().contains("no response within 0.2s"), "{err}");
    assert_eq!(script.seen().len(), 2);

    // A slow first answer, then a quick one: the retry succeeds.
    let (url, _script) = serve(
        vec![
            Reply::Slow {
                delay: Duration::from_secs(3),
                dim: 2,
            },
            Reply::Ok { dim: 2 },
        ],
        None,
    )
    .await;
    let embedder =
        OpenAiEmbedder::new(config(&url, 2).with_request_timeout(Duration::from_millis(200)))
            .unwrap();
    let out = embedder
        .embed(&texts(&["a"]), EmbedKind::Document)
        .await
        .unwrap();
    assert_eq!(out.vectors.len(), 1);
}

#[tokio::test]
async fn a_refused_connection_is_unavailable_after_retries() {
    // Bind then drop a listener so the port is very likely closed.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let embedder =
        OpenAiEmbedder::new(config(&format!("http://127.0.0.1:{port}/v1"), 2).with_max_attempts(2))
            .unwrap();
    let err = embedder
        .embed(&texts(&["a"]), EmbedKind::Document)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.message().contains("connection failed"), "{err}");
    assert!(err.message().contains("2 time(s)"), "{err}");
}

#[tokio::test]
async fn empty_text_is_invalid_input_naming_its_index_and_sends_nothing() {
    let (url, script) = serve(Vec::new(), Some(Reply::Ok { dim: 2 })).await;
    let embedder = OpenAiEmbedder::new(config(&url, 2)).unwrap();
    let err = embedder
        .embed(&texts(&["a", "b", ""]), EmbedKind::Document)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("text 2"), "{err}");
    assert!(script.seen().is_empty());
    let out = embedder.embed(&[], EmbedKind::Document).await.unwrap();
    assert!(out.vectors.is_empty() && out.calls.is_empty());
}

#[tokio::test]
async fn connect_probes_an_unknown_models_dimension() {
    let (url, script) = serve(vec![Reply::Ok { dim: 5 }; 3], None).await;
    let embedder =
        OpenAiEmbedder::connect(OpenAiConfig::new("nomic-embed-text").with_base_url(&url))
            .await
            .unwrap();
    assert_eq!(embedder.info().dim, 5);
    assert_eq!(embedder.info().name, "nomic-embed-text");
    assert_eq!(script.seen().len(), 1);
    // The probe was billed (1 token): the first embed call reports it with its own (3 tokens),
    // so it is metered; later calls report only themselves, clones included.
    let first = embedder
        .embed(&["one two three".to_owned()], EmbedKind::Document)
        .await
        .unwrap();
    let tokens: Vec<u64> = first.calls.iter().map(|c| c.embedding_tokens).collect();
    assert_eq!((tokens, first.tokens), (vec![1, 3], 4));
    let second = embedder
        .clone()
        .embed(&["four five".to_owned()], EmbedKind::Document)
        .await
        .unwrap();
    let tokens: Vec<u64> = second.calls.iter().map(|c| c.embedding_tokens).collect();
    assert_eq!((tokens, second.tokens), (vec![2], 2));

    // A known dimension needs no probe.
    let (url, script) = serve(Vec::new(), None).await;
    let embedder = OpenAiEmbedder::connect(config(&url, 7)).await.unwrap();
    assert_eq!(embedder.info().dim, 7);
    assert!(script.seen().is_empty());
}

//! The [`Embedder`] over `POST {base_url}/embeddings`: batch, send with retries, check, reorder.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use futures::StreamExt;
use opsweave_core::embed::{EmbedKind, Embedder, Embeddings, ModelInfo};
use opsweave_core::{Error, ErrorKind, ModelCall, Result};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};

use crate::config::{known_model, ApiKey, OpenAiConfig, OPENAI_MAX_TOKENS};
use crate::retry::{backoff, is_retryable, server_wait};

/// Embeds texts through OpenAI's embeddings API or any server that speaks it (vLLM, llama.cpp,
/// Ollama, LiteLLM, Text Embeddings Inference, …).
///
/// Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct OpenAiEmbedder {
    client: Arc<Client>,
    /// Billed calls no embed call has reported yet (the dimension probe of
    /// [`connect`](Self::connect)): the next embed call's [`Embeddings`] carries them, so
    /// they are metered to the scope that first uses the model. Shared by clones.
    owed: Arc<std::sync::Mutex<Vec<ModelCall>>>,
}

impl std::fmt::Debug for OpenAiEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiEmbedder")
            .field("endpoint", &self.client.endpoint.as_str())
            .field("info", &self.client.info)
            .field("has_api_key", &self.client.config.api_key.is_some())
            .finish_non_exhaustive()
    }
}

struct Client {
    http: reqwest::Client,
    endpoint: Url,
    config: OpenAiConfig,
    info: ModelInfo,
}

/// The request body of `POST /embeddings`.
#[derive(Serialize)]
struct EmbeddingRequest<'a> {
    model: &'a str,
    input: &'a [String],
    encoding_format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<usize>,
}

/// The response body of `POST /embeddings` (fields this crate reads).
#[derive(Deserialize)]
struct EmbeddingResponse {
    data: Vec<EmbeddingItem>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    index: usize,
    embedding: Vec<f32>,
}

/// Only the usage of a response whose other fields did not parse.
#[derive(Deserialize)]
struct UsageOnly {
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize, Default)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    total_tokens: u64,
}

/// What one answered request cost: the tokens the server counted and the wall time.
fn model_call(usage: &Usage, latency: Duration) -> ModelCall {
    ModelCall {
        embedding_tokens: usage.total_tokens.max(usage.prompt_tokens),
        latency_ms: u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
        ..ModelCall::default()
    }
}

/// The usage to meter an embeddings response by: the server's, or when it reports none (some
/// compatible servers leave `usage` out or send zeros) the estimate [`estimated_tokens`] makes
/// of `inputs`, which errs high, rather than metering the call as free.
fn usage_or_estimate(usage: Option<Usage>, inputs: &[String]) -> Usage {
    match usage {
        Some(u) if u.total_tokens.max(u.prompt_tokens) > 0 => u,
        _ => {
            let estimate = inputs.iter().map(|t| estimated_tokens(t) as u64).sum();
            Usage {
                prompt_tokens: estimate,
                total_tokens: estimate,
            }
        }
    }
}

/// Vectors of one batch, in the batch's order, and what the call cost.
struct BatchResult {
    vectors: Vec<Vec<f32>>,
    call: ModelCall,
}

impl OpenAiEmbedder {
    /// Checks the configuration and builds the HTTP client; sends nothing.
    ///
    /// The vector dimension must be known: from `dimensions`, `dim`, or because the model is
    /// one of OpenAI's (`text-embedding-3-small`, `-3-large`, `ada-002`). For other models use
    /// [`connect`](Self::connect), which asks the server.
    pub fn new(config: OpenAiConfig) -> Result<Self> {
        let dim = resolve_dim(&config)?.ok_or_else(|| {
            Error::invalid(format!(
                "the vector dimension of model `{}` is not known: set `dim` (or `dimensions`), \
                 or open it with `OpenAiEmbedder::connect`, which asks the server",
                config.model
            ))
        })?;
        Self::build(config, dim)
    }

    /// Like [`new`](Self::new), but when the dimension is not known it embeds one probe text to
    /// learn it (one billed request of a few tokens).
    pub async fn connect(config: OpenAiConfig) -> Result<Self> {
        if let Some(dim) = resolve_dim(&config)? {
            return Self::build(config, dim);
        }
        let mut client = Client::build(config, 0)?;
        let probe = client.send_batch(&["opsweave".to_owned()], 0..1).await?;
        let dim = probe.vectors.first().map_or(0, Vec::len);
        if dim == 0 {
            return Err(Error::unavailable(format!(
                "{} returned an empty vector for a probe text with model `{}`",
                client.endpoint, client.config.model
            )));
        }
        client.info.dim = dim;
        Ok(Self {
            client: Arc::new(client),
            owed: Arc::new(std::sync::Mutex::new(vec![probe.call])),
        })
    }

    /// The URL requests go to.
    pub fn endpoint(&self) -> &str {
        self.client.endpoint.as_str()
    }

    fn build(config: OpenAiConfig, dim: usize) -> Result<Self> {
        Ok(Self {
            client: Arc::new(Client::build(config, dim)?),
            owed: Arc::default(),
        })
    }

    /// Takes the calls still to be reported (see `owed`).
    fn take_owed(&self) -> Vec<ModelCall> {
        // A poisoned lock only means a panic elsewhere while it was held: the list is intact.
        std::mem::take(&mut *self.owed.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    fn info(&self) -> &ModelInfo {
        &self.client.info
    }

    /// Embeds `texts` in as few requests as the limits allow. The API has no query/document
    /// distinction, so `kind` is not sent.
    async fn embed(&self, texts: &[String], _kind: EmbedKind) -> Result<Embeddings> {
        if let Some(i) = texts.iter().position(String::is_empty) {
            return Err(Error::invalid(format!(
                "text {i} is empty: the embeddings API rejects empty input"
            )));
        }
        if texts.is_empty() {
            return Ok(Embeddings::default());
        }
        // Texts longer than the model takes go as pieces, their vectors combined afterwards.
        let pieces = split_long_texts(texts, self.client.info.max_tokens);
        let (inputs, owners) = match &pieces {
            Some((inputs, owners)) => (inputs.as_slice(), Some(owners.as_slice())),
            None => (texts, None),
        };
        let config = &self.client.config;
        let batches = plan_batches(inputs, config.max_batch_inputs, config.max_batch_tokens);
        // After a failure no new request starts, but those already sent are awaited: the
        // server bills them, so their calls go back with the error to be metered.
        let failed = AtomicBool::new(false);
        let mut sent = futures::stream::iter(batches)
            .map(|range| {
                let failed = &failed;
                async move {
                    if failed.load(Ordering::Relaxed) {
                        return None;
                    }
                    // Messages name the caller's texts, not the pieces.
                    let texts_range = match owners {
                        Some(owners) => owners[range.start]..owners[range.end - 1] + 1,
                        None => range.clone(),
                    };
                    Some(self.client.send_batch(&inputs[range], texts_range).await)
                }
            })
            .buffered(config.max_concurrent_requests);
        let mut results = Vec::new();
        let mut error: Option<Error> = None;
        let owed = self.take_owed();
        while let Some(outcome) = sent.next().await {
            match outcome {
                Some(Ok(result)) => results.push(result),
                Some(Err(e)) => {
                    failed.store(true, Ordering::Relaxed);
                    error = Some(match error {
                        Some(first) => first.with_spent(e.spent().iter().copied()),
                        None => e,
                    });
                }
                None => {}
            }
        }
        if let Some(e) = error {
            return Err(e.with_spent(owed.into_iter().chain(results.into_iter().map(|r| r.call))));
        }
        let mut out = Embeddings {
            vectors: Vec::with_capacity(texts.len()),
            tokens: owed.iter().map(|c| c.embedding_tokens).sum(),
            calls: owed,
        };
        for result in results {
            out.vectors.extend(result.vectors);
            out.tokens += result.call.embedding_tokens;
            out.calls.push(result.call);
        }
        if let Some((inputs, owners)) = &pieces {
            out.vectors = combine_pieces(texts.len(), inputs, owners, out.vectors);
        }
        Ok(out)
    }
}

impl Client {
    /// Checks the configuration and builds the HTTP client; `dim` 0 means "not known yet".
    fn build(config: OpenAiConfig, dim: usize) -> Result<Self> {
        validate(&config)?;
        let endpoint = endpoint(&config.base_url)?;
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("opsweave/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                Error::internal(format!("cannot build the HTTP client: {e}")).with_source(e)
            })?;
        let info = ModelInfo {
            name: config.model.clone(),
            dim,
            max_tokens: config
                .max_tokens
                .or_else(|| known_model(&config.model).map(|m| m.max_tokens))
                .unwrap_or(OPENAI_MAX_TOKENS),
            // A server says nothing that identifies its weights: the model name stands for them.
            fingerprint: None,
        };
        Ok(Self {
            http,
            endpoint,
            config,
            info,
        })
    }

    /// Sends one batch (`range` is its place in the caller's input, for messages), retrying as
    /// the policy says. A dimension of 0 in `info` means "not known yet": any length is taken.
    async fn send_batch(&self, texts: &[String], range: Range<usize>) -> Result<BatchResult> {
        let body = EmbeddingRequest {
            model: &self.config.model,
            input: texts,
            encoding_format: "float",
            dimensions: self.config.dimensions,
        };
        let policy = &self.config.retry;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let last = attempt >= policy.max_attempts;
            let failure = match self.attempt(&body, texts.len(), &range).await {
                Ok(result) => return Ok(result),
                Err(Attempt::Fatal(err)) => return Err(err),
                Err(Attempt::Retryable { reason, wait }) => (reason, wait),
            };
            let (reason, wait) = failure;
            if last {
                return Err(Error::unavailable(format!(
                    "{} failed {attempt} time(s) for inputs {}..{}; last: {reason}",
                    self.endpoint, range.start, range.end
                )));
            }
            let delay = match wait {
                Some(asked) if asked > policy.max_retry_after => {
                    return Err(Error::unavailable(format!(
                        "{} asked to wait {:.1}s before retrying (more than the {:.0}s allowed) \
                         for inputs {}..{}; last: {reason}",
                        self.endpoint,
                        asked.as_secs_f64(),
                        policy.max_retry_after.as_secs_f64(),
                        range.start,
                        range.end
                    )));
                }
                Some(asked) => asked,
                None => backoff(policy, attempt),
            };
            tokio::time::sleep(delay).await;
        }
    }

    /// One HTTP exchange.
    async fn attempt(
        &self,
        body: &EmbeddingRequest<'_>,
        count: usize,
        range: &Range<usize>,
    ) -> std::result::Result<BatchResult, Attempt> {
        let started = Instant::now();
        let mut request = self
            .http
            .post(self.endpoint.clone())
            .timeout(self.config.request_timeout)
            .json(body);
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key.expose());
        }
        let response = request.send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        let wait = server_wait(response.headers(), SystemTime::now());
        let bytes = self.read_body(response, count).await?;
        let latency = started.elapsed();
        if !status.is_success() {
            let message = redact(&server_message(&bytes), self.config.api_key.as_ref());
            return Err(self.status_error(status, message, wait, range));
        }
        let parsed: EmbeddingResponse = serde_json::from_slice(&bytes).map_err(|e| {
            // A response whose vectors do not parse may still say what it cost.
            let spent = serde_json::from_slice::<UsageOnly>(&bytes)
                .ok()
                .and_then(|u| u.usage)
                .map(|u| model_call(&u, latency));
            Attempt::Fatal(
                Error::unavailable(format!(
                    "{} sent a response that is not an embeddings response (inputs {}..{}): {e}",
                    self.endpoint, range.start, range.end
                ))
                .with_source(e)
                .with_spent(spent),
            )
        })?;
        let call = model_call(&usage_or_estimate(parsed.usage, body.input), latency);
        match self.order(parsed.data, count, range) {
            Ok(vectors) => Ok(BatchResult { vectors, call }),
            // The server answered, so the call is billed even though its vectors are refused.
            Err(e) => Err(Attempt::Fatal(e.with_spent([call]))),
        }
    }

    /// Reads a response body of at most [`body_limit`] bytes: a server that sends more is
    /// refused before it fills memory.
    async fn read_body(
        &self,
        mut response: reqwest::Response,
        count: usize,
    ) -> std::result::Result<Vec<u8>, Attempt> {
        let limit = body_limit(count, self.info.dim);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport(e))? {
            if body.len() + chunk.len() > limit {
                return Err(Attempt::Fatal(Error::unavailable(format!(
                    "{} sent a response of more than {limit} bytes for {count} input(s); \
                     refused before reading the rest",
                    self.endpoint
                ))));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Puts the vectors in input order and checks count, indices and dimension.
    fn order(
        &self,
        data: Vec<EmbeddingItem>,
        count: usize,
        range: &Range<usize>,
    ) -> Result<Vec<Vec<f32>>> {
        let from = || format!("{} (inputs {}..{})", self.endpoint, range.start, range.end);
        if data.len() != count {
            return Err(Error::unavailable(format!(
                "{} returned {} vectors for {count} texts",
                from(),
                data.len()
            )));
        }
        let mut slots: Vec<Option<Vec<f32>>> = vec![None; count];
        for item in data {
            let slot = slots.get_mut(item.index).ok_or_else(|| {
                Error::unavailable(format!(
                    "{} returned index {} for a batch of {count}",
                    from(),
                    item.index
                ))
            })?;
            if slot.is_some() {
                return Err(Error::unavailable(format!(
                    "{} returned index {} twice",
                    from(),
                    item.index
                )));
            }
            let dim = self.info.dim;
            if dim != 0 && item.embedding.len() != dim {
                return Err(Error::invalid(format!(
                    "{} returned a {}-dimensional vector for text {}, but model `{}` is \
                     configured for {dim} dimensions",
                    from(),
                    item.embedding.len(),
                    range.start + item.index,
                    self.config.model
                )));
            }
            if item.embedding.is_empty() || item.embedding.iter().any(|x| !x.is_finite()) {
                return Err(Error::unavailable(format!(
                    "{} returned an empty or non-finite vector for text {}",
                    from(),
                    range.start + item.index
                )));
            }
            *slot = Some(item.embedding);
        }
        // Count matched and no index repeated, so every slot is filled.
        let vectors: Vec<Vec<f32>> = slots.into_iter().flatten().collect();
        if let Some(first) = vectors.first() {
            if vectors.iter().any(|v| v.len() != first.len()) {
                return Err(Error::unavailable(format!(
                    "{} returned vectors of different lengths in one response",
                    from()
                )));
            }
        }
        Ok(vectors)
    }

    /// Maps a transport failure: timeouts and connection failures are worth retrying.
    fn transport(&self, e: reqwest::Error) -> Attempt {
        // reqwest's message includes the URL, which never carries the key (it goes in a header).
        if e.is_timeout() {
            Attempt::Retryable {
                reason: format!(
                    "no response within {:.1}s",
                    self.config.request_timeout.as_secs_f64()
                ),
                wait: None,
            }
        } else if e.is_connect() || e.is_request() || e.is_body() || e.is_decode() {
            Attempt::Retryable {
                reason: format!("connection failed: {}", error_chain(&e)),
                wait: None,
            }
        } else {
            Attempt::Fatal(
                Error::internal(format!("request to {} failed: {e}", self.endpoint)).with_source(e),
            )
        }
    }

    fn status_error(
        &self,
        status: StatusCode,
        message: String,
        wait: Option<Duration>,
        range: &Range<usize>,
    ) -> Attempt {
        if is_retryable(status) {
            return Attempt::Retryable {
                reason: format!("{status}: {message}"),
                wait,
            };
        }
        let base = &self.config.base_url;
        let err = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::new(
                ErrorKind::Unauthorized,
                format!(
                    "{base} refused the request ({status}){}: {message}",
                    if self.config.api_key.is_some() {
                        "; check the API key"
                    } else {
                        "; no API key was set (OPENAI_API_KEY)"
                    }
                ),
            ),
            StatusCode::NOT_FOUND => Error::not_found(format!(
                "{} has no model `{}` or no embeddings endpoint ({status}): {message}",
                base, self.config.model
            )),
            _ => Error::invalid(format!(
                "{base} rejected inputs {}..{} ({status}): {message}",
                range.start, range.end
            )),
        };
        Attempt::Fatal(err)
    }
}

/// How one attempt failed.
enum Attempt {
    /// Do not try again.
    Fatal(Error),
    /// Try again, after `wait` when the server named it.
    Retryable {
        reason: String,
        wait: Option<Duration>,
    },
}

/// The dimension the configuration fixes, if any.
fn resolve_dim(config: &OpenAiConfig) -> Result<Option<usize>> {
    match (config.dimensions, config.dim) {
        (Some(asked), Some(stated)) if asked != stated => Err(Error::invalid(format!(
            "`dimensions` ({asked}) and `dim` ({stated}) disagree for model `{}`",
            config.model
        ))),
        (Some(0), _) | (_, Some(0)) => Err(Error::invalid(format!(
            "the vector dimension of model `{}` must be at least 1",
            config.model
        ))),
        (Some(d), _) | (None, Some(d)) => Ok(Some(d)),
        (None, None) => Ok(known_model(&config.model).map(|m| m.dim)),
    }
}

fn validate(config: &OpenAiConfig) -> Result<()> {
    let bad = |what: &str| Err(Error::invalid(format!("OpenAI embedder: {what}")));
    if config.model.trim().is_empty() {
        return bad("the model name is empty");
    }
    if config.max_batch_inputs == 0 {
        return bad("`max_batch_inputs` must be at least 1");
    }
    if config.max_batch_tokens == 0 {
        return bad("`max_batch_tokens` must be at least 1");
    }
    if config.max_concurrent_requests == 0 {
        return bad("`max_concurrent_requests` must be at least 1");
    }
    if config.retry.max_attempts == 0 {
        return bad("`retry.max_attempts` must be at least 1");
    }
    if config.request_timeout.is_zero() || config.connect_timeout.is_zero() {
        return bad("timeouts must be longer than zero");
    }
    if let Some(key) = &config.api_key {
        // A key with a newline or other control character cannot be sent in a header.
        if key.expose().is_empty() || key.expose().chars().any(char::is_control) {
            return bad("the API key is empty or holds control characters");
        }
    }
    Ok(())
}

/// `{base_url}/embeddings`, from a base URL with or without a trailing slash.
fn endpoint(base_url: &str) -> Result<Url> {
    let trimmed = base_url.trim().trim_end_matches('/');
    let url = Url::parse(&format!("{trimmed}/embeddings")).map_err(|e| {
        Error::invalid(format!("base URL `{base_url}` is not a URL: {e}")).with_source(e)
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::invalid(format!(
            "base URL `{base_url}` must be http:// or https://"
        )));
    }
    Ok(url)
}

/// The most bytes a response to `count` inputs of `dim` dimensions may hold: 32 bytes a value
/// (a float as JSON text takes at most ~25 with its comma) plus 1 KiB an input and 1 MiB for the
/// rest. A dimension not known yet (0) counts as 16,384; error bodies are far smaller.
fn body_limit(count: usize, dim: usize) -> usize {
    let dim = if dim == 0 { 16_384 } else { dim };
    count
        .saturating_mul(dim.saturating_mul(32).saturating_add(1_024))
        .saturating_add(1 << 20)
}

/// Estimated tokens of a text: one per three bytes, rounding up (see
/// [`OpenAiConfig::max_batch_tokens`]).
fn estimated_tokens(text: &str) -> usize {
    text.len().div_ceil(3).max(1)
}

/// Bytes of a piece of a long text per token the model takes: two, not the three of
/// [`estimated_tokens`], because a token of CJK text is about one character of three bytes, and
/// a piece the server finds too long fails the whole call.
const PIECE_BYTES_PER_TOKEN: usize = 2;

/// The pieces of `texts` when one is longer than `max_tokens` can hold: every text cut into
/// pieces of at most `max_tokens` × [`PIECE_BYTES_PER_TOKEN`] bytes (at whitespace when there is
/// some in the piece's second half), and the index of the text each piece came from; `None`
/// when every text fits as it is.
fn split_long_texts(texts: &[String], max_tokens: usize) -> Option<(Vec<String>, Vec<usize>)> {
    let limit = max_tokens.max(1).saturating_mul(PIECE_BYTES_PER_TOKEN);
    if texts.iter().all(|t| t.len() <= limit) {
        return None;
    }
    let (mut inputs, mut owners) = (Vec::new(), Vec::new());
    for (owner, text) in texts.iter().enumerate() {
        let mut rest = text.as_str();
        while rest.len() > limit {
            let mut cut = limit;
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            // A char wider than the whole limit (limit < 4 bytes) still goes in one piece.
            if cut == 0 {
                cut = rest.chars().next().map_or(rest.len(), char::len_utf8);
            }
            // A cut just before whitespace already ends a word.
            if !rest[cut..].starts_with(char::is_whitespace) {
                let floor = cut / 2;
                if let Some(space) = rest[..cut].rfind(char::is_whitespace) {
                    if space >= floor && space > 0 {
                        cut = space;
                    }
                }
            }
            let (piece, tail) = rest.split_at(cut);
            if !piece.trim().is_empty() {
                inputs.push(piece.to_owned());
                owners.push(owner);
            }
            rest = tail;
        }
        // Whitespace-only tails add nothing; a text is never left without a piece.
        if !rest.trim().is_empty() || owners.last() != Some(&owner) {
            inputs.push(rest.to_owned());
            owners.push(owner);
        }
    }
    Some((inputs, owners))
}

/// One vector per text from the vectors of its pieces: a text of one piece keeps the server's
/// vector; the pieces of a longer one are averaged, each weighted by its length, and the
/// average scaled to length 1 (the way OpenAI suggests embedding texts over the limit).
fn combine_pieces(
    count: usize,
    inputs: &[String],
    owners: &[usize],
    vectors: Vec<Vec<f32>>,
) -> Vec<Vec<f32>> {
    let mut parts: Vec<Vec<(usize, Vec<f32>)>> = vec![Vec::new(); count];
    for ((input, owner), vector) in inputs.iter().zip(owners).zip(vectors) {
        parts[*owner].push((input.len(), vector));
    }
    parts
        .into_iter()
        .map(|mut pieces| {
            if pieces.len() == 1 {
                return pieces.pop().map(|(_, v)| v).unwrap_or_default();
            }
            let dim = pieces.first().map_or(0, |(_, v)| v.len());
            let mut sum = vec![0f64; dim];
            for (weight, vector) in &pieces {
                for (s, x) in sum.iter_mut().zip(vector) {
                    *s += *weight as f64 * f64::from(*x);
                }
            }
            let norm = sum.iter().map(|x| x * x).sum::<f64>().sqrt();
            let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
            sum.iter().map(|x| (x * scale) as f32).collect()
        })
        .collect()
}

/// Splits `texts` into consecutive ranges of at most `max_inputs` texts and `max_tokens`
/// estimated tokens; a text over the token budget goes alone.
fn plan_batches(texts: &[String], max_inputs: usize, max_tokens: usize) -> Vec<Range<usize>> {
    let mut batches = Vec::new();
    let mut start = 0;
    let mut tokens = 0;
    for (i, text) in texts.iter().enumerate() {
        let t = estimated_tokens(text);
        if i > start && (i - start >= max_inputs || tokens + t > max_tokens) {
            batches.push(start..i);
            start = i;
            tokens = 0;
        }
        tokens += t;
    }
    if start < texts.len() {
        batches.push(start..texts.len());
    }
    batches
}

/// The human part of an error body: OpenAI's `{"error":{"message"}}`, or the `error`,
/// `message` or `detail` strings other servers use, else the body itself (shortened).
fn server_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) {
        let pick = [
            json.pointer("/error/message"),
            json.get("error"),
            json.get("message"),
            json.get("detail"),
        ];
        if let Some(s) = pick.into_iter().flatten().find_map(|v| v.as_str()) {
            return s.to_owned();
        }
    }
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_owned();
    }
    let mut short: String = text.chars().take(300).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

/// Removes the key, and anything shaped like an OpenAI key, from a server message.
fn redact(message: &str, key: Option<&ApiKey>) -> String {
    let out = match key {
        Some(k) if !k.expose().is_empty() => message.replace(k.expose(), "[redacted]"),
        _ => message.to_owned(),
    };
    // OpenAI echoes a masked key ("sk-abc***xyz"); keep none of it, wherever a word starting
    // with `sk-` stands (after a space, `=`, a quote, a newline…).
    let mut redacted = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(at) = rest.find("sk-") {
        let starts_word = rest[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric() && c != '-' && c != '_');
        let (head, tail) = rest.split_at(at);
        redacted.push_str(head);
        if starts_word {
            redacted.push_str("[redacted]");
            let end = tail
                .find(|c: char| {
                    c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';' | '(' | ')' | '<' | '>')
                })
                .unwrap_or(tail.len());
            rest = &tail[end..];
        } else {
            redacted.push_str("sk-");
            rest = &tail[3..];
        }
    }
    redacted.push_str(rest);
    redacted
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lens: &[usize]) -> Vec<String> {
        lens.iter().map(|n| "a".repeat(*n)).collect()
    }

    #[test]
    fn batches_respect_count_and_token_budget() {
        assert_eq!(
            plan_batches(&texts(&[3; 5]), 2, 100),
            vec![0..2, 2..4, 4..5]
        );
        // 30 bytes = 10 estimated tokens each; budget 25 fits two.
        assert_eq!(
            plan_batches(&texts(&[30; 5]), 100, 25),
            vec![0..2, 2..4, 4..5]
        );
        // A text over the budget goes alone.
        assert_eq!(
            plan_batches(&texts(&[3, 300, 3]), 100, 10),
            vec![0..1, 1..2, 2..3]
        );
        assert!(plan_batches(&[], 10, 10).is_empty());
    }

    #[test]
    fn long_texts_are_cut_into_pieces_within_the_limit() {
        let owned = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // 5 tokens: pieces of at most 10 bytes.
        assert!(split_long_texts(&owned(&["short", "0123456789"]), 5).is_none());
        let input = owned(&[
            "short",
            "alpha beta gamma delta epsilon",
            "ééééééééééé",
            "x",
            "0123456789abcdefghij",
        ]);
        let (pieces, owners) = split_long_texts(&input, 5).unwrap();
        assert!(
            pieces.iter().all(|p| !p.is_empty() && p.len() <= 10),
            "{pieces:?}"
        );
        assert!(owners.windows(2).all(|w| w[0] <= w[1]), "{owners:?}");
        for (i, text) in input.iter().enumerate() {
            let joined: String = pieces
                .iter()
                .zip(&owners)
                .filter(|(_, o)| **o == i)
                .map(|(p, _)| p.as_str())
                .collect();
            assert_eq!(&joined, text, "the pieces of text {i} are all of it");
        }
        // Cut at spaces where the limit allows, never inside a two-byte `é`.
        let of = |i: usize| -> Vec<&str> {
            pieces
                .iter()
                .zip(&owners)
                .filter(|(_, o)| **o == i)
                .map(|(p, _)| p.as_str())
                .collect()
        };
        assert_eq!(of(0), vec!["short"]);
        assert_eq!(of(1), vec!["alpha beta", " gamma", " delta", " epsilon"]);
        assert_eq!(of(2), vec!["ééééé", "ééééé", "é"]);
        assert_eq!(of(4), vec!["0123456789", "abcdefghij"]);
        // A limit narrower than one character still moves on, a character at a time.
        let (pieces, _) = split_long_texts(&owned(&["éé"]), 1).unwrap();
        assert_eq!(pieces, vec!["é", "é"]);
    }

    #[test]
    fn pieces_combine_into_one_unit_vector_per_text() {
        let inputs = vec!["ab".to_string(), "abcdef".into(), "c".into()];
        let owners = vec![0, 0, 1];
        let vectors = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![3.0, 4.0]];
        let out = combine_pieces(2, &inputs, &owners, vectors);
        // Weights 2 and 6: (2, 6) scaled to length 1; a single piece stays as the server sent it.
        let norm = (2f32 * 2.0 + 6.0 * 6.0).sqrt();
        assert!((out[0][0] - 2.0 / norm).abs() < 1e-6 && (out[0][1] - 6.0 / norm).abs() < 1e-6);
        assert_eq!(out[1], vec![3.0, 4.0]);
    }

    #[test]
    fn endpoint_joins_with_or_without_slash() {
        assert_eq!(
            endpoint("http://127.0.0.1:8080/v1/").unwrap().as_str(),
            "http://127.0.0.1:8080/v1/embeddings"
        );
        assert_eq!(
            endpoint("https://api.openai.com/v1").unwrap().as_str(),
            "https://api.openai.com/v1/embeddings"
        );
        assert_eq!(
            endpoint("not a url").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            endpoint("ftp://host/v1").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn server_messages_from_common_shapes() {
        assert_eq!(
            server_message(br#"{"error":{"message":"bad model","type":"x"}}"#),
            "bad model"
        );
        assert_eq!(server_message(br#"{"error":"overloaded"}"#), "overloaded");
        assert_eq!(server_message(br#"{"detail":"Not Found"}"#), "Not Found");
        assert_eq!(
            server_message(b"<html>bad gateway</html>"),
            "<html>bad gateway</html>"
        );
        assert_eq!(server_message(b""), "(empty body)");
    }

    #[test]
    fn redaction_removes_key_and_masked_keys() {
        let key = ApiKey::new("sk-live-abcdef");
        let out = redact(
            "Incorrect API key provided: sk-liv***cdef. You sent sk-live-abcdef",
            Some(&key),
        );
        assert!(!out.contains("abcdef"), "{out}");
        assert!(!out.contains("cdef"), "{out}");
        // After `=`, in quotes, after a newline; never inside a word.
        for (message, kept) in [
            ("auth failed: key=sk-ab***yz", "auth failed: key=[redacted]"),
            ("{\"key\": \"sk-ab***yz\"}", "{\"key\": \"[redacted]\"}"),
            ("bad key\nsk-ab***yz expired", "bad key\n[redacted] expired"),
            ("a disk-based task-dedupe", "a disk-based task-dedupe"),
        ] {
            assert_eq!(redact(message, None), kept, "{message}");
        }
        let other = ApiKey::new("local-token-42");
        assert_eq!(
            redact("token local-token-42 expired", Some(&other)),
            "token [redacted] expired"
        );
    }

    #[test]
    fn dimension_comes_from_config_or_known_models() {
        let base = OpenAiConfig::new("text-embedding-3-small");
        assert_eq!(resolve_dim(&base).unwrap(), Some(1536));
        assert_eq!(
            resolve_dim(&base.clone().with_dimensions(256)).unwrap(),
            Some(256)
        );
        assert_eq!(
            resolve_dim(&base.clone().with_dimensions(256).with_dim(512))
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            resolve_dim(&OpenAiConfig::new("nomic-embed-text")).unwrap(),
            None
        );
        let err = OpenAiEmbedder::new(OpenAiConfig::new("nomic-embed-text")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.message().contains("nomic-embed-text"), "{err}");
    }
}

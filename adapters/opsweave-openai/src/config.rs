//! What the embedder is told: where the server is, which model, how to batch and retry.

use std::fmt;
use std::time::Duration;

use opsweave_core::embed::ModelInfo;

/// OpenAI's own endpoint, used when no base URL is given.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
/// Environment variable read by [`OpenAiConfig::from_env`] for the API key.
pub const API_KEY_ENV: &str = "OPENAI_API_KEY";
/// Environment variable read by [`OpenAiConfig::from_env`] for the base URL.
pub const BASE_URL_ENV: &str = "OPENAI_BASE_URL";

/// OpenAI's limit on inputs in one embeddings request.
pub const MAX_INPUTS_PER_REQUEST: usize = 2048;
/// OpenAI's limit on input tokens per text for its embedding models.
pub const OPENAI_MAX_TOKENS: usize = 8191;

/// An API key; its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key itself, for the `Authorization` header only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

/// Embedding models of OpenAI whose dimension is known without asking the server.
pub fn known_model(name: &str) -> Option<ModelInfo> {
    let dim = match name {
        "text-embedding-3-small" => 1536,
        "text-embedding-3-large" => 3072,
        "text-embedding-ada-002" => 1536,
        _ => return None,
    };
    Some(ModelInfo {
        name: name.to_owned(),
        dim,
        max_tokens: OPENAI_MAX_TOKENS,
        fingerprint: None,
    })
}

/// How failed requests are retried: 408, 429, 5xx, connection errors and timeouts.
///
/// The wait before retry `n` (1-based) is drawn uniformly from `0..=min(max_backoff,
/// initial_backoff * 2^(n-1))` ("full jitter"), unless the server said how long to wait with
/// `retry-after-ms` or `Retry-After` (seconds or an HTTP date): then exactly that long. A wait
/// asked for that exceeds `max_retry_after` ends the retries at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 means no retries.
    pub max_attempts: u32,
    /// Upper bound of the first backoff.
    pub initial_backoff: Duration,
    /// Upper bound of every backoff.
    pub max_backoff: Duration,
    /// Longest server-requested wait that is honoured.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

/// Configuration of an [`OpenAiEmbedder`](crate::OpenAiEmbedder).
///
/// ```
/// use std::time::Duration;
/// use opsweave_openai::OpenAiConfig;
///
/// let config = OpenAiConfig::new("text-embedding-3-small")
///     .with_api_key("sk-...")
///     .with_dimensions(512)
///     .with_request_timeout(Duration::from_secs(30));
/// assert_eq!(config.base_url, "https://api.openai.com/v1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAiConfig {
    /// Server root, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8000/v1`; requests go to
    /// `{base_url}/embeddings`.
    pub base_url: String,
    /// Bearer key; `None` for local servers that need none.
    pub api_key: Option<ApiKey>,
    /// Model name as the server knows it; also the name recorded with each vector.
    pub model: String,
    /// Asks the server to shorten vectors to this many dimensions (text-embedding-3 models and
    /// servers that support the `dimensions` field).
    pub dimensions: Option<usize>,
    /// Vector dimension when the model is not one of OpenAI's known ones and `dimensions` is not
    /// set; otherwise [`OpenAiEmbedder::connect`](crate::OpenAiEmbedder::connect) asks the server.
    pub dim: Option<usize>,
    /// Longest input in tokens, as reported in [`ModelInfo`]; defaults to 8,191 (OpenAI's models).
    pub max_tokens: Option<usize>,
    /// Most texts in one request (the API allows 2,048).
    pub max_batch_inputs: usize,
    /// Most estimated tokens in one request (the API allows 300,000). Tokens are estimated as
    /// one per three bytes of UTF-8, rounding up: English averages about four characters a
    /// token, so the estimate errs on the high side.
    pub max_batch_tokens: usize,
    /// Requests in flight at once for one `embed` call.
    pub max_concurrent_requests: usize,
    /// Limit on one HTTP request, from sending to the last byte of the response.
    pub request_timeout: Duration,
    /// Limit on opening a connection.
    pub connect_timeout: Duration,
    /// Retries of failed requests.
    pub retry: RetryPolicy,
}

impl OpenAiConfig {
    /// Settings for `model` on OpenAI's endpoint, with no key.
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            api_key: None,
            model: model.into(),
            dimensions: None,
            dim: None,
            max_tokens: None,
            max_batch_inputs: MAX_INPUTS_PER_REQUEST,
            max_batch_tokens: 250_000,
            max_concurrent_requests: 1,
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
        }
    }

    /// Settings for `model` with the key from `OPENAI_API_KEY` and the base URL from
    /// `OPENAI_BASE_URL` (each ignored when unset or empty).
    pub fn from_env(model: impl Into<String>) -> Self {
        let mut config = Self::new(model);
        if let Some(key) = non_empty_env(API_KEY_ENV) {
            config.api_key = Some(ApiKey::new(key));
        }
        if let Some(url) = non_empty_env(BASE_URL_ENV) {
            config.base_url = url;
        }
        config
    }

    /// Sets the server root (`…/v1`).
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// Sets the bearer key.
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(ApiKey::new(key));
        self
    }

    /// Asks the server for vectors of `dimensions` dimensions.
    pub fn with_dimensions(mut self, dimensions: usize) -> Self {
        self.dimensions = Some(dimensions);
        self
    }

    /// States the vector dimension of a model this crate does not know.
    pub fn with_dim(mut self, dim: usize) -> Self {
        self.dim = Some(dim);
        self
    }

    /// States the model's token limit.
    pub fn with_max_tokens(mut self, max_tokens: usize) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// Sets the most texts per request.
    pub fn with_max_batch_inputs(mut self, n: usize) -> Self {
        self.max_batch_inputs = n;
        self
    }

    /// Sets the most estimated tokens per request.
    pub fn with_max_batch_tokens(mut self, n: usize) -> Self {
        self.max_batch_tokens = n;
        self
    }

    /// Sets how many requests one `embed` call keeps in flight.
    pub fn with_max_concurrent_requests(mut self, n: usize) -> Self {
        self.max_concurrent_requests = n;
        self
    }

    /// Sets the limit on one HTTP request.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets the limit on opening a connection.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the number of attempts (1 = no retries), keeping the other retry settings.
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.retry.max_attempts = attempts;
        self
    }
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_key() {
        let config = OpenAiConfig::new("text-embedding-3-small").with_api_key("sk-secret-123");
        let shown = format!("{config:?}");
        assert!(!shown.contains("sk-secret-123"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }

    #[test]
    fn known_models_have_openai_dims() {
        assert_eq!(known_model("text-embedding-3-small").unwrap().dim, 1536);
        assert_eq!(known_model("text-embedding-3-large").unwrap().dim, 3072);
        assert_eq!(known_model("text-embedding-ada-002").unwrap().dim, 1536);
        assert_eq!(
            known_model("text-embedding-3-large").unwrap().max_tokens,
            8191
        );
        assert!(known_model("nomic-embed-text").is_none());
    }
}

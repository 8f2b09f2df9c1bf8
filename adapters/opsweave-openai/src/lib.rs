//! OpenAI-compatible embeddings for opsweave: OpenAI's `/v1/embeddings` and any server that
//! speaks it (vLLM, llama.cpp, Ollama, LiteLLM, Text Embeddings Inference, …).
//!
//! Texts are sent in batches of at most 2,048 inputs and an estimated token budget
//! ([`OpenAiConfig::max_batch_tokens`]); vectors come back in input order, each checked against
//! the model's dimension. A text longer than the model takes (its `max_tokens`, 8,191 for
//! OpenAI's models) goes as pieces of at most two bytes a token, cut at whitespace where it can;
//! its vector is the pieces' vectors averaged by length and scaled to length 1. A response body
//! larger than the batch's vectors could need (32 bytes a value, 1 KiB an input, 1 MiB more) is
//! refused as it arrives instead of being read into memory whole. Requests that fail with 408, 429, 5xx, a timeout or a connection error
//! are retried with exponential backoff and full jitter, waiting exactly as long as the server
//! asks with `retry-after-ms` or `Retry-After` ([`RetryPolicy`]). Other failures map to clear
//! errors: 401/403 → `Unauthorized`, 404 → `NotFound`, 400 and other 4xx → `InvalidInput` with
//! the server's message. The API key never appears in errors or `Debug` output.
//!
//! Every request that returns vectors is reported as one [`ModelCall`](opsweave_core::ModelCall)
//! in [`Embeddings::calls`](opsweave_core::embed::Embeddings) with the tokens the server counted
//! (a server that reports none is metered by the estimate of one token per three bytes sent),
//! for the caller to record as usage.
//!
//! Configuration from the environment ([`OpenAiConfig::from_env`]): `OPENAI_API_KEY` (optional for
//! local servers) and `OPENAI_BASE_URL` (default `https://api.openai.com/v1`).
//!
//! ```no_run
//! use opsweave_core::embed::{EmbedKind, Embedder};
//! use opsweave_openai::{OpenAiConfig, OpenAiEmbedder};
//!
//! # async fn demo() -> opsweave_core::Result<()> {
//! let embedder = OpenAiEmbedder::new(OpenAiConfig::from_env("text-embedding-3-small"))?;
//! let out = embedder.embed(&["renewal call with Acme".to_owned()], EmbedKind::Document).await?;
//! assert_eq!(out.vectors[0].len(), 1536);
//! println!("{} tokens in {} request(s)", out.tokens, out.calls.len());
//! # Ok(())
//! # }
//! ```

mod config;
mod embedder;
mod retry;

pub use config::{
    known_model, ApiKey, OpenAiConfig, RetryPolicy, API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL,
    MAX_INPUTS_PER_REQUEST, OPENAI_MAX_TOKENS,
};
pub use embedder::OpenAiEmbedder;

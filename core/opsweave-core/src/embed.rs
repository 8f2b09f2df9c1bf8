//! The embedding seam: texts in, vectors out.

use crate::Result;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Whether a text is a search query or a document; some models embed them differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbedKind {
    /// A search query.
    Query,
    /// A document to be found.
    Document,
}

/// What an embedding model is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Model name as recorded with each vector.
    pub name: String,
    /// Vector dimension.
    pub dim: usize,
    /// Longest input in tokens before chunking.
    pub max_tokens: usize,
    /// What makes this model's vectors what they are (weights, tokenizer, pooling), hashed: a
    /// store refuses vectors and queries of a model whose name it knows with another fingerprint,
    /// so a model swapped behind the same name never mixes its vectors with the old ones. `None`
    /// when the embedder cannot tell (a remote server): then the name alone identifies it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

/// Vectors for a batch of texts, with the tokens it cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Embeddings {
    /// One vector per input text, in input order.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens consumed (for usage metering).
    pub tokens: u64,
    /// One entry per provider call made (an in-process model reports one per `embed`); the
    /// caller turns them into [`UsageEvent`](crate::usage::UsageEvent)s with scope and job.
    #[serde(default)]
    pub calls: Vec<crate::usage::ModelCall>,
}

/// Turns texts into vectors.
#[async_trait]
pub trait Embedder: Send + Sync {
    /// The model behind this embedder.
    fn info(&self) -> &ModelInfo;

    /// Embeds `texts`; one vector per text, in order.
    async fn embed(&self, texts: &[String], kind: EmbedKind) -> Result<Embeddings>;
}

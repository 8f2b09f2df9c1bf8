//! What several test files share: a notes mapping and a hashing stand-in for a model.
#![allow(dead_code)] // each test file uses its own part

use async_trait::async_trait;
use opsweave::{EmbedKind, Embedder, Embeddings, ModelInfo, Result};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Notes with a required title and a body, from rows `{"id", "title", "body"}`.
pub const NOTES_MAPPING: &str = r#"
name = "test-notes"
source = "notes"
entity = "note"
id = "id"
title = "{title}"
body = "{body}"
[fields.title]
from = "title"
required = true
[fields.body]
from = "body"
"#;

/// Eight dimensions hashed from the text: the same text always gives the same vector, different
/// texts (almost always) different ones. It stands in for a model where the subject is the
/// store or the embedding run: it counts the texts it was sent (what a paid service bills), can
/// take a while per call like a model server, and fails every call after `ok_calls`, like a
/// server going away mid-run.
pub struct Hashed {
    info: ModelInfo,
    ok_calls: usize,
    delay: Duration,
    calls: AtomicUsize,
    /// Texts sent so far.
    pub texts: AtomicU64,
}

impl Hashed {
    fn make(model: &str, ok_calls: usize, delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            info: ModelInfo {
                name: model.to_string(),
                dim: 8,
                max_tokens: 512,
                fingerprint: None,
            },
            ok_calls,
            delay,
            calls: AtomicUsize::new(0),
            texts: AtomicU64::new(0),
        })
    }

    /// A model named `model` that answers `ok_calls` calls at once, then fails.
    pub fn new(model: &str, ok_calls: usize) -> Arc<Self> {
        Self::make(model, ok_calls, Duration::ZERO)
    }

    /// A model that never fails and takes `delay` per call.
    pub fn slow(model: &str, delay: Duration) -> Arc<Self> {
        Self::make(model, usize::MAX, delay)
    }
}

/// The vector [`Hashed`] gives `text`.
pub fn hashed(text: &str) -> Vec<f32> {
    let mut state = 0xcbf2_9ce4_8422_2325_u64;
    (0..8)
        .map(|i| {
            for b in text.bytes().chain([i as u8]) {
                state = (state ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

#[async_trait]
impl Embedder for Hashed {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    async fn embed(&self, texts: &[String], _kind: EmbedKind) -> Result<Embeddings> {
        if self.calls.fetch_add(1, Ordering::SeqCst) >= self.ok_calls {
            return Err(opsweave::Error::unavailable("model server went away"));
        }
        self.texts.fetch_add(texts.len() as u64, Ordering::SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        Ok(Embeddings {
            vectors: texts.iter().map(|t| hashed(t)).collect(),
            tokens: texts.len() as u64,
            calls: Vec::new(),
        })
    }
}

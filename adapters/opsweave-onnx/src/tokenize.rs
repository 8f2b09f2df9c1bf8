//! Text → token chunks, with the tokenizer file's own padding and truncation replaced.
//!
//! Tokenizer files often pad every input to a fixed length (MiniLM's pads to 128) and truncate at
//! a length unrelated to the model's. Here encoding never pads: texts are split into chunks of at
//! most `max_tokens` (special tokens included) that overlap by `overlap` tokens, and each batch is
//! padded to its own longest chunk just before inference.

use std::path::Path;

use opsweave_core::{Error, Result};
use tokenizers::{
    pad_encodings, Encoding, PaddingDirection, PaddingParams, PaddingStrategy, Tokenizer,
    TruncationDirection, TruncationParams, TruncationStrategy,
};

/// A cause from `tokenizers`, whose errors are boxed trait objects.
#[derive(Debug)]
struct TokenizerCause(Box<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for TokenizerCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for TokenizerCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

fn tokenizer_error(
    context: String,
) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> Error {
    move |e| Error::invalid(format!("{context}: {e}")).with_source(TokenizerCause(e))
}

/// One piece of one text, ready to batch.
pub(crate) struct Chunk {
    /// Index of the text it came from.
    pub(crate) text: usize,
    pub(crate) encoding: Encoding,
}

pub(crate) struct TextTokenizer {
    tokenizer: Tokenizer,
    padding: PaddingParams,
}

impl TextTokenizer {
    pub(crate) fn load(path: &Path, max_tokens: usize, overlap: usize) -> Result<Self> {
        let mut tokenizer = Tokenizer::from_file(path).map_err(|e| {
            Error::invalid(format!("cannot read tokenizer `{}`: {e}", path.display()))
                .in_file(path.display().to_string())
                .with_source(TokenizerCause(e))
        })?;
        let padding = padding_of(&tokenizer);
        tokenizer.with_padding(None);
        // `Encoding::truncate` asserts stride < room, so check before tokenizers can panic.
        let added = special_token_count(&tokenizer)?;
        let room = max_tokens.saturating_sub(added);
        if room == 0 || overlap >= room {
            return Err(Error::invalid(format!(
                "chunk overlap {overlap} must be smaller than max_tokens {max_tokens} minus the \
                 {added} special tokens"
            ))
            .on_field("chunk_overlap"));
        }
        tokenizer
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: max_tokens,
                strategy: TruncationStrategy::LongestFirst,
                stride: overlap,
            }))
            .map_err(tokenizer_error(format!(
                "cannot set truncation on `{}`",
                path.display()
            )))?;
        Ok(Self { tokenizer, padding })
    }

    /// Splits each text into chunks; the first chunk of each text comes first in its run.
    pub(crate) fn chunks(&self, texts: Vec<String>) -> Result<Vec<Chunk>> {
        let encodings = self
            .tokenizer
            .encode_batch(texts, true)
            .map_err(tokenizer_error("cannot tokenize".to_owned()))?;
        let mut chunks = Vec::with_capacity(encodings.len());
        for (text, mut encoding) in encodings.into_iter().enumerate() {
            let overflowing = encoding.take_overflowing();
            chunks.push(Chunk { text, encoding });
            chunks.extend(
                overflowing
                    .into_iter()
                    .map(|encoding| Chunk { text, encoding }),
            );
        }
        Ok(chunks)
    }

    /// Pads a batch to its longest chunk.
    pub(crate) fn pad(&self, batch: &mut [Encoding]) -> Result<()> {
        pad_encodings(batch, &self.padding).map_err(tokenizer_error("cannot pad".to_owned()))
    }
}

/// The file's pad token and ids with its strategy replaced by batch-longest, right side.
fn padding_of(tokenizer: &Tokenizer) -> PaddingParams {
    let mut params = tokenizer.get_padding().cloned().unwrap_or_else(|| {
        // Without a padding section the ids barely matter (the attention mask hides them), but a
        // real pad token keeps the inputs what the model saw in training.
        let (pad_token, pad_id) = ["[PAD]", "<pad>"]
            .iter()
            .find_map(|t| tokenizer.token_to_id(t).map(|id| ((*t).to_owned(), id)))
            .unwrap_or_else(|| ("[PAD]".to_owned(), 0));
        PaddingParams {
            pad_token,
            pad_id,
            ..PaddingParams::default()
        }
    });
    params.strategy = PaddingStrategy::BatchLongest;
    params.direction = PaddingDirection::Right;
    params.pad_to_multiple_of = None;
    params
}

fn special_token_count(tokenizer: &Tokenizer) -> Result<usize> {
    let bare = tokenizer
        .encode("", true)
        .map_err(tokenizer_error("cannot tokenize".to_owned()))?;
    Ok(bare.get_ids().len())
}

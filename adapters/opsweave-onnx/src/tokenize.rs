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
    max_tokens: usize,
    overlap: usize,
}

/// A text put before every input of one kind (e5's `query: `, nomic's `search_document: `),
/// ready to go before every chunk of a long text, not only its first.
pub(crate) struct Prefix {
    text: String,
    /// Its tokens, without special tokens.
    tokens: Encoding,
    /// The tokenizer, its chunks shortened by the prefix's tokens so that each chunk with the
    /// prefix still fits `max_tokens`.
    shortened: Tokenizer,
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
        Ok(Self {
            tokenizer,
            padding,
            max_tokens,
            overlap,
        })
    }

    /// Prepares `text` to go before every chunk; `field` names the setting for errors (a prefix
    /// that leaves a chunk no more room than its overlap is refused).
    pub(crate) fn prefix(&self, text: &str, field: &str) -> Result<Prefix> {
        let tokens = self
            .tokenizer
            .encode(text, false)
            .map_err(tokenizer_error(format!("cannot tokenize {field}")))?;
        let added = special_token_count(&self.tokenizer)?;
        let room = self
            .max_tokens
            .saturating_sub(added)
            .saturating_sub(tokens.len());
        if room <= self.overlap {
            return Err(Error::invalid(format!(
                "{field} `{text}` is {} tokens: with the {added} special tokens and the chunk \
                 overlap of {} it leaves no room in a chunk of {} tokens",
                tokens.len(),
                self.overlap,
                self.max_tokens
            ))
            .on_field(field.to_owned()));
        }
        let mut shortened = self.tokenizer.clone();
        shortened
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: self.max_tokens - tokens.len(),
                strategy: TruncationStrategy::LongestFirst,
                stride: self.overlap,
            }))
            .map_err(tokenizer_error(format!(
                "cannot set truncation for {field}"
            )))?;
        Ok(Prefix {
            text: text.to_owned(),
            tokens,
            shortened,
        })
    }

    /// Splits each text into chunks; the first chunk of each text comes first in its run. With
    /// a prefix, a text that fits one chunk is read with the prefix before it, as the model
    /// card says; a longer one is split without it and the prefix's tokens go after the leading
    /// special tokens of every chunk, so each chunk is read as the model expects.
    pub(crate) fn chunks(&self, texts: Vec<String>, prefix: Option<&Prefix>) -> Result<Vec<Chunk>> {
        let Some(prefix) = prefix else {
            return split(&self.tokenizer, texts, None);
        };
        let prefixed = texts
            .iter()
            .map(|t| format!("{}{t}", prefix.text))
            .collect();
        let whole = self
            .tokenizer
            .encode_batch(prefixed, true)
            .map_err(tokenizer_error("cannot tokenize".to_owned()))?;
        let mut chunks = Vec::with_capacity(texts.len());
        let (mut owners, mut long) = (Vec::new(), Vec::new());
        for (text, (encoding, raw)) in whole.into_iter().zip(texts).enumerate() {
            if encoding.get_overflowing().is_empty() {
                chunks.push(Chunk { text, encoding });
            } else {
                owners.push(text);
                long.push(raw);
            }
        }
        if long.is_empty() {
            return Ok(chunks);
        }
        let pieces = split(&prefix.shortened, long, Some(&prefix.tokens))?;
        chunks.extend(pieces.into_iter().map(|c| Chunk {
            text: owners[c.text],
            encoding: c.encoding,
        }));
        // Back in text order, each text's chunks in theirs (the sort is stable).
        chunks.sort_by_key(|c| c.text);
        Ok(chunks)
    }

    /// Pads a batch to its longest chunk.
    pub(crate) fn pad(&self, batch: &mut [Encoding]) -> Result<()> {
        pad_encodings(batch, &self.padding).map_err(tokenizer_error("cannot pad".to_owned()))
    }
}

/// Encodes `texts` with `tokenizer` into chunks (a text's first, then its overflow), with
/// `prefix`'s tokens put after each chunk's leading special tokens when given.
fn split(
    tokenizer: &Tokenizer,
    texts: Vec<String>,
    prefix: Option<&Encoding>,
) -> Result<Vec<Chunk>> {
    let encodings = tokenizer
        .encode_batch(texts, true)
        .map_err(tokenizer_error("cannot tokenize".to_owned()))?;
    let mut chunks = Vec::with_capacity(encodings.len());
    for (text, mut encoding) in encodings.into_iter().enumerate() {
        let overflowing = encoding.take_overflowing();
        for encoding in std::iter::once(encoding).chain(overflowing) {
            let encoding = match prefix {
                Some(prefix) => with_prefix(&encoding, prefix),
                None => encoding,
            };
            chunks.push(Chunk { text, encoding });
        }
    }
    Ok(chunks)
}

/// `chunk` with `prefix`'s tokens after its leading special tokens ([CLS], `<s>`), read as part
/// of the chunk's own sequence.
fn with_prefix(chunk: &Encoding, prefix: &Encoding) -> Encoding {
    let lead = chunk
        .get_special_tokens_mask()
        .iter()
        .take_while(|&&m| m == 1)
        .count()
        .min(chunk.len());
    let n = prefix.len();
    let type_id = chunk.get_type_ids().get(lead).copied().unwrap_or(0);
    fn spliced<T: Clone>(chunk: &[T], lead: usize, middle: impl Iterator<Item = T>) -> Vec<T> {
        chunk[..lead]
            .iter()
            .cloned()
            .chain(middle)
            .chain(chunk[lead..].iter().cloned())
            .collect()
    }
    Encoding::new(
        spliced(chunk.get_ids(), lead, prefix.get_ids().iter().copied()),
        spliced(chunk.get_type_ids(), lead, std::iter::repeat_n(type_id, n)),
        spliced(
            chunk.get_tokens(),
            lead,
            prefix.get_tokens().iter().cloned(),
        ),
        spliced(chunk.get_word_ids(), lead, std::iter::repeat_n(None, n)),
        spliced(chunk.get_offsets(), lead, std::iter::repeat_n((0, 0), n)),
        spliced(
            chunk.get_special_tokens_mask(),
            lead,
            std::iter::repeat_n(0, n),
        ),
        spliced(chunk.get_attention_mask(), lead, std::iter::repeat_n(1, n)),
        Vec::new(),
        Default::default(),
    )
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

-- What made a model's vectors (a hash of its weights, tokenizer and pooling, when the embedder
-- can tell): a model swapped behind the same name is refused instead of mixing two vector spaces.
-- NULL for vectors written before this column or by an embedder that cannot tell; the first
-- fingerprint written afterwards is adopted.
ALTER TABLE search.vector_indexes ADD COLUMN fingerprint text;

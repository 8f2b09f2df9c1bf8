//! Usage and cost, API keys, and sealed secrets on the [`Weave`] handle.

use crate::{Error, ErrorKind, Result, Weave};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use chrono::{DateTime, Utc};
use opsweave_core::access::{hash_key, looks_like_key, mint_key};
use opsweave_core::{
    ApiKey, KeyId, KeyStore, PricedTotal, Role, Scope, UsageEvent, UsageLedger, UsageQuery,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Keys verified at most this many kept (one entry per live key in use).
const KEY_CACHE_CAPACITY: usize = 10_000;

/// API keys verified recently, by hash: a server answering thousands of requests a second with
/// one key reads it from the store once per TTL instead of once per request. Only live keys are
/// kept; expiry is checked on every use, and a revocation through the same handle drops the key
/// at once (through another process: within the TTL).
pub(crate) struct KeyCache {
    ttl: Duration,
    keys: Mutex<KeyEntries>,
}

#[derive(Default)]
struct KeyEntries {
    by_hash: HashMap<String, (ApiKey, Instant)>,
    /// Raised by every revocation: a key read from the store before a revocation finished is
    /// not kept (it may be the revoked one).
    generation: u64,
}

impl KeyCache {
    fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            keys: Mutex::new(KeyEntries::default()),
        }
    }

    fn generation(&self) -> Option<u64> {
        self.keys.lock().ok().map(|keys| keys.generation)
    }

    fn get(&self, hash: &str) -> Option<ApiKey> {
        let keys = self.keys.lock().ok()?;
        let (key, verified) = keys.by_hash.get(hash)?;
        (verified.elapsed() < self.ttl).then(|| key.clone())
    }

    /// Keeps `key`, read from the store when the cache was at `generation`.
    fn put(&self, hash: String, key: ApiKey, generation: u64) {
        let Ok(mut keys) = self.keys.lock() else {
            return;
        };
        if keys.generation != generation {
            return;
        }
        if keys.by_hash.len() >= KEY_CACHE_CAPACITY {
            let ttl = self.ttl;
            keys.by_hash
                .retain(|_, (_, verified)| verified.elapsed() < ttl);
            if keys.by_hash.len() >= KEY_CACHE_CAPACITY {
                keys.by_hash.clear();
            }
        }
        keys.by_hash.insert(hash, (key, Instant::now()));
    }

    fn forget(&self, id: KeyId) {
        if let Ok(mut keys) = self.keys.lock() {
            keys.generation += 1;
            keys.by_hash.retain(|_, (key, _)| key.id != id);
        }
    }
}

impl Weave {
    /// The usage ledger behind this handle (present when opened from a URL).
    pub fn usage(&self) -> Option<&Arc<dyn UsageLedger>> {
        self.usage.as_ref()
    }

    /// The key store behind this handle (present when opened from a URL).
    pub fn keys(&self) -> Option<&Arc<dyn KeyStore>> {
        self.keys.as_ref()
    }

    /// Adds a key store to a handle made with [`Self::from_parts`] (and empties the key cache).
    pub fn with_key_store(mut self, keys: Arc<dyn KeyStore>) -> Self {
        self.keys = Some(keys);
        self.key_cache = self
            .key_cache
            .take()
            .map(|cache| Arc::new(KeyCache::new(cache.ttl)));
        self
    }

    /// Trusts a verified API key for `ttl` without reading the store again (expiry is still
    /// checked on every use). Revoking through this handle (or a clone) takes effect at once;
    /// a revocation by another process is seen within `ttl`. `Duration::ZERO` turns it off.
    pub fn with_key_cache(mut self, ttl: Duration) -> Self {
        self.key_cache = (!ttl.is_zero()).then(|| Arc::new(KeyCache::new(ttl)));
        self
    }

    fn ledger(&self) -> Result<&Arc<dyn UsageLedger>> {
        self.usage
            .as_ref()
            .ok_or_else(|| Error::unavailable("this handle has no usage ledger"))
    }

    fn key_store(&self) -> Result<&Arc<dyn KeyStore>> {
        self.keys
            .as_ref()
            .ok_or_else(|| Error::unavailable("this handle has no key store"))
    }

    /// Stores usage events (all or none).
    pub async fn record_usage(&self, events: &[UsageEvent]) -> Result<()> {
        self.ledger()?.record_usage(events).await
    }

    /// Usage sums of `query`, each with its cost from the configured price book. The range is
    /// summed in pieces cut where a price changes, so each piece is priced with the prices in
    /// force then.
    pub async fn usage_report(&self, query: &UsageQuery) -> Result<Vec<PricedTotal>> {
        query.validate()?;
        let ledger = self.ledger()?;
        let book = &self.config.prices;
        let mut bounds = vec![query.from];
        bounds.extend(book.changes_within(query.from, query.to));
        bounds.push(query.to);
        let mut pieces = Vec::with_capacity(bounds.len() - 1);
        for window in bounds.windows(2) {
            let piece = UsageQuery {
                from: window[0],
                to: window[1],
                ..query.clone()
            };
            pieces.push((window[0], ledger.usage_totals(&piece).await?));
        }
        Ok(book.price_pieces(pieces))
    }

    /// Makes an API key for `scope` with `role`: returns the secret (shown once, never stored)
    /// and the stored key. The name must not be empty and an expiry must lie in the future (a
    /// key born expired could never be used).
    pub async fn create_key(
        &self,
        name: &str,
        scope: Scope,
        role: Role,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(String, ApiKey)> {
        if name.trim().is_empty() {
            return Err(Error::invalid("a key needs a name (what it is for)").on_field("name"));
        }
        if let Some(at) = expires_at.filter(|at| *at <= Utc::now()) {
            return Err(Error::invalid(format!(
                "expires_at {} is in the past: a key must expire later than now",
                at.to_rfc3339()
            ))
            .on_field("expires_at"));
        }
        scope.validate()?;
        let mut random = [0u8; 32];
        getrandom::fill(&mut random)
            .map_err(|e| Error::internal(format!("no randomness for a key: {e}")))?;
        let (secret, new) = mint_key(random, name, scope, role, expires_at);
        let key = self.key_store()?.create_key(new).await?;
        Ok((secret, key))
    }

    /// The live key `secret` stands for; `Unauthorized` (saying why, never echoing the secret)
    /// when it is malformed, unknown, revoked or expired.
    pub async fn authenticate(&self, secret: &str) -> Result<ApiKey> {
        if !looks_like_key(secret) {
            return Err(Error::new(
                ErrorKind::Unauthorized,
                "not an opsweave API key (expected `ow_` and at least 32 characters)",
            ));
        }
        let hash = hash_key(secret);
        let cache = self.key_cache.as_deref();
        // `read_at`: the cache's generation before a store read (none for a cache hit).
        let (key, read_at) = match cache.and_then(|c| c.get(&hash)) {
            Some(key) => (key, None),
            None => {
                let generation = cache.and_then(KeyCache::generation);
                let key = self
                    .key_store()?
                    .key_by_hash(&hash)
                    .await?
                    .ok_or_else(|| Error::new(ErrorKind::Unauthorized, "unknown API key"))?;
                (key, generation)
            }
        };
        if key.revoked_at.is_some() {
            return Err(Error::new(
                ErrorKind::Unauthorized,
                "this API key was revoked",
            ));
        }
        if !key.is_live(Utc::now()) {
            return Err(Error::new(
                ErrorKind::Unauthorized,
                "this API key has expired",
            ));
        }
        // Kept from the store read only: a hit must not extend its own life, or a revocation by
        // another process would never be seen.
        if let (Some(cache), Some(generation)) = (cache, read_at) {
            cache.put(hash, key.clone(), generation);
        }
        Ok(key)
    }

    /// Keys of `org`, newest first.
    pub async fn list_keys(&self, org: &str) -> Result<Vec<ApiKey>> {
        self.key_store()?.keys(org).await
    }

    /// Revokes key `id` of `org` (a key cache of this handle forgets it at once). The org's last
    /// live org-wide admin key is refused (conflict, [`opsweave_core::access::check_revoke`]).
    pub async fn revoke_key(&self, org: &str, id: KeyId) -> Result<ApiKey> {
        let key = self.key_store()?.revoke_key(org, id).await?;
        if let Some(cache) = &self.key_cache {
            cache.forget(key.id);
        }
        Ok(key)
    }

    /// How many keys exist (0 on a fresh store: the server then makes a first admin key).
    pub async fn key_count(&self) -> Result<u64> {
        self.key_store()?.key_count().await
    }

    /// Answers when the store can be read: one indexed lookup (readiness checks).
    pub async fn ping(&self) -> Result<()> {
        match &self.keys {
            Some(keys) => keys.key_by_hash(&"0".repeat(64)).await.map(|_| ()),
            None => self
                .store
                .search(&self.config.scope, "ping", 1)
                .await
                .map(|_| ()),
        }
    }
}

/// Seals connector and provider secrets with AES-256-GCM (a fresh 96-bit nonce per secret), so
/// the store holds only ciphertext; the key comes from configuration.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

/// The version tag of sealed text, so the format can change later.
const SEALED_PREFIX: &str = "v1:";

impl SecretBox {
    /// A box for a 256-bit key given as 64 hex digits.
    pub fn from_hex(key: &str) -> Result<Self> {
        let bytes = decode_hex(key.trim())
            .filter(|b| b.len() == 32)
            .ok_or_else(|| {
                Error::invalid("the secret key must be 64 hex digits (256 bits)")
                    .on_field("secret_key")
            })?;
        let cipher = Aes256Gcm::new_from_slice(&bytes)
            .map_err(|_| Error::invalid("bad secret key length").on_field("secret_key"))?;
        Ok(Self { cipher })
    }

    /// Encrypts `plain`, bound to `context` (e.g. the connector's name: a sealed secret moved to
    /// another context does not open).
    pub fn seal(&self, plain: &str, context: &str) -> Result<String> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce)
            .map_err(|e| Error::internal(format!("no randomness for a nonce: {e}")))?;
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| Error::internal("sealing a secret failed"))?;
        let mut out = String::from(SEALED_PREFIX);
        for b in nonce.iter().chain(&sealed) {
            out.push_str(&format!("{b:02x}"));
        }
        Ok(out)
    }

    /// Decrypts what [`Self::seal`] made in the same `context`; `InvalidInput` when it was changed,
    /// sealed with another key, or in another context.
    pub fn open(&self, sealed: &str, context: &str) -> Result<String> {
        let bytes = sealed
            .strip_prefix(SEALED_PREFIX)
            .and_then(decode_hex)
            .filter(|b| b.len() > 12)
            .ok_or_else(|| Error::invalid("not a sealed secret"))?;
        let (nonce, body) = bytes.split_at(12);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| {
                Error::invalid("sealed secret does not open: wrong key, context or altered text")
            })?;
        String::from_utf8(plain).map_err(|_| Error::invalid("sealed secret is not text"))
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_context() {
        let sealed_box = SecretBox::from_hex(KEY).unwrap();
        let sealed = sealed_box.seal("hunter2", "connector:jira").unwrap();
        assert!(!sealed.contains("hunter2"));
        assert_ne!(
            sealed,
            sealed_box.seal("hunter2", "connector:jira").unwrap()
        );
        assert_eq!(
            sealed_box.open(&sealed, "connector:jira").unwrap(),
            "hunter2"
        );
        assert!(sealed_box.open(&sealed, "connector:odoo").is_err());
        let other = SecretBox::from_hex(&KEY.replace("1f", "ff")).unwrap();
        assert!(other.open(&sealed, "connector:jira").is_err());
        let mut altered = sealed.clone();
        altered.replace_range(10..11, if &sealed[10..11] == "0" { "1" } else { "0" });
        assert!(sealed_box.open(&altered, "connector:jira").is_err());
        assert!(SecretBox::from_hex("abc").is_err());
    }
}

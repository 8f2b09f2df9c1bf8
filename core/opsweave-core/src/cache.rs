//! A shared cache of computed answers (focus, recall, embeddings of queries): get / set with a
//! time to live, and invalidation by tag (e.g. every entry derived from one scope's records).
//!
//! [`Cache`] is the seam; [`MemoryCache`] keeps entries in this process (the embedded default) and
//! the Redis adapter shares them between processes. A cache is an optimisation only: callers
//! treat a miss and an unavailable cache the same way (go to the store).

use crate::{Error, Result};
use async_trait::async_trait;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest key or tag a cache accepts.
pub const MAX_KEY_BYTES: usize = 512;

/// A cache of byte values with a time to live and tags to invalidate them by.
#[async_trait]
pub trait Cache: Send + Sync {
    /// The value stored under `key`, unless it expired or was invalidated.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;

    /// Stores `value` under `key` for `ttl`, filed under each of `tags`.
    async fn set(&self, key: &str, value: &[u8], ttl: Duration, tags: &[String]) -> Result<()>;

    /// Removes every entry filed under `tag`; returns how many were removed.
    async fn invalidate_tag(&self, tag: &str) -> Result<u64>;

    /// Answers when the cache does (readiness checks): a cache on a server asks the server,
    /// where reads would quietly fall back to misses; one in this process always answers.
    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

/// Checks a key, tags and TTL before a cache call, naming the field at fault.
pub fn check_entry(key: &str, ttl: Duration, tags: &[String]) -> Result<()> {
    check_key("key", key)?;
    for tag in tags {
        check_key("tag", tag)?;
    }
    if ttl.is_zero() {
        return Err(Error::invalid("cache ttl must be longer than 0").on_field("ttl"));
    }
    Ok(())
}

/// Checks a key or tag: 1 to [`MAX_KEY_BYTES`] bytes.
pub fn check_key(field: &str, key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(
            Error::invalid(format!("cache {field} must be 1 to {MAX_KEY_BYTES} bytes"))
                .on_field(field),
        );
    }
    Ok(())
}

/// Where [`MemoryCache`] reads the time; tests pass a clock they move by hand.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// A cache inside this process: entries and tag sets behind one lock, expiry checked on read.
pub struct MemoryCache {
    now: Clock,
    state: Mutex<MemoryState>,
}

#[derive(Default)]
struct MemoryState {
    entries: HashMap<String, (Vec<u8>, Instant, Vec<String>)>,
    tags: HashMap<String, HashSet<String>>,
}

impl MemoryState {
    fn remove(&mut self, key: &str) -> bool {
        let Some((_, _, tags)) = self.entries.remove(key) else {
            return false;
        };
        for tag in tags {
            if let Some(keys) = self.tags.get_mut(&tag) {
                keys.remove(key);
                if keys.is_empty() {
                    self.tags.remove(&tag);
                }
            }
        }
        true
    }
}

impl std::fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCache").finish_non_exhaustive()
    }
}

impl Default for MemoryCache {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryCache {
    /// An empty cache on the system clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(Instant::now))
    }

    /// An empty cache reading the time from `now`.
    pub fn with_clock(now: Clock) -> Self {
        Self {
            now,
            state: Mutex::new(MemoryState::default()),
        }
    }

    fn state(&self) -> Result<std::sync::MutexGuard<'_, MemoryState>> {
        self.state
            .lock()
            .map_err(|_| Error::internal("memory cache lock poisoned by a panic"))
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        check_key("key", key)?;
        let now = (self.now)();
        let mut state = self.state()?;
        match state.entries.get(key) {
            Some((value, expires, _)) if *expires > now => Ok(Some(value.clone())),
            Some(_) => {
                // Expired: drop it now so tag sets do not grow with dead keys.
                state.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration, tags: &[String]) -> Result<()> {
        check_entry(key, ttl, tags)?;
        let expires = (self.now)() + ttl;
        let mut state = self.state()?;
        state.remove(key);
        for tag in tags {
            state
                .tags
                .entry(tag.clone())
                .or_default()
                .insert(key.to_string());
        }
        state
            .entries
            .insert(key.to_string(), (value.to_vec(), expires, tags.to_vec()));
        Ok(())
    }

    async fn invalidate_tag(&self, tag: &str) -> Result<u64> {
        check_key("tag", tag)?;
        let mut state = self.state()?;
        let keys = state.tags.remove(tag).unwrap_or_default();
        let mut removed = 0;
        for key in keys {
            if state.remove(&key) {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

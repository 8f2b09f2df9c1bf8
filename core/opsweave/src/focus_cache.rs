//! Focus answers reused while nothing they depend on changed.
//!
//! A focus over a million tasks costs a couple of milliseconds of CPU; a server asked the same
//! question thousands of times a second answers it from here instead. An answer is reused only
//! while:
//!
//! - the store's task revision of the org is the one read *before* the answer was computed (every
//!   write to the org's tasks raises it in the same transaction, in whichever process it happens,
//!   so an answer never outlives a write: at worst a write racing the computation makes the next
//!   call compute again);
//! - the user's calendar day is the same (urgency and horizons move at midnight);
//! - for "now" (no explicit instant): it is younger than the handle's maximum age, because
//!   recency decays with the clock (by 0.0004 % of its weight over 5 s at the default 14 days,
//!   so the order of a list is practically never changed by it). Answers for an explicit instant
//!   depend on nothing else and stay until a write.
//!
//! Reading the revision is the one store call a cached answer costs. Concurrent callers share
//! it: a caller may take the value of a read that *started after the caller arrived* (that read
//! sees every write committed before the caller came), so under load one read serves every
//! request that queued behind the previous one, and no caller ever gets a revision older than
//! its own arrival.

use crate::{Focus, Horizon, RecordStore, Result, Scope};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Answers kept at most; the oldest goes first when full (explicit instants make the key space
/// unbounded).
const CAPACITY: usize = 1024;

/// What a focus answer was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct FocusKey {
    pub scope: Scope,
    pub horizons: Vec<Horizon>,
    pub limit: usize,
    /// The explicit instant asked for; `None` for "now".
    pub now: Option<DateTime<Utc>>,
}

struct Entry {
    revision: i64,
    today: NaiveDate,
    computed: Instant,
    focus: Arc<Focus>,
}

/// How often a handle's focus cache answered (see [`crate::Weave::focus_cache_stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FocusCacheStats {
    /// Calls answered from the cache.
    pub hits: u64,
    /// Calls that computed their answer.
    pub misses: u64,
}

/// Focus answers shared by the clones of one handle.
pub(crate) struct FocusCache {
    max_age: Duration,
    entries: Mutex<HashMap<FocusKey, Entry>>,
    hits: AtomicU64,
    misses: AtomicU64,
    /// Per org: when the last revision read started, and what it found.
    revisions: Mutex<HashMap<String, Arc<RevisionRead>>>,
}

/// The last task revision read of one org; its lock is held while a read is under way.
type RevisionRead = tokio::sync::Mutex<Option<(Instant, Option<i64>)>>;

impl FocusCache {
    /// An empty cache whose "now" answers live at most `max_age`.
    pub fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            entries: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            revisions: Mutex::new(HashMap::new()),
        }
    }

    /// `org`'s task revision as of no earlier than this call (see the module notes).
    pub async fn revision(&self, store: &dyn RecordStore, org: &str) -> Result<Option<i64>> {
        let arrived = Instant::now();
        let slot = {
            let Ok(mut orgs) = self.revisions.lock() else {
                return store.task_revision(org).await;
            };
            match orgs.get(org) {
                Some(slot) => slot.clone(),
                None => {
                    if orgs.len() >= CAPACITY {
                        orgs.clear();
                    }
                    orgs.entry(org.to_string()).or_default().clone()
                }
            }
        };
        let mut last = slot.lock().await;
        if let Some((started, revision)) = *last {
            if started >= arrived {
                return Ok(revision);
            }
        }
        let started = Instant::now();
        let revision = store.task_revision(org).await?;
        *last = Some((started, revision));
        Ok(revision)
    }

    /// Hits and misses so far.
    pub fn stats(&self) -> FocusCacheStats {
        FocusCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// The answer for `key` if it was computed at task revision `revision` on day `today` (and,
    /// for "now", within the maximum age).
    pub fn get(&self, key: &FocusKey, revision: i64, today: NaiveDate) -> Option<Arc<Focus>> {
        let found = self.entries.lock().ok().and_then(|entries| {
            let entry = entries.get(key)?;
            let fresh = entry.revision == revision
                && entry.today == today
                && (key.now.is_some() || entry.computed.elapsed() < self.max_age);
            fresh.then(|| entry.focus.clone())
        });
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Keeps `focus`, computed after reading task revision `revision`, for `key`.
    pub fn put(&self, key: FocusKey, revision: i64, today: NaiveDate, focus: Arc<Focus>) {
        // A poisoned lock only means a panic elsewhere: skip caching rather than fail the call.
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= CAPACITY && !entries.contains_key(&key) {
            let max_age = self.max_age;
            entries.retain(|k, e| k.now.is_some() || e.computed.elapsed() < max_age);
            if entries.len() >= CAPACITY {
                if let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, e)| e.computed)
                    .map(|(k, _)| k.clone())
                {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(
            key,
            Entry {
                revision,
                today,
                computed: Instant::now(),
                focus,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(org: &str, now: Option<DateTime<Utc>>) -> FocusKey {
        FocusKey {
            scope: Scope::org(org),
            horizons: vec![Horizon::Today],
            limit: 3,
            now,
        }
    }

    #[test]
    fn answers_are_kept_per_revision_day_and_age() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap_or_default();
        let cache = FocusCache::new(Duration::from_secs(60));
        let focus = Arc::new(Focus::default());
        cache.put(key("acme", None), 7, day, focus.clone());
        assert!(cache.get(&key("acme", None), 7, day).is_some());
        assert!(cache.get(&key("acme", None), 8, day).is_none(), "a write");
        assert!(
            cache
                .get(&key("acme", None), 7, day.succ_opt().unwrap_or(day))
                .is_none(),
            "midnight"
        );
        assert!(cache.get(&key("initech", None), 7, day).is_none());
        let aged = FocusCache::new(Duration::ZERO);
        aged.put(key("acme", None), 7, day, focus.clone());
        assert!(aged.get(&key("acme", None), 7, day).is_none(), "too old");
        let at = Some(Utc::now());
        aged.put(key("acme", at), 7, day, focus);
        assert!(
            aged.get(&key("acme", at), 7, day).is_some(),
            "an explicit instant does not age"
        );
    }

    #[test]
    fn a_full_cache_drops_the_oldest() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap_or_default();
        let cache = FocusCache::new(Duration::from_secs(60));
        let base = Utc::now();
        let at = |i: usize| Some(base + chrono::Duration::seconds(i as i64));
        for i in 0..=CAPACITY {
            cache.put(key("acme", at(i)), 1, day, Arc::new(Focus::default()));
        }
        assert!(cache.get(&key("acme", at(0)), 1, day).is_none());
        assert!(cache.get(&key("acme", at(CAPACITY)), 1, day).is_some());
        assert!(cache.entries.lock().map(|e| e.len()).unwrap_or(0) <= CAPACITY);
    }
}

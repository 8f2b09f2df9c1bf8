//! Access control: API keys that belong to a scope (an org, optionally narrowed to a client and a
//! project) and carry a [`Role`]. Keys are `ow_` followed by 64 hex digits of randomness the caller
//! supplies; only their SHA-256 is stored ([`KeyStore`]), so the key itself is shown once.

use crate::{Error, Result, Scope};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// The prefix every API key starts with.
pub const KEY_PREFIX: &str = "ow_";

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including managing keys of its org.
    Admin,
    /// Read and change the org's work.
    Member,
    /// Read only.
    Viewer,
    /// A machine account: read, change, and report usage.
    Service,
}

/// A kind of action, checked against a [`Role`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Read records, tasks, jobs, usage.
    Read,
    /// Change state: complete, ingest, enqueue, decide reviews.
    Write,
    /// Report usage events of model calls made elsewhere.
    ReportUsage,
    /// Create and revoke keys.
    ManageKeys,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Self::Admin, Self::Member, Self::Viewer, Self::Service];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Member => "member",
            Self::Viewer => "viewer",
            Self::Service => "service",
        }
    }

    /// True when this role may do `action`.
    pub fn allows(self, action: Action) -> bool {
        match action {
            Action::Read => true,
            Action::Write => !matches!(self, Self::Viewer),
            Action::ReportUsage => matches!(self, Self::Admin | Self::Service),
            Action::ManageKeys => matches!(self, Self::Admin),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown role `{s}` (admin, member, viewer, service)"
                ))
                .on_field("role")
            })
    }
}

/// A key's identifier (not secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct KeyId(pub i64);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A key as stored: everything but the secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKey {
    /// Assigned by the store.
    pub id: KeyId,
    /// What it is for (shown in listings).
    pub name: String,
    /// Whose data it reaches (org; client and project narrow it further).
    pub scope: Scope,
    /// What it may do.
    pub role: Role,
    /// The first characters of the key, to recognise it in listings.
    pub prefix: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// True when the key may be used at `now`: not revoked and not expired.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}

/// True when `key` keeps its org manageable at `now`: a live admin key for the whole org (only
/// such a key can make every other kind of key).
pub fn keeps_the_org(key: &ApiKey, now: DateTime<Utc>) -> bool {
    key.role == Role::Admin
        && key.scope.client.is_none()
        && key.scope.project.is_none()
        && key.is_live(now)
}

/// Refuses (conflict) to revoke key `id` when it is the last of `keys` (all keys of `org`) that
/// keeps the org manageable: without it no key of the org could be made again, as the server
/// makes a first key only for a store with none.
pub fn check_revoke(org: &str, keys: &[ApiKey], id: KeyId, now: DateTime<Utc>) -> Result<()> {
    let last = keys.iter().any(|k| k.id == id && keeps_the_org(k, now))
        && keys.iter().filter(|k| keeps_the_org(k, now)).count() == 1;
    if last {
        return Err(Error::conflict(format!(
            "key {id} is the last live admin key of org `{org}`: create another admin key \
             first (`opsweave keys create`, or POST /api/keys with role admin), then revoke this one"
        ))
        .on_field("id"));
    }
    Ok(())
}

/// A key to store: its hash and what it grants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewApiKey {
    /// What it is for.
    pub name: String,
    /// Whose data it reaches.
    pub scope: Scope,
    /// What it may do.
    pub role: Role,
    /// SHA-256 of the key, hex ([`hash_key`]).
    pub hash: String,
    /// The key's first characters ([`key_prefix`]).
    pub prefix: String,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
}

impl NewApiKey {
    /// Checks name and scope.
    pub fn validate(&self) -> Result<()> {
        self.scope.validate()?;
        if self.name.trim().is_empty()
            || self.name.len() > 200
            || self.name.contains(char::is_control)
        {
            return Err(Error::invalid(
                "key name must be 1 to 200 bytes without control characters",
            )
            .on_field("name"));
        }
        if self.hash.len() != 64 || !self.hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid("key hash must be 64 hex digits").on_field("hash"));
        }
        Ok(())
    }
}

/// A new key made from 32 random bytes: the secret to show once, and what to store.
pub fn mint_key(
    random: [u8; 32],
    name: impl Into<String>,
    scope: Scope,
    role: Role,
    expires_at: Option<DateTime<Utc>>,
) -> (String, NewApiKey) {
    let mut secret = String::with_capacity(KEY_PREFIX.len() + 64);
    secret.push_str(KEY_PREFIX);
    for b in random {
        secret.push_str(&format!("{b:02x}"));
    }
    let new = NewApiKey {
        name: name.into(),
        scope,
        role,
        hash: hash_key(&secret),
        prefix: key_prefix(&secret),
        expires_at,
    };
    (secret, new)
}

/// True when `text` has the shape of a key (so that anything else is refused before a lookup).
pub fn looks_like_key(text: &str) -> bool {
    text.strip_prefix(KEY_PREFIX).is_some_and(|rest| {
        (32..=128).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// SHA-256 of a key, hex. Keys carry 256 random bits, so a fast hash is enough: there is nothing
/// to guess that a slow hash would protect.
pub fn hash_key(key: &str) -> String {
    // One formatting call for the whole digest: a server hashes the key of every request.
    format!("{:x}", Sha256::digest(key.as_bytes()))
}

/// The part of a key shown in listings: the prefix and 6 characters.
pub fn key_prefix(key: &str) -> String {
    key.chars().take(KEY_PREFIX.len() + 6).collect()
}

/// Where API keys are kept (hashed).
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Stores a key.
    async fn create_key(&self, key: NewApiKey) -> Result<ApiKey>;

    /// The key whose hash is `hash`, revoked or not; `None` when there is none.
    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>>;

    /// Keys of `org`, newest first.
    async fn keys(&self, org: &str) -> Result<Vec<ApiKey>>;

    /// Revokes key `id` of `org` (revoking twice keeps the first time); `NotFound` elsewhere.
    /// The org's last live org-wide admin key is refused ([`check_revoke`]), checked in the same
    /// transaction as the revocation so that two revocations at once cannot both pass it.
    async fn revoke_key(&self, org: &str, id: KeyId) -> Result<ApiKey>;

    /// How many keys exist in all orgs (0 on a fresh store).
    async fn key_count(&self) -> Result<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_have_the_promised_shape_and_hash() {
        let (secret, new) = mint_key([7; 32], "ci", Scope::org("acme"), Role::Service, None);
        assert!(secret.starts_with("ow_"));
        assert_eq!(secret.len(), 3 + 64);
        assert!(looks_like_key(&secret));
        assert_eq!(new.hash, hash_key(&secret));
        assert_eq!(new.hash.len(), 64);
        assert_eq!(new.prefix, "ow_070707");
        new.validate().unwrap();
        let (other, _) = mint_key([8; 32], "ci", Scope::org("acme"), Role::Service, None);
        assert_ne!(hash_key(&other), new.hash);
        // Stored hashes are lower-case hex SHA-256 (the FIPS 180-2 "abc" vector): keys made by
        // earlier versions keep working.
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn only_key_shaped_text_is_looked_up() {
        assert!(!looks_like_key("ow_short"));
        assert!(!looks_like_key(&format!("xx_{}", "a".repeat(40))));
        assert!(!looks_like_key(&format!("ow_{}", "a b".repeat(20))));
    }

    #[test]
    fn roles_allow_what_they_say() {
        assert!(Role::Viewer.allows(Action::Read));
        assert!(!Role::Viewer.allows(Action::Write));
        assert!(Role::Member.allows(Action::Write));
        assert!(!Role::Member.allows(Action::ReportUsage));
        assert!(Role::Service.allows(Action::ReportUsage));
        assert!(!Role::Service.allows(Action::ManageKeys));
        assert!(Role::Admin.allows(Action::ManageKeys));
        assert_eq!("viewer".parse::<Role>().unwrap(), Role::Viewer);
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn revoked_or_expired_keys_are_not_live() {
        let now = Utc::now();
        let mut key = ApiKey {
            id: KeyId(1),
            name: "k".into(),
            scope: Scope::org("acme"),
            role: Role::Member,
            prefix: "ow_abcdef".into(),
            created_at: now,
            expires_at: None,
            revoked_at: None,
        };
        assert!(key.is_live(now));
        key.expires_at = Some(now);
        assert!(!key.is_live(now));
        key.expires_at = None;
        key.revoked_at = Some(now);
        assert!(!key.is_live(now));
    }
}

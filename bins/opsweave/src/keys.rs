//! `opsweave keys`: API keys of the HTTP service, made, listed and revoked by whoever holds the
//! database (the way back in when every admin key is lost).

use crate::output::emit;
use clap::Subcommand;
use opsweave::{Error, Result, Role, Scope, Weave};
use serde_json::json;

/// What to do with API keys.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a key for the scope (--org, --client, --project); prints its secret once.
    Create {
        /// What the key is for (shown in lists)
        #[arg(long)]
        name: String,
        /// admin, member, viewer or service
        #[arg(long, default_value = "admin")]
        role: String,
        /// Expiry: a date (the key works through that day, in [priority] time_zone) or an
        /// RFC 3339 instant [default: never]
        #[arg(long)]
        expires: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// The keys inside the scope (--org, narrowed by --client / --project), newest first,
    /// never their secrets.
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by id (not the org's last live admin key).
    Revoke {
        /// Key id (from `keys list`)
        id: i64,
    },
}

/// Runs a `keys` command in `scope`.
pub async fn run(weave: &Weave, scope: Scope, command: &KeysCommand) -> Result<()> {
    match command {
        KeysCommand::Create {
            name,
            role,
            expires,
            json,
        } => {
            if name.trim().is_empty() {
                return Err(Error::invalid("--name must not be empty").on_field("name"));
            }
            let role: Role = role.parse().map_err(|e: Error| e.on_field("role"))?;
            let day = expires
                .as_deref()
                .and_then(|t| chrono::NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d").ok());
            let expires_at = match day {
                // A date means the key works through that day, the user's day: it expires at
                // the next midnight there (not at 09:00 UTC, which made today's date "past").
                Some(day) => Some(
                    day.succ_opt()
                        .and_then(|d| d.and_hms_opt(0, 0, 0))
                        .and_then(|midnight| weave.config().priority.zone().instant_of(midnight))
                        .ok_or_else(|| {
                            Error::invalid(format!("--expires `{day}` is past the calendar"))
                                .on_field("expires")
                        })?,
                ),
                None => opsweave::parse_now(expires.as_deref()).map_err(|e| {
                    // parse_now speaks of `now`; here the value is an expiry.
                    let why = e.message().strip_prefix("now ").unwrap_or(e.message());
                    Error::invalid(format!("--expires {why}")).on_field("expires")
                })?,
            };
            if expires_at.is_some_and(|t| t <= chrono::Utc::now()) {
                return Err(Error::invalid("--expires is in the past").on_field("expires"));
            }
            let (secret, key) = weave.create_key(name, scope, role, expires_at).await?;
            if *json {
                emit(format_args!(
                    "{}\n",
                    json!({ "secret": secret, "key": key })
                ));
            } else {
                eprintln!(
                    "key {} ({}, {} of {}): shown only now, store it:",
                    key.id, key.name, key.role, key.scope
                );
                emit(format_args!("{secret}\n"));
            }
            Ok(())
        }
        KeysCommand::List { json } => {
            let mut keys = weave.list_keys(&scope.org).await?;
            keys.retain(|k| scope.contains(&k.scope));
            if *json {
                emit(format_args!("{}\n", json!(keys)));
                return Ok(());
            }
            if keys.is_empty() {
                emit(format_args!("no keys in org `{}`\n", scope.org));
            }
            for k in &keys {
                let state = match (&k.revoked_at, &k.expires_at) {
                    (Some(t), _) => format!("revoked {}", t.format("%Y-%m-%d")),
                    (None, Some(t)) if *t <= chrono::Utc::now() => {
                        format!("expired {}", t.format("%Y-%m-%d"))
                    }
                    (None, Some(t)) => format!("expires {}", t.format("%Y-%m-%d")),
                    (None, None) => "live".into(),
                };
                emit(format_args!(
                    "{:>5}  {:<7} {:<24} {:<20} {}\n",
                    k.id.0,
                    k.role.to_string(),
                    k.name,
                    k.scope.to_string(),
                    state
                ));
            }
            Ok(())
        }
        KeysCommand::Revoke { id } => {
            if *id < 1 {
                return Err(Error::invalid(format!(
                    "key id {id} is not one the store assigns (from 1; see `keys list`)"
                ))
                .on_field("id"));
            }
            let key = weave.revoke_key(&scope.org, opsweave::KeyId(*id)).await?;
            emit(format_args!("revoked key {} ({})\n", key.id, key.name));
            Ok(())
        }
    }
}

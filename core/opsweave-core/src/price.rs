//! What model calls cost: a [`PriceBook`] of prices per million tokens, by model and token kind,
//! each in force from a date, and the sums of a [`UsageLedger`](crate::UsageLedger) priced with it.
//!
//! Prices change over time, so a range is priced piecewise: [`PriceBook::changes_within`] names the
//! instants where some price changes, the caller sums usage per piece, and [`PriceBook::price_pieces`]
//! prices each piece with the prices in force at its start and adds the pieces up.

use crate::usage::UsageTotal;
use crate::{Error, Result};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which tokens a price is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// Prompt / input tokens of chat calls.
    Input,
    /// Completion tokens of chat calls.
    Output,
    /// Tokens embedded.
    Embedding,
}

/// One price: USD per million tokens of one kind for one model, in force from a date (UTC).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// The model name as usage events record it.
    pub model: String,
    /// Which tokens.
    pub kind: TokenKind,
    /// US dollars per million tokens.
    pub usd_per_million: Decimal,
    /// In force from 00:00 UTC of this day (absent: since always), until a later price replaces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<NaiveDate>,
}

impl Price {
    fn starts(&self) -> Option<DateTime<Utc>> {
        self.from
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc())
    }
}

/// The prices in force over time (configured as `[[prices]]` tables).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PriceBook {
    prices: Vec<Price>,
}

/// Usage sums of one group and model with their cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PricedTotal {
    /// The sums, over the whole range.
    #[serde(flatten)]
    pub total: UsageTotal,
    /// US dollars; `None` when some tokens in the range had no price for their model and kind.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "0.02"))]
    pub cost_usd: Option<Decimal>,
}

impl PriceBook {
    /// A price book of `prices`, checked with [`Self::validate`].
    pub fn new(prices: Vec<Price>) -> Result<Self> {
        let book = Self { prices };
        book.validate()?;
        Ok(book)
    }

    /// The prices, as configured.
    pub fn prices(&self) -> &[Price] {
        &self.prices
    }

    /// Checks that prices are not negative, models are named, and no model has two prices of one
    /// kind from the same day.
    pub fn validate(&self) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        for (i, p) in self.prices.iter().enumerate() {
            let field = format!("prices[{i}]");
            if p.model.trim().is_empty() {
                return Err(Error::invalid("a price needs a model name").on_field(field));
            }
            if p.usd_per_million.is_sign_negative() {
                return Err(
                    Error::invalid(format!("price of `{}` must not be negative", p.model))
                        .on_field(field),
                );
            }
            if !seen.insert((p.model.as_str(), p.kind, p.from)) {
                return Err(Error::invalid(format!(
                    "`{}` has two {:?} prices from the same day",
                    p.model, p.kind
                ))
                .on_field(field));
            }
        }
        Ok(())
    }

    /// USD per million `kind` tokens of `model` at `at`: the latest price in force then.
    pub fn price(&self, model: &str, kind: TokenKind, at: DateTime<Utc>) -> Option<Decimal> {
        self.prices
            .iter()
            .filter(|p| p.model == model && p.kind == kind)
            .filter(|p| p.starts().is_none_or(|s| s <= at))
            .max_by_key(|p| p.starts())
            .map(|p| p.usd_per_million)
    }

    /// The instants strictly inside `(from, to)` where some price comes into force, in order.
    pub fn changes_within(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut changes: Vec<_> = self
            .prices
            .iter()
            .filter_map(Price::starts)
            .filter(|s| *s > from && *s < to)
            .collect();
        changes.sort();
        changes.dedup();
        changes
    }

    /// The cost of `total` at the prices in force at `at`; `None` when a kind with tokens has no price.
    pub fn cost(&self, total: &UsageTotal, at: DateTime<Utc>) -> Option<Decimal> {
        let million = Decimal::from(1_000_000u32);
        let mut cost = Decimal::ZERO;
        for (kind, tokens) in [
            (TokenKind::Input, total.input_tokens),
            (TokenKind::Output, total.output_tokens),
            (TokenKind::Embedding, total.embedding_tokens),
        ] {
            if tokens == 0 {
                continue;
            }
            let price = self.price(&total.model, kind, at)?;
            cost += Decimal::from(tokens) * price / million;
        }
        Some(cost)
    }

    /// Prices each piece (its start and its sums) and adds pieces of the same key and model up,
    /// ordered by key then model.
    pub fn price_pieces(
        &self,
        pieces: impl IntoIterator<Item = (DateTime<Utc>, Vec<UsageTotal>)>,
    ) -> Vec<PricedTotal> {
        type GroupKey = (String, Option<String>, String);
        let mut merged: BTreeMap<GroupKey, PricedTotal> = BTreeMap::new();
        for (start, totals) in pieces {
            for total in totals {
                let cost = self.cost(&total, start);
                let entry = merged
                    .entry((total.key.clone(), total.client.clone(), total.model.clone()))
                    .or_insert_with(|| PricedTotal {
                        total: UsageTotal {
                            key: total.key.clone(),
                            client: total.client.clone(),
                            model: total.model.clone(),
                            calls: 0,
                            input_tokens: 0,
                            output_tokens: 0,
                            embedding_tokens: 0,
                        },
                        cost_usd: Some(Decimal::ZERO),
                    });
                // Stores saturate their sums; adding pieces saturates too, never wraps or panics.
                entry.total.calls = entry.total.calls.saturating_add(total.calls);
                entry.total.input_tokens =
                    entry.total.input_tokens.saturating_add(total.input_tokens);
                entry.total.output_tokens = entry
                    .total
                    .output_tokens
                    .saturating_add(total.output_tokens);
                entry.total.embedding_tokens = entry
                    .total
                    .embedding_tokens
                    .saturating_add(total.embedding_tokens);
                entry.cost_usd = entry.cost_usd.zip(cost).map(|(a, b)| a + b);
            }
        }
        merged
            .into_values()
            .map(|mut p| {
                p.cost_usd = p.cost_usd.map(|c| c.normalize());
                p
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).single().unwrap()
    }

    fn book() -> PriceBook {
        let text = r#"
            [[prices]]
            model = "text-embedding-3-small"
            kind = "embedding"
            usd_per_million = "0.02"
            [[prices]]
            model = "text-embedding-3-small"
            kind = "embedding"
            usd_per_million = "0.01"
            from = "2026-06-01"
            [[prices]]
            model = "gpt-4o-mini"
            kind = "input"
            usd_per_million = 0.15
            [[prices]]
            model = "gpt-4o-mini"
            kind = "output"
            usd_per_million = "0.60"
        "#;
        #[derive(Deserialize)]
        struct File {
            prices: PriceBook,
        }
        let file: File = toml::from_str(text).unwrap();
        file.prices.validate().unwrap();
        file.prices
    }

    fn total(model: &str, input: u64, output: u64, embedding: u64) -> UsageTotal {
        UsageTotal {
            client: None,
            key: "acme".into(),
            model: model.into(),
            calls: 1,
            input_tokens: input,
            output_tokens: output,
            embedding_tokens: embedding,
        }
    }

    #[test]
    fn the_price_in_force_is_the_latest_started() {
        let book = book();
        let model = "text-embedding-3-small";
        assert_eq!(
            book.price(model, TokenKind::Embedding, at(2026, 5, 31)),
            Some(Decimal::new(2, 2))
        );
        assert_eq!(
            book.price(model, TokenKind::Embedding, at(2026, 6, 1)),
            Some(Decimal::new(1, 2))
        );
        assert_eq!(book.price(model, TokenKind::Input, at(2026, 6, 1)), None);
    }

    #[test]
    fn a_range_across_a_price_change_is_priced_in_pieces() {
        let book = book();
        let changes = book.changes_within(at(2026, 5, 1), at(2026, 7, 1));
        assert_eq!(changes.len(), 1);
        let model = "text-embedding-3-small";
        let priced = book.price_pieces([
            (at(2026, 5, 1), vec![total(model, 0, 0, 1_000_000)]),
            (changes[0], vec![total(model, 0, 0, 2_000_000)]),
        ]);
        assert_eq!(priced.len(), 1);
        assert_eq!(priced[0].total.embedding_tokens, 3_000_000);
        assert_eq!(priced[0].total.calls, 2);
        // 1M at 0.02 + 2M at 0.01
        assert_eq!(priced[0].cost_usd, Some(Decimal::new(4, 2)));
    }

    #[test]
    fn chat_tokens_use_input_and_output_prices_and_unknown_models_have_no_cost() {
        let book = book();
        let cost = book.cost(
            &total("gpt-4o-mini", 2_000_000, 1_000_000, 0),
            at(2026, 1, 1),
        );
        assert_eq!(cost, Some(Decimal::new(90, 2)));
        assert_eq!(book.cost(&total("mystery", 10, 0, 0), at(2026, 1, 1)), None);
        assert_eq!(
            book.cost(&total("mystery", 0, 0, 0), at(2026, 1, 1)),
            Some(Decimal::ZERO)
        );
    }

    #[test]
    fn bad_prices_name_their_entry() {
        let negative = Price {
            model: "m".into(),
            kind: TokenKind::Input,
            usd_per_million: Decimal::new(-1, 0),
            from: None,
        };
        let err = PriceBook::new(vec![negative.clone()]).unwrap_err();
        assert_eq!(err.location().field.as_deref(), Some("prices[0]"));
        let twice = Price {
            usd_per_million: Decimal::ONE,
            ..negative
        };
        let err = PriceBook::new(vec![twice.clone(), twice]).unwrap_err();
        assert_eq!(err.location().field.as_deref(), Some("prices[1]"));
    }
}

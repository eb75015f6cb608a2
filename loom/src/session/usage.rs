//! Budgets and rate limits shared by every worker process: the [`UsageStore`] and
//! [`RateStore`] of the SQLite and PostgreSQL stores.
//!
//! - Spending: table `loom_usage`, one row per user and budget period, and the row of user
//!   `''` for everyone together. An addition is one transaction that adds to the user's row and
//!   to everyone's, and returns both totals, so workers on the same database enforce one
//!   budget; the rows of earlier periods are dropped as a new period begins.
//! - Rate limits: table `loom_rate`, one token bucket per row (`user:<id>`, `model:<name>`).
//!   A call takes a token from each of its buckets in one transaction (all or none), on the
//!   database's clock for PostgreSQL (workers on several machines agree on it) and the system
//!   clock for SQLite (one machine).

use std::time::Duration;

use crate::error::StoreError;
use crate::governance::rate::refill;
use crate::governance::{RateBucket, RateStore, Spent, UsageStore};
use crate::id::UserId;

/// The rate bucket of `user`, as [`RateLimit`](crate::governance::RateLimit) names it.
fn user_bucket(user: &UserId) -> String {
    format!("user:{user}")
}

/// What a rate-limited call takes: all of `buckets`, or none — the index of the first without
/// a token and how long until it has one. `held` reads a bucket: its tokens, and how long ago.
fn take_all(
    buckets: &[(String, f64, f64)],
    mut held: impl FnMut(&str) -> Result<Option<(f64, Duration)>, StoreError>,
) -> Result<Result<Vec<f64>, (Duration, usize)>, StoreError> {
    let mut left = Vec::with_capacity(buckets.len());
    for (i, (key, rate, burst)) in buckets.iter().enumerate() {
        let (tokens, elapsed) = held(key)?.unwrap_or((*burst, Duration::ZERO));
        match refill(tokens, elapsed, *rate, *burst) {
            (after, Ok(())) => left.push(after),
            (_, Err(wait)) => return Ok(Err((wait, i))),
        }
    }
    Ok(Ok(left))
}

fn owned(buckets: &[RateBucket<'_>]) -> Vec<(String, f64, f64)> {
    buckets.iter().map(|b| (b.key.to_owned(), b.rate, b.burst)).collect()
}

/// The row of everyone together: no user id is empty.
const EVERYONE: &str = "";

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn spent_of((input_tokens, output_tokens, cost_usd, model_calls, tool_calls): (i64, i64, f64, i64, i64)) -> Spent {
    let mut spent = Spent::new();
    spent.input_tokens = to_u64(input_tokens);
    spent.output_tokens = to_u64(output_tokens);
    spent.cost_usd = cost_usd;
    spent.model_calls = to_u64(model_calls);
    spent.tool_calls = to_u64(tool_calls);
    spent
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use rusqlite::{OptionalExtension as _, params};

    use super::*;
    use crate::session::SqliteStore;
    use crate::session::sqlite::db;

    type Row = (i64, i64, f64, i64, i64);

    fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    }

    #[async_trait::async_trait]
    impl UsageStore for SqliteStore {
        async fn spent(&self, user: Option<&UserId>, period: u64) -> Result<Spent, StoreError> {
            let user = user.map_or_else(|| EVERYONE.to_owned(), UserId::to_string);
            self.with(move |conn| {
                let found = conn
                    .prepare_cached(
                        "SELECT input_tokens, output_tokens, cost_usd, model_calls, tool_calls
                         FROM loom_usage WHERE user = ?1 AND period = ?2",
                    )
                    .map_err(db)?
                    .query_row(params![user, to_i64(period)], row)
                    .optional()
                    .map_err(db)?;
                Ok(found.map(spent_of).unwrap_or_default())
            })
            .await
        }

        async fn add(&self, user: &UserId, period: u64, spent: &Spent) -> Result<(Spent, Spent), StoreError> {
            let (user, spent) = (user.to_string(), *spent);
            self.with(move |conn| {
                let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db)?;
                tx.execute(
                    "DELETE FROM loom_usage WHERE user IN (?1, ?2) AND period <> ?3",
                    params![user, EVERYONE, to_i64(period)],
                )
                .map_err(db)?;
                let mut totals = Vec::with_capacity(2);
                for who in [user.as_str(), EVERYONE] {
                    let total = tx
                        .prepare_cached(
                            "INSERT INTO loom_usage
                                 (user, period, input_tokens, output_tokens, cost_usd, model_calls, tool_calls)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                             ON CONFLICT (user, period) DO UPDATE SET
                                 input_tokens = input_tokens + excluded.input_tokens,
                                 output_tokens = output_tokens + excluded.output_tokens,
                                 cost_usd = cost_usd + excluded.cost_usd,
                                 model_calls = model_calls + excluded.model_calls,
                                 tool_calls = tool_calls + excluded.tool_calls
                             RETURNING input_tokens, output_tokens, cost_usd, model_calls, tool_calls",
                        )
                        .map_err(db)?
                        .query_row(
                            params![
                                who,
                                to_i64(period),
                                to_i64(spent.input_tokens),
                                to_i64(spent.output_tokens),
                                spent.cost_usd,
                                to_i64(spent.model_calls),
                                to_i64(spent.tool_calls)
                            ],
                            row,
                        )
                        .map_err(db)?;
                    totals.push(spent_of(total));
                }
                tx.commit().map_err(db)?;
                Ok((totals[0], totals[1]))
            })
            .await
        }

        async fn forget(&self, user: &UserId) -> Result<(), StoreError> {
            let (bucket, user) = (user_bucket(user), user.to_string());
            self.with(move |conn| {
                let tx = conn.transaction().map_err(db)?;
                tx.execute("DELETE FROM loom_usage WHERE user = ?1", params![user]).map_err(db)?;
                tx.execute("DELETE FROM loom_rate WHERE bucket = ?1", params![bucket]).map_err(db)?;
                tx.commit().map_err(db)
            })
            .await
        }
    }

    #[async_trait::async_trait]
    impl RateStore for SqliteStore {
        async fn take(&self, buckets: &[RateBucket<'_>]) -> Result<Result<(), (Duration, usize)>, StoreError> {
            let buckets = owned(buckets);
            self.with(move |conn| {
                let now = crate::session::journal::now_ms();
                let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db)?;
                let taken = take_all(&buckets, |key| {
                    let row = tx
                        .prepare_cached("SELECT tokens, at_ms FROM loom_rate WHERE bucket = ?1")
                        .map_err(db)?
                        .query_row(params![key], |r| Ok((r.get::<_, f64>(0)?, r.get::<_, i64>(1)?)))
                        .optional()
                        .map_err(db)?;
                    Ok(row.map(|(tokens, at)| (tokens, Duration::from_millis(now.saturating_sub(to_u64(at))))))
                })?;
                let left = match taken {
                    Ok(left) => left,
                    // Nothing taken: the transaction ends without a write.
                    Err(refused) => return Ok(Err(refused)),
                };
                for ((key, ..), tokens) in buckets.iter().zip(left) {
                    tx.prepare_cached(
                        "INSERT INTO loom_rate (bucket, tokens, at_ms) VALUES (?1, ?2, ?3)
                         ON CONFLICT (bucket) DO UPDATE SET tokens = excluded.tokens, at_ms = excluded.at_ms",
                    )
                    .map_err(db)?
                    .execute(params![key, tokens, to_i64(now)])
                    .map_err(db)?;
                }
                tx.commit().map_err(db)?;
                Ok(Ok(()))
            })
            .await
        }
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use sqlx::Row as _;

    use super::*;
    use crate::session::PostgresStore;
    use crate::session::postgres::db;

    fn row(r: &sqlx::postgres::PgRow) -> Result<Spent, StoreError> {
        Ok(spent_of((
            r.try_get(0).map_err(db)?,
            r.try_get(1).map_err(db)?,
            r.try_get(2).map_err(db)?,
            r.try_get(3).map_err(db)?,
            r.try_get(4).map_err(db)?,
        )))
    }

    #[async_trait::async_trait]
    impl UsageStore for PostgresStore {
        async fn spent(&self, user: Option<&UserId>, period: u64) -> Result<Spent, StoreError> {
            let found = sqlx::query(
                "SELECT input_tokens, output_tokens, cost_usd, model_calls, tool_calls
                 FROM loom_usage WHERE user_id = $1 AND period = $2",
            )
            .bind(user.map_or(EVERYONE, UserId::as_str))
            .bind(to_i64(period))
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
            found.as_ref().map(row).transpose().map(Option::unwrap_or_default)
        }

        async fn add(&self, user: &UserId, period: u64, spent: &Spent) -> Result<(Spent, Spent), StoreError> {
            let mut tx = self.pool.begin().await.map_err(db)?;
            sqlx::query("DELETE FROM loom_usage WHERE user_id IN ($1, $2) AND period <> $3")
                .bind(user.as_str())
                .bind(EVERYONE)
                .bind(to_i64(period))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            let mut totals = Vec::with_capacity(2);
            for who in [user.as_str(), EVERYONE] {
                let total = sqlx::query(
                    "INSERT INTO loom_usage
                         (user_id, period, input_tokens, output_tokens, cost_usd, model_calls, tool_calls)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (user_id, period) DO UPDATE SET
                         input_tokens = loom_usage.input_tokens + EXCLUDED.input_tokens,
                         output_tokens = loom_usage.output_tokens + EXCLUDED.output_tokens,
                         cost_usd = loom_usage.cost_usd + EXCLUDED.cost_usd,
                         model_calls = loom_usage.model_calls + EXCLUDED.model_calls,
                         tool_calls = loom_usage.tool_calls + EXCLUDED.tool_calls
                     RETURNING input_tokens, output_tokens, cost_usd, model_calls, tool_calls",
                )
                .bind(who)
                .bind(to_i64(period))
                .bind(to_i64(spent.input_tokens))
                .bind(to_i64(spent.output_tokens))
                .bind(spent.cost_usd)
                .bind(to_i64(spent.model_calls))
                .bind(to_i64(spent.tool_calls))
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
                totals.push(row(&total)?);
            }
            tx.commit().await.map_err(db)?;
            Ok((totals[0], totals[1]))
        }

        async fn forget(&self, user: &UserId) -> Result<(), StoreError> {
            let mut tx = self.pool.begin().await.map_err(db)?;
            sqlx::query("DELETE FROM loom_usage WHERE user_id = $1")
                .bind(user.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            sqlx::query("DELETE FROM loom_rate WHERE bucket = $1")
                .bind(user_bucket(user))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)
        }
    }

    #[async_trait::async_trait]
    impl RateStore for PostgresStore {
        async fn take(&self, buckets: &[RateBucket<'_>]) -> Result<Result<(), (Duration, usize)>, StoreError> {
            let buckets = owned(buckets);
            let mut tx = self.pool.begin().await.map_err(db)?;
            // The database's clock: workers on several machines agree on it.
            let now: i64 = sqlx::query_scalar("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT")
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
            // Rows locked in one order (by key), so two calls never wait on each other in a cycle.
            let mut order: Vec<usize> = (0..buckets.len()).collect();
            order.sort_by(|&a, &b| buckets[a].0.cmp(&buckets[b].0));
            let mut held = vec![None; buckets.len()];
            for &i in &order {
                let row: Option<(f64, i64)> =
                    sqlx::query_as("SELECT tokens, at_ms FROM loom_rate WHERE bucket = $1 FOR UPDATE")
                        .bind(&buckets[i].0)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db)?;
                held[i] = row.map(|(tokens, at)| (tokens, Duration::from_millis(to_u64(now.saturating_sub(at)))));
            }
            let mut reads = held.into_iter();
            let left = match take_all(&buckets, |_| Ok(reads.next().flatten()))? {
                Ok(left) => left,
                Err(refused) => return Ok(Err(refused)),
            };
            for ((key, ..), tokens) in buckets.iter().zip(left) {
                sqlx::query(
                    "INSERT INTO loom_rate (bucket, tokens, at_ms) VALUES ($1, $2, $3)
                     ON CONFLICT (bucket) DO UPDATE SET tokens = EXCLUDED.tokens, at_ms = EXCLUDED.at_ms",
                )
                .bind(key)
                .bind(tokens)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            }
            tx.commit().await.map_err(db)?;
            Ok(Ok(()))
        }
    }
}

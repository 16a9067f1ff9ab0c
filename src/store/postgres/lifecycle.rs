//! Reviews, appeals and notices on PostgreSQL: the shared SQL of
//! `crate::store::lifecycle_sql`; each write locks the arrangement's row, records the review or
//! appeal, writes the new version and its history entry, and notifies the other instances
//! (`pg_notify`), all in one transaction. Notices are leased with `FOR UPDATE SKIP LOCKED`.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Row, Transaction};

use super::PgStore;
use crate::domain::Arrangement;
use crate::store::common::{list_limit, map_sqlx, touched_numbers, trunc};
use crate::store::lifecycle::{Notice, NOTICE_COLUMNS};
use crate::store::lifecycle_sql::shared_lifecycle;
use crate::store::StoreError;

shared_lifecycle!(PgStore, sqlx::Postgres);

impl PgStore {
    /// Serialise changes per arrangement across every instance.
    const ARRANGEMENT_LOCK: &'static str = " FOR UPDATE";

    async fn lifecycle_write(&self) -> Result<((), Transaction<'static, Postgres>), StoreError> {
        Ok(((), self.pool.begin().await.map_err(map_sqlx)?))
    }

    /// Tell the other instances which numbers changed.
    async fn announce_change(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        current: &Arrangement,
        changed: &Arrangement,
    ) -> Result<(), StoreError> {
        self.notify(tx, &touched_numbers(Some(current), changed))
            .await
    }

    /// Select and lease in one statement; rows another worker is leasing are skipped.
    async fn lease_due_notices(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Notice>, StoreError> {
        let rows = sqlx::query(&format!(
            "UPDATE notices SET leased_until = $2 WHERE id IN ( \
               SELECT id FROM notices WHERE delivered_at IS NULL AND next_attempt_at <= $1 \
               AND (leased_until IS NULL OR leased_until < $1) \
               ORDER BY next_attempt_at, created_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING {NOTICE_COLUMNS}, created_at"
        ))
        .bind(now)
        .bind(trunc(lease_until))
        .bind(list_limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
        let mut items = Vec::with_capacity(rows.len());
        for r in &rows {
            let created: DateTime<Utc> = r.try_get("created_at").map_err(map_sqlx)?;
            items.push((created, shared::decode_notice(r)?));
        }
        items.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
        Ok(items.into_iter().map(|(_, n)| n).collect())
    }
}

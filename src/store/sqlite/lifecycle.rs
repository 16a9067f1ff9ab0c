//! Reviews, appeals and notices on SQLite: the shared SQL of `crate::store::lifecycle_sql`,
//! with every write in the store's writer queue and `BEGIN IMMEDIATE` transaction (the new
//! arrangement version and its history entry in the same one).

use chrono::{DateTime, Utc};
use sqlx::{Sqlite, Transaction};

use super::SqliteStore;
use crate::domain::Arrangement;
use crate::store::common::{list_limit, map_sqlx};
use crate::store::lifecycle::{Notice, NOTICE_COLUMNS};
use crate::store::lifecycle_sql::shared_lifecycle;
use crate::store::sql::Ts;
use crate::store::StoreError;

shared_lifecycle!(SqliteStore, sqlx::Sqlite);

impl SqliteStore {
    /// The write transaction serialises everything: no row lock.
    const ARRANGEMENT_LOCK: &'static str = "";

    async fn lifecycle_write(
        &self,
    ) -> Result<
        (
            tokio::sync::OwnedMutexGuard<()>,
            Transaction<'static, Sqlite>,
        ),
        StoreError,
    > {
        self.begin_immediate().await
    }

    /// One instance: nobody else to tell.
    async fn announce_change(
        &self,
        _tx: &mut Transaction<'static, Sqlite>,
        _current: &Arrangement,
        _changed: &Arrangement,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    /// Select and lease in one write transaction: no other worker can take the same rows.
    async fn lease_due_notices(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Notice>, StoreError> {
        let (_turn, mut tx) = self.begin_immediate().await?;
        let rows = sqlx::query(&format!(
            "SELECT {NOTICE_COLUMNS} FROM notices WHERE delivered_at IS NULL \
             AND next_attempt_at <= $1 AND (leased_until IS NULL OR leased_until < $1) \
             ORDER BY next_attempt_at, created_at, id LIMIT $2"
        ))
        .bind(Ts(now))
        .bind(list_limit(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let items = rows
            .iter()
            .map(shared::decode_notice)
            .collect::<Result<Vec<_>, _>>()?;
        for n in &items {
            sqlx::query("UPDATE notices SET leased_until = $1 WHERE id = $2")
                .bind(Ts(lease_until))
                .bind(&n.id)
                .execute(&mut *tx)
                .await
                .map_err(map_sqlx)?;
        }
        tx.commit().await.map_err(map_sqlx)?;
        Ok(items)
    }
}

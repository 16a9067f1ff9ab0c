//! [`UrgentStore`] for SQLite and PostgreSQL: the same SQL text for both (no instants).

use async_trait::async_trait;

use super::common::map_sqlx;
use super::postgres::PgStore;
use super::sqlite::SqliteStore;
use super::urgent::UrgentStore;
use super::StoreError;
use crate::domain::{CallId, Provider};

/// `counted` is deliberately not touched: the refusal left it 0.
const RELABEL_CALL: &str = "UPDATE calls SET outcome = 'route', reason = 'urgent_route', \
    route_to = NULL WHERE provider = $1 AND call_id = $2";
const RELABEL_LIVE: &str = "UPDATE live_calls SET outcome = 'route', reason = 'urgent_route', \
    route_to = NULL WHERE provider = $1 AND call_id = $2";

macro_rules! urgent_store_impl {
    ($store:ty) => {
        #[async_trait]
        impl UrgentStore for $store {
            async fn record_urgent_route(
                &self,
                provider: Provider,
                call_id: &CallId,
            ) -> Result<bool, StoreError> {
                let mut tx = self.console_pool().begin().await.map_err(map_sqlx)?;
                let logged = sqlx::query(RELABEL_CALL)
                    .bind(provider.as_str())
                    .bind(call_id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_sqlx)?;
                sqlx::query(RELABEL_LIVE)
                    .bind(provider.as_str())
                    .bind(call_id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_sqlx)?;
                tx.commit().await.map_err(map_sqlx)?;
                Ok(logged.rows_affected() > 0)
            }
        }
    };
}

urgent_store_impl!(SqliteStore);
urgent_store_impl!(PgStore);

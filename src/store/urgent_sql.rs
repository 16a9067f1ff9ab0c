//! [`UrgentStore`] for SQLite and PostgreSQL: one SQL text with `$N` placeholders for both;
//! only the binding of instants differs (INTEGER ms in SQLite, TIMESTAMPTZ in PostgreSQL).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::common::{map_sqlx, trunc};
use super::postgres::PgStore;
use super::sqlite::SqliteStore;
use super::terminations::NewNotification;
use super::urgent::UrgentStore;
use super::StoreError;
use crate::domain::{CallId, Provider, TerminationId};

/// `counted` is deliberately not touched: the refusal left it 0.
const RELABEL_CALL: &str = "UPDATE calls SET outcome = 'route', reason = 'urgent_route', \
    route_to = NULL WHERE provider = $1 AND call_id = $2";
const QUEUE_NOTIFICATION: &str = "INSERT INTO termination_outbox \
    (termination_id, event, payload, attempts, next_attempt_at, created_at) \
    VALUES ($1, $2, $3, 0, $4, $5) ON CONFLICT (termination_id, event) DO NOTHING";

macro_rules! urgent_store_impl {
    ($store:ty, $instant:expr) => {
        #[async_trait]
        impl UrgentStore for $store {
            async fn record_urgent_route(
                &self,
                provider: Provider,
                call_id: &CallId,
            ) -> Result<bool, StoreError> {
                let _turn = self.write_turn().await;
                let logged = sqlx::query(RELABEL_CALL)
                    .bind(provider.as_str())
                    .bind(call_id.as_str())
                    .execute(self.console_pool())
                    .await
                    .map_err(map_sqlx)?;
                Ok(logged.rows_affected() > 0)
            }

            async fn queue_notification(
                &self,
                id: &TerminationId,
                n: &NewNotification,
            ) -> Result<(), StoreError> {
                let _turn = self.write_turn().await;
                sqlx::query(QUEUE_NOTIFICATION)
                    .bind(id.as_str())
                    .bind(n.event.as_str())
                    .bind(n.payload.as_str())
                    .bind($instant(n.due_at))
                    .bind($instant(Utc::now()))
                    .execute(self.console_pool())
                    .await
                    .map_err(map_sqlx)?;
                Ok(())
            }
        }
    };
}

fn sqlite_instant(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn pg_instant(t: DateTime<Utc>) -> DateTime<Utc> {
    trunc(t)
}

urgent_store_impl!(SqliteStore, sqlite_instant);
urgent_store_impl!(PgStore, pg_instant);

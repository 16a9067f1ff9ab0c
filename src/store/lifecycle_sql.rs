//! One implementation of [`LifecycleStore`](super::lifecycle::LifecycleStore) for both
//! backends, in the manner of [`super::sql`]: [`shared_lifecycle!`] is expanded in each
//! backend's `lifecycle` module for its own `sqlx::Database`, with the SQL text of
//! [`super::lifecycle`] (`$N` placeholders) and the column newtypes of [`super::sql`]
//! (instants as [`Ts`](super::sql::Ts); dates as `NaiveDate`, TEXT `YYYY-MM-DD` in SQLite and
//! DATE in PostgreSQL).
//!
//! What differs stays in the backend, as inherent items of its store type:
//! - `ARRANGEMENT_LOCK`: appended to the read of the arrangement a write changes (`""` on
//!   SQLite, whose write transaction already serialises everything; `" FOR UPDATE"` on
//!   PostgreSQL);
//! - `lifecycle_write(&self)`: a write transaction (SQLite: the writer queue and
//!   `BEGIN IMMEDIATE`), returned with whatever guard must live until the commit;
//! - `announce_change(&self, tx, current, changed)`: tell the other instances about a new
//!   version (PostgreSQL's `pg_notify`; nothing on SQLite);
//! - `lease_due_notices(&self, now, lease_until, limit)`: select and lease due notices (one
//!   write transaction on SQLite, `FOR UPDATE SKIP LOCKED` on PostgreSQL).

/// Implements `LifecycleStore` for `$store` (a store type expanded with `shared_store!`) with
/// the shared SQL; expand it in the backend's `lifecycle` module, which provides the
/// backend's own items listed in the module documentation.
macro_rules! shared_lifecycle {
    ($store:ident, $db:ty) => {
        /// The lifecycle SQL shared with the other backend: see `crate::store::lifecycle_sql`.
        mod shared {
            use async_trait::async_trait;
            use chrono::{DateTime, NaiveDate, Utc};

            use super::$store;
            use $crate::domain::{AppealId, Arrangement, ArrangementId};
            use $crate::store::common::{list_limit, map_sqlx, trunc};
            use $crate::store::lifecycle::{
                appeal_sql, apply_appeal, apply_review, list_appeals_sql, list_notices_sql, Appeal,
                AppealDecision, AppealOutcome, AppealStatus, ArrangementReview, LifecycleError,
                LifecycleStore, NewNotice, Notice, RawAppeal, RawReview, ARRANGEMENT_EXISTS,
                DECIDE_APPEAL, INSERT_APPEAL, INSERT_NOTICE, INSERT_REVIEW, NOTICE_DELIVERED,
                NOTICE_FAILED, PENDING_NOTICES, SELECT_REVIEWS,
            };
            use $crate::store::sql::Ts;
            use $crate::store::{ChangeKind, StoreError};

            type Conn = <$db as sqlx::Database>::Connection;
            type DbRow = <$db as sqlx::Database>::Row;
            type Tx = sqlx::Transaction<'static, $db>;

            fn get<'r, T>(r: &'r DbRow, column: &str) -> Result<T, StoreError>
            where
                T: sqlx::Decode<'r, $db> + sqlx::Type<$db>,
            {
                sqlx::Row::try_get(r, column).map_err(map_sqlx)
            }

            fn get_ts(r: &DbRow, column: &str) -> Result<DateTime<Utc>, StoreError> {
                Ok(get::<Ts>(r, column)?.0)
            }

            fn get_opt_ts(r: &DbRow, column: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
                Ok(get::<Option<Ts>>(r, column)?.map(|t| t.0))
            }

            pub(super) fn decode_notice(r: &DbRow) -> Result<Notice, StoreError> {
                let attempts: i32 = get(r, "attempts")?;
                Ok(Notice {
                    id: get(r, "id")?,
                    key: get(r, "notice_key")?,
                    event: get(r, "event")?,
                    arrangement_id: get(r, "arrangement_id")?,
                    payload: get(r, "payload")?,
                    attempts: u32::try_from(attempts).unwrap_or(0),
                    delivered_at: get_opt_ts(r, "delivered_at")?,
                })
            }

            fn decode_appeal(r: &DbRow) -> Result<Appeal, StoreError> {
                RawAppeal {
                    id: get(r, "id")?,
                    arrangement_id: get(r, "arrangement_id")?,
                    received_at: get_ts(r, "received_at")?,
                    grounds: get(r, "grounds")?,
                    recorded_by: get(r, "recorded_by")?,
                    created_at: get_ts(r, "created_at")?,
                    outcome: get(r, "outcome")?,
                    decided_by: get(r, "decided_by")?,
                    decision_notes: get(r, "decision_notes")?,
                    decision_recorded_by: get(r, "decision_recorded_by")?,
                    decided_at: get_opt_ts(r, "decided_at")?,
                }
                .into_domain()
            }

            fn decode_review(r: &DbRow) -> Result<ArrangementReview, StoreError> {
                RawReview {
                    id: get(r, "id")?,
                    arrangement_id: get(r, "arrangement_id")?,
                    arrangement_version: get(r, "arrangement_version")?,
                    outcome: get(r, "outcome")?,
                    notes: get(r, "notes")?,
                    next_review_due: get::<Option<NaiveDate>>(r, "next_review_due")?,
                    reviewer: get(r, "reviewer")?,
                    reviewed_at: get_ts(r, "reviewed_at")?,
                }
                .into_domain()
            }

            async fn appeal_in(
                conn: &mut Conn,
                id: &AppealId,
            ) -> Result<Option<Appeal>, StoreError> {
                let row = sqlx::query(&appeal_sql())
                    .bind(id.as_str())
                    .fetch_optional(conn)
                    .await
                    .map_err(map_sqlx)?;
                row.map(|r| decode_appeal(&r)).transpose()
            }

            impl $store {
                /// The arrangement `id`, read under the backend's lock, for a change.
                async fn arrangement_for_change(
                    tx: &mut Tx,
                    id: &ArrangementId,
                ) -> Result<Arrangement, StoreError> {
                    Self::fetch_arrangement(tx, id, Self::ARRANGEMENT_LOCK)
                        .await?
                        .ok_or(StoreError::NotFound)
                }

                /// Write a new version of `a` (changed from `current` by the caller), its
                /// history entry, and the backend's change notification.
                async fn write_lifecycle_version(
                    &self,
                    tx: &mut Tx,
                    current: &Arrangement,
                    a: &Arrangement,
                    change: ChangeKind,
                    actor: &str,
                ) -> Result<(), StoreError> {
                    Self::write_arrangement(&mut *tx, a, false).await?;
                    Self::write_version(&mut *tx, a, change, actor).await?;
                    self.announce_change(tx, current, a).await
                }
            }

            #[async_trait]
            impl LifecycleStore for $store {
                async fn record_review(
                    &self,
                    review: &ArrangementReview,
                    end_reason: &str,
                ) -> Result<(ArrangementReview, Arrangement), LifecycleError> {
                    let (_turn, mut tx) = self.lifecycle_write().await?;
                    let current =
                        Self::arrangement_for_change(&mut tx, &review.arrangement_id).await?;
                    if current.revoked_at.is_some() {
                        return Err(LifecycleError::Revoked);
                    }
                    let a = apply_review(&current, review, end_reason);
                    let mut saved = review.clone();
                    saved.arrangement_version = a.version;
                    saved.reviewed_at = trunc(review.reviewed_at);
                    sqlx::query(INSERT_REVIEW)
                        .bind(saved.id.as_str())
                        .bind(saved.arrangement_id.as_str())
                        .bind(saved.arrangement_version)
                        .bind(saved.outcome.as_str())
                        .bind(&saved.notes)
                        .bind(saved.next_review_due)
                        .bind(&saved.reviewer)
                        .bind(Ts(saved.reviewed_at))
                        .execute(&mut *tx)
                        .await
                        .map_err(map_sqlx)?;
                    self.write_lifecycle_version(
                        &mut tx,
                        &current,
                        &a,
                        ChangeKind::Reviewed,
                        &saved.reviewer,
                    )
                    .await?;
                    tx.commit().await.map_err(map_sqlx)?;
                    Ok((saved, a))
                }

                async fn list_reviews(
                    &self,
                    arrangement_id: &ArrangementId,
                ) -> Result<Vec<ArrangementReview>, StoreError> {
                    let exists = sqlx::query(ARRANGEMENT_EXISTS)
                        .bind(arrangement_id.as_str())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(map_sqlx)?;
                    if exists.is_none() {
                        return Err(StoreError::NotFound);
                    }
                    let rows = sqlx::query(SELECT_REVIEWS)
                        .bind(arrangement_id.as_str())
                        .fetch_all(&self.pool)
                        .await
                        .map_err(map_sqlx)?;
                    rows.iter().map(decode_review).collect()
                }

                async fn record_appeal(
                    &self,
                    appeal: &Appeal,
                ) -> Result<(Appeal, Arrangement), LifecycleError> {
                    let (_turn, mut tx) = self.lifecycle_write().await?;
                    let current =
                        Self::arrangement_for_change(&mut tx, &appeal.arrangement_id).await?;
                    if current.revoked_at.is_some() {
                        return Err(LifecycleError::Revoked);
                    }
                    let mut saved = appeal.clone();
                    saved.received_at = trunc(appeal.received_at);
                    saved.created_at = trunc(appeal.created_at);
                    saved.decision = None;
                    sqlx::query(INSERT_APPEAL)
                        .bind(saved.id.as_str())
                        .bind(saved.arrangement_id.as_str())
                        .bind(Ts(saved.received_at))
                        .bind(&saved.grounds)
                        .bind(&saved.recorded_by)
                        .bind(Ts(saved.created_at))
                        .execute(&mut *tx)
                        .await
                        .map_err(map_sqlx)?;
                    let a = apply_appeal(&current, saved.created_at, 1, None);
                    self.write_lifecycle_version(
                        &mut tx,
                        &current,
                        &a,
                        ChangeKind::Appealed,
                        &saved.recorded_by,
                    )
                    .await?;
                    tx.commit().await.map_err(map_sqlx)?;
                    Ok((saved, a))
                }

                async fn decide_appeal(
                    &self,
                    id: &AppealId,
                    decision: &AppealDecision,
                    revoke_reason: &str,
                ) -> Result<(Appeal, Arrangement), LifecycleError> {
                    let (_turn, mut tx) = self.lifecycle_write().await?;
                    let appeal = appeal_in(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
                    if appeal.decision.is_some() {
                        return Err(LifecycleError::AlreadyDecided);
                    }
                    // The arrangement's lock serialises decisions on its appeals (across
                    // instances on PostgreSQL); the update below then only changes a
                    // still-open appeal.
                    let current =
                        Self::arrangement_for_change(&mut tx, &appeal.arrangement_id).await?;
                    let mut decision = decision.clone();
                    decision.decided_at = trunc(decision.decided_at);
                    let changed = sqlx::query(DECIDE_APPEAL)
                        .bind(id.as_str())
                        .bind(decision.outcome.as_str())
                        .bind(&decision.decided_by)
                        .bind(&decision.notes)
                        .bind(&decision.recorded_by)
                        .bind(Ts(decision.decided_at))
                        .execute(&mut *tx)
                        .await
                        .map_err(map_sqlx)?
                        .rows_affected();
                    if changed == 0 {
                        return Err(LifecycleError::AlreadyDecided);
                    }
                    let revoke =
                        (decision.outcome == AppealOutcome::Upheld).then_some(revoke_reason);
                    let a = apply_appeal(&current, decision.decided_at, -1, revoke);
                    self.write_lifecycle_version(
                        &mut tx,
                        &current,
                        &a,
                        ChangeKind::AppealDecided,
                        &decision.recorded_by,
                    )
                    .await?;
                    tx.commit().await.map_err(map_sqlx)?;
                    let mut appeal = appeal;
                    appeal.decision = Some(decision);
                    Ok((appeal, a))
                }

                async fn get_appeal(&self, id: &AppealId) -> Result<Option<Appeal>, StoreError> {
                    let row = sqlx::query(&appeal_sql())
                        .bind(id.as_str())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(map_sqlx)?;
                    row.map(|r| decode_appeal(&r)).transpose()
                }

                async fn list_appeals(
                    &self,
                    status: Option<AppealStatus>,
                    arrangement_id: Option<&ArrangementId>,
                    limit: u32,
                ) -> Result<Vec<Appeal>, StoreError> {
                    let rows = sqlx::query(&list_appeals_sql())
                        .bind(status.map(AppealStatus::as_str))
                        .bind(arrangement_id.map(|a| a.as_str().to_owned()))
                        .bind(list_limit(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(map_sqlx)?;
                    rows.iter().map(decode_appeal).collect()
                }

                async fn queue_notice(&self, n: &NewNotice) -> Result<bool, StoreError> {
                    let at = trunc(n.created_at);
                    // Delivery is operational time, like the termination outbox: the worker
                    // compares it with the wall clock, whatever clock dated the event.
                    let first_attempt = $crate::store::common::now_ms();
                    let (_turn, mut tx) = self.lifecycle_write().await?;
                    let done = sqlx::query(INSERT_NOTICE)
                        .bind(&n.id)
                        .bind(&n.key)
                        .bind(&n.event)
                        .bind(n.arrangement_id.as_str())
                        .bind(&n.payload)
                        .bind(Ts(first_attempt))
                        .bind(Ts(at))
                        .execute(&mut *tx)
                        .await
                        .map_err(map_sqlx)?
                        .rows_affected();
                    tx.commit().await.map_err(map_sqlx)?;
                    Ok(done == 1)
                }

                async fn take_due_notices(
                    &self,
                    now: DateTime<Utc>,
                    lease_until: DateTime<Utc>,
                    limit: u32,
                ) -> Result<Vec<Notice>, StoreError> {
                    self.lease_due_notices(now, lease_until, limit).await
                }

                async fn notice_delivered(
                    &self,
                    id: &str,
                    at: DateTime<Utc>,
                ) -> Result<(), StoreError> {
                    let (_turn, mut tx) = self.lifecycle_write().await?;
                    sqlx::query(NOTICE_DELIVERED)
                        .bind(Ts(trunc(at)))
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_sqlx)?;
                    tx.commit().await.map_err(map_sqlx)
                }

                async fn notice_failed(
                    &self,
                    id: &str,
                    retry_at: DateTime<Utc>,
                    error: &str,
                ) -> Result<(), StoreError> {
                    let (_turn, mut tx) = self.lifecycle_write().await?;
                    sqlx::query(NOTICE_FAILED)
                        .bind(Ts(trunc(retry_at)))
                        .bind(error)
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_sqlx)?;
                    tx.commit().await.map_err(map_sqlx)
                }

                async fn list_notices(&self, limit: u32) -> Result<Vec<Notice>, StoreError> {
                    let rows = sqlx::query(&list_notices_sql())
                        .bind(list_limit(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(map_sqlx)?;
                    rows.iter().map(decode_notice).collect()
                }

                async fn pending_notices(&self) -> Result<u64, StoreError> {
                    let n: i64 = sqlx::query_scalar(PENDING_NOTICES)
                        .fetch_one(&self.pool)
                        .await
                        .map_err(map_sqlx)?;
                    Ok(u64::try_from(n).unwrap_or(0))
                }
            }
        }
    };
}

pub(crate) use shared_lifecycle;

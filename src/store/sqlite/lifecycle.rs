//! Reviews and appeals on SQLite: each write runs in the store's `BEGIN IMMEDIATE`
//! transaction, with the arrangement's new version and history entry.

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};

use super::{date_str, from_ms, ms, SqliteStore};
use crate::domain::{AppealId, Arrangement, ArrangementId};
use crate::store::common::{list_limit, map_sqlx, trunc};
use crate::store::lifecycle::{
    appeal_sql, apply_appeal, apply_review, list_appeals_sql, Appeal, AppealDecision,
    AppealOutcome, AppealStatus, ArrangementReview, LifecycleError, LifecycleStore, RawAppeal,
    RawReview, ARRANGEMENT_EXISTS, DECIDE_APPEAL, INSERT_APPEAL, INSERT_REVIEW, SELECT_REVIEWS,
};
use crate::store::lifecycle::{
    list_notices_sql, NewNotice, Notice, INSERT_NOTICE, NOTICE_COLUMNS, NOTICE_DELIVERED,
    NOTICE_FAILED, PENDING_NOTICES,
};
use crate::store::{ChangeKind, StoreError};

fn decode_notice(r: &SqliteRow) -> Result<Notice, StoreError> {
    let attempts: i64 = r.try_get("attempts").map_err(map_sqlx)?;
    Ok(Notice {
        id: r.try_get("id").map_err(map_sqlx)?,
        key: r.try_get("notice_key").map_err(map_sqlx)?,
        event: r.try_get("event").map_err(map_sqlx)?,
        arrangement_id: r.try_get("arrangement_id").map_err(map_sqlx)?,
        payload: r.try_get("payload").map_err(map_sqlx)?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        delivered_at: r
            .try_get::<Option<i64>, _>("delivered_at")
            .map_err(map_sqlx)?
            .map(from_ms)
            .transpose()?,
    })
}

fn decode_appeal(r: &SqliteRow) -> Result<Appeal, StoreError> {
    RawAppeal {
        id: r.try_get("id").map_err(map_sqlx)?,
        arrangement_id: r.try_get("arrangement_id").map_err(map_sqlx)?,
        received_at: from_ms(r.try_get("received_at").map_err(map_sqlx)?)?,
        grounds: r.try_get("grounds").map_err(map_sqlx)?,
        recorded_by: r.try_get("recorded_by").map_err(map_sqlx)?,
        created_at: from_ms(r.try_get("created_at").map_err(map_sqlx)?)?,
        outcome: r.try_get("outcome").map_err(map_sqlx)?,
        decided_by: r.try_get("decided_by").map_err(map_sqlx)?,
        decision_notes: r.try_get("decision_notes").map_err(map_sqlx)?,
        decision_recorded_by: r.try_get("decision_recorded_by").map_err(map_sqlx)?,
        decided_at: r
            .try_get::<Option<i64>, _>("decided_at")
            .map_err(map_sqlx)?
            .map(from_ms)
            .transpose()?,
    }
    .into_domain()
}

fn decode_review(r: &SqliteRow) -> Result<ArrangementReview, StoreError> {
    let next: Option<String> = r.try_get("next_review_due").map_err(map_sqlx)?;
    RawReview {
        id: r.try_get("id").map_err(map_sqlx)?,
        arrangement_id: r.try_get("arrangement_id").map_err(map_sqlx)?,
        arrangement_version: r.try_get("arrangement_version").map_err(map_sqlx)?,
        outcome: r.try_get("outcome").map_err(map_sqlx)?,
        notes: r.try_get("notes").map_err(map_sqlx)?,
        next_review_due: next
            .map(|s| NaiveDate::parse_from_str(&s, "%Y-%m-%d"))
            .transpose()
            .map_err(|_| StoreError::Internal("decoding next_review_due".into()))?,
        reviewer: r.try_get("reviewer").map_err(map_sqlx)?,
        reviewed_at: from_ms(r.try_get("reviewed_at").map_err(map_sqlx)?)?,
    }
    .into_domain()
}

async fn appeal_in(
    tx: &mut Transaction<'static, Sqlite>,
    id: &AppealId,
) -> Result<Option<Appeal>, StoreError> {
    let row = sqlx::query(&appeal_sql())
        .bind(id.as_str())
        .fetch_optional(&mut **tx)
        .await
        .map_err(map_sqlx)?;
    row.map(|r| decode_appeal(&r)).transpose()
}

impl SqliteStore {
    /// Write a new version of `a` (already changed by the caller) and its history entry.
    async fn write_lifecycle_version(
        tx: &mut Transaction<'static, Sqlite>,
        a: &Arrangement,
        change: ChangeKind,
        actor: &str,
    ) -> Result<(), StoreError> {
        Self::write_arrangement(tx, a, false).await?;
        Self::write_version(tx, a, change, actor).await
    }
}

#[async_trait]
impl LifecycleStore for SqliteStore {
    async fn record_review(
        &self,
        review: &ArrangementReview,
        end_reason: &str,
    ) -> Result<(ArrangementReview, Arrangement), LifecycleError> {
        let (_turn, mut tx) = self.begin_immediate().await?;
        let current = Self::fetch_arrangement(&mut tx, &review.arrangement_id)
            .await?
            .ok_or(StoreError::NotFound)?;
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
            .bind(saved.next_review_due.map(date_str))
            .bind(&saved.reviewer)
            .bind(ms(saved.reviewed_at))
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        Self::write_lifecycle_version(&mut tx, &a, ChangeKind::Reviewed, &saved.reviewer).await?;
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
        let (_turn, mut tx) = self.begin_immediate().await?;
        let current = Self::fetch_arrangement(&mut tx, &appeal.arrangement_id)
            .await?
            .ok_or(StoreError::NotFound)?;
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
            .bind(ms(saved.received_at))
            .bind(&saved.grounds)
            .bind(&saved.recorded_by)
            .bind(ms(saved.created_at))
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        let a = apply_appeal(&current, saved.created_at, 1, None);
        Self::write_lifecycle_version(&mut tx, &a, ChangeKind::Appealed, &saved.recorded_by)
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
        let (_turn, mut tx) = self.begin_immediate().await?;
        let appeal = appeal_in(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
        if appeal.decision.is_some() {
            return Err(LifecycleError::AlreadyDecided);
        }
        let current = Self::fetch_arrangement(&mut tx, &appeal.arrangement_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let mut decision = decision.clone();
        decision.decided_at = trunc(decision.decided_at);
        let changed = sqlx::query(DECIDE_APPEAL)
            .bind(id.as_str())
            .bind(decision.outcome.as_str())
            .bind(&decision.decided_by)
            .bind(&decision.notes)
            .bind(&decision.recorded_by)
            .bind(ms(decision.decided_at))
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?
            .rows_affected();
        if changed == 0 {
            return Err(LifecycleError::AlreadyDecided);
        }
        let revoke = (decision.outcome == AppealOutcome::Upheld).then_some(revoke_reason);
        let a = apply_appeal(&current, decision.decided_at, -1, revoke);
        Self::write_lifecycle_version(
            &mut tx,
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
        let (_turn, mut tx) = self.begin_immediate().await?;
        let done = sqlx::query(INSERT_NOTICE)
            .bind(&n.id)
            .bind(&n.key)
            .bind(&n.event)
            .bind(n.arrangement_id.as_str())
            .bind(&n.payload)
            .bind(ms(n.created_at))
            .bind(ms(n.created_at))
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?
            .rows_affected();
        tx.commit().await.map_err(map_sqlx)?;
        Ok(done == 1)
    }

    async fn take_due_notices(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        lease_until: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<Vec<Notice>, StoreError> {
        let (_turn, mut tx) = self.begin_immediate().await?;
        let rows = sqlx::query(&format!(
            "SELECT {NOTICE_COLUMNS} FROM notices WHERE delivered_at IS NULL \
             AND next_attempt_at <= $1 AND (leased_until IS NULL OR leased_until < $1) \
             ORDER BY next_attempt_at, created_at, id LIMIT $2"
        ))
        .bind(ms(now))
        .bind(list_limit(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let items = rows
            .iter()
            .map(decode_notice)
            .collect::<Result<Vec<_>, _>>()?;
        for n in &items {
            sqlx::query("UPDATE notices SET leased_until = $1 WHERE id = $2")
                .bind(ms(lease_until))
                .bind(&n.id)
                .execute(&mut *tx)
                .await
                .map_err(map_sqlx)?;
        }
        tx.commit().await.map_err(map_sqlx)?;
        Ok(items)
    }

    async fn notice_delivered(
        &self,
        id: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        let (_turn, mut tx) = self.begin_immediate().await?;
        sqlx::query(NOTICE_DELIVERED)
            .bind(ms(at))
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(())
    }

    async fn notice_failed(
        &self,
        id: &str,
        retry_at: chrono::DateTime<chrono::Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        let (_turn, mut tx) = self.begin_immediate().await?;
        sqlx::query(NOTICE_FAILED)
            .bind(ms(retry_at))
            .bind(error)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(())
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

//! Reviews and appeals on PostgreSQL: each write locks the arrangement's row, records the
//! review or appeal, writes the new version and its history entry, and notifies the other
//! instances (`pg_notify`), all in one transaction.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row, Transaction};

use super::PgStore;
use crate::domain::{AppealId, Arrangement, ArrangementId};
use crate::store::common::{list_limit, map_sqlx, touched_numbers, trunc};
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

fn decode_notice(r: &PgRow) -> Result<Notice, StoreError> {
    let attempts: i32 = r.try_get("attempts").map_err(map_sqlx)?;
    Ok(Notice {
        id: r.try_get("id").map_err(map_sqlx)?,
        key: r.try_get("notice_key").map_err(map_sqlx)?,
        event: r.try_get("event").map_err(map_sqlx)?,
        arrangement_id: r.try_get("arrangement_id").map_err(map_sqlx)?,
        payload: r.try_get("payload").map_err(map_sqlx)?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        delivered_at: r.try_get("delivered_at").map_err(map_sqlx)?,
    })
}

fn decode_appeal(r: &PgRow) -> Result<Appeal, StoreError> {
    RawAppeal {
        id: r.try_get("id").map_err(map_sqlx)?,
        arrangement_id: r.try_get("arrangement_id").map_err(map_sqlx)?,
        received_at: r.try_get("received_at").map_err(map_sqlx)?,
        grounds: r.try_get("grounds").map_err(map_sqlx)?,
        recorded_by: r.try_get("recorded_by").map_err(map_sqlx)?,
        created_at: r.try_get("created_at").map_err(map_sqlx)?,
        outcome: r.try_get("outcome").map_err(map_sqlx)?,
        decided_by: r.try_get("decided_by").map_err(map_sqlx)?,
        decision_notes: r.try_get("decision_notes").map_err(map_sqlx)?,
        decision_recorded_by: r.try_get("decision_recorded_by").map_err(map_sqlx)?,
        decided_at: r.try_get("decided_at").map_err(map_sqlx)?,
    }
    .into_domain()
}

fn decode_review(r: &PgRow) -> Result<ArrangementReview, StoreError> {
    RawReview {
        id: r.try_get("id").map_err(map_sqlx)?,
        arrangement_id: r.try_get("arrangement_id").map_err(map_sqlx)?,
        arrangement_version: r.try_get("arrangement_version").map_err(map_sqlx)?,
        outcome: r.try_get("outcome").map_err(map_sqlx)?,
        notes: r.try_get("notes").map_err(map_sqlx)?,
        next_review_due: r.try_get("next_review_due").map_err(map_sqlx)?,
        reviewer: r.try_get("reviewer").map_err(map_sqlx)?,
        reviewed_at: r.try_get("reviewed_at").map_err(map_sqlx)?,
    }
    .into_domain()
}

impl PgStore {
    /// Write a new version of `a` (changed from `current` by the caller), its history entry,
    /// and the change notification.
    async fn write_lifecycle_version(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        current: &Arrangement,
        a: &Arrangement,
        change: ChangeKind,
        actor: &str,
    ) -> Result<(), StoreError> {
        Self::write_arrangement(tx, a, false).await?;
        Self::write_version(tx, a, change, actor).await?;
        self.notify(tx, &touched_numbers(Some(current), a)).await
    }
}

#[async_trait]
impl LifecycleStore for PgStore {
    async fn record_review(
        &self,
        review: &ArrangementReview,
        end_reason: &str,
    ) -> Result<(ArrangementReview, Arrangement), LifecycleError> {
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        let current = Self::fetch_for_update(&mut tx, &review.arrangement_id)
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
            .bind(saved.next_review_due)
            .bind(&saved.reviewer)
            .bind(saved.reviewed_at)
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        self.write_lifecycle_version(&mut tx, &current, &a, ChangeKind::Reviewed, &saved.reviewer)
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
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        let current = Self::fetch_for_update(&mut tx, &appeal.arrangement_id)
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
            .bind(saved.received_at)
            .bind(&saved.grounds)
            .bind(&saved.recorded_by)
            .bind(saved.created_at)
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
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        let appeal = sqlx::query(&appeal_sql())
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_sqlx)?
            .map(|r| decode_appeal(&r))
            .transpose()?
            .ok_or(StoreError::NotFound)?;
        if appeal.decision.is_some() {
            return Err(LifecycleError::AlreadyDecided);
        }
        // The arrangement's row lock serialises decisions on its appeals across instances;
        // the update below then only changes a still-open appeal.
        let current = Self::fetch_for_update(&mut tx, &appeal.arrangement_id)
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
            .bind(decision.decided_at)
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?
            .rows_affected();
        if changed == 0 {
            return Err(LifecycleError::AlreadyDecided);
        }
        let revoke = (decision.outcome == AppealOutcome::Upheld).then_some(revoke_reason);
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
        let done = sqlx::query(INSERT_NOTICE)
            .bind(&n.id)
            .bind(&n.key)
            .bind(&n.event)
            .bind(n.arrangement_id.as_str())
            .bind(&n.payload)
            .bind(at)
            .bind(at)
            .execute(&self.pool)
            .await
            .map_err(map_sqlx)?
            .rows_affected();
        Ok(done == 1)
    }

    async fn take_due_notices(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        lease_until: chrono::DateTime<chrono::Utc>,
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
            let created: chrono::DateTime<chrono::Utc> =
                r.try_get("created_at").map_err(map_sqlx)?;
            items.push((created, decode_notice(r)?));
        }
        items.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
        Ok(items.into_iter().map(|(_, n)| n).collect())
    }

    async fn notice_delivered(
        &self,
        id: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(NOTICE_DELIVERED)
            .bind(trunc(at))
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(map_sqlx)?;
        Ok(())
    }

    async fn notice_failed(
        &self,
        id: &str,
        retry_at: chrono::DateTime<chrono::Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(NOTICE_FAILED)
            .bind(trunc(retry_at))
            .bind(error)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(map_sqlx)?;
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

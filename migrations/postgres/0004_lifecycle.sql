-- Reviews and appeals of arrangements (SPEC §13), and the words for the customer.

ALTER TABLE arrangements ADD COLUMN customer_explanation TEXT;

-- One row per review; `arrangement_version` is the version the review made.
CREATE TABLE arrangement_reviews (
    id                  TEXT        PRIMARY KEY,
    arrangement_id      TEXT        NOT NULL REFERENCES arrangements (id) ON DELETE CASCADE,
    arrangement_version BIGINT      NOT NULL,
    outcome             TEXT        NOT NULL,
    notes               TEXT,
    next_review_due     DATE,
    reviewer            TEXT        NOT NULL,
    reviewed_at         TIMESTAMPTZ NOT NULL
);
CREATE INDEX arrangement_reviews_arrangement ON arrangement_reviews (arrangement_id, reviewed_at);

-- One row per appeal; the decision columns are filled once.
CREATE TABLE appeals (
    id                   TEXT        PRIMARY KEY,
    arrangement_id       TEXT        NOT NULL REFERENCES arrangements (id) ON DELETE CASCADE,
    received_at          TIMESTAMPTZ NOT NULL,
    grounds              TEXT        NOT NULL,
    status               TEXT        NOT NULL,
    recorded_by          TEXT        NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL,
    outcome              TEXT,
    decided_by           TEXT,
    decision_notes       TEXT,
    decision_recorded_by TEXT,
    decided_at           TIMESTAMPTZ
);
CREATE INDEX appeals_arrangement ON appeals (arrangement_id, status);
CREATE INDEX appeals_status ON appeals (status, created_at);

-- Notices to the organisation (arrangement.review_due, …, appeal.created), delivered like the
-- termination outbox. `notice_key` makes each event once per arrangement version, whichever
-- instance's sweep queues it first.
CREATE TABLE notices (
    id              TEXT        PRIMARY KEY,
    notice_key      TEXT        NOT NULL UNIQUE,
    event           TEXT        NOT NULL,
    arrangement_id  TEXT        NOT NULL,
    payload         TEXT        NOT NULL,
    attempts        INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    leased_until    TIMESTAMPTZ,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    delivered_at    TIMESTAMPTZ
);
CREATE INDEX notices_due ON notices (delivered_at, next_attempt_at);

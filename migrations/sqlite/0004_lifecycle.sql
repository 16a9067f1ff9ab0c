-- Reviews and appeals of arrangements (SPEC §13), and the words for the customer.
-- Instants are INTEGER milliseconds (UTC); dates are TEXT 'YYYY-MM-DD'.

ALTER TABLE arrangements ADD COLUMN customer_explanation TEXT;

-- One row per review; `arrangement_version` is the version the review made.
CREATE TABLE arrangement_reviews (
    id                  TEXT    PRIMARY KEY NOT NULL,
    arrangement_id      TEXT    NOT NULL REFERENCES arrangements (id) ON DELETE CASCADE,
    arrangement_version INTEGER NOT NULL,
    outcome             TEXT    NOT NULL,
    notes               TEXT,
    next_review_due     TEXT,
    reviewer            TEXT    NOT NULL,
    reviewed_at         INTEGER NOT NULL
);
CREATE INDEX arrangement_reviews_arrangement ON arrangement_reviews (arrangement_id, reviewed_at);

-- One row per appeal; the decision columns are filled once.
CREATE TABLE appeals (
    id             TEXT    PRIMARY KEY NOT NULL,
    arrangement_id TEXT    NOT NULL REFERENCES arrangements (id) ON DELETE CASCADE,
    received_at    INTEGER NOT NULL,
    grounds        TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    recorded_by    TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    outcome        TEXT,
    decided_by     TEXT,
    decision_notes TEXT,
    decision_recorded_by TEXT,
    decided_at     INTEGER
);
CREATE INDEX appeals_arrangement ON appeals (arrangement_id, status);
CREATE INDEX appeals_status ON appeals (status, created_at);

-- Fairline schema, SQLite. Instants are INTEGER milliseconds since the Unix epoch (UTC);
-- dates are TEXT 'YYYY-MM-DD'; lists and the allowance are JSON text.

CREATE TABLE arrangements (
    id                     TEXT    PRIMARY KEY NOT NULL,
    customer_ref           TEXT    NOT NULL,
    customer_name          TEXT,
    phone_numbers          TEXT    NOT NULL,
    kind                   TEXT    NOT NULL,
    windows                TEXT    NOT NULL,
    allowance              TEXT,
    designated_staff       TEXT    NOT NULL,
    max_call_minutes       INTEGER,
    language               TEXT    NOT NULL,
    reason                 TEXT    NOT NULL,
    decided_by             TEXT    NOT NULL,
    equality_advice_sought INTEGER NOT NULL,
    advocate               TEXT,
    starts_at              INTEGER NOT NULL,
    ends_at                INTEGER NOT NULL,
    review_due             TEXT    NOT NULL,
    revoked_at             INTEGER,
    revoked_reason         TEXT,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL,
    version                INTEGER NOT NULL
);
CREATE INDEX arrangements_review_due ON arrangements (review_due);

-- number -> arrangement, for lookups by caller number.
CREATE TABLE arrangement_numbers (
    number         TEXT NOT NULL,
    arrangement_id TEXT NOT NULL REFERENCES arrangements (id) ON DELETE CASCADE,
    PRIMARY KEY (number, arrangement_id)
);
CREATE INDEX arrangement_numbers_arrangement ON arrangement_numbers (arrangement_id);

-- Every version of every arrangement, with a full snapshot.
CREATE TABLE arrangement_versions (
    arrangement_id TEXT    NOT NULL REFERENCES arrangements (id) ON DELETE CASCADE,
    version        INTEGER NOT NULL,
    change         TEXT    NOT NULL,
    actor          TEXT    NOT NULL,
    changed_at     INTEGER NOT NULL,
    snapshot       TEXT    NOT NULL,
    PRIMARY KEY (arrangement_id, version)
);

-- The decision log; counted calls are the rows with counted = 1.
CREATE TABLE calls (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    provider            TEXT    NOT NULL,
    call_id             TEXT    NOT NULL,
    number              TEXT    NOT NULL,
    arrangement_id      TEXT,
    arrangement_version INTEGER,
    decided_at          INTEGER NOT NULL,
    outcome             TEXT    NOT NULL,
    reason              TEXT    NOT NULL,
    route_to            TEXT,
    next_permitted_at   INTEGER,
    source              TEXT    NOT NULL,
    counted             INTEGER NOT NULL,
    counted_before      INTEGER NOT NULL DEFAULT 0,
    final_status        TEXT,
    duration_seconds    INTEGER,
    UNIQUE (provider, call_id)
);
CREATE INDEX calls_counting ON calls (arrangement_id, counted, decided_at);
CREATE INDEX calls_number ON calls (number, decided_at);
CREATE INDEX calls_decided_at ON calls (decided_at);

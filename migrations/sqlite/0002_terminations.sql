-- Ended calls (SPEC §9) and the notification outbox. Instants are INTEGER milliseconds (UTC).

CREATE TABLE terminations (
    id             TEXT    PRIMARY KEY NOT NULL,
    provider       TEXT    NOT NULL,
    call_id        TEXT    NOT NULL,
    caller         TEXT,
    arrangement_id TEXT,
    customer_ref   TEXT,
    agent          TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    warning_given  INTEGER NOT NULL,
    warned_at      INTEGER,
    notes          TEXT,
    terminated_at  INTEGER NOT NULL,
    -- pending (claimed, provisional) | completed | already_ended | failed
    hangup_result  TEXT    NOT NULL,
    hangup_detail  TEXT,
    claimed_until  INTEGER NOT NULL,
    review_outcome TEXT,
    reviewer       TEXT,
    review_notes   TEXT,
    reviewed_at    INTEGER,
    UNIQUE (provider, call_id)
);
CREATE INDEX terminations_terminated_at ON terminations (terminated_at);
CREATE INDEX terminations_hangup_result ON terminations (hangup_result, claimed_until);

-- One row per notification to deliver; kept (with delivered_at) once delivered.
CREATE TABLE termination_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    termination_id  TEXT    NOT NULL REFERENCES terminations (id) ON DELETE CASCADE,
    event           TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    leased_until    INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    UNIQUE (termination_id, event)
);
CREATE INDEX termination_outbox_due ON termination_outbox (delivered_at, next_attempt_at);

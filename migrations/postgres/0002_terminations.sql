-- Ended calls (SPEC §9) and the notification outbox.

CREATE TABLE terminations (
    id             TEXT        PRIMARY KEY,
    provider       TEXT        NOT NULL,
    call_id        TEXT        NOT NULL,
    caller         TEXT,
    arrangement_id TEXT,
    customer_ref   TEXT,
    agent          TEXT        NOT NULL,
    reason         TEXT        NOT NULL,
    warning_given  BOOLEAN     NOT NULL,
    warned_at      TIMESTAMPTZ,
    notes          TEXT,
    terminated_at  TIMESTAMPTZ NOT NULL,
    -- pending (claimed, provisional) | completed | already_ended | failed
    hangup_result  TEXT        NOT NULL,
    hangup_detail  TEXT,
    claimed_until  TIMESTAMPTZ NOT NULL,
    review_outcome TEXT,
    reviewer       TEXT,
    review_notes   TEXT,
    reviewed_at    TIMESTAMPTZ,
    UNIQUE (provider, call_id)
);
CREATE INDEX terminations_terminated_at ON terminations (terminated_at);
CREATE INDEX terminations_hangup_result ON terminations (hangup_result, claimed_until);

-- One row per notification to deliver; kept (with delivered_at) once delivered.
CREATE TABLE termination_outbox (
    id              BIGSERIAL   PRIMARY KEY,
    termination_id  TEXT        NOT NULL REFERENCES terminations (id) ON DELETE CASCADE,
    event           TEXT        NOT NULL,
    payload         TEXT        NOT NULL,
    attempts        INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    leased_until    TIMESTAMPTZ,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    delivered_at    TIMESTAMPTZ,
    UNIQUE (termination_id, event)
);
CREATE INDEX termination_outbox_due ON termination_outbox (delivered_at, next_attempt_at);

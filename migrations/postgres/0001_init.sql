-- Fairline schema, PostgreSQL. Instants are TIMESTAMPTZ; lists and the allowance are JSONB.

CREATE TABLE arrangements (
    id                     TEXT        PRIMARY KEY,
    customer_ref           TEXT        NOT NULL,
    customer_name          TEXT,
    phone_numbers          JSONB       NOT NULL,
    kind                   TEXT        NOT NULL,
    windows                JSONB       NOT NULL,
    allowance              JSONB,
    designated_staff       JSONB       NOT NULL,
    max_call_minutes       BIGINT,
    language               TEXT        NOT NULL,
    reason                 TEXT        NOT NULL,
    decided_by             TEXT        NOT NULL,
    equality_advice_sought BOOLEAN     NOT NULL,
    advocate               TEXT,
    starts_at              TIMESTAMPTZ NOT NULL,
    ends_at                TIMESTAMPTZ NOT NULL,
    review_due             DATE        NOT NULL,
    revoked_at             TIMESTAMPTZ,
    revoked_reason         TEXT,
    created_at             TIMESTAMPTZ NOT NULL,
    updated_at             TIMESTAMPTZ NOT NULL,
    version                BIGINT      NOT NULL
);
CREATE INDEX arrangements_review_due ON arrangements (review_due);

CREATE TABLE arrangement_numbers (
    number         TEXT NOT NULL,
    arrangement_id TEXT NOT NULL REFERENCES arrangements (id) ON DELETE CASCADE,
    PRIMARY KEY (number, arrangement_id)
);
CREATE INDEX arrangement_numbers_arrangement ON arrangement_numbers (arrangement_id);

CREATE TABLE arrangement_versions (
    arrangement_id TEXT        NOT NULL REFERENCES arrangements (id) ON DELETE CASCADE,
    version        BIGINT      NOT NULL,
    change         TEXT        NOT NULL,
    actor          TEXT        NOT NULL,
    changed_at     TIMESTAMPTZ NOT NULL,
    snapshot       JSONB       NOT NULL,
    PRIMARY KEY (arrangement_id, version)
);

CREATE TABLE calls (
    id                  BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider            TEXT        NOT NULL,
    call_id             TEXT        NOT NULL,
    number              TEXT        NOT NULL,
    arrangement_id      TEXT,
    arrangement_version BIGINT,
    decided_at          TIMESTAMPTZ NOT NULL,
    outcome             TEXT        NOT NULL,
    reason              TEXT        NOT NULL,
    route_to            TEXT,
    next_permitted_at   TIMESTAMPTZ,
    source              TEXT        NOT NULL,
    counted             BOOLEAN     NOT NULL,
    counted_before      BIGINT      NOT NULL DEFAULT 0,
    final_status        TEXT,
    duration_seconds    BIGINT,
    UNIQUE (provider, call_id)
);
CREATE INDEX calls_counting ON calls (arrangement_id, counted, decided_at);
CREATE INDEX calls_number ON calls (number, decided_at);
CREATE INDEX calls_decided_at ON calls (decided_at);

-- Staff console (SPEC §12): sessions and live calls. Instants are INTEGER ms since the epoch.

-- One row per signed-in browser. The cookie holds a random id; only its SHA-256 is kept here.
CREATE TABLE console_sessions (
    id_hash      TEXT    PRIMARY KEY,
    csrf_token   TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    role         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
);
CREATE INDEX console_sessions_last_seen_at ON console_sessions (last_seen_at);
CREATE INDEX console_sessions_created_at ON console_sessions (created_at);

-- Calls in progress that an instance decided; deleted at the final status or after 4 hours.
CREATE TABLE live_calls (
    provider       TEXT    NOT NULL,
    call_id        TEXT    NOT NULL,
    started_at     INTEGER NOT NULL,
    caller         TEXT,
    outcome        TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    route_to       TEXT,
    arrangement_id TEXT,
    PRIMARY KEY (provider, call_id)
);
CREATE INDEX live_calls_started_at ON live_calls (started_at);

-- OpenID Connect sign-ins under way: found by the SHA-256 of their `state`, taken once.
CREATE TABLE console_logins (
    state_hash    TEXT    PRIMARY KEY,
    nonce         TEXT    NOT NULL,
    pkce_verifier TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);

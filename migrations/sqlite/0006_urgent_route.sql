-- SPEC §14: an arrangement may turn the safeguarding route off for its caller (1 = offered).
ALTER TABLE arrangements ADD COLUMN urgent_route INTEGER NOT NULL DEFAULT 1;

-- SPEC §14: the notification outbox also carries `call.urgent_route`, which belongs to no
-- termination, so its rows no longer reference `terminations` (the column keeps its name; for
-- an urgent route it holds the notification's own id). SQLite cannot drop a constraint: the
-- table is rebuilt with the same columns, rows and index.
CREATE TABLE termination_outbox_0006 (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    termination_id  TEXT    NOT NULL,
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
INSERT INTO termination_outbox_0006
    (id, termination_id, event, payload, attempts, next_attempt_at, leased_until, last_error,
     created_at, delivered_at)
    SELECT id, termination_id, event, payload, attempts, next_attempt_at, leased_until,
           last_error, created_at, delivered_at
    FROM termination_outbox;
DROP TABLE termination_outbox;
ALTER TABLE termination_outbox_0006 RENAME TO termination_outbox;
CREATE INDEX termination_outbox_due ON termination_outbox (delivered_at, next_attempt_at);
-- What ON DELETE CASCADE did for a termination's notifications.
CREATE TRIGGER termination_outbox_cascade AFTER DELETE ON terminations
BEGIN
    DELETE FROM termination_outbox WHERE termination_id = OLD.id;
END;

-- SPEC §14: an arrangement may turn the safeguarding route off for its caller.
ALTER TABLE arrangements ADD COLUMN urgent_route BOOLEAN NOT NULL DEFAULT TRUE;

-- SPEC §14: the notification outbox also carries `call.urgent_route`, which belongs to no
-- termination, so its rows no longer reference `terminations` (the column keeps its name; for
-- an urgent route it holds the notification's own id).
ALTER TABLE termination_outbox DROP CONSTRAINT IF EXISTS termination_outbox_termination_id_fkey;
-- What ON DELETE CASCADE did for a termination's notifications.
CREATE FUNCTION termination_outbox_cascade() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM termination_outbox WHERE termination_id = OLD.id;
    RETURN OLD;
END;
$$;
CREATE TRIGGER termination_outbox_cascade AFTER DELETE ON terminations
    FOR EACH ROW EXECUTE FUNCTION termination_outbox_cascade();

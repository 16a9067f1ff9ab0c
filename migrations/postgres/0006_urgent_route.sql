-- SPEC §14: an arrangement may turn the safeguarding route off for its caller.
ALTER TABLE arrangements ADD COLUMN urgent_route BOOLEAN NOT NULL DEFAULT TRUE;

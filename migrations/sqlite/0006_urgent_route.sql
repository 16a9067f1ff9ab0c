-- SPEC §14: an arrangement may turn the safeguarding route off for its caller (1 = offered).
ALTER TABLE arrangements ADD COLUMN urgent_route INTEGER NOT NULL DEFAULT 1;

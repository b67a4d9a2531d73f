-- Unit edits (issue 12): every version records the operation that made it
-- and the codes it came from or went to; a version closed by a write
-- records who closed it, why and by which operation.
--
-- A retired unit is a code whose last version is closed (valid_to) and
-- that has no current version: nothing else marks it, so the history stays
-- append-only (no tombstone row that every read of current units would
-- have to skip). close_operation says what ended it ('retire', 'merge',
-- …) and close_related the codes its area or children went to. Codes are
-- identities: a retired code is never given again.
ALTER TABLE units
    ADD COLUMN operation       text NOT NULL DEFAULT 'import'
        CHECK (operation IN ('import', 'reshape', 'retire', 'merge', 'create', 'revert', 'split', 'recode')),
    ADD COLUMN related_codes   text[] NOT NULL DEFAULT '{}',
    ADD COLUMN closed_by       text,
    ADD COLUMN close_reason    text,
    ADD COLUMN close_operation text,
    ADD COLUMN close_related   text[];

-- Retired codes by code, and the last version of each code.
CREATE INDEX units_code_version ON units (layer, code, version DESC);

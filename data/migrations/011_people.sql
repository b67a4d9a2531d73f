-- People (issue 16): grid workers (网格员), supervisors and department
-- handlers; the grid assignment (一格一员: one responsible worker per base
-- grid, optional backups) and the log of every reassignment.

CREATE TABLE people (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL CHECK (btrim(name) <> '' AND length(name) <= 100),
    -- Shown whole only to admins (the API masks it for everyone else).
    phone      text CHECK (phone ~ '^\+?[0-9][0-9-]{4,23}$'),
    role       text NOT NULL CHECK (role IN ('worker', 'supervisor', 'handler')),
    department text REFERENCES departments (code),
    -- The unit a supervisor oversees (a community or a street; '' for none):
    -- figures and "my tasks" of a supervisor cover the grids below it.
    unit_code  text NOT NULL DEFAULT '' CHECK (unit_code = '' OR unit_code ~ '^[0-9]{6}([0-9]{3}){0,3}$'),
    status     text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    version    int NOT NULL DEFAULT 1 CHECK (version > 0),
    -- A handler acts for a department: dispatch names a handler of the
    -- department the event goes to.
    CHECK (role <> 'handler' OR department IS NOT NULL)
);
-- A phone number names one person: the CSV import matches on it.
CREATE UNIQUE INDEX people_phone ON people (phone) WHERE phone IS NOT NULL;
CREATE INDEX people_role ON people (role, id);
CREATE INDEX people_department ON people (department, id) WHERE department IS NOT NULL;

-- The people of each base grid: rank 0 is the responsible worker, 1.. the
-- backups in order. A grid code absent here has no worker (the coverage
-- report lists it). Rows are replaced whole on every reassignment.
CREATE TABLE grid_workers (
    grid_code text NOT NULL CHECK (grid_code ~ '^[0-9]{15}$'),
    rank      smallint NOT NULL CHECK (rank BETWEEN 0 AND 9),
    person_id bigint NOT NULL REFERENCES people (id),
    PRIMARY KEY (grid_code, rank),
    UNIQUE (grid_code, person_id)
);
CREATE INDEX grid_workers_person ON grid_workers (person_id, grid_code);

-- Every change of a grid's people, with who made it and why. version is
-- the assignment's version (its ETag): 1 for the first assignment.
-- kind: assign (PUT), unassign (PUT with no worker), split / merge (a unit
-- edit moved the grid's people with the code that survived), recode (an
-- edit gave the same grid a new code and its people followed), retire (the
-- grid's code ended).
CREATE TABLE grid_worker_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    grid_code   text NOT NULL,
    version     int NOT NULL CHECK (version > 0),
    kind        text NOT NULL CHECK (kind IN ('assign', 'unassign', 'split', 'merge', 'retire', 'recode')),
    worker_id   bigint REFERENCES people (id),
    backup_ids  bigint[] NOT NULL DEFAULT '{}',
    prev_worker bigint REFERENCES people (id),
    prev_backup bigint[] NOT NULL DEFAULT '{}',
    actor       text NOT NULL,
    reason      text NOT NULL DEFAULT '',
    at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (grid_code, version)
);
CREATE INDEX grid_worker_log_worker ON grid_worker_log (worker_id, at) WHERE worker_id IS NOT NULL;
CREATE INDEX grid_worker_log_at ON grid_worker_log (at, id);

-- A credential speaks for a person: /v1/me names them and "my tasks" are
-- theirs.
ALTER TABLE api_tokens ADD COLUMN person_id bigint REFERENCES people (id);

-- Events and their people. Plain ADD COLUMN: it works on a partitioned
-- events table too (migration 010) and rewrites nothing.
--   reporter_id  the person whose credential reported it
--   verifier_id  the grid's worker when it was reported (核查人)
--   handler_id   the handler of the department it was dispatched to
--   verify_due   when the verification is due (set on handled)
--   verified_by / verified_at  who verified it (the verifier or a supervisor)
--   suspended_at / suspended_from  the suspension in force (挂起) and the
--                status it stopped; the deadline moves on by the working
--                time suspended when it is lifted
--   extensions   approved extensions (延期): on-time figures count the
--                deadline they agreed
ALTER TABLE events
    ADD COLUMN reporter_id bigint REFERENCES people (id),
    ADD COLUMN verifier_id bigint REFERENCES people (id),
    ADD COLUMN handler_id bigint REFERENCES people (id),
    ADD COLUMN verify_due timestamptz,
    ADD COLUMN verified_by bigint REFERENCES people (id),
    ADD COLUMN verified_at timestamptz,
    ADD COLUMN suspended_at timestamptz,
    ADD COLUMN suspended_from text,
    ADD COLUMN extensions int NOT NULL DEFAULT 0;
CREATE INDEX events_verifier_open ON events (verifier_id, verify_due) WHERE status = 'handled';
CREATE INDEX events_handler_open ON events (handler_id, deadline)
    WHERE status IN ('dispatched', 'handling', 'returned', 'suspended');
CREATE INDEX events_reporter ON events (reporter_id, reported_at) WHERE reporter_id IS NOT NULL;

-- Suspended (挂起): the clock stops until the suspension is lifted. Not an
-- open status (gridmap_open_status), so it is never overdue meanwhile.
DO $$
DECLARE c text;
BEGIN
    FOR c IN SELECT conname FROM pg_constraint
             WHERE conrelid = 'events'::regclass AND contype = 'c' AND conparentid = 0
               AND pg_get_constraintdef(oid) LIKE '%status%returned%'
    LOOP
        EXECUTE format('ALTER TABLE events DROP CONSTRAINT %I', c);
    END LOOP;
END $$;
ALTER TABLE events ADD CONSTRAINT events_status_check CHECK (status IN ('reported', 'registered', 'dispatched',
    'handling', 'handled', 'verified', 'closed', 'rejected', 'returned', 'suspended'));

-- Log entries that move no status (an extension asked, approved or
-- refused) have from = to and a kind; person_id is the person of the
-- credential that made the entry (who verified, who approved).
ALTER TABLE event_log
    ADD COLUMN kind text NOT NULL DEFAULT 'transition'
        CHECK (kind IN ('transition', 'extension_requested', 'extension_approved', 'extension_refused', 'regrid')),
    ADD COLUMN person_id bigint REFERENCES people (id);

-- Extension requests (延期申请): a handler asks for more time with a
-- reason; a supervisor approves (the deadline moves by the amount, on the
-- working calendar, from the deadline it had) or refuses. One pending
-- request per event at a time.
CREATE TABLE event_extensions (
    event_code    text NOT NULL,
    n             int NOT NULL CHECK (n > 0),
    amount        int NOT NULL CHECK (amount BETWEEN 1 AND 10000),
    unit          text NOT NULL CHECK (unit IN ('working_hours', 'working_days')),
    reason        text NOT NULL CHECK (btrim(reason) <> ''),
    status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'refused')),
    requested_by  text NOT NULL,
    requester_id  bigint REFERENCES people (id),
    requested_at  timestamptz NOT NULL,
    decided_by    text,
    decider_id    bigint REFERENCES people (id),
    decided_at    timestamptz,
    note          text NOT NULL DEFAULT '',
    old_deadline  timestamptz NOT NULL,
    new_deadline  timestamptz,
    PRIMARY KEY (event_code, n)
);
CREATE UNIQUE INDEX event_extensions_pending ON event_extensions (event_code) WHERE status = 'pending';

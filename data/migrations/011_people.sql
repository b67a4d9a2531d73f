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
-- edit moved the grid's people with the code that survived), retire (the
-- grid's code ended).
CREATE TABLE grid_worker_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    grid_code   text NOT NULL,
    version     int NOT NULL CHECK (version > 0),
    kind        text NOT NULL CHECK (kind IN ('assign', 'unassign', 'split', 'merge', 'retire')),
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

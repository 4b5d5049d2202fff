-- aws_lambda 1.0: call AWS Lambda functions from SQL, with the SQL surface of Amazon RDS.
--
-- The public functions are thin LANGUAGE sql shells. The work is done by the Python
-- package plpy_lambda, which "make install" put in @PLPY_LAMBDA_DIR@ (a root-owned
-- directory fixed at install time; no setting a database role can change moves it).
\echo Use "CREATE EXTENSION aws_lambda CASCADE" to load this file. \quit

CREATE SCHEMA aws_lambda;
-- What the public functions run on: no application role calls these (see the grants at the end).
CREATE SCHEMA aws_lambda_internal;

-- What the Python side hands back for each item of invoke_many: a result, or the error to
-- raise. ordinality: the item's place in invoke_many (NULL for an error of the whole call).
CREATE TYPE aws_lambda_internal._invoke_result AS (
    ordinality bigint,
    status_code int,
    payload text,
    executed_version text,
    log_result text,
    durable_execution_arn text,
    request_id text,
    error_sqlstate text,
    error_message text,
    error_detail text,
    error_hint text
);

-- Import plpy_lambda into this backend's Python, from the directory fixed at install time.
-- It never raises (an error raised in Python carries a traceback): when the import fails,
-- _import_failed puts a stand-in in its place. Short: every new connection compiles it.
CREATE FUNCTION aws_lambda_internal._load()
RETURNS void
LANGUAGE plpython3u VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $py$
import gc, sys
if "@PLPY_LAMBDA_DIR@" not in sys.path:
    sys.path.insert(0, "@PLPY_LAMBDA_DIR@")
collecting = gc.isenabled()
gc.disable()  # what the import makes lives as long as the backend: no cycles to look for
try:
    import plpy_lambda.sql
    GD["plpy_lambda.sql"] = plpy_lambda.sql
except ImportError as error:
    plpy.execute(plpy.prepare("SELECT aws_lambda_internal._import_failed($1)", ["text"]),
                 [error.name])
finally:
    if collecting:
        gc.enable()
$py$;

-- In place of plpy_lambda.sql for the session, after its import failed: every entry point
-- returns the failure (LM090) in its own shape, which the SQL layer raises as any other.
CREATE FUNCTION aws_lambda_internal._import_failed(module text)
RETURNS void
LANGUAGE plpython3u VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $py$
failure = {
    "error_sqlstate": "LM090",
    "error_message": "aws_lambda: the server's Python cannot import \"%s\"" % module,
    "error_detail": "plpy_lambda and its dependencies (botocore) are installed "
                    "in @PLPY_LAMBDA_DIR@ by the extension's \"make install\".",
    "error_hint": "Run \"make install\" as root in the aws_lambda source tree "
                  "(or pgxn install aws_lambda), then reconnect.",
}

class Row(dict):  # a row of any entry point's type: its error columns, NULL elsewhere
    def __missing__(self, column):
        return None

class Unloaded:
    def invoke_one(self, *args):
        return None  # invoke's answer domain then raises failure()
    def failure(self, GD):
        return tuple(failure.values())
    def invoke_many(self, *args):
        return [Row(failure)]
    def __getattr__(self, name):  # check_queued, deliver_batch, prune_deliveries
        return lambda *args: Row(failure)

GD["plpy_lambda.sql"] = Unloaded()
$py$;

-- Many invocations of one function, rows in input order. An error of the whole call
-- comes back as a row whose ordinality is NULL.
CREATE FUNCTION aws_lambda_internal._invoke_many_py(
    function_name text, payloads text[], region text, invocation_type text, log_type text,
    context text, qualifier text, max_concurrency int,
    connect_timeout text, request_timeout text, conf_load_time timestamptz,
    result_type text DEFAULT 'json', tenant_id text DEFAULT NULL, tenant_setting text DEFAULT NULL)
RETURNS SETOF aws_lambda_internal._invoke_result
LANGUAGE plpython3u VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $py$
if "plpy_lambda.sql" not in GD:
    plpy.execute("SELECT aws_lambda_internal._load()")
return GD["plpy_lambda.sql"].invoke_many(
    plpy, GD, function_name, payloads, region, invocation_type, log_type, context, qualifier,
    max_concurrency, connect_timeout, request_timeout, conf_load_time, result_type, tenant_id,
    tenant_setting)
$py$;

-- True when there is no error; else raise it with its own SQLSTATE, message, DETAIL, HINT.
CREATE FUNCTION aws_lambda_internal._no_error(sqlstate text, message text, detail text, hint text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF sqlstate IS NULL THEN
        RETURN true;
    ELSIF detail IS NOT NULL AND hint IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = sqlstate, MESSAGE = message, DETAIL = detail, HINT = hint;
    ELSIF detail IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = sqlstate, MESSAGE = message, DETAIL = detail;
    ELSIF hint IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = sqlstate, MESSAGE = message, HINT = hint;
    ELSE
        RAISE EXCEPTION USING ERRCODE = sqlstate, MESSAGE = message;
    END IF;
END
$$;

-- The error columns of the failure the last call under invoke returned NULL for (see
-- _invoke_json), taken once.
CREATE FUNCTION aws_lambda_internal._failure(
    OUT sqlstate text, OUT message text, OUT detail text, OUT hint text)
LANGUAGE plpython3u VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $py$
if "plpy_lambda.sql" not in GD:
    plpy.execute("SELECT aws_lambda_internal._load()")
return GD["plpy_lambda.sql"].failure(GD)
$py$;

-- Raise that failure, through _no_error (the CHECK of invoke's answer domains calls it).
CREATE FUNCTION aws_lambda_internal._raise_failure()
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    failure record;
BEGIN
    failure := aws_lambda_internal._failure();
    RETURN aws_lambda_internal._no_error(failure.sqlstate, failure.message, failure.detail,
                                         failure.hint);
END
$$;

-- The operator's settings, from the server's configuration files only: a session,
-- role or database setting (which any role can make) is never read.
CREATE FUNCTION aws_lambda_internal._operator_settings(OUT name text, OUT setting text)
RETURNS SETOF record
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT DISTINCT ON (f.name) f.name, f.setting
FROM pg_catalog.pg_show_all_file_settings() AS f  -- pg_file_settings, without its view
WHERE f.name IN ('aws_lambda.endpoint_override', 'aws_lambda.role_arn',
                 'aws_lambda.delivery_max_attempts', 'aws_lambda.delivery_max_age',
                 'aws_lambda.delivery_retention', 'aws_lambda.max_response_bytes',
                 'aws_lambda.log_min_duration', 'aws_lambda.log_failures')
  AND f.error IS NULL
ORDER BY f.name, f.seqno DESC
$$;

-- What invoke runs under its shell, for each payload type: one PL/Python function, which
-- returns its row, or NULL when the call failed. Its result type is a domain whose CHECK
-- raises the failure the call left when the row is NULL (PL/Python cannot raise an error
-- without a traceback; see _no_error): a failure costs the warm path nothing, and no
-- PL/pgSQL function stands between the shell and the call.
-- @each payload
CREATE TYPE aws_lambda_internal._{{payload_type}}_result AS (
    status_code int,
    payload {{payload_type}},
    executed_version text,
    log_result text
);

CREATE DOMAIN aws_lambda_internal._{{payload_type}}_answer AS aws_lambda_internal._{{payload_type}}_result
    CHECK ((VALUE).status_code IS NOT NULL OR aws_lambda_internal._raise_failure());

-- One invocation. The payload column's type is checked in Python: a payload it cannot
-- hold is an error of ours (LM005), not its input function's. No SET clause (it runs only
-- under invoke's shells, which pin search_path) and no parameter names (PL/Python would
-- set each as a global of the function and delete it again): each would cost every warm
-- call microseconds. Its arguments are those of plpy_lambda.sql.invoke_one:
CREATE FUNCTION aws_lambda_internal._invoke_{{payload_type}}(
    text,               -- function_name
    {{payload_type}},   -- payload
    text,               -- region
    text,               -- invocation_type
    text,               -- log_type
    {{payload_type}},   -- context
    text,               -- qualifier
    text,               -- composite_region
    boolean,            -- from_composite
    text,               -- connect_timeout
    text,               -- request_timeout
    timestamptz,        -- conf_load_time
    text,               -- events_after_commit
    text,               -- tenant_setting (the session's aws_lambda.tenant_id)
    text)               -- durable_setting (the session's aws_lambda.durable_execution_name)
RETURNS aws_lambda_internal._{{payload_type}}_answer
LANGUAGE plpython3u VOLATILE PARALLEL UNSAFE
AS $py$
if "plpy_lambda.sql" not in GD:
    plpy.execute("SELECT aws_lambda_internal._load()")
return GD["plpy_lambda.sql"].invoke_one(plpy, GD, "{{payload_type}}", *args)
$py$;
-- @end

-- The public surface: RDS's four overloads (text or composite name x json or jsonb).

-- @each name payload
CREATE FUNCTION aws_lambda.invoke(
    IN function_name {{name_type}},
    IN payload {{payload_type}},
{{region_param}}
    IN invocation_type text DEFAULT 'RequestResponse',
    IN log_type text DEFAULT 'None',
    IN context {{payload_type}} DEFAULT NULL,
    IN qualifier varchar(128) DEFAULT NULL,
    OUT status_code int,
    OUT payload {{payload_type}},
    OUT executed_version text,
    OUT log_result text)
LANGUAGE sql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT aws_lambda_internal._invoke_{{payload_type}}(
    {{name}}, $2, {{region}}, {{invocation_type}}, {{log_type}}, {{context}}, {{qualifier}}, {{composite_region}},
    {{from_composite}},
    pg_catalog.current_setting('aws_lambda.connect_timeout_ms', true),
    pg_catalog.current_setting('aws_lambda.request_timeout_ms', true),
    pg_catalog.pg_conf_load_time(),
    pg_catalog.current_setting('aws_lambda.events_after_commit', true),
    pg_catalog.current_setting('aws_lambda.tenant_id', true),
    pg_catalog.current_setting('aws_lambda.durable_execution_name', true))
$$;
-- @end

-- invoke_many: the same function for every payload, at most max_concurrency at a time.
-- @each payload
CREATE FUNCTION aws_lambda.invoke_many(
    IN function_name text,
    IN payloads {{payload_type}}[],
    IN region text DEFAULT NULL,
    IN invocation_type text DEFAULT 'RequestResponse',
    IN log_type text DEFAULT 'None',
    IN context {{payload_type}} DEFAULT NULL,
    IN qualifier varchar(128) DEFAULT NULL,
    IN max_concurrency int DEFAULT 10,
    IN tenant_id text DEFAULT NULL,  -- NULL: the session's aws_lambda.tenant_id; '': none
    OUT ordinality bigint,
    OUT status_code int,
    OUT payload {{payload_type}},
    OUT executed_version text,
    OUT log_result text,
    OUT error_sqlstate text,
    OUT error_message text,
    OUT error_detail text,
    OUT durable_execution_arn text,
    OUT request_id text)
RETURNS SETOF record
LANGUAGE sql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT r.ordinality, r.status_code, r.payload::{{payload_type}}, r.executed_version, r.log_result,
       r.error_sqlstate, r.error_message, r.error_detail, r.durable_execution_arn, r.request_id
FROM aws_lambda_internal._invoke_many_py(
        $1, $2::text[], $3, $4, $5, $6::text, $7, $8,
        pg_catalog.current_setting('aws_lambda.connect_timeout_ms', true),
        pg_catalog.current_setting('aws_lambda.request_timeout_ms', true),
        pg_catalog.pg_conf_load_time(), '{{payload_type}}', $9,
        pg_catalog.current_setting('aws_lambda.tenant_id', true)) AS r
WHERE CASE WHEN r.ordinality IS NULL
           THEN aws_lambda_internal._no_error(r.error_sqlstate, r.error_message, r.error_detail, r.error_hint)
           ELSE true END
$$;
-- @end

-- Commit-time delivery: invocations queued in the caller's transaction and sent after
-- COMMIT by aws_lambda.deliver() (docs/delivery.md).

-- The server a delivery was queued on: its system identifier, which a streaming standby
-- shares with its primary (so a promoted standby delivers what its primary queued) and
-- which every other server has of its own. The default of deliveries.origin, so a cost of
-- every queued row: a body without FROM and without SET is inlined into the INSERT (one
-- read of pg_control, some 2 us); one PostgreSQL would plan per call costs some 9 us.
CREATE FUNCTION aws_lambda_internal._system_identifier()
RETURNS bigint
LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$ SELECT (pg_catalog.pg_control_system()).system_identifier $$;

-- One row per queued invocation. Written only by the functions below; each role reads
-- the rows it queued. A row is known by (id, origin): logical replication may copy another
-- server's rows here (replicated), whose ids this server's sequence hands out too.
CREATE TABLE aws_lambda.deliveries (
    id bigint GENERATED BY DEFAULT AS IDENTITY,
    origin bigint NOT NULL DEFAULT aws_lambda_internal._system_identifier(),
    replicated boolean NOT NULL DEFAULT false,  -- copied here by logical replication: never sent here
    function_name text NOT NULL,
    region text,
    invocation_type text NOT NULL,
    log_type text NOT NULL,
    context json,
    qualifier text,
    tenant_id text,  -- sent as X-Amz-Tenant-Id; NULL: none
    durable_execution_name text,  -- sent as X-Amz-Durable-Execution-Name on every attempt
    ordering_key text,
    payload json NOT NULL,
    status text NOT NULL DEFAULT 'pending',  -- pending, succeeded, failed or dead
    attempts int NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    next_attempt_at timestamptz,
    redelivered_at timestamptz,
    delivered_at timestamptz,
    status_code int,
    response json,
    executed_version text,
    log_result text,
    durable_execution_arn text,  -- the durable execution it started (or found)
    request_id text,  -- Lambda's x-amzn-RequestId of the last answer
    last_error text,
    queued_by name NOT NULL,
    PRIMARY KEY (id, origin)
);
CREATE INDEX deliveries_pending ON aws_lambda.deliveries (id)
    WHERE status = 'pending' AND NOT replicated;
CREATE INDEX deliveries_pending_ordered ON aws_lambda.deliveries (ordering_key, id)
    WHERE status = 'pending' AND ordering_key IS NOT NULL AND NOT replicated;
-- The settled deliveries of each status and role, oldest first: delivery_status()'s oldest
-- and retention's pruning find their rows here without reading the rest of the log.
CREATE INDEX deliveries_settled ON aws_lambda.deliveries (status, queued_by, created_at)
    WHERE status <> 'pending' AND NOT replicated;
-- Vacuum after 1% of the rows changed, not 20%: at millions of rows the default lets the
-- queue's indexes fill with the entries of delivered rows between two vacuums.
ALTER TABLE aws_lambda.deliveries SET (
    autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_insert_scale_factor = 0.01,
    autovacuum_analyze_scale_factor = 0.01);

-- How many deliveries each role has of each settled status (succeeded, failed, dead), so
-- that delivery_status() counts none of them: the statement triggers below add a row of
-- changes per statement that settles, redelivers or removes deliveries (never a lock that
-- two deliverers or a queueing transaction would wait for), and pruning sums them up.
-- Pending deliveries are counted where they are (deliveries_pending): the backlog only.
-- Like deliveries, a row is known by (id, origin), and one that logical replication copied
-- here (a publication FOR ALL TABLES takes this table too) is marked replicated: kept, with
-- the changes its server makes to it, and never counted here.
CREATE TABLE aws_lambda_internal.delivery_counts (
    id bigint GENERATED BY DEFAULT AS IDENTITY,
    origin bigint NOT NULL DEFAULT aws_lambda_internal._system_identifier(),
    replicated boolean NOT NULL DEFAULT false,
    queued_by name NOT NULL,
    status text NOT NULL,
    deliveries bigint NOT NULL,
    PRIMARY KEY (id, origin)
);
SELECT pg_catalog.pg_extension_config_dump('aws_lambda_internal.delivery_counts', '');
SELECT pg_catalog.pg_extension_config_dump('aws_lambda_internal.delivery_counts_id_seq', '');

CREATE FUNCTION aws_lambda_internal._count_settled()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM aws_lambda_internal.delivery_counts;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO aws_lambda_internal.delivery_counts (queued_by, status, deliveries)
        SELECT c.queued_by, c.status, sum(c.change)
        FROM (SELECT n.queued_by, n.status, 1 AS change FROM settled_now AS n
              WHERE n.status <> 'pending' AND NOT n.replicated
              UNION ALL
              SELECT o.queued_by, o.status, -1 FROM settled_before AS o
              WHERE o.status <> 'pending' AND NOT o.replicated) AS c
        GROUP BY c.queued_by, c.status
        HAVING sum(c.change) <> 0;
    ELSE
        INSERT INTO aws_lambda_internal.delivery_counts (queued_by, status, deliveries)
        SELECT o.queued_by, o.status, -count(*) FROM settled_before AS o
        WHERE o.status <> 'pending' AND NOT o.replicated
        GROUP BY o.queued_by, o.status;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER deliveries_counted_update AFTER UPDATE ON aws_lambda.deliveries
    REFERENCING OLD TABLE AS settled_before NEW TABLE AS settled_now
    FOR EACH STATEMENT EXECUTE FUNCTION aws_lambda_internal._count_settled();
CREATE TRIGGER deliveries_counted_delete AFTER DELETE ON aws_lambda.deliveries
    REFERENCING OLD TABLE AS settled_before
    FOR EACH STATEMENT EXECUTE FUNCTION aws_lambda_internal._count_settled();
CREATE TRIGGER deliveries_counted_truncate AFTER TRUNCATE ON aws_lambda.deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION aws_lambda_internal._count_settled();


-- A row that logical replication writes here (the apply worker runs with
-- session_replication_role = replica, where only REPLICA triggers fire) is another
-- server's delivery: kept, with the changes its server makes to it, and never sent here.
CREATE FUNCTION aws_lambda_internal._mark_replicated()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.replicated := true;
    RETURN NEW;
END
$$;
CREATE TRIGGER deliveries_replicated BEFORE INSERT OR UPDATE ON aws_lambda.deliveries
    FOR EACH ROW EXECUTE FUNCTION aws_lambda_internal._mark_replicated();
ALTER TABLE aws_lambda.deliveries ENABLE REPLICA TRIGGER deliveries_replicated;
CREATE TRIGGER delivery_counts_replicated BEFORE INSERT OR UPDATE ON aws_lambda_internal.delivery_counts
    FOR EACH ROW EXECUTE FUNCTION aws_lambda_internal._mark_replicated();
ALTER TABLE aws_lambda_internal.delivery_counts ENABLE REPLICA TRIGGER delivery_counts_replicated;
-- pg_dump keeps the log and its sequence; DROP EXTENSION removes both.
SELECT pg_catalog.pg_extension_config_dump('aws_lambda.deliveries', '');
SELECT pg_catalog.pg_extension_config_dump('aws_lambda.deliveries_id_seq', '');

ALTER TABLE aws_lambda.deliveries ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON aws_lambda.deliveries TO PUBLIC;  -- and USAGE on the schema, as for invoke
DO $$
BEGIN
    -- A role reads what it queued; pg_read_all_data (PostgreSQL 14+, else pg_monitor) reads all.
    EXECUTE pg_catalog.format(
        'CREATE POLICY deliveries_read ON aws_lambda.deliveries FOR SELECT '
        'USING (queued_by = current_user OR pg_catalog.pg_has_role(current_user, %L, ''USAGE''))',
        CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'pg_read_all_data')
             THEN 'pg_read_all_data' ELSE 'pg_monitor' END);
END
$$;

-- Queueing writes aws_lambda.deliveries, which a hot standby cannot: say so, with the
-- SQLSTATE of a write in a read-only transaction (25006). `what` is the caller's name.
-- (events_after_commit reaches this through invoke_on_commit; plpy_lambda.sql adds its HINT.)
CREATE FUNCTION aws_lambda_internal._needs_primary(what text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = '25006',
        MESSAGE = 'aws_lambda: queueing needs the primary',
        DETAIL = pg_catalog.format('aws_lambda.%s writes aws_lambda.deliveries, and this server '
                                   'is a hot standby (read-only).', what),
        HINT = CASE WHEN what = 'deliver' THEN
                   'Run the relay or pg_cron job against the primary: a relay given every host '
                   'with target_session_attrs=read-write finds it. aws_lambda.invoke and '
                   'aws_lambda.invoke_many work on a standby.'
               ELSE 'Run it on the primary. aws_lambda.invoke and aws_lambda.invoke_many work on a standby.'
               END;
END
$$;

-- invoke_on_commit's arguments, checked as invoke checks them, as they are stored.
CREATE TYPE aws_lambda_internal._queued_call AS (
    function_name text,
    region text,
    invocation_type text,
    log_type text,
    context text,
    qualifier text,
    tenant_id text,
    durable_execution_name text,
    error_sqlstate text,
    error_message text,
    error_detail text,
    error_hint text
);

CREATE FUNCTION aws_lambda_internal._check_queued(
    function_name text, region text, invocation_type text, log_type text, context text,
    qualifier text, composite_region text, from_composite boolean, payload_size int,
    tenant_id text, tenant_setting text, durable_execution_name text)
RETURNS aws_lambda_internal._queued_call
LANGUAGE plpython3u VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $py$
if "plpy_lambda.sql" not in GD:
    plpy.execute("SELECT aws_lambda_internal._load()")
return GD["plpy_lambda.sql"].check_queued(
    GD, function_name, region, invocation_type, log_type, context, qualifier,
    composite_region, from_composite, payload_size, tenant_id, tenant_setting,
    durable_execution_name)
$py$;

-- invoke_on_commit: invoke's four overloads, queued in the caller's transaction;
-- invocation_type defaults to Event. The common shape (a bare name and the defaults, a
-- payload within 1 MB) needs no further check; any other goes through _check_queued, once
-- per distinct set of arguments. The whole body is in each overload: one PL/pgSQL call per
-- queued row is what queueing costs (docs/performance.md).
-- @each name payload
CREATE FUNCTION aws_lambda.invoke_on_commit(
    IN function_name {{name_type}},
    IN payload {{payload_type}},
{{region_param}}
    IN invocation_type text DEFAULT 'Event',
    IN log_type text DEFAULT 'None',
    IN context {{payload_type}} DEFAULT NULL,
    IN qualifier varchar(128) DEFAULT NULL,
    IN ordering_key text DEFAULT NULL,
    IN tenant_id text DEFAULT NULL,  -- NULL: the session's aws_lambda.tenant_id; '': none
    IN durable_execution_name text DEFAULT NULL)  -- sent on every attempt
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    queued aws_lambda_internal._queued_call;
    queued_id bigint;
    notified boolean;
BEGIN
    -- A name check in the "C" collation: the same test, several times cheaper.
    IF ({{name}} COLLATE "C" !~ '[^-A-Za-z0-9_]' AND octet_length({{name}}) BETWEEN 1 AND 64
        AND {{any_region}} IS NULL AND {{context}} IS NULL AND {{qualifier}} IS NULL
        AND {{invocation_type}} IN ('Event', 'RequestResponse', 'DryRun')
        AND {{log_type}} IN ('None', 'Tail')
        AND octet_length($2::text) <= 1048576 AND NOT pg_catalog.pg_is_in_recovery()
        AND coalesce({{tenant}}, pg_catalog.current_setting('aws_lambda.tenant_id', true), '') = ''
        AND {{durable}} IS NULL) IS TRUE THEN
        INSERT INTO aws_lambda.deliveries (function_name, invocation_type, log_type, ordering_key,
                                           payload, queued_by)
        -- The role the session acts as (SET ROLE, else the login role): what current_user is
        -- outside SECURITY DEFINER functions, and a role can only SET ROLE to its own roles.
        VALUES ({{name}}, {{invocation_type}}, {{log_type}}, {{last}}, $2{{as_json}},
                coalesce(nullif(current_setting('role'), 'none'), session_user))
        RETURNING id INTO queued_id;
    ELSE
        IF pg_catalog.pg_is_in_recovery() THEN
            PERFORM aws_lambda_internal._needs_primary('invoke_on_commit');
        END IF;
        queued := aws_lambda_internal._check_queued(
            {{name}}, {{region}}, {{invocation_type}}, {{log_type}}, {{context}}::text, {{qualifier}},
            {{composite_region}}, {{from_composite}}, octet_length($2::text), {{tenant}},
            pg_catalog.current_setting('aws_lambda.tenant_id', true), {{durable}});
        PERFORM aws_lambda_internal._no_error(queued.error_sqlstate, queued.error_message,
                                              queued.error_detail, queued.error_hint);
        INSERT INTO aws_lambda.deliveries (function_name, region, invocation_type, log_type, context,
                                           qualifier, tenant_id, durable_execution_name, ordering_key,
                                           payload, queued_by)
        VALUES (queued.function_name, queued.region, queued.invocation_type, queued.log_type,
                queued.context::json, queued.qualifier, queued.tenant_id,
                queued.durable_execution_name, {{last}}, $2{{as_json}},
                coalesce(nullif(current_setting('role'), 'none'), session_user))
        RETURNING id INTO queued_id;
    END IF;
    -- Wakes the relay at commit (equal notifications go out once per transaction). An
    -- assignment, not PERFORM: PL/pgSQL evaluates an expression without starting the executor.
    notified := pg_catalog.pg_notify('aws_lambda_deliveries', '') IS NULL;
    RETURN queued_id;
END
$$;
-- @end

-- A row trigger: CREATE TRIGGER ... AFTER INSERT OR UPDATE OR DELETE ON t FOR EACH ROW
-- EXECUTE FUNCTION aws_lambda.invoke_on_commit_trigger('fn' [, 'Event' [, option ...]]).
-- Queues Supabase's database-webhook payload, with the session's tenant. Options, in any
-- order: 'ordered' keys it by table and primary key; 'durable' names each delivery's durable
-- execution pg-<origin>-<database oid>-<id>: the same on every attempt, and no two
-- deliveries of any database of any server share it; 'columns=a,b' sends only those columns
-- of record and old_record. An event over Lambda's limit for its invocation type never
-- fails the write: it goes as the smaller event of _truncated_event.
CREATE FUNCTION aws_lambda.invoke_on_commit_trigger()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    key text;
    options text[] := TG_ARGV[2:];
    columns text[];
    invocation_type text := coalesce(TG_ARGV[1], 'Event');
    event json;
    queued_id bigint;
BEGIN
    IF TG_LEVEL <> 'ROW' OR TG_WHEN <> 'AFTER' THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = 'aws_lambda.invoke_on_commit_trigger() must be an AFTER ... FOR EACH ROW trigger';
    END IF;
    IF TG_NARGS > 2 THEN
        columns := aws_lambda_internal._trigger_columns(TG_RELID, options);
        options := ARRAY(SELECT o FROM unnest(options) AS o WHERE o NOT LIKE 'columns=%');
    END IF;
    IF TG_NARGS > 5 OR NOT options <@ ARRAY['ordered', 'durable']
       OR cardinality(options) > cardinality(ARRAY(SELECT DISTINCT unnest(options))) THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = 'invalid arguments for aws_lambda.invoke_on_commit_trigger()',
            HINT = 'Arguments: function_name [, invocation_type [, ''ordered'', ''durable'', ''columns=a,b'']].';
    END IF;
    IF 'ordered' = ANY (options) THEN
        key := aws_lambda_internal._row_key(TG_RELID,
                                   CASE WHEN TG_OP = 'DELETE' THEN pg_catalog.to_jsonb(OLD)
                                        ELSE pg_catalog.to_jsonb(NEW) END);
    END IF;
    IF columns IS NULL THEN
        event := pg_catalog.json_build_object(
            'type', TG_OP, 'table', TG_TABLE_NAME, 'schema', TG_TABLE_SCHEMA,
            'record', pg_catalog.row_to_json(NEW), 'old_record', pg_catalog.row_to_json(OLD));
    ELSE
        event := pg_catalog.json_build_object(
            'type', TG_OP, 'table', TG_TABLE_NAME, 'schema', TG_TABLE_SCHEMA,
            'record', aws_lambda_internal._columns_of(pg_catalog.row_to_json(NEW), columns),
            'old_record', aws_lambda_internal._columns_of(pg_catalog.row_to_json(OLD), columns));
    END IF;
    IF pg_catalog.octet_length(event::text) >
       (CASE WHEN invocation_type = 'Event' THEN 1048576 ELSE 6291456 END) THEN
        event := aws_lambda_internal._truncated_event(event, TG_RELID);
    END IF;
    queued_id := aws_lambda.invoke_on_commit(
        TG_ARGV[0], event, NULL, invocation_type, 'None', NULL, NULL, key);
    IF 'durable' = ANY (options) THEN
        UPDATE aws_lambda.deliveries AS d
        SET durable_execution_name = pg_catalog.format(
            'pg-%s-%s-%s', d.origin,
            (SELECT b.oid FROM pg_catalog.pg_database AS b WHERE b.datname = pg_catalog.current_database()),
            d.id)
        WHERE d.id = queued_id AND NOT d.replicated;
    END IF;
    RETURN NULL;
END
$$;

-- The columns a 'columns=a,b' option of the trigger names (NULL: no such option), each a
-- column of the table.
CREATE FUNCTION aws_lambda_internal._trigger_columns(relation oid, options text[])
RETURNS text[]
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    columns text[];
    missing text;
BEGIN
    IF (SELECT count(*) FROM unnest(options) AS o WHERE o LIKE 'columns=%') > 1 THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = 'invalid arguments for aws_lambda.invoke_on_commit_trigger(): more than one columns= option';
    END IF;
    SELECT ARRAY(SELECT btrim(c) FROM unnest(string_to_array(substr(o, 9), ',')) AS c)
    INTO columns FROM unnest(options) AS o WHERE o LIKE 'columns=%';
    SELECT c INTO missing FROM unnest(columns) AS c
    WHERE NOT EXISTS (SELECT FROM pg_attribute AS a
                      WHERE a.attrelid = relation AND a.attname = c AND a.attnum > 0 AND NOT a.attisdropped)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('invalid arguments for aws_lambda.invoke_on_commit_trigger(): table %s has no column "%s"',
                             relation::regclass, missing),
            HINT = 'List the columns to send as ''columns=id,status,total'' (column names, comma-separated).';
    END IF;
    RETURN columns;
END
$$;

-- A row's JSON with only the given columns (all when NULL).
CREATE FUNCTION aws_lambda_internal._columns_of(row_value json, columns text[])
RETURNS json
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT CASE WHEN columns IS NULL OR row_value IS NULL THEN row_value
            ELSE (SELECT json_object_agg(e.key, e.value) FROM json_each(row_value) AS e
                  WHERE e.key = ANY (columns)) END
$$;

-- The event of a row whose whole event is over Lambda's limit: record and old_record with
-- only the primary key's columns, the names of the other columns the event had, and
-- "truncated": true.
CREATE FUNCTION aws_lambda_internal._truncated_event(event json, relation oid)
RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT json_build_object(
    'type', event -> 'type', 'table', event -> 'table', 'schema', event -> 'schema',
    'record', CASE WHEN json_typeof(event -> 'record') = 'object' THEN
                  coalesce(aws_lambda_internal._columns_of(event -> 'record', k.names), '{}') END,
    'old_record', CASE WHEN json_typeof(event -> 'old_record') = 'object' THEN
                  coalesce(aws_lambda_internal._columns_of(event -> 'old_record', k.names), '{}') END,
    'truncated', true,
    'columns_left_out', (SELECT coalesce(json_agg(e.key), '[]')
                         FROM json_each(CASE WHEN json_typeof(event -> 'record') = 'object'
                                             THEN event -> 'record' ELSE event -> 'old_record' END) AS e
                         WHERE e.key <> ALL (k.names)))
FROM (SELECT coalesce(array_agg(a.attname::text), '{}') AS names  -- the primary key's columns
      FROM pg_index AS i
      JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
      WHERE i.indrelid = relation AND i.indisprimary) AS k
$$;

-- The ordering key of a row: its table and primary key values.
CREATE FUNCTION aws_lambda_internal._row_key(relation oid, row_values jsonb)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT CASE WHEN count(a.attname) = 0 THEN aws_lambda_internal._no_primary_key(relation)
            ELSE relation::regclass::text || jsonb_agg(row_values -> a.attname ORDER BY k.n)::text END
FROM pg_index AS i
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = relation AND i.indisprimary
$$;

CREATE FUNCTION aws_lambda_internal._no_primary_key(relation oid)
RETURNS text
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = '22023',
        MESSAGE = pg_catalog.format('table %s has no primary key', relation::regclass),
        HINT = 'aws_lambda.invoke_on_commit_trigger(..., ''ordered'') keys deliveries by the primary key.';
END
$$;

-- Send what is due: claim a batch, send it, record the outcomes (caller's transaction).
CREATE TYPE aws_lambda_internal._batch_counts AS (
    succeeded int,
    failed int,
    pending int,
    dead int,
    error_sqlstate text,
    error_message text,
    error_detail text,
    error_hint text
);

CREATE FUNCTION aws_lambda_internal._deliver_batch(
    batch_size int, max_concurrency int, connect_timeout text, request_timeout text,
    conf_load_time timestamptz, report_deliveries text)
RETURNS aws_lambda_internal._batch_counts
LANGUAGE plpython3u VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $py$
if "plpy_lambda.sql" not in GD:
    plpy.execute("SELECT aws_lambda_internal._load()")
return GD["plpy_lambda.sql"].deliver_batch(
    plpy, GD, batch_size, max_concurrency, connect_timeout, request_timeout, conf_load_time,
    report_deliveries)
$py$;

-- Remove expired succeeded deliveries (aws_lambda.delivery_retention), one bounded chunk,
-- and sum up aws_lambda_internal.delivery_counts: at most every `every` seconds per backend,
-- at once again while a chunk came out full. Its own transaction, never a claim's.
CREATE TYPE aws_lambda_internal._pruned AS (
    pruned int,
    error_sqlstate text,
    error_message text,
    error_detail text,
    error_hint text
);

CREATE FUNCTION aws_lambda_internal._prune_deliveries(conf_load_time timestamptz, every float8)
RETURNS aws_lambda_internal._pruned
LANGUAGE plpython3u VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $py$
if "plpy_lambda.sql" not in GD:
    plpy.execute("SELECT aws_lambda_internal._load()")
return GD["plpy_lambda.sql"].prune_deliveries(plpy, GD, conf_load_time, every)
$py$;

-- CALL aws_lambda.deliver(): batches until nothing is due, committing after each, and
-- between them the chunks of pruning until none is left (or its minute has not come);
-- with run_for, keeps looking for new work (every 0.2 s while there is none) until that
-- much time passed.
-- Runs as its caller (a procedure that commits can be neither SECURITY DEFINER nor SET).
CREATE PROCEDURE aws_lambda.deliver(
    run_for interval DEFAULT NULL,
    batch_size int DEFAULT 100,
    max_concurrency int DEFAULT 32)
LANGUAGE plpgsql
AS $$
DECLARE
    stop_at timestamptz := pg_catalog.clock_timestamp() + run_for;
    done aws_lambda_internal._batch_counts;
    claimed int;
    succeeded int := 0;
    failed int := 0;
    retrying int := 0;
    dead int := 0;
    pruned aws_lambda_internal._pruned;
BEGIN
    IF pg_catalog.pg_is_in_recovery() THEN
        PERFORM aws_lambda_internal._needs_primary('deliver');
    END IF;
    LOOP
        done := aws_lambda_internal._deliver_batch(
            batch_size, max_concurrency,
            pg_catalog.current_setting('aws_lambda.connect_timeout_ms', true),
            pg_catalog.current_setting('aws_lambda.request_timeout_ms', true),
            pg_catalog.pg_conf_load_time(),
            pg_catalog.current_setting('aws_lambda.report_deliveries', true));
        PERFORM aws_lambda_internal._no_error(done.error_sqlstate, done.error_message, done.error_detail,
                                     done.error_hint);
        COMMIT;
        pruned := aws_lambda_internal._prune_deliveries(pg_catalog.pg_conf_load_time(), 60);
        PERFORM aws_lambda_internal._no_error(pruned.error_sqlstate, pruned.error_message,
                                     pruned.error_detail, pruned.error_hint);
        COMMIT;
        claimed := done.succeeded + done.failed + done.pending + done.dead;
        succeeded := succeeded + done.succeeded;
        failed := failed + done.failed;
        retrying := retrying + done.pending;
        dead := dead + done.dead;
        EXIT WHEN run_for IS NULL AND claimed = 0 AND pruned.pruned = 0;
        EXIT WHEN pg_catalog.clock_timestamp() >= stop_at;
        IF claimed = 0 AND pruned.pruned = 0 THEN  -- nothing to do: look again in 0.2 s
            PERFORM pg_catalog.pg_sleep(0.2);
            COMMIT;
        END IF;
    END LOOP;
    IF succeeded + failed + retrying + dead > 0 THEN
        RAISE NOTICE 'aws_lambda: % succeeded, % failed, % to retry, % dead',
            succeeded, failed, retrying, dead;
    END IF;
END
$$;

-- Put a dead or failed delivery back in the queue, in its place.
CREATE FUNCTION aws_lambda_internal._redeliver(delivery_id bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    current_status text;
    caller name := coalesce(nullif(current_setting('role'), 'none'), session_user);  -- as in invoke_on_commit
BEGIN
    IF pg_catalog.pg_is_in_recovery() THEN
        PERFORM aws_lambda_internal._needs_primary('redeliver');
    END IF;
    SELECT d.status INTO current_status FROM aws_lambda.deliveries AS d
    WHERE d.id = delivery_id AND NOT d.replicated
      AND (d.queued_by = caller OR pg_has_role(caller, d.queued_by, 'MEMBER')
           OR pg_has_role(caller, 'pg_read_all_data', 'USAGE'))
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'P0002',
            MESSAGE = format('delivery %s does not exist', delivery_id),
            HINT = 'A role sees and redelivers the deliveries it queued on this server (not '
                   'those that logical replication copied here).';
    ELSIF current_status NOT IN ('dead', 'failed') THEN
        RAISE EXCEPTION USING ERRCODE = '55000',
            MESSAGE = format('delivery %s is %s', delivery_id, current_status),
            HINT = 'Only dead or failed deliveries can be redelivered.';
    END IF;
    UPDATE aws_lambda.deliveries
    SET status = 'pending', attempts = 0, next_attempt_at = NULL, redelivered_at = now()
    WHERE id = delivery_id AND NOT replicated;
    PERFORM pg_notify('aws_lambda_deliveries', '');
END
$$;

CREATE FUNCTION aws_lambda.redeliver(id bigint)
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT aws_lambda_internal._redeliver($1) $$;

-- The queue at a glance: deliveries per status, and the oldest of each, of the caller's role
-- (of every role for members of pg_read_all_data). Pending ones are counted where they
-- are, settled ones in aws_lambda_internal.delivery_counts: the cost is the backlog's, not
-- the log's.
CREATE FUNCTION aws_lambda.delivery_status(
    OUT status text, OUT deliveries bigint, OUT oldest timestamptz, OUT oldest_age interval)
RETURNS SETOF record
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
WITH caller AS (  -- as in invoke_on_commit: the role the session acts as
    SELECT r.rolname, pg_has_role(r.oid, 'pg_read_all_data', 'USAGE') AS sees_all
    FROM pg_roles AS r
    WHERE r.rolname = coalesce(nullif(current_setting('role'), 'none'), session_user)
), pending AS (
    SELECT 'pending'::text AS status, count(*) AS deliveries, min(d.created_at) AS oldest
    FROM aws_lambda.deliveries AS d, caller AS c
    WHERE d.status = 'pending' AND NOT d.replicated AND (c.sees_all OR d.queued_by = c.rolname)
), counted AS (
    SELECT k.queued_by, k.status, sum(k.deliveries) AS deliveries
    FROM aws_lambda_internal.delivery_counts AS k, caller AS c
    WHERE NOT k.replicated AND (c.sees_all OR k.queued_by = c.rolname)
    GROUP BY k.queued_by, k.status
    HAVING sum(k.deliveries) > 0
), settled AS (
    SELECT k.status, sum(k.deliveries)::bigint AS deliveries, min(o.oldest) AS oldest
    FROM counted AS k
    LEFT JOIN LATERAL (
        SELECT d.created_at AS oldest FROM aws_lambda.deliveries AS d
        WHERE d.status = k.status AND d.queued_by = k.queued_by AND d.status <> 'pending'
          AND NOT d.replicated
        ORDER BY d.created_at LIMIT 1) AS o ON true
    GROUP BY k.status
)
SELECT s.status, coalesce(n.deliveries, 0), n.oldest, now() - n.oldest
FROM unnest(ARRAY['pending', 'succeeded', 'failed', 'dead']) WITH ORDINALITY AS s(status, n)
LEFT JOIN (SELECT * FROM pending UNION ALL SELECT * FROM settled) AS n ON n.status = s.status
ORDER BY s.n
$$;

-- After CREATE EXTENSION only the administrator can invoke. Application roles need:
--   GRANT USAGE ON SCHEMA aws_lambda TO app;
--   GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA aws_lambda TO app;  (or ON FUNCTION one of them)
--   GRANT EXECUTE ON PROCEDURE aws_lambda.deliver TO relay;  (the deliverer's role)
-- The public functions are SECURITY DEFINER: they run aws_lambda_internal as the extension's
-- owner, so one GRANT EXECUTE ON FUNCTION is enough, and no internal function (the operator's
-- settings among them) is callable by an application role.
REVOKE ALL ON SCHEMA aws_lambda FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA aws_lambda FROM PUBLIC;
REVOKE EXECUTE ON ALL PROCEDURES IN SCHEMA aws_lambda FROM PUBLIC;
REVOKE ALL ON SCHEMA aws_lambda_internal FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA aws_lambda_internal FROM PUBLIC;
-- deliver() runs as its caller (a procedure that commits cannot be SECURITY DEFINER) and
-- reaches the queue through these four, which only send what is due, remove what retention
-- let expire, and raise an error.
GRANT USAGE ON SCHEMA aws_lambda_internal TO PUBLIC;
GRANT EXECUTE ON FUNCTION aws_lambda_internal._needs_primary(text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION aws_lambda_internal._deliver_batch(int, int, text, text, timestamptz, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION aws_lambda_internal._prune_deliveries(timestamptz, float8) TO PUBLIC;
GRANT EXECUTE ON FUNCTION aws_lambda_internal._no_error(text, text, text, text) TO PUBLIC;

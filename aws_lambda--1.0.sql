-- aws_lambda 1.0: call AWS Lambda functions from SQL, with the SQL surface of Amazon RDS.
--
-- The public functions are thin LANGUAGE sql shells. The work is done by the Python
-- package plpy_lambda, which "make install" put in @PLPY_LAMBDA_DIR@ (a root-owned
-- directory fixed at install time; no setting a database role can change moves it).
\echo Use "CREATE EXTENSION aws_lambda CASCADE" to load this file. \quit

CREATE SCHEMA aws_lambda;

-- What the Python side hands back: a result, or the error to raise.
CREATE TYPE aws_lambda._invoke_result AS (
    status_code int,
    payload text,
    executed_version text,
    log_result text,
    error_sqlstate text,
    error_message text,
    error_detail text,
    error_hint text
);

-- Import plpy_lambda into this backend's Python, from the directory fixed at install time.
CREATE FUNCTION aws_lambda._load()
RETURNS void
LANGUAGE plpython3u VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $py$
import sys
if "@PLPY_LAMBDA_DIR@" not in sys.path:
    sys.path.insert(0, "@PLPY_LAMBDA_DIR@")
try:
    import plpy_lambda.sql
except ImportError as error:
    plpy.error("aws_lambda: the server's Python cannot import \"%s\"" % error.name,
               detail="plpy_lambda and its dependencies (boto3, botocore) are installed "
                      "in @PLPY_LAMBDA_DIR@ by the extension's \"make install\".",
               hint="Run \"make install\" as root in the aws_lambda source tree "
                    "(or pgxn install aws_lambda), then reconnect.",
               sqlstate="LM090")
GD["plpy_lambda.sql"] = plpy_lambda.sql
$py$;

-- One invocation. Failures come back as error columns (see _no_error).
CREATE FUNCTION aws_lambda._invoke_py(
    function_name text, payload text, region text, invocation_type text, log_type text,
    context text, qualifier text, composite_region text, from_composite boolean,
    connect_timeout text, request_timeout text, conf_load_time timestamptz)
RETURNS aws_lambda._invoke_result
LANGUAGE plpython3u VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $py$
if "plpy_lambda.sql" not in GD:
    plpy.execute("SELECT aws_lambda._load()")
return GD["plpy_lambda.sql"].invoke(
    plpy, GD, function_name, payload, region, invocation_type, log_type, context, qualifier,
    composite_region, from_composite, connect_timeout, request_timeout, conf_load_time)
$py$;

-- Many invocations of one function, rows in input order. An error of the whole call
-- comes back as a row whose ordinality is NULL.
CREATE TYPE aws_lambda._batch_row AS (
    ordinality bigint,
    status_code int,
    payload text,
    executed_version text,
    log_result text,
    error_sqlstate text,
    error_message text,
    error_detail text,
    error_hint text
);

CREATE FUNCTION aws_lambda._invoke_many_py(
    function_name text, payloads text[], region text, invocation_type text, log_type text,
    context text, qualifier text, max_concurrency int,
    connect_timeout text, request_timeout text, conf_load_time timestamptz)
RETURNS SETOF aws_lambda._batch_row
LANGUAGE plpython3u VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $py$
if "plpy_lambda.sql" not in GD:
    plpy.execute("SELECT aws_lambda._load()")
return GD["plpy_lambda.sql"].invoke_many(
    plpy, GD, function_name, payloads, region, invocation_type, log_type, context, qualifier,
    max_concurrency, connect_timeout, request_timeout, conf_load_time)
$py$;

-- True when there is no error; else raise it with its own SQLSTATE, message, DETAIL, HINT.
CREATE FUNCTION aws_lambda._no_error(sqlstate text, message text, detail text, hint text)
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

-- The operator's settings, from the server's configuration files only: a session,
-- role or database setting (which any role can make) is never read.
CREATE FUNCTION aws_lambda._operator_settings(OUT name text, OUT setting text)
RETURNS SETOF record
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT DISTINCT ON (f.name) f.name, f.setting
FROM pg_catalog.pg_file_settings AS f
WHERE f.name IN ('aws_lambda.endpoint_override', 'aws_lambda.role_arn') AND f.error IS NULL
ORDER BY f.name, f.seqno DESC
$$;

-- The public surface: RDS's four overloads (text or composite name x json or jsonb).

CREATE FUNCTION aws_lambda.invoke(
    IN function_name text,
    IN payload json,
    IN region text DEFAULT NULL,
    IN invocation_type text DEFAULT 'RequestResponse',
    IN log_type text DEFAULT 'None',
    IN context json DEFAULT NULL,
    IN qualifier varchar(128) DEFAULT NULL,
    OUT status_code int,
    OUT payload json,
    OUT executed_version text,
    OUT log_result text)
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT r.status_code, r.payload::json, r.executed_version, r.log_result
FROM aws_lambda._invoke_py(
        $1, $2::text, $3, $4, $5, $6::text, $7, NULL, false,
        pg_catalog.current_setting('aws_lambda.connect_timeout_ms', true),
        pg_catalog.current_setting('aws_lambda.request_timeout_ms', true),
        pg_catalog.pg_conf_load_time()) AS r
WHERE aws_lambda._no_error(r.error_sqlstate, r.error_message, r.error_detail, r.error_hint)
$$;

CREATE FUNCTION aws_lambda.invoke(
    IN function_name text,
    IN payload jsonb,
    IN region text DEFAULT NULL,
    IN invocation_type text DEFAULT 'RequestResponse',
    IN log_type text DEFAULT 'None',
    IN context jsonb DEFAULT NULL,
    IN qualifier varchar(128) DEFAULT NULL,
    OUT status_code int,
    OUT payload jsonb,
    OUT executed_version text,
    OUT log_result text)
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT r.status_code, r.payload::jsonb, r.executed_version, r.log_result
FROM aws_lambda._invoke_py(
        $1, $2::text, $3, $4, $5, $6::text, $7, NULL, false,
        pg_catalog.current_setting('aws_lambda.connect_timeout_ms', true),
        pg_catalog.current_setting('aws_lambda.request_timeout_ms', true),
        pg_catalog.pg_conf_load_time()) AS r
WHERE aws_lambda._no_error(r.error_sqlstate, r.error_message, r.error_detail, r.error_hint)
$$;

CREATE FUNCTION aws_lambda.invoke(
    IN function_name aws_commons._lambda_function_arn_1,
    IN payload json,
    IN invocation_type text DEFAULT 'RequestResponse',
    IN log_type text DEFAULT 'None',
    IN context json DEFAULT NULL,
    IN qualifier varchar(128) DEFAULT NULL,
    OUT status_code int,
    OUT payload json,
    OUT executed_version text,
    OUT log_result text)
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT r.status_code, r.payload::json, r.executed_version, r.log_result
FROM aws_lambda._invoke_py(
        ($1).function_name, $2::text, NULL, $3, $4, $5::text, $6, ($1).region, true,
        pg_catalog.current_setting('aws_lambda.connect_timeout_ms', true),
        pg_catalog.current_setting('aws_lambda.request_timeout_ms', true),
        pg_catalog.pg_conf_load_time()) AS r
WHERE aws_lambda._no_error(r.error_sqlstate, r.error_message, r.error_detail, r.error_hint)
$$;

CREATE FUNCTION aws_lambda.invoke(
    IN function_name aws_commons._lambda_function_arn_1,
    IN payload jsonb,
    IN invocation_type text DEFAULT 'RequestResponse',
    IN log_type text DEFAULT 'None',
    IN context jsonb DEFAULT NULL,
    IN qualifier varchar(128) DEFAULT NULL,
    OUT status_code int,
    OUT payload jsonb,
    OUT executed_version text,
    OUT log_result text)
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT r.status_code, r.payload::jsonb, r.executed_version, r.log_result
FROM aws_lambda._invoke_py(
        ($1).function_name, $2::text, NULL, $3, $4, $5::text, $6, ($1).region, true,
        pg_catalog.current_setting('aws_lambda.connect_timeout_ms', true),
        pg_catalog.current_setting('aws_lambda.request_timeout_ms', true),
        pg_catalog.pg_conf_load_time()) AS r
WHERE aws_lambda._no_error(r.error_sqlstate, r.error_message, r.error_detail, r.error_hint)
$$;

-- invoke_many: the same function for every payload, at most max_concurrency at a time.
CREATE FUNCTION aws_lambda.invoke_many(
    IN function_name text,
    IN payloads json[],
    IN region text DEFAULT NULL,
    IN invocation_type text DEFAULT 'RequestResponse',
    IN log_type text DEFAULT 'None',
    IN context json DEFAULT NULL,
    IN qualifier varchar(128) DEFAULT NULL,
    IN max_concurrency int DEFAULT 10,
    OUT ordinality bigint,
    OUT status_code int,
    OUT payload json,
    OUT executed_version text,
    OUT log_result text,
    OUT error_sqlstate text,
    OUT error_message text,
    OUT error_detail text)
RETURNS SETOF record
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT r.ordinality, r.status_code, r.payload::json, r.executed_version, r.log_result,
       r.error_sqlstate, r.error_message, r.error_detail
FROM aws_lambda._invoke_many_py(
        $1, $2::text[], $3, $4, $5, $6::text, $7, $8,
        pg_catalog.current_setting('aws_lambda.connect_timeout_ms', true),
        pg_catalog.current_setting('aws_lambda.request_timeout_ms', true),
        pg_catalog.pg_conf_load_time()) AS r
WHERE CASE WHEN r.ordinality IS NULL
           THEN aws_lambda._no_error(r.error_sqlstate, r.error_message, r.error_detail, r.error_hint)
           ELSE true END
$$;

CREATE FUNCTION aws_lambda.invoke_many(
    IN function_name text,
    IN payloads jsonb[],
    IN region text DEFAULT NULL,
    IN invocation_type text DEFAULT 'RequestResponse',
    IN log_type text DEFAULT 'None',
    IN context jsonb DEFAULT NULL,
    IN qualifier varchar(128) DEFAULT NULL,
    IN max_concurrency int DEFAULT 10,
    OUT ordinality bigint,
    OUT status_code int,
    OUT payload jsonb,
    OUT executed_version text,
    OUT log_result text,
    OUT error_sqlstate text,
    OUT error_message text,
    OUT error_detail text)
RETURNS SETOF record
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT r.ordinality, r.status_code, r.payload::jsonb, r.executed_version, r.log_result,
       r.error_sqlstate, r.error_message, r.error_detail
FROM aws_lambda._invoke_many_py(
        $1, $2::text[], $3, $4, $5, $6::text, $7, $8,
        pg_catalog.current_setting('aws_lambda.connect_timeout_ms', true),
        pg_catalog.current_setting('aws_lambda.request_timeout_ms', true),
        pg_catalog.pg_conf_load_time()) AS r
WHERE CASE WHEN r.ordinality IS NULL
           THEN aws_lambda._no_error(r.error_sqlstate, r.error_message, r.error_detail, r.error_hint)
           ELSE true END
$$;

-- After CREATE EXTENSION only the administrator can invoke. Application roles need:
--   GRANT USAGE ON SCHEMA aws_lambda TO app;
--   GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA aws_lambda TO app;
REVOKE ALL ON SCHEMA aws_lambda FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA aws_lambda FROM PUBLIC;

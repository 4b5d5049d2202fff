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

-- One invocation. Failures come back as error columns (see _checked).
CREATE FUNCTION aws_lambda._invoke_py(
    function_name text, payload text, region text, invocation_type text, log_type text,
    context text, qualifier text, composite_region text, from_composite boolean,
    connect_timeout text, request_timeout text, conf_load_time timestamptz)
RETURNS aws_lambda._invoke_result
LANGUAGE plpython3u VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $py$
entry = GD.get("plpy_lambda.sql")
if entry is None:
    import sys
    if "@PLPY_LAMBDA_DIR@" not in sys.path:
        sys.path.insert(0, "@PLPY_LAMBDA_DIR@")
    try:
        import plpy_lambda.sql as entry
    except ImportError as error:
        plpy.error("aws_lambda: the server's Python cannot import \"%s\"" % error.name,
                   detail="plpy_lambda and its dependencies (boto3, botocore) are installed "
                          "in @PLPY_LAMBDA_DIR@ by the extension's \"make install\".",
                   hint="Run \"make install\" as root in the aws_lambda source tree "
                        "(or pgxn install aws_lambda), then reconnect.",
                   sqlstate="LM090")
    GD["plpy_lambda.sql"] = entry
return entry.invoke(plpy, GD, function_name, payload, region, invocation_type, log_type,
                    context, qualifier, composite_region, from_composite, connect_timeout,
                    request_timeout, conf_load_time)
$py$;

-- Raise the error a result carries, with its own SQLSTATE, message, DETAIL and HINT.
CREATE FUNCTION aws_lambda._checked(r aws_lambda._invoke_result)
RETURNS aws_lambda._invoke_result
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF r.error_sqlstate IS NULL THEN
        RETURN r;
    ELSIF r.error_detail IS NOT NULL AND r.error_hint IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = r.error_sqlstate, MESSAGE = r.error_message,
            DETAIL = r.error_detail, HINT = r.error_hint;
    ELSIF r.error_detail IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = r.error_sqlstate, MESSAGE = r.error_message,
            DETAIL = r.error_detail;
    ELSIF r.error_hint IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = r.error_sqlstate, MESSAGE = r.error_message,
            HINT = r.error_hint;
    ELSE
        RAISE EXCEPTION USING ERRCODE = r.error_sqlstate, MESSAGE = r.error_message;
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
FROM aws_lambda._checked(aws_lambda._invoke_py(
        $1, $2::text, $3, $4, $5, $6::text, $7, NULL, false,
        pg_catalog.current_setting('aws_lambda.connect_timeout_ms', true),
        pg_catalog.current_setting('aws_lambda.request_timeout_ms', true),
        pg_catalog.pg_conf_load_time())) AS r
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
FROM aws_lambda._checked(aws_lambda._invoke_py(
        $1, $2::text, $3, $4, $5, $6::text, $7, NULL, false,
        pg_catalog.current_setting('aws_lambda.connect_timeout_ms', true),
        pg_catalog.current_setting('aws_lambda.request_timeout_ms', true),
        pg_catalog.pg_conf_load_time())) AS r
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
FROM aws_lambda._checked(aws_lambda._invoke_py(
        ($1).function_name, $2::text, NULL, $3, $4, $5::text, $6, ($1).region, true,
        pg_catalog.current_setting('aws_lambda.connect_timeout_ms', true),
        pg_catalog.current_setting('aws_lambda.request_timeout_ms', true),
        pg_catalog.pg_conf_load_time())) AS r
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
FROM aws_lambda._checked(aws_lambda._invoke_py(
        ($1).function_name, $2::text, NULL, $3, $4, $5::text, $6, ($1).region, true,
        pg_catalog.current_setting('aws_lambda.connect_timeout_ms', true),
        pg_catalog.current_setting('aws_lambda.request_timeout_ms', true),
        pg_catalog.pg_conf_load_time())) AS r
$$;

-- After CREATE EXTENSION only the administrator can invoke. Application roles need:
--   GRANT USAGE ON SCHEMA aws_lambda TO app;
--   GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA aws_lambda TO app;
REVOKE ALL ON SCHEMA aws_lambda FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA aws_lambda FROM PUBLIC;

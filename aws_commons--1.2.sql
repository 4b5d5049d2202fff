-- aws_commons 1.2: the composite type and helper that aws_lambda takes, as on Amazon RDS.
\echo Use "CREATE EXTENSION aws_commons" to load this file. \quit

CREATE SCHEMA aws_commons;

CREATE TYPE aws_commons._lambda_function_arn_1 AS (
    function_name text,
    region text
);

-- A plain constructor: invoke checks the name and region when it is called.
CREATE FUNCTION aws_commons.create_lambda_function_arn(function_name text, region text DEFAULT NULL)
RETURNS aws_commons._lambda_function_arn_1
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT ROW($1, $2)::aws_commons._lambda_function_arn_1 $$;

-- Usable by every role without a grant of its own.
GRANT USAGE ON SCHEMA aws_commons TO PUBLIC;
GRANT EXECUTE ON FUNCTION aws_commons.create_lambda_function_arn(text, text) TO PUBLIC;

-- aws_commons 1.1 to 1.2: the Lambda function ARN that aws_lambda takes.
\echo Use "ALTER EXTENSION aws_commons UPDATE TO '1.2'" to load this file. \quit

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

GRANT EXECUTE ON FUNCTION aws_commons.create_lambda_function_arn(text, text) TO PUBLIC;

-- aws_commons 1.2, as on Amazon RDS: the composite types and constructors that RDS's aws_*
-- extensions share. The same objects as aws_commons--1.0.sql updated by
-- aws_commons--1.0--1.1.sql and aws_commons--1.1--1.2.sql (tests/test_aws_commons.py
-- compares the two): CREATE EXTENSION takes this script; an older version updates.
\echo Use "CREATE EXTENSION aws_commons" to load this file. \quit

CREATE SCHEMA aws_commons;
-- Usable by every role without a grant of its own.
GRANT USAGE ON SCHEMA aws_commons TO PUBLIC;

-- 1.0: an S3 object's address (aws_s3).
CREATE TYPE aws_commons._s3_uri_1 AS (
    bucket text,
    file_path text,
    region text
);

CREATE FUNCTION aws_commons.create_s3_uri(bucket text, file_path text, region text)
RETURNS aws_commons._s3_uri_1
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT ROW($1, $2, $3)::aws_commons._s3_uri_1 $$;

GRANT EXECUTE ON FUNCTION aws_commons.create_s3_uri(text, text, text) TO PUBLIC;

-- 1.1: credentials (aws_s3).
CREATE TYPE aws_commons._aws_credentials_1 AS (
    access_key text,
    secret_key text,
    session_token text
);

CREATE FUNCTION aws_commons.create_aws_credentials(access_key text, secret_key text,
                                                   session_token text DEFAULT NULL)
RETURNS aws_commons._aws_credentials_1
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT ROW($1, $2, $3)::aws_commons._aws_credentials_1 $$;

GRANT EXECUTE ON FUNCTION aws_commons.create_aws_credentials(text, text, text) TO PUBLIC;

-- 1.2: a Lambda function's name or ARN and its region (aws_lambda).
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

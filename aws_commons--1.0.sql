-- aws_commons 1.0: the schema and the S3 object address that RDS's aws_s3 takes.
-- 1.1 adds the credentials type, 1.2 the Lambda function ARN. "make" builds
-- aws_commons--1.2.sql, which CREATE EXTENSION takes, from this file and the two updates.
\echo Use "CREATE EXTENSION aws_commons" to load this file. \quit

CREATE SCHEMA aws_commons;
-- Usable by every role without a grant of its own.
GRANT USAGE ON SCHEMA aws_commons TO PUBLIC;

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

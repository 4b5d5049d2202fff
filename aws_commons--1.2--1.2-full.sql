-- aws_commons 1.2 as the first releases' single script made it (only the Lambda function
-- ARN) to the full 1.2: adds what 1.0 and 1.1 define and that install lacks; on a full 1.2
-- it changes nothing. Then "ALTER EXTENSION aws_commons UPDATE" goes back to 1.2 by name
-- (aws_commons--1.2-full--1.2.sql), the version RDS shows. docs/install.md: "aws_commons versions".
\echo Use "ALTER EXTENSION aws_commons UPDATE TO '1.2-full'" to load this file. \quit

DO $$
BEGIN
    IF pg_catalog.to_regtype('aws_commons._s3_uri_1') IS NULL THEN
        CREATE TYPE aws_commons._s3_uri_1 AS (bucket text, file_path text, region text);
        CREATE FUNCTION aws_commons.create_s3_uri(bucket text, file_path text, region text)
        RETURNS aws_commons._s3_uri_1
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        SET search_path = pg_catalog, pg_temp
        AS $body$ SELECT ROW($1, $2, $3)::aws_commons._s3_uri_1 $body$;
        GRANT EXECUTE ON FUNCTION aws_commons.create_s3_uri(text, text, text) TO PUBLIC;
    END IF;
    IF pg_catalog.to_regtype('aws_commons._aws_credentials_1') IS NULL THEN
        CREATE TYPE aws_commons._aws_credentials_1 AS (access_key text, secret_key text, session_token text);
        CREATE FUNCTION aws_commons.create_aws_credentials(access_key text, secret_key text,
                                                           session_token text DEFAULT NULL)
        RETURNS aws_commons._aws_credentials_1
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        SET search_path = pg_catalog, pg_temp
        AS $body$ SELECT ROW($1, $2, $3)::aws_commons._aws_credentials_1 $body$;
        GRANT EXECUTE ON FUNCTION aws_commons.create_aws_credentials(text, text, text) TO PUBLIC;
    END IF;
END
$$;

"""Every SQL example of the RDS guide, run through psql, compared with what psql prints.

Placeholders are filled in as a reader would: `aws-region` becomes a region, and the
examples that write 'aws_lambda_arn_1' mean the psql variable :'aws_lambda_arn_1' set
in step 4 (the guide's own prose says so). The guide's log example has a stray
`select` (a syntax error anywhere); it is run without it.
"""

import pytest

STEP_4 = """\
SELECT aws_commons.create_lambda_function_arn( 'my-function', 'us-west-2' ) AS aws_lambda_arn_1 \\gset
SELECT aws_commons.create_lambda_function_arn( '111122223333:function:my-function', 'us-west-2' ) AS lambda_partial_arn_1 \\gset
SELECT aws_commons.create_lambda_function_arn( 'arn:aws:lambda:us-west-2:111122223333:function:my-function' ) AS lambda_arn_1 \\gset
"""

HELLO_TABLE = """\
 status_code |                        payload                        | executed_version | log_result 
-------------+-------------------------------------------------------+------------------+------------
         200 | {"statusCode": 200, "body": "\\"Hello from Lambda!\\""} | $LATEST          | 
(1 row)

"""


def test_step_3_create_extension_installs_aws_commons(cluster, psql):
    psql("DROP DATABASE IF EXISTS guide_db;")
    psql("CREATE DATABASE guide_db;")
    out = psql("CREATE EXTENSION IF NOT EXISTS aws_lambda CASCADE;", dbname="guide_db")
    assert out == (
        'NOTICE:  installing required extension "aws_commons"\n'
        'NOTICE:  installing required extension "plpython3u"\n'
        "CREATE EXTENSION\n"
    )
    out = psql("\\dx aws_*", dbname="guide_db")
    assert "aws_commons | 1.2     |" in out and "Common data types across AWS services" in out
    assert "aws_lambda  | 1.0     |" in out and "AWS Lambda integration" in out
    psql("DROP DATABASE guide_db;")


def test_step_4_helper_builds_the_composite(psql):
    out = psql(STEP_4 + "\\echo :aws_lambda_arn_1 :lambda_partial_arn_1 :lambda_arn_1\n")
    assert out == ("(my-function,us-west-2) (111122223333:function:my-function,us-west-2) "
                   "(arn:aws:lambda:us-west-2:111122223333:function:my-function,)\n")


def test_step_5_the_guides_example_invocation(psql):
    out = psql("SELECT * from aws_lambda.invoke(aws_commons.create_lambda_function_arn("
               "'arn:aws:lambda:us-west-1:444455556666:function:simple', 'us-west-1'), "
               "'{\"body\": \"Hello from Postgres!\"}'::json );")
    assert out == HELLO_TABLE


@pytest.mark.parametrize("sql", [
    "SELECT * FROM aws_lambda.invoke(:'aws_lambda_arn_1', '{\"body\": \"Hello from Postgres!\"}'::json);",
    "SELECT * FROM aws_lambda.invoke(:'aws_lambda_arn_1', '{\"body\": \"Hello from Postgres!\"}'::json, 'RequestResponse');",
    "SELECT * FROM aws_lambda.invoke(aws_commons.create_lambda_function_arn('my-function', 'us-west-2'), '{\"body\": \"Hello from Postgres!\"}'::json );",
    "SELECT * FROM aws_lambda.invoke(:'lambda_partial_arn_1', '{\"body\": \"Hello from Postgres!\"}'::json);",
    "SELECT * FROM aws_lambda.invoke(:'lambda_arn_1', '{\"body\": \"Hello from Postgres!\"}'::json);",
])
def test_synchronous_examples(psql, emulator, sql):
    assert psql(STEP_4 + sql) == HELLO_TABLE
    request = emulator.requests[-1]
    assert (request.function, request.invocation_type) == ("my-function", "RequestResponse")
    assert "us-west-2/lambda/aws4_request" in request.headers["Authorization"]


def test_event_example(psql, emulator):
    out = psql(STEP_4 + "SELECT * FROM aws_lambda.invoke(:'aws_lambda_arn_1', "
               "'{\"body\": \"Hello from Postgres!\"}'::json, 'Event');")
    assert out == (
        " status_code | payload | executed_version | log_result \n"
        "-------------+---------+------------------+------------\n"
        "         202 |         |                  | \n"
        "(1 row)\n\n"
    )
    emulator.wait_idle()
    assert emulator.invocations("my-function") == 1
    assert emulator.requests[-1].invocation_type == "Event"


def test_log_tail_example(psql):
    out = psql(STEP_4 + "SELECT *, convert_from(decode(log_result, 'base64'), 'utf-8') as log "
               "FROM aws_lambda.invoke(:'aws_lambda_arn_1', "
               "'{\"body\": \"Hello from Postgres!\"}'::json, 'RequestResponse', 'Tail');")
    assert " 200 | {\"statusCode\": 200" in out
    assert 'my-function got {"body": "Hello from Postgres!"}' in out
    assert "START RequestId:" in out and "(1 row)" in out


def test_client_context_example(psql, emulator):
    out = psql(STEP_4 + "SELECT status_code FROM aws_lambda.invoke(:'aws_lambda_arn_1', "
               "'{\"body\": \"Hello from Postgres!\"}'::json, 'RequestResponse', 'None', "
               "'{\"custom\": {\"source\": \"postgres\"}}');")
    assert " 200\n" in out
    assert "X-Amz-Client-Context" in emulator.requests[-1].headers


@pytest.mark.parametrize("sql", [
    "SELECT * FROM aws_lambda.invoke(:'aws_lambda_arn_1', '{\"body\": \"Hello from Postgres!\"}'::json, 'RequestResponse', 'None', NULL, qualifier => 'custom_version');",
    "SELECT * FROM aws_lambda.invoke(aws_commons.create_lambda_function_arn('my-function:custom_version', 'us-west-2'), '{\"body\": \"Hello from Postgres!\"}'::json);",
])
def test_qualifier_examples(psql, emulator, sql):
    out = psql(STEP_4 + sql)
    assert 'Hello from Lambda version 1!' in out
    assert "| 1                |" in out
    assert emulator.requests[-1].qualifier == "custom_version"


def test_function_error_example(psql):
    out = psql("SELECT * FROM aws_lambda.invoke('arn:aws:lambda:us-west-2:555555555555:function:fail', "
               "'{\"body\": \"Hello from Postgres!\"}'::json);")
    assert out.startswith(
        "ERROR:  lambda invocation failed\n"
        'DETAIL:  "arn:aws:lambda:us-west-2:555555555555:function:fail" returned error "Unhandled", '
        'details: "{"errorMessage": "fail.py always raises')
    assert out.rstrip().endswith('SQL function "invoke" statement 1')


def test_permission_examples(psql):
    psql("DROP ROLE IF EXISTS db_username; CREATE ROLE db_username LOGIN;")
    call = "SELECT * FROM aws_lambda.invoke('simple', '{}'::json);"
    assert psql(call, user="db_username").startswith("ERROR:  permission denied for schema aws_lambda\n")
    psql("GRANT USAGE ON SCHEMA aws_lambda TO db_username;")
    assert psql(call, user="db_username").startswith("ERROR:  permission denied for function invoke\n")
    psql("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA aws_lambda TO db_username;")
    assert " 200 |" in psql(call, user="db_username")
    psql("DROP OWNED BY db_username; DROP ROLE db_username;")

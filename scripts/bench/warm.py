"""Warm path: one call at a time on a warm connection, aws_lambda.invoke against the floor (a
PL/Python function making one prepared keep-alive POST to the same nginx)."""

import psycopg

from .common import backend_pid, cpu_seconds, expect_count, median, ms, ratio, section, table, timed

# FROM items of the server-side loops, each with its check; {url}: nginx's.
LOOPS = [
    ("a PL/Python function that returns at once", "pg_temp.bench_nothing(json_build_object('i', g)) r",
     "r = 200"),
    ("the floor: bench_floor(), one prepared keep-alive POST", "public.bench_floor(json_build_object('i', g)) r",
     "r = 200"),
    ("aws_lambda_internal._invoke_json('noop', ...) alone",
     "aws_lambda_internal._invoke_json('noop', json_build_object('i', g), NULL, 'RequestResponse', 'None', "
     "NULL, NULL, NULL, false, NULL, NULL, pg_conf_load_time(), NULL, NULL, NULL) r", "r.status_code = 200"),
    ("aws_lambda.invoke('noop', ...)", "aws_lambda.invoke('noop', json_build_object('i', g)) r",
     "r.status_code = 200"),
    ("pgsql-http: http_post(url, ...)", "http_post('{url}', json_build_object('i', g)::text, 'application/json') r",
     "r.status = 200"),
]
STATEMENTS = [
    ("the floor: SELECT public.bench_floor('{}')", "SELECT public.bench_floor('{}'::json)"),
    ("SELECT status_code FROM aws_lambda.invoke('noop', '{}')",
     "SELECT status_code FROM aws_lambda.invoke('noop', '{}'::json)"),
    # Where invoke's time goes beyond the floor: its shell (LANGUAGE sql, SECURITY DEFINER
    # with a pinned search_path, planned again for every statement) over a PL/Python body
    # that returns at once; and the call without it.
    ("  a PL/Python function that returns at once", "SELECT pg_temp.bench_nothing('{}'::json)"),
    ("  invoke's shell over a PL/Python body that returns at once",
     "SELECT status_code FROM pg_temp.bench_shell('noop', '{}'::json)"),
    ("  aws_lambda_internal._invoke_json('noop', ...) alone, without it",
     "SELECT status_code FROM aws_lambda_internal._invoke_json('noop', '{}', NULL, 'RequestResponse', 'None', "
     "NULL, NULL, NULL, false, NULL, NULL, pg_conf_load_time(), NULL, NULL, NULL)"),
    ("  (SELECT 1 round trip, for reference)", "SELECT 1"),
]
# invoke's shell (its definition, read from the catalog) over a body that returns at once,
# which takes what _invoke_json takes.
NOTHING = """
CREATE FUNCTION pg_temp.bench_invoke_nothing({arguments})
RETURNS aws_lambda_internal._json_answer LANGUAGE plpython3u
AS $$return (200, '{{}}', '$LATEST', None)$$
"""


def create_shell(conn):
    """pg_temp.bench_shell: aws_lambda.invoke(text, json, ...) as installed, calling
    pg_temp.bench_invoke_nothing where that calls aws_lambda_internal._invoke_json."""
    (arguments,) = conn.execute("SELECT pg_get_function_identity_arguments("
                                "'aws_lambda_internal._invoke_json'::regproc)").fetchone()
    conn.execute(NOTHING.format(arguments=arguments))
    (definition,) = conn.execute("SELECT pg_get_functiondef(%s::regprocedure)",
                                 ["aws_lambda.invoke(text, json, text, text, text, json, varchar)"]).fetchone()
    conn.execute(definition.replace("aws_lambda.invoke(", "pg_temp.bench_shell(")
                 .replace("aws_lambda_internal._invoke_json(", "pg_temp.bench_invoke_nothing("))


def run(bench):
    section("Warm path: one call at a time, against nginx (function noop)")
    calls, rounds, statements = bench.count("loop_calls"), bench.count("loop_rounds"), bench.count("statement_calls")
    with bench.connect() as conn:
        pid = backend_pid(conn)
        conn.execute("CREATE FUNCTION pg_temp.bench_nothing(payload json) RETURNS int "
                     "LANGUAGE plpython3u AS $$return 200$$")
        create_shell(conn)
        loops, missing = {}, {}
        for label, item, check in LOOPS:
            sql = (f"SELECT count(*) FROM generate_series(1, %s) g, LATERAL {item} WHERE {check}"
                   .replace("{url}", bench.fixed.url))
            try:
                conn.execute(sql, (20,))
                loops[label] = sql
            except psycopg.Error as error:  # pgsql-http not installed; an internal signature changed
                missing[label] = "not installed" if "http_post" in sql else f"n/a ({error.sqlstate})"
        cpu = dict.fromkeys(loops, 0.0)

        def loop(label):
            def one():
                before = cpu_seconds(pid)
                expect_count(conn, loops[label], (calls,), calls)
                cpu[label] += cpu_seconds(pid) - before
            return one

        per_call = dict(zip(loops, ([t / calls for t in times] for times in
                                    timed(*(loop(label) for label in loops), rounds=rounds))))
        for label, sql in STATEMENTS:
            conn.execute(sql, prepare=True)
        per_statement = dict(zip((label for label, _ in STATEMENTS), timed(
            *(lambda sql=sql: conn.execute(sql, prepare=True).fetchone() for _, sql in STATEMENTS),
            rounds=statements)))

    loop_floor, loop_invoke = median(per_call[LOOPS[1][0]]), median(per_call[LOOPS[3][0]])
    rows = []
    for label, _, _ in LOOPS:
        if label in missing:
            rows.append([label, missing[label], "", ""])
        else:
            value = median(per_call[label])
            rows.append([label, ms(value), ratio(value, loop_floor), ms(cpu[label] / (calls * rounds))])
    table([f"server-side loop: {rounds} x {calls:,} calls in one statement", "median/call", "vs floor",
           "backend CPU/call"], rows)
    print("  SELECT count(*) FROM generate_series(1, n) g, LATERAL <call>(json_build_object('i', g)); per call = "
          "statement time / n; the loops run alternately. Backend CPU: all its threads, from /proc (10 ms ticks).")
    print()
    floor_statement = median(per_statement[STATEMENTS[0][0]])
    invoke_statement = median(per_statement[STATEMENTS[1][0]])
    table([f"one statement per call from psycopg ({statements:,} each, alternately)", "median/call", "vs floor"],
          [[label, ms(median(per_statement[label])), ratio(median(per_statement[label]), floor_statement)]
           for label, _ in STATEMENTS])
    bench.target("warm: invoke per call, server-side loop <= 1.2 x the floor", ratio(loop_invoke, loop_floor),
                 loop_invoke <= 1.2 * loop_floor)
    bench.target("warm: invoke per call, psycopg loop <= 1.2 x the floor", ratio(invoke_statement, floor_statement),
                 invoke_statement <= 1.2 * floor_statement)
    bench.figures.update(statement=invoke_statement)

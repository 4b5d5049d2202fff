"""A catalog snapshot of an extension: every object with what a user can see of it.

Signatures, defaults, volatility, security, settings, owner and privileges of each
function and procedure; columns, indexes, policies and privileges of each table; the
columns of each type; the update paths and psql's \\dx+. Bodies are listed only where
asked (aws_commons's one-line ones): aws_lambda's are generated from sql/aws_lambda.sql
and carry the install directory. tests/expected/<major>/<extension>.txt holds the expected
one for each PostgreSQL major the suite runs on (17 and later also list each type's array
type and each table's row type as members of the extension, and show MAINTAIN in a table's
privileges); after a deliberate change, rewrite them with UPDATE_EXPECTED=1 on each major
(scripts/test, scripts/test --pg 18) and review their diffs.
"""

import os

import psycopg

from conftest import ROOT

MEMBERS = """
    SELECT d.classid, d.objid, pg_describe_object(d.classid, d.objid, d.objsubid) AS what,
           obj_description(d.objid, d.classid::regclass::text) AS comment
    FROM pg_depend d JOIN pg_extension e ON d.refobjid = e.oid
    WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND e.extname = %s
    ORDER BY pg_describe_object(d.classid, d.objid, d.objsubid) COLLATE "C"
"""
FUNCTION = """
    SELECT pg_get_function_arguments(p.oid), pg_get_function_result(p.oid), p.prokind,
           l.lanname, p.provolatile, p.proparallel, p.proisstrict, p.prosecdef,
           p.proleakproof, p.procost, p.prorows, p.proconfig, p.proowner::regrole, p.proacl,
           btrim(p.prosrc)
    FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
    WHERE p.oid = %s
"""
COLUMNS = """
    SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),
           (SELECT collname FROM pg_collation WHERE oid = a.attcollation), a.attnotnull,
           a.attidentity, pg_get_expr(d.adbin, d.adrelid)
    FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY a.attnum
"""


def members(conn, extension):
    return conn.execute(MEMBERS, (extension,)).fetchall()


def snapshot(cluster, dbname, extension, bodies=False):
    """Every object of `extension` in dbname, and psql's \\dx+ of it, as text."""
    lines = []
    with psycopg.connect(cluster.dsn(dbname=dbname), autocommit=True) as conn:
        lines += ["extension {} {} schema={} relocatable={} comment={}".format(*row) for row in
                  conn.execute("""
            SELECT extname, extversion, extnamespace::regnamespace, extrelocatable,
                   obj_description(oid, 'pg_extension')
            FROM pg_extension WHERE extname = %s""", (extension,))]
        found = members(conn, extension)
        lines += [f"member {what}" for _, _, what, _ in found]
        for classid, objid, what, comment in found:
            lines.append(f"{what}: comment={comment}")
            lines += describe(conn, what, objid, bodies)
        lines += ["update path {} -> {}: {}".format(*row) for row in conn.execute("""
            SELECT source, target, path FROM pg_extension_update_paths(%s)
            WHERE path IS NOT NULL ORDER BY source, target""", (extension,))]
    lines.append(cluster.psql(f"\\dx+ {extension}", dbname=dbname).rstrip("\n"))
    return "\n".join(lines) + "\n"


def describe(conn, what, objid, bodies):
    if what.startswith("schema "):
        return ["{}: owner={} acl={}".format(what, *row) for row in conn.execute(
            "SELECT nspowner::regrole, nspacl FROM pg_namespace WHERE oid = %s", (objid,))]
    if what.startswith("type "):
        typtype, owner, acl, array, relid = conn.execute("""
            SELECT typtype, typowner::regrole, typacl, typarray::regtype, typrelid
            FROM pg_type WHERE oid = %s""", (objid,)).fetchone()
        return [f"{what}: typtype={typtype} owner={owner} acl={acl} array={array}"] + [
            "{}: column {} {} {} collation={} notnull={}".format(what, *row[:5])
            for row in conn.execute(COLUMNS, (relid,))]
    if what.startswith(("function ", "procedure ")):
        lines = []
        for row in conn.execute(FUNCTION, (objid,)):
            *shown, body = row
            line = ("{}: arguments=({}) returns={} kind={} language={} volatility={} parallel={} strict={} "
                    "security_definer={} leakproof={} cost={} rows={} config={} owner={} acl={}").format(what, *shown)
            lines.append(line + (f" body={body}" if bodies else ""))
        return lines
    if what.startswith("table "):
        lines = ["{}: owner={} acl={} row_security={} forced={}".format(what, *row) for row in conn.execute("""
            SELECT relowner::regrole, relacl, relrowsecurity, relforcerowsecurity
            FROM pg_class WHERE oid = %s""", (objid,))]
        lines += ["{}: column {} {} {} collation={} notnull={} identity={!r} default={}".format(what, *row)
                  for row in conn.execute(COLUMNS, (objid,))]
        lines += ["{}: index {}".format(what, *row) for row in conn.execute("""
            SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = %s
            ORDER BY pg_get_indexdef(indexrelid) COLLATE "C" """, (objid,))]
        # tgenabled: O fires in origin and local sessions, R only under replication (A always).
        lines += ["{}: trigger {} enabled={}".format(what, *row) for row in conn.execute("""
            SELECT pg_get_triggerdef(oid), tgenabled FROM pg_trigger
            WHERE tgrelid = %s AND NOT tgisinternal ORDER BY tgname""", (objid,))]
        lines += ["{}: policy {} {} roles={} using={} check={}".format(what, *row) for row in conn.execute("""
            SELECT policyname, cmd, roles, qual, with_check FROM pg_policies
            WHERE (schemaname || '.' || tablename)::regclass = %s::regclass ORDER BY policyname""", (objid,))]
        return lines + dumped(conn, what, objid)
    if what.startswith("sequence "):
        return ["{}: owner={} acl={}".format(what, *row) for row in conn.execute(
            "SELECT relowner::regrole, relacl FROM pg_class WHERE oid = %s", (objid,))] + dumped(conn, what, objid)
    return [f"{what}: unexpected kind of member"]


def dumped(conn, what, objid):
    """pg_dump keeps an extension's table or sequence when it is marked as its configuration."""
    return ["{}: dumped with pg_dump, condition={!r}".format(what, *row) for row in conn.execute("""
        SELECT e.extcondition[array_position(e.extconfig, %s::oid)] FROM pg_extension e
        WHERE %s::oid = ANY (e.extconfig)""", (objid, objid))]


def expected(cluster, extension, actual):
    """The expected snapshot for cluster's PostgreSQL major (rewritten first with
    UPDATE_EXPECTED=1)."""
    path = os.path.join(ROOT, "tests", "expected", str(cluster.major), f"{extension}.txt")
    if os.environ.get("UPDATE_EXPECTED"):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as file:
            file.write(actual)
    if not os.path.exists(path):
        raise AssertionError(f"no expected snapshot for PostgreSQL {cluster.major}: {path} "
                             "(write it with UPDATE_EXPECTED=1, then review it)")
    with open(path) as file:
        return file.read()

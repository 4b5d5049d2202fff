# aws_lambda and aws_commons for self-managed PostgreSQL (PGXS).
#
#   make install            as root, with pg_config on PATH: both extensions, and
#                           plpy_lambda with its pinned dependencies for the server's Python
#   make dist               the archive "pgxn install" takes
#
# PLPY_LAMBDA_DIR is where plpy_lambda and boto3/botocore go: a root-owned directory
# written into the installed aws_lambda--1.0.sql, so no database setting moves it.
# PYTHON is the interpreter PL/Python runs (found from plpython3.so's libpython).

EXTENSION = aws_commons aws_lambda
DATA = aws_commons--1.2.sql
DATA_built = build/aws_lambda--1.0.sql
EXTRA_CLEAN = build

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

PLPY_LAMBDA_DIR ?= $(datadir)/aws_lambda/python
PYTHON ?= $(shell scripts/server-python $(PG_CONFIG))
VERSION = $(shell sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' META.json | head -n 1)

build/aws_lambda--1.0.sql: aws_lambda--1.0.sql
	@mkdir -p build
	sed 's,@PLPY_LAMBDA_DIR@,$(PLPY_LAMBDA_DIR),g' $< > $@

install: install-python

# Install into a fresh directory, check that the server's Python imports it, then swap.
install-python:
	@test -n "$(PYTHON)" || { echo "no Python for PL/Python: install postgresql-plpython3-$(MAJORVERSION)"; exit 1; }
	@$(PYTHON) -m pip --version >/dev/null 2>&1 || { echo "$(PYTHON) has no pip: install python3-pip"; exit 1; }
	rm -rf '$(DESTDIR)$(PLPY_LAMBDA_DIR).new'
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --no-warn-script-location --root-user-action=ignore \
		--target '$(DESTDIR)$(PLPY_LAMBDA_DIR).new' -r requirements.txt
	cp -R plpy_lambda '$(DESTDIR)$(PLPY_LAMBDA_DIR).new/'
	find '$(DESTDIR)$(PLPY_LAMBDA_DIR).new/plpy_lambda' -name __pycache__ -prune -exec rm -rf {} +
	$(PYTHON) -m compileall -q '$(DESTDIR)$(PLPY_LAMBDA_DIR).new' >/dev/null
	chmod -R go-w,a+rX '$(DESTDIR)$(PLPY_LAMBDA_DIR).new'
	$(PYTHON) -I -c 'import sys; sys.path.insert(0, sys.argv[1]); import plpy_lambda.sql, botocore.credentials' \
		'$(DESTDIR)$(PLPY_LAMBDA_DIR).new'
	rm -rf '$(DESTDIR)$(PLPY_LAMBDA_DIR)'
	mv '$(DESTDIR)$(PLPY_LAMBDA_DIR).new' '$(DESTDIR)$(PLPY_LAMBDA_DIR)'

uninstall: uninstall-python
uninstall-python:
	rm -rf '$(DESTDIR)$(PLPY_LAMBDA_DIR)'

dist:
	git archive --format zip --prefix=aws_lambda-$(VERSION)/ -o aws_lambda-$(VERSION).zip HEAD

.PHONY: install-python uninstall-python dist

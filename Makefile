# aws_lambda and aws_commons for self-managed PostgreSQL (PGXS).
#
#   make install            as root, with pg_config on PATH: both extensions, and
#                           plpy_lambda with its pinned dependencies for the server's Python
#   make install PG_CONFIG=/path/to/bin/pg_config
#                           the same into that PostgreSQL (one tree serves several majors)
#   make wheelhouse         every wheel "make install" needs, into wheelhouse/ (or WHEELHOUSE=dir),
#                           for the server's Python or for WHEELHOUSE_PYTHON_VERSION=3.X (then
#                           without PostgreSQL; another version's wheels may share the directory)
#   make install WHEELHOUSE=dir
#                           the same install with no package registry: only the wheels in dir
#   make dist               the archive "pgxn install" takes
#
# PLPY_LAMBDA_DIR is where plpy_lambda and botocore go: a root-owned directory
# written into the installed aws_lambda--1.0.sql, so no database setting moves it.
# PYTHON is the interpreter PL/Python runs (found from plpython3.so's libpython).

EXTENSION = aws_commons aws_lambda
DATA = aws_commons--1.0.sql aws_commons--1.0--1.1.sql aws_commons--1.1--1.2.sql \
       aws_commons--1.2--1.2-full.sql aws_commons--1.2-full--1.2.sql
DATA_built = build/aws_commons--1.2.sql build/aws_lambda--1.0.sql
EXTRA_CLEAN = build

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(PGXS),)
include $(PGXS)
else ifneq ($(MAKECMDGOALS),wheelhouse)
$(error no pg_config ($(PG_CONFIG)): put PostgreSQL's bin directory on PATH or set PG_CONFIG)
endif

PLPY_LAMBDA_DIR ?= $(datadir)/aws_lambda/python
PYTHON ?= $(shell scripts/server-python $(PG_CONFIG))
WHEELHOUSE ?=
WHEELHOUSE_PYTHON_VERSION ?=
# Any Python 3 with pip can download wheels for another version.
WHEELHOUSE_PIP_PYTHON ?= python3
VERSION = $(shell sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' META.json | head -n 1)

# aws_commons 1.2 in one script: 1.0 and its updates, in order (one source for both paths;
# installed over any older aws_commons--1.2.sql).
build/aws_commons--1.2.sql: aws_commons--1.0.sql aws_commons--1.0--1.1.sql aws_commons--1.1--1.2.sql
	@mkdir -p build
	{ cat aws_commons--1.0.sql; sed '/^\\echo /d' aws_commons--1.0--1.1.sql aws_commons--1.1--1.2.sql; } > $@

build/aws_lambda--1.0.sql: aws_lambda--1.0.sql build/plpy_lambda_dir
	sed 's,@PLPY_LAMBDA_DIR@,$(PLPY_LAMBDA_DIR),g' $< > $@

# The directory the generated script names, rewritten only when it differs: one tree
# installed into several PostgreSQL majors (make install PG_CONFIG=...), one after the
# other, gives each a script that names its own $(datadir)/aws_lambda/python.
build/plpy_lambda_dir: FORCE
	@mkdir -p build
	@if [ "$$(cat $@ 2>/dev/null)" != '$(PLPY_LAMBDA_DIR)' ]; then echo '$(PLPY_LAMBDA_DIR)' > $@; fi

install: install-python

# Install into a fresh directory, check that the server's Python imports it, then swap
# (two renames: a running server's backends that import meanwhile find the old or the new).
# PIP_ROOT_USER_ACTION: pip before 22.1 (RHEL 9, Debian 11) has no --root-user-action.
install-python:
	@test -n "$(PYTHON)" || { echo "no Python for PL/Python: install postgresql-plpython3-$(MAJORVERSION)"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 9))' || { \
		echo "PL/Python runs $$($(PYTHON) -V 2>&1); aws_lambda needs Python 3.9 or newer"; exit 1; }
	@$(PYTHON) -m pip --version >/dev/null 2>&1 || { echo "$(PYTHON) has no pip: install python3-pip"; exit 1; }
	rm -rf '$(DESTDIR)$(PLPY_LAMBDA_DIR).new'
	PIP_ROOT_USER_ACTION=ignore $(PYTHON) -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
		$(if $(WHEELHOUSE),--no-index --find-links '$(abspath $(WHEELHOUSE))') \
		--target '$(DESTDIR)$(PLPY_LAMBDA_DIR).new' -r requirements.txt
	cp -R plpy_lambda '$(DESTDIR)$(PLPY_LAMBDA_DIR).new/'
	find '$(DESTDIR)$(PLPY_LAMBDA_DIR).new/plpy_lambda' -name __pycache__ -prune -exec rm -rf {} +
	$(PYTHON) -m compileall -q '$(DESTDIR)$(PLPY_LAMBDA_DIR).new' >/dev/null
	chmod -R go-w,a+rX '$(DESTDIR)$(PLPY_LAMBDA_DIR).new'
	$(PYTHON) -I -c 'import sys; sys.path.insert(0, sys.argv[1]); import plpy_lambda.sql, botocore.credentials' \
		'$(DESTDIR)$(PLPY_LAMBDA_DIR).new'
	rm -rf '$(DESTDIR)$(PLPY_LAMBDA_DIR).old'
	if [ -e '$(DESTDIR)$(PLPY_LAMBDA_DIR)' ]; then mv '$(DESTDIR)$(PLPY_LAMBDA_DIR)' '$(DESTDIR)$(PLPY_LAMBDA_DIR).old'; fi
	mv '$(DESTDIR)$(PLPY_LAMBDA_DIR).new' '$(DESTDIR)$(PLPY_LAMBDA_DIR)'
	rm -rf '$(DESTDIR)$(PLPY_LAMBDA_DIR).old'

uninstall: uninstall-python
uninstall-python:
	rm -rf '$(DESTDIR)$(PLPY_LAMBDA_DIR)'

# With WHEELHOUSE_PYTHON_VERSION, the markers of requirements.txt are evaluated for that version
# (pip download would evaluate them for the Python that runs it), into requirements-3.X.txt
# in the wheelhouse.
wheelhouse:
ifeq ($(WHEELHOUSE_PYTHON_VERSION),)
	@test -n "$(PYTHON)" || { echo "no Python for PL/Python here: set WHEELHOUSE_PYTHON_VERSION=3.X"; exit 1; }
	$(PYTHON) -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
		-d '$(or $(WHEELHOUSE),wheelhouse)' -r requirements.txt
else
	@mkdir -p '$(or $(WHEELHOUSE),wheelhouse)'
	$(WHEELHOUSE_PIP_PYTHON) scripts/requirements-for $(WHEELHOUSE_PYTHON_VERSION) requirements.txt \
		> '$(or $(WHEELHOUSE),wheelhouse)/requirements-$(WHEELHOUSE_PYTHON_VERSION).txt'
	$(WHEELHOUSE_PIP_PYTHON) -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
		--python-version $(WHEELHOUSE_PYTHON_VERSION) -d '$(or $(WHEELHOUSE),wheelhouse)' \
		-r '$(or $(WHEELHOUSE),wheelhouse)/requirements-$(WHEELHOUSE_PYTHON_VERSION).txt'
endif

dist:
	git archive --format zip --prefix=aws_lambda-$(VERSION)/ -o aws_lambda-$(VERSION).zip HEAD

.PHONY: install-python uninstall-python wheelhouse dist FORCE
FORCE:

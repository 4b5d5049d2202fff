"""A throwaway PostgreSQL cluster for the demo, the tests and the benchmark.

initdb into a private temporary directory, a free port, a private socket
directory, trust authentication on the socket only. PostgreSQL refuses to run as
root, so as root the cluster runs as the `postgres` OS user. The server's
environment and postgresql.conf lines are given by the caller, the way an
operator would give them.
"""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time


def bindir():
    """The bin directory of the PostgreSQL whose pg_config is first on PATH (scripts/test
    --pg N puts the one scripts/postgres built there)."""
    out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def major(bin_directory=None):
    """The major version of the PostgreSQL in bin_directory (default: bindir())."""
    out = subprocess.run([os.path.join(bin_directory or bindir(), "pg_config"), "--version"],
                         capture_output=True, text=True, check=True)
    return int(out.stdout.split()[1].split(".")[0])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, conf=None, env=None, os_user=None, bin_directory=None):
        self.bindir = bin_directory or bindir()
        self.major = major(self.bindir)
        self.os_user = os_user or ("postgres" if os.geteuid() == 0 else None)
        self.root = tempfile.mkdtemp(prefix="aws_lambda_pg_")
        self.data = os.path.join(self.root, "data")
        self.socket_dir = os.path.join(self.root, "sock")
        self.log = os.path.join(self.root, "server.log")
        self.port = free_port()
        self.conf = dict(conf or {})
        self.env = dict(env or {})
        os.makedirs(self.socket_dir)
        os.chmod(self.socket_dir, 0o700)
        if self.os_user:
            entry = pwd.getpwnam(self.os_user)
            for path in (self.root, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        os.chmod(self.root, 0o711)

    def _run(self, args, **kwargs):
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": pwd.getpwnam(self.os_user).pw_dir if self.os_user else os.environ.get("HOME", "/"),
            **self.env,
        }
        return subprocess.run(
            args, env=env, user=self.os_user, cwd=self.root, check=True,
            capture_output=True, text=True, **kwargs,
        )

    def start(self, initdb_options=()):
        """initdb (initdb_options: more of its options), then start the server."""
        self._run([os.path.join(self.bindir, "initdb"), "-D", self.data, "-U", "postgres",
                   "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
                   *initdb_options])
        self._configure_and_start()
        return self

    def start_standby(self, primary, conf=None):
        """A streaming hot standby of primary: pg_basebackup -R of it, then start."""
        self._run([os.path.join(self.bindir, "pg_basebackup"), "-D", self.data, "-h",
                   primary.socket_dir, "-p", str(primary.port), "-U", "postgres", "-R",
                   "-X", "stream", "-c", "fast", "--no-sync"])
        self.conf = {**self.conf, **(conf or {})}
        self._configure_and_start()
        return self

    def promote(self):
        """pg_ctl promote: a standby becomes a primary, and waits until it is one."""
        self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-w", "-t", "60",
                   "promote"])

    def _configure_and_start(self):
        self.write_conf({
            "port": str(self.port),
            "listen_addresses": "''",
            "unix_socket_directories": f"'{self.socket_dir}'",
            "fsync": "off",
            "max_connections": "60",
            **self.conf,
        })
        self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-l", self.log,
                   "-w", "-t", "60", "start"])

    def write_conf(self, settings):
        """Append lines to postgresql.conf, as an operator would."""
        with open(os.path.join(self.data, "postgresql.conf"), "a") as conf:
            for name, value in settings.items():
                conf.write(f"{name} = {value}\n")

    def reload(self):
        self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "reload"])
        time.sleep(0.3)

    def crash(self):
        """Stop the server as a crash would: pg_ctl stop -m immediate, the data directory kept."""
        self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-m", "immediate",
                   "-w", "stop"])

    def restart(self):
        """Start the server again on the same data directory and port (no initdb); after
        crash() it runs crash recovery first."""
        self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-l", self.log,
                   "-w", "-t", "60", "start"])

    def shutdown(self):
        """Stop the server cleanly (pg_ctl stop -m fast), the data directory kept."""
        self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-m", "fast", "-w",
                   "stop"])

    def stop(self):
        try:
            self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-m", "immediate",
                       "-w", "stop"])
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)

    def server_log(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def dsn(self, dbname="postgres", user="postgres"):
        return f"host={self.socket_dir} port={self.port} dbname={dbname} user={user}"

    def psql(self, sql, dbname="postgres", user="postgres", variables=None, check=False):
        """Run SQL through the real psql, as a user would; returns stdout and stderr together."""
        args = [os.path.join(self.bindir, "psql"), "-X", "-h", self.socket_dir, "-p",
                str(self.port), "-U", user, "-d", dbname, "-v", "ON_ERROR_STOP=0"]
        for name, value in (variables or {}).items():
            args += ["-v", f"{name}={value}"]
        out = subprocess.run(args, input=sql, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, env={**os.environ, "PGTZ": "UTC"}, check=check)
        return out.stdout

"""A private certificate authority for tests, made with the openssl command line.

PrivateCA(directory) writes ca.pem (the CA certificate, what a client trusts) and
ca.key; issue(name, hosts) writes NAME.pem and NAME.key, a server certificate for
the given host names and IP addresses (subjectAltName), signed by the CA;
server_context(name) is an ssl.SSLContext that serves it. EC keys keep this fast.
Every file but the keys is world-readable, so a server running as another OS user
(postgres) can read the CA certificate.
"""

import ipaddress
import os
import ssl
import subprocess

_CA_CONF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = aws_lambda test CA
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
"""

_LEAF_CONF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = {cn}
[leaf_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = {san}
"""

_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class PrivateCA:
    def __init__(self, directory):
        self.directory = directory
        os.chmod(directory, 0o755)
        self._serial = 1
        self._write("ca.cnf", _CA_CONF)
        _openssl("req", "-x509", "-config", "ca.cnf", "-extensions", "ca_ext", *_KEY,
                 "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", cwd=directory)
        os.chmod(self.path("ca.pem"), 0o644)

    def path(self, name):
        return os.path.join(self.directory, name)

    @property
    def certificate(self):
        """The CA certificate (PEM): what a client must trust."""
        return self.path("ca.pem")

    def issue(self, name, hosts):
        """A server certificate NAME.pem (and NAME.key) for hosts (names or IP addresses)."""
        san = []
        for host in hosts:
            try:
                ipaddress.ip_address(host)
                san.append(f"IP:{host}")
            except ValueError:
                san.append(f"DNS:{host}")
        self._write(f"{name}.cnf", _LEAF_CONF.format(cn=hosts[0], san=", ".join(san)))
        _openssl("req", "-new", "-config", f"{name}.cnf", *_KEY, "-keyout", f"{name}.key",
                 "-out", f"{name}.csr", cwd=self.directory)
        self._serial += 1
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-set_serial", str(self._serial), "-days", "2", "-extfile", f"{name}.cnf",
                 "-extensions", "leaf_ext", "-out", f"{name}.pem", cwd=self.directory)
        return self.path(f"{name}.pem"), self.path(f"{name}.key")

    def server_context(self, name):
        """An ssl.SSLContext serving the certificate issued as name."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.path(f"{name}.pem"), self.path(f"{name}.key"))
        return context

    def _write(self, name, text):
        with open(self.path(name), "w") as file:
            file.write(text)

"""How a request reaches its endpoint: the connection, proxy and TLS trust the AWS SDK would use.

Proxy, as botocore chooses it (botocore.utils.get_environ_proxies and
botocore.httpsession.ProxyConfiguration): from the server process's environment,
with urllib's rules. HTTPS_PROXY serves https:// endpoints and HTTP_PROXY http://
ones (no fallback from one to the other; ALL_PROXY is not used); a lower-case
variable wins over its upper-case twin, and an empty lower-case one cancels it;
HTTP_PROXY in upper case is ignored when REQUEST_METHOD is set (urllib's CGI
guard). NO_PROXY is a comma-separated list matched against the endpoint's host
and host:port, case-insensitively: an entry matches the host itself or any name
ending in "." plus the entry (a leading "." is ignored); "*" alone bypasses every
endpoint. A proxy URL without a scheme means http://. Credentials in it
(http://user:password@host:port) are sent as Proxy-Authorization: Basic, and are
never part of an error message. HTTPS goes through a CONNECT tunnel, plain HTTP
is sent to the proxy with the absolute URL as its target. Only http:// proxies
are supported (botocore can also speak TLS to the proxy itself). Unlike urllib
on macOS and Windows, the system's proxy settings are never consulted: only the
environment.

Trust, as boto3's `verify` default (botocore's ca_bundle, then
REQUESTS_CA_BUNDLE): AWS_CA_BUNDLE, else ca_bundle in the profile of the shared
config file (AWS_CONFIG_FILE or ~/.aws/config of the server's OS user), else
REQUESTS_CA_BUNDLE: a PEM file of CA certificates that replaces the trust store.
Without one, the system's default CA certificates are trusted (OpenSSL's, which
SSL_CERT_FILE and SSL_CERT_DIR can move), where boto3 would trust certifi's
bundle or botocore's own cacert.pem. The host name is always verified. To keep a
connection's first call cheap, botocore is consulted only when AWS_CA_BUNDLE is unset
and a shared config file exists, urllib.request is imported only when some *_proxy
variable is set, http.client only to read a proxy's answer to CONNECT, and socket.py
not at all for a plain HTTP endpoint (the _socket module connects; ssl imports it).

Decided once per endpoint, on a backend's first connection to it (client.Pool),
and kept: a changed environment, config file or CA bundle takes effect in new
database connections, as changed credentials do. A decision that fails (an
unusable CA bundle or proxy URL, LM020) is not kept: the next call tries again.
"""

import _socket
import errno
import os
import time

from plpy_lambda import endpoints, errors

SYSTEM_TRUST = "the system's default CA certificates"


class NotConnected(Exception):
    """The connection could not be made: nothing was sent to the endpoint.

    `retry`: another attempt may get through (False when a proxy refused us or the
    endpoint's certificate failed verification)."""

    def __init__(self, cause, retry=True):
        super().__init__(cause)
        self.retry = retry


class Proxy:
    """An HTTP proxy: where it is, how it is named in messages, its Proxy-Authorization."""

    def __init__(self, host, port, authorization=None):
        self.host = host
        self.port = port
        self.authorization = authorization
        self.url = f"http://{_bracketed(host)}:{port}"  # no credentials: safe to print

    def __repr__(self):
        return f"Proxy({self.url})"


class Route:
    """How one endpoint is reached: directly or through a proxy, and the TLS trust."""

    def __init__(self, endpoint, proxy=None, tls=None, trust=None):
        scheme, netloc, hostname, port = _split(endpoint)
        self.endpoint = endpoint
        self.proxy = proxy
        self.tls = tls  # an ssl.SSLContext for https:// endpoints
        self.trust = trust  # what tls trusts, for messages
        self._https = scheme == "https"
        self._hostname = hostname
        self._port = port or (443 if self._https else 80)
        # Plain HTTP through a proxy: absolute-form targets, credentials on each request.
        self._forward = proxy is not None and not self._https
        self._origin = f"{scheme}://{netloc}"
        self._proxy_headers = (
            {"Proxy-Authorization": proxy.authorization}
            if self._forward and proxy.authorization else {}
        )

    def target(self, target):
        """The request target to send for target (path and query)."""
        return self._origin + target if self._forward else target

    def headers(self, headers):
        """The headers to send: headers plus what the proxy needs on each request."""
        return {**headers, **self._proxy_headers} if self._proxy_headers else headers

    def open(self, timeout):
        """A socket connected to the endpoint, or NotConnected: through the proxy's CONNECT
        tunnel when there is one, and TLS for an https:// endpoint. Plain HTTP through a
        proxy: a socket connected to the proxy, to which target() and headers() are sent."""
        if self.proxy is not None and self._https:
            return self._tunnel(timeout)
        if self.proxy is None:
            address, failed = (_encoded_host(self._hostname), self._port), self._failed
        else:
            address, failed = (_encoded_host(self.proxy.host), self.proxy.port), self._proxy_failed
        try:
            sock = _create_connection(address, timeout)
        except OSError as error:
            raise failed(error) from None
        try:
            _no_delay(sock)
            if self._https:
                sock = self.tls.wrap_socket(sock, server_hostname=_encoded_host(self._hostname))
        except OSError as error:
            sock.close()
            raise failed(error) from None
        return sock

    def _failed(self, error):
        """NotConnected for an error connecting to the endpoint (or its TLS handshake)."""
        import ssl

        if isinstance(error, ssl.SSLCertVerificationError):
            via = f"through proxy {self.proxy.url}, " if self.proxy else ""
            return NotConnected(f"{cause(error)} ({via}trusting {self.trust})", retry=False)
        return NotConnected(cause(error))

    def _proxy_failed(self, error):
        """NotConnected for an error connecting to the proxy."""
        return NotConnected(f"proxy {self.proxy.url} cannot be reached: {cause(error)}")

    def _tunnel(self, timeout):
        """A TLS socket to the endpoint through the proxy's CONNECT tunnel.

        CONNECT is sent as HTTP/1.1 with a Host header on every Python version, so that the
        proxy being unreachable, the proxy refusing, and the endpoint's TLS failing are told
        apart.
        """
        proxy = self.proxy
        deadline = time.monotonic() + timeout
        import socket  # http.client reads the proxy's answer from a socket.socket's file

        try:
            sock = socket.create_connection((_encoded_host(proxy.host), proxy.port), timeout)
        except OSError as error:
            raise self._proxy_failed(error) from None
        try:
            import http.client  # to read the proxy's answer: only with a proxy

            authority = f"{_bracketed(_ascii(self._hostname))}:{self._port}"
            lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
            if proxy.authorization:
                lines.append(f"Proxy-Authorization: {proxy.authorization}")
            try:
                sock.settimeout(_seconds_left(deadline))
                sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
                answer = http.client.HTTPResponse(sock, method="CONNECT")
                try:
                    answer.begin()
                finally:
                    answer.close()  # its file on sock, not sock
            except (OSError, http.client.HTTPException) as error:
                raise NotConnected(
                    f"proxy {proxy.url} broke off CONNECT {authority}: {cause(error)}") from None
            if answer.status != 200:
                raise NotConnected(
                    f"proxy {proxy.url} refused CONNECT {authority}: "
                    f"{answer.status} {answer.reason[:100]}".rstrip(),
                    retry=answer.status >= 500,  # 502, 503, 504: it could not reach the endpoint
                )
            try:
                sock.settimeout(_seconds_left(deadline))
                tls = self.tls.wrap_socket(sock, server_hostname=_encoded_host(self._hostname))
            except (OSError, ValueError) as error:
                raise self._failed(error) from None
        except BaseException:
            sock.close()
            raise
        tls.settimeout(timeout)
        return tls


def _split(endpoint):
    """(scheme, netloc, hostname or None, port or None) of an endpoint URL, as
    urllib.parse.urlsplit reads them (endpoints.split reads the normal form without it)."""
    parts = endpoints.split(endpoint)
    if parts is not None:
        return parts
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint)
    return parts.scheme, parts.netloc, parts.hostname, parts.port


def _encoded_host(host):
    """host as the resolver and TLS take it: a plain ASCII name encoded here as the idna
    codec encodes one (labels of 1 to 63 characters), because socket and ssl encode a str
    with that codec, whose first use imports it (a millisecond or more on a connection's
    first call); any other host as it is, for them to encode (or refuse) as before."""
    try:
        encoded = host.encode("ascii")
    except UnicodeEncodeError:
        return host
    labels = encoded.split(b".")
    if any(not 0 < len(label) < 64 for label in labels[:-1]) or len(labels[-1]) >= 64:
        return host
    return encoded


def _create_connection(address, timeout):
    """socket.create_connection(address, timeout), on the _socket module: each address of
    the host tried in turn, the last error raised. socket.py (its enums) is not imported
    for it: a plain HTTP endpoint needs nothing else of it (ssl imports it for TLS)."""
    host, port = address
    error = None
    for family, kind, proto, _name, sockaddr in _socket.getaddrinfo(
            host, port, 0, _socket.SOCK_STREAM):
        sock = None
        try:
            sock = _socket.socket(family, kind, proto)
            sock.settimeout(timeout)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            error = exc
            if sock is not None:
                sock.close()
    if error is not None:
        raise error
    raise OSError("getaddrinfo returns an empty list")


def _no_delay(sock):
    """TCP_NODELAY, as http.client sets it: a request goes out as soon as it is written."""
    try:
        sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
    except OSError as error:
        if error.errno != errno.ENOPROTOOPT:  # a system without it
            raise


def route(endpoint, config):
    """The Route to endpoint (scheme://host[:port]); config is the backend's
    credentials.CredentialSource, for the profile's ca_bundle."""
    proxy = proxy_url(endpoint)
    tls = trust = None
    if _split(endpoint)[0] == "https":
        tls, trust = tls_context(config)
    return Route(endpoint, proxy and _proxy(proxy, endpoint), tls, trust)


def _may_name_a_proxy(environ):
    """Whether some variable of environ is a *_proxy one (in any case): else no proxy."""
    return any(name[-6:].lower() == "_proxy" for name in environ)


def proxy_url(endpoint):
    """The URL of the proxy botocore would use for endpoint (credentials included), or None.

    botocore: get_environ_proxies(endpoint) (nothing if proxy_bypass(netloc)), then
    ProxyConfiguration.proxy_url_for, which picks by scheme and adds http:// if missing.
    """
    if not _may_name_a_proxy(os.environ):
        return None  # what urllib would find, without importing it
    import urllib.request
    from urllib.parse import urlsplit

    proxies = urllib.request.getproxies_environment()
    netloc = urlsplit(endpoint).netloc
    try:
        if urllib.request.proxy_bypass_environment(netloc, proxies):
            return None
    except (TypeError, _socket.gaierror):  # as botocore.utils.should_bypass_proxies
        pass
    url = proxies.get(urlsplit(endpoint).scheme)
    if not url:
        return None
    if url.startswith("http:") or url.startswith("https:"):
        return url
    if url.startswith("//"):
        return "http:" + url
    return "http://" + url


def authorization(proxy_url):
    """Proxy-Authorization for the credentials in a proxy URL, as botocore's
    ProxyConfiguration.proxy_headers_for (both user name and password, or none)."""
    from urllib.parse import unquote, urlsplit  # only with a proxy

    parts = urlsplit(proxy_url)
    try:
        username, password = unquote(parts.username), unquote(parts.password)
    except (AttributeError, TypeError):
        return None
    if not username or not password:
        return None
    import base64  # only for a proxy URL with credentials

    return "Basic " + base64.b64encode(f"{username}:{password}".encode("utf-8")).decode("ascii")


def _proxy(url, endpoint):
    """The Proxy for a proxy URL from the environment, checked (LM020 if unusable)."""
    from urllib.parse import urlsplit  # only with a proxy

    scheme = urlsplit(endpoint).scheme
    variable = f"{scheme.upper()}_PROXY (or {scheme}_proxy)"
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (parts.scheme != "http" or not parts.hostname or port == -1 or url.count("://") > 1
            or ("@" in url and parts.username is None)):  # e.g. an unencoded / or # in a password
        problem = (
            "is an https:// proxy; aws_lambda speaks plain HTTP to proxies"
            if parts.scheme == "https" else "is not a proxy URL"
        )
        raise errors.BadConfiguration(
            f'{variable} in the server\'s environment {problem}: "{_masked(url)[:100]}"',
            hint="Use http://host:port or http://user:password@host:port.",
        )
    return Proxy(parts.hostname, port or 80, authorization(url))


def _masked(url):
    """url with anything that may be a user name or password replaced by ***."""
    import re

    return re.sub(r"//.*@", "//***:***@", url, flags=re.DOTALL)


def ca_bundle(config):
    """(the setting, where, path) of the CA bundle that replaces the trust store, or None."""
    if "AWS_CA_BUNDLE" in os.environ:
        return "AWS_CA_BUNDLE", "the server's environment", os.environ["AWS_CA_BUNDLE"]
    config_file = os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config"
    config_file = os.path.expanduser(os.path.expandvars(config_file))  # as botocore does
    if os.path.isfile(config_file):
        if config is None:
            from plpy_lambda.credentials import CredentialSource

            config = CredentialSource()
        try:
            path = config.config_variable("ca_bundle")
            profile = config.config_variable("profile") or "default"
        except errors.LambdaError:
            raise
        except Exception as error:  # botocore: ProfileNotFound, ConfigParseError
            raise errors.BadConfiguration(
                f"the server's AWS config file cannot be read: {cause(error)}",
                hint=f"Check {config_file} and AWS_PROFILE in the server's environment.",
            ) from None
        if path is not None:
            return "ca_bundle", f'profile "{profile}" of {config_file}', path
    if "REQUESTS_CA_BUNDLE" in os.environ:
        return "REQUESTS_CA_BUNDLE", "the server's environment", os.environ["REQUESTS_CA_BUNDLE"]
    return None


def tls_context(config):
    """(ssl.SSLContext, what it trusts) for https:// endpoints."""
    import ssl

    bundle = ca_bundle(config)
    if bundle is None:
        return ssl.create_default_context(), SYSTEM_TRUST
    setting, where, path = bundle
    problem = None
    if not str(path).strip():
        problem = "it is empty"
    else:
        try:
            return ssl.create_default_context(cafile=path), f"{setting} {path}"
        except (OSError, ValueError) as error:
            problem = cause(error)
    raise errors.BadConfiguration(
        f'{setting} in {where} is not a usable CA bundle: "{str(path)[:200]}"',
        detail=f"{problem[:1].upper()}{problem[1:]}.",
        hint="AWS_CA_BUNDLE, the profile's ca_bundle or REQUESTS_CA_BUNDLE (the first one set "
        "wins) must name a PEM file of CA certificates that the server's OS user can read; "
        "it replaces the default trust store for https:// endpoints. The environment is the "
        "server process's, as it was started.",
    )


def cause(error):
    """A short, secret-free description of a transport error."""
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    import re

    return re.sub(r" \(_ssl\.c:\d+\)", "", text)[:300]


def _seconds_left(deadline):
    """A socket timeout that ends at deadline (never zero, which would mean non-blocking)."""
    return max(deadline - time.monotonic(), 0.001)


def _ascii(host):
    """host as it is written in a request: IDNA for a name that is not ASCII."""
    try:
        return host.encode("ascii").decode()
    except UnicodeEncodeError:
        return host.encode("idna").decode()


def _bracketed(host):
    """host as it is written before ":port": an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host

"""redis-py over TLS against a Synod cluster (run by tls_e2e_test.cc).

usage: tls_e2e.py PORT CA_CERT [CLIENT_CERT CLIENT_KEY] [--auth USER PASSWORD]

Connects with ssl=True, verifying the server against CA_CERT (and presenting the client
certificate if given), and checks that commands, a pipeline and replies larger than one TLS record
work; then that plaintext redis-py on the same port is refused. With --auth the cluster requires a
password: the client AUTHs as USER, and a TLS client without a password or with a wrong one is
refused. Exit 0 when every check held.
"""
import sys

import redis


def main():
    args = sys.argv[1:]
    user = password = None
    if "--auth" in args:
        at = args.index("--auth")
        user, password = args[at + 1], args[at + 2]
        del args[at:at + 3]
    port = int(args[0])
    ca = args[1]
    cert = args[2] if len(args) > 2 else None
    key = args[3] if len(args) > 3 else None

    def tls_client(username, secret):
        return redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=ca,
                           ssl_cert_reqs="required", ssl_certfile=cert, ssl_keyfile=key,
                           username=username, password=secret, socket_timeout=10)

    if password is not None:
        for who, secret, error in ((None, None, "Authentication required"),
                                   (user, "wrong-" + password, "invalid username-password")):
            try:
                tls_client(who, secret).get("tls:py")
            except (redis.exceptions.AuthenticationError, redis.exceptions.ResponseError) as e:
                assert error in str(e), str(e)
            else:
                raise AssertionError("a TLS client without the right password was served")
    r = tls_client(user, password)
    assert r.ping() is True
    if user is not None:
        assert r.acl_whoami() in (user, user.encode())
    assert r.set("tls:py", "over tls") is True
    assert r.get("tls:py") == b"over tls"
    # A pipeline of many commands in one TLS stream.
    p = r.pipeline(transaction=False)
    for i in range(200):
        p.set(f"tls:py:{i}", str(i))
    assert all(p.execute())
    p = r.pipeline(transaction=False)
    for i in range(200):
        p.get(f"tls:py:{i}")
    assert p.execute() == [str(i).encode() for i in range(200)]
    # A value of many TLS records (16 KiB each) both ways.
    big = b"x" * (1 << 20) + b"end"
    assert r.set("tls:py:big", big) is True
    assert r.get("tls:py:big") == big
    assert r.incr("tls:py:counter") == 1

    # Plaintext to the TLS port: refused, never served.
    plain = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
    try:
        plain.get("tls:py")
    except (redis.exceptions.ConnectionError, redis.exceptions.ResponseError) as e:
        assert "TLS" in str(e) or "closed" in str(e), str(e)
    else:
        raise AssertionError("plaintext redis-py was served on the TLS port")
    print("tls_e2e.py: all checks held")


if __name__ == "__main__":
    main()

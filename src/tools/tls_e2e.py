"""redis-py over TLS against a Synod cluster (run by tls_e2e_test.cc).

usage: tls_e2e.py PORT CA_CERT [CLIENT_CERT CLIENT_KEY]

Connects with ssl=True, verifying the server against CA_CERT (and presenting the client
certificate if given), and checks that commands, a pipeline and replies larger than one TLS record
work; then that plaintext redis-py on the same port is refused. Exit 0 when every check held.
"""
import sys

import redis


def main():
    port = int(sys.argv[1])
    ca = sys.argv[2]
    cert = sys.argv[3] if len(sys.argv) > 3 else None
    key = sys.argv[4] if len(sys.argv) > 4 else None
    r = redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=ca,
                    ssl_cert_reqs="required", ssl_certfile=cert, ssl_keyfile=key,
                    socket_timeout=10)
    assert r.ping() is True
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

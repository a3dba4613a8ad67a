#!/usr/bin/env python3
"""Transactions (MULTI/EXEC/DISCARD/WATCH) against a real Synod cluster (run by tx_e2e_test.cc).

  tx_e2e.py golden SYNOD_PORT REDIS_PORT   sends the same command sequences, on raw connections,
                                           to Synod and to a real redis-server, and checks that
                                           every reply is the same bytes
  tx_e2e.py count PORT...                  concurrent incrementers through every port: WATCH
                                           retry loops (classic and r.transaction) and
                                           transactional pipelines; the counts must be exact and
                                           each pipeline's INCRs consecutive

Exits 0 when every check holds; otherwise prints the first failure and exits 1.
"""
import socket
import sys
import threading

import redis


def fail(what):
    print('FAILED ' + what)
    sys.exit(1)


class Raw:
    """A RESP2 connection that returns each reply's exact bytes."""

    def __init__(self, port):
        self.sock = socket.create_connection(('127.0.0.1', port), timeout=20)
        self.buf = b''

    def _line(self):
        while b'\r\n' not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError('connection closed')
            self.buf += chunk
        i = self.buf.index(b'\r\n') + 2
        line, self.buf = self.buf[:i], self.buf[i:]
        return line

    def _bytes(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError('connection closed')
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def reply(self):
        line = self._line()
        if line[:1] == b'$':
            n = int(line[1:-2])
            return line + (self._bytes(n + 2) if n >= 0 else b'')
        if line[:1] == b'*':
            n = int(line[1:-2])
            return line + b''.join(self.reply() for _ in range(max(n, 0)))
        return line

    def send(self, words):
        out = b'*%d\r\n' % len(words)
        for w in words:
            w = w.encode()
            out += b'$%d\r\n%s\r\n' % (len(w), w)
        self.sock.sendall(out)


# Each sequence runs on one fresh connection after `DEL` of its keys; "|" separates commands.
GOLDEN = [
    'MULTI|SET tx:a 1|INCR tx:a|GET tx:a|EXEC',
    'MULTI|EXEC',
    'MULTI|SET tx:a x|INCR tx:a|LPUSH tx:a b|GET tx:a|EXEC',          # runtime errors per command
    'MULTI|SET tx:a 1|foo x y z w|SET tx:a 2|EXEC|GET tx:a',           # queue-time: EXECABORT
    'MULTI|GET|EXEC|GET tx:a',
    'MULTI|SET tx:a 1|DISCARD|GET tx:a',
    'MULTI|MULTI|SET tx:a 1|EXEC',                                     # nested: not fatal
    'MULTI|WATCH tx:a|SET tx:a 1|EXEC',
    'EXEC|DISCARD|MULTI x|WATCH|UNWATCH x|UNWATCH',
    'MULTI|EXEC x|EXEC',
    'MULTI|DISCARD x|EXEC',
    'MULTI|PING|ECHO hi|UNWATCH|SELECT 0|SET tx:a 5|SELECT 99|EXEC',
    'WATCH tx:a|SET tx:a 2|MULTI|GET tx:a|EXEC|GET tx:a',              # own write after WATCH
    'WATCH tx:a|MULTI|INCR tx:a|EXEC',
    'WATCH tx:a tx:b|UNWATCH|SET tx:a 3|MULTI|GET tx:a|EXEC',
    'WATCH tx:a|DISCARD|MULTI|DISCARD|SET tx:a 1|MULTI|GET tx:a|EXEC',
    'SET tx:a 1|WATCH tx:a|MULTI|DEL tx:a|EXEC|EXISTS tx:a',
]


def golden(synod_port, redis_port):
    for seq in GOLDEN:
        got = []
        for port in (synod_port, redis_port):
            conn = Raw(port)
            conn.send(['DEL', 'tx:a', 'tx:b'])
            conn.reply()
            replies = []
            for cmd in seq.split('|'):
                conn.send(cmd.split(' '))
                replies.append(conn.reply())
            got.append(replies)
        if got[0] != got[1]:
            fail('%s\n  synod: %r\n  redis: %r' % (seq, got[0], got[1]))
    # Another client's write between WATCH and EXEC aborts the transaction: a null array.
    for port in (synod_port,):
        a, b = Raw(port), Raw(port)
        for conn, cmd in ((a, 'SET tx:w 1'), (a, 'WATCH tx:w'), (b, 'SET tx:w 1'),
                          (a, 'MULTI'), (a, 'SET tx:w 9'), (a, 'EXEC'), (a, 'GET tx:w')):
            conn.send(cmd.split(' '))
            last = conn.reply()
            if cmd == 'EXEC' and last != b'*-1\r\n':
                fail('EXEC after another client wrote a watched key: %r' % last)
        if last != b'$1\r\n1\r\n':
            fail('an aborted transaction applied something: %r' % last)
    # Pipelined WATCH ... EXEC in one write: EXEC waits for the WATCH's position.
    conn = Raw(synod_port)
    cmds = ['WATCH tx:p', 'MULTI', 'INCR tx:p', 'EXEC']
    conn.sock.sendall(b''.join(
        b'*%d\r\n' % len(c.split(' ')) + b''.join(
            b'$%d\r\n%s\r\n' % (len(w), w.encode()) for w in c.split(' ')) for c in cmds))
    got = [conn.reply() for _ in cmds]
    if got[0] != b'+OK\r\n' or got[3][:4] != b'*1\r\n':
        fail('pipelined WATCH/MULTI/EXEC: %r' % got)


def count(ports):
    each = 25
    clients = [redis.Redis(port=p, decode_responses=True, socket_timeout=30) for p in ports]
    clients[0].delete('tx:c1', 'tx:c2', 'tx:c3')
    errors = []

    def classic(r):
        for _ in range(each):
            with r.pipeline() as p:
                while True:
                    try:
                        p.watch('tx:c1')
                        v = int(p.get('tx:c1') or 0)
                        p.multi()
                        p.set('tx:c1', v + 1)
                        p.execute()
                        break
                    except redis.WatchError:
                        continue

    def helper(r):
        def incr(p):
            v = int(p.get('tx:c2') or 0)
            p.multi()
            p.set('tx:c2', v + 1)
        for _ in range(each):
            r.transaction(incr, 'tx:c2')

    def pipelined(r):
        for _ in range(each):
            p = r.pipeline()  # transactional by default
            p.incr('tx:c3')
            p.incr('tx:c3')
            a, b = p.execute()
            if b != a + 1:
                errors.append('pipeline INCRs not consecutive: %r %r' % (a, b))

    def guarded(fn, r):
        try:
            fn(r)
        except Exception as e:  # noqa: BLE001 -- reported as the test's failure
            errors.append('%s: %r' % (fn.__name__, e))

    threads = [threading.Thread(target=guarded, args=(fn, r))
               for r in clients for fn in (classic, classic, helper, pipelined)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        fail(errors[0])
    n = len(clients)
    for r in clients:
        for key, want in (('tx:c1', 2 * each * n), ('tx:c2', each * n), ('tx:c3', 2 * each * n)):
            got = int(r.get(key) or 0)
            if got != want:
                fail('%s through port %s: got %d, want %d' % (
                    key, r.connection_pool.connection_kwargs['port'], got, want))


def main():
    if sys.argv[1] == 'golden':
        golden(int(sys.argv[2]), int(sys.argv[3]))
    elif sys.argv[1] == 'count':
        count([int(p) for p in sys.argv[2:]])
    else:
        fail('unknown mode ' + sys.argv[1])


if __name__ == '__main__':
    main()

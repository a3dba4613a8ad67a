#!/usr/bin/env python3
"""A differential test: the same seeded command sequence to a Synod cluster and to a real Redis 7.0
(Debian's redis-server), every reply compared (run by differential_e2e_test.cc).

  differential_e2e.py random SEED COUNT PORT...   COUNT random commands of every type,
      sent raw (through redis-py's connection, its reply parser and no response callbacks), each
      to Redis and to one of Synod's replicas (leader and followers in turn)
  differential_e2e.py app SEED PORT...            redis-py's own API as an application
      uses it: commands with redis-py's reply conversions, transactional and plain pipelines, a
      WATCH retry loop that really conflicts, Lock, registered scripts, the scan iterators

PORT... are Synod's replicas; the script starts its own redis-server (Debian's, on a free port
of 127.0.0.1, without persistence, in a temporary directory) and stops it at the end.

Replies Redis leaves to chance are compared as Redis's own COMMAND INFO tips allow: an array of a
command tipped nondeterministic_output_order as a multiset; TTLs by sign. Random commands
(SPOP, SRANDMEMBER, RANDOMKEY, ...) are not generated: Synod draws from the log, Redis from its
PRNG. Every difference is printed; the script exits 1 if any is not in DELIBERATE (each with
Synod's reason).
"""
import hashlib
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import redis

# Differences on purpose, by command name: what Synod answers instead, and why.
DELIBERATE = {
    # Not Synod's choice but Redis's: lex ranges over members with different scores are
    # unspecified (Redis's docs), and the sequences give members random scores.
    'ZRANGEBYLEX': 'unspecified by Redis when scores differ',
    'ZLEXCOUNT': 'unspecified by Redis when scores differ',
}

VALUES = ['a', 'b', 'c', '1', '2', '-3', '3.5', '', 'xyz', '10']
INTS = ['-3', '-1', '0', '1', '2', '5', 'x', '1.5']
FLOATS = ['0.5', '-1.25', '3', 'inf', 'x', '1e3']
EXISTS_SHA = hashlib.sha1(b"return redis.call('exists', KEYS[1])").hexdigest()


class Gen:
    """Random commands over a small key space, so that types collide (WRONGTYPE) and keys meet."""

    def __init__(self, rng):
        self.r = rng

    def key(self):
        return 'k%d' % self.r.randrange(8)

    def keys(self, lo=1, hi=3):
        return [self.key() for _ in range(self.r.randint(lo, hi))]

    def val(self):
        return self.r.choice(VALUES)

    def int_(self):
        return self.r.choice(INTS)

    def pick(self, *options):
        return self.r.choice(options)

    def maybe(self, *words):
        return list(words) if self.r.random() < 0.3 else []

    def pairs(self, left, right, lo=1, hi=3):
        out = []
        for _ in range(self.r.randint(lo, hi)):
            out += [left(), right()]
        return out

    def command(self):
        r, k, v, n = self.r, self.key, self.val, self.int_
        field = lambda: self.pick('f1', 'f2', 'f3')
        score = lambda: self.pick('1', '2', '2.5', '-1', '+inf', '-inf', 'x')
        member = lambda: self.pick('a', 'b', 'c', 'd')
        rng_ = lambda: self.pick('-1', '0', '1', '2', '-2', '10')
        table = [
            # strings
            lambda: ['SET', k(), v()] + self.maybe(self.pick('NX', 'XX', 'GET', 'KEEPTTL')),
            lambda: ['SET', k(), v(), 'EX', '1000'],
            lambda: ['GET', k()], lambda: ['GETSET', k(), v()], lambda: ['GETDEL', k()],
            lambda: ['SETNX', k(), v()], lambda: ['SETEX', k(), self.pick('1000', '0', 'x'), v()],
            lambda: ['APPEND', k(), v()], lambda: ['STRLEN', k()], lambda: ['INCR', k()],
            lambda: ['DECR', k()], lambda: ['INCRBY', k(), n()], lambda: ['DECRBY', k(), n()],
            lambda: ['INCRBYFLOAT', k(), self.pick(*FLOATS)],
            lambda: ['GETRANGE', k(), rng_(), rng_()], lambda: ['SETRANGE', k(), self.pick('0', '2', '-1'), v()],
            lambda: ['MSET'] + self.pairs(k, v), lambda: ['MSETNX'] + self.pairs(k, v),
            lambda: ['MGET'] + self.keys(), lambda: ['GETEX', k()] + self.maybe('PERSIST'),
            # keyspace
            lambda: ['DEL'] + self.keys(), lambda: ['EXISTS'] + self.keys(), lambda: ['TYPE', k()],
            lambda: ['RENAME', k(), k()], lambda: ['RENAMENX', k(), k()],
            lambda: ['COPY', k(), k()] + self.maybe('REPLACE'),
            lambda: ['EXPIRE', k(), '1000'] + self.maybe(self.pick('NX', 'XX', 'GT', 'LT')),
            lambda: ['PERSIST', k()], lambda: ['TTL', k()], lambda: ['PTTL', k()],
            lambda: ['UNLINK'] + self.keys(), lambda: ['TOUCH'] + self.keys(), lambda: ['DBSIZE'],
            lambda: ['KEYS', self.pick('*', 'k[0-3]', 'k?', 'nomatch')],
            # hashes
            lambda: ['HSET', k()] + self.pairs(field, v), lambda: ['HGET', k(), field()],
            lambda: ['HMGET', k(), field(), field()], lambda: ['HDEL', k(), field(), field()],
            lambda: ['HEXISTS', k(), field()], lambda: ['HLEN', k()], lambda: ['HSTRLEN', k(), field()],
            lambda: ['HINCRBY', k(), field(), n()], lambda: ['HINCRBYFLOAT', k(), field(), self.pick(*FLOATS)],
            lambda: ['HSETNX', k(), field(), v()], lambda: ['HGETALL', k()], lambda: ['HKEYS', k()],
            lambda: ['HVALS', k()], lambda: ['HMSET', k()] + self.pairs(field, v),
            # lists
            lambda: [self.pick('LPUSH', 'RPUSH'), k()] + [v() for _ in range(r.randint(1, 3))],
            lambda: [self.pick('LPUSHX', 'RPUSHX'), k(), v()],
            lambda: [self.pick('LPOP', 'RPOP'), k()] + self.maybe(self.pick('0', '1', '3', '-1')),
            lambda: ['LRANGE', k(), rng_(), rng_()], lambda: ['LLEN', k()], lambda: ['LINDEX', k(), rng_()],
            lambda: ['LSET', k(), rng_(), v()], lambda: ['LREM', k(), self.pick('0', '1', '-1'), v()],
            lambda: ['LTRIM', k(), rng_(), rng_()],
            lambda: ['LINSERT', k(), self.pick('BEFORE', 'AFTER', 'MIDDLE'), v(), v()],
            lambda: ['LMOVE', k(), k(), self.pick('LEFT', 'RIGHT'), self.pick('LEFT', 'RIGHT')],
            lambda: ['RPOPLPUSH', k(), k()],
            lambda: ['LPOS', k(), v()] + self.maybe('RANK', self.pick('1', '-1', '0')) + self.maybe('COUNT', '0'),
            # sets
            lambda: ['SADD', k()] + [member() for _ in range(r.randint(1, 3))],
            lambda: ['SREM', k(), member(), member()], lambda: ['SMEMBERS', k()],
            lambda: ['SISMEMBER', k(), member()], lambda: ['SMISMEMBER', k(), member(), member()],
            lambda: ['SCARD', k()], lambda: ['SMOVE', k(), k(), member()],
            lambda: [self.pick('SINTER', 'SUNION', 'SDIFF')] + self.keys(),
            lambda: [self.pick('SINTERSTORE', 'SUNIONSTORE', 'SDIFFSTORE'), k()] + self.keys(),
            lambda: ['SINTERCARD', self.pick('1', '2', '0', '3'), k(), k()] + self.maybe('LIMIT', self.pick('1', '0', '-1')),
            # sorted sets
            lambda: ['ZADD', k()] + self.maybe(self.pick('NX', 'XX', 'GT', 'LT', 'CH')) + self.pairs(score, member),
            lambda: ['ZADD', k(), 'INCR', score(), member()],
            lambda: ['ZINCRBY', k(), score(), member()], lambda: ['ZREM', k(), member(), member()],
            lambda: ['ZSCORE', k(), member()], lambda: ['ZMSCORE', k(), member(), member()],
            lambda: ['ZCARD', k()], lambda: ['ZCOUNT', k(), self.pick('-inf', '(1', '0', 'x'), self.pick('+inf', '2', '(2.5')],
            lambda: ['ZLEXCOUNT', k(), self.pick('-', '[a', '(b', 'x'), self.pick('+', '[c', '(d')],
            lambda: [self.pick('ZRANK', 'ZREVRANK'), k(), member()],
            lambda: ['ZRANGE', k(), rng_(), rng_()] + self.maybe('WITHSCORES') + self.maybe('REV'),
            lambda: ['ZRANGE', k(), self.pick('-inf', '1', '(1'), self.pick('+inf', '2'), 'BYSCORE'] + self.maybe('LIMIT', '0', '2'),
            lambda: ['ZRANGEBYSCORE', k(), self.pick('-inf', '1'), self.pick('+inf', '(2')] + self.maybe('WITHSCORES'),
            lambda: ['ZREVRANGEBYSCORE', k(), self.pick('+inf', '2'), self.pick('-inf', '1')],
            lambda: ['ZRANGEBYLEX', k(), self.pick('-', '[a'), self.pick('+', '(c')],
            lambda: ['ZREVRANGE', k(), rng_(), rng_()] + self.maybe('WITHSCORES'),
            lambda: [self.pick('ZPOPMIN', 'ZPOPMAX'), k()] + self.maybe(self.pick('1', '2', '0', '-1')),
            lambda: ['ZREMRANGEBYSCORE', k(), self.pick('-inf', '1'), self.pick('2', '+inf')],
            lambda: ['ZREMRANGEBYRANK', k(), rng_(), rng_()],
            # scripts
            lambda: ['EVAL', "return redis.call('get', KEYS[1])", '1', k()],
            lambda: ['EVAL', "return redis.call('incr', KEYS[1])", '1', k()],
            lambda: ['EVAL', "return {ARGV[1], tonumber(ARGV[2]), redis.call('exists', KEYS[1])}", '1', k(), v(), n()],
            lambda: ['EVAL', "return redis.pcall('hset', KEYS[1], 'f', ARGV[1])", '1', k(), v()],
            lambda: ['EVAL_RO', "return redis.call('type', KEYS[1])", '1', k()],
            lambda: ['SCRIPT', 'LOAD', "return redis.call('exists', KEYS[1])"],
            lambda: ['EVALSHA', self.pick(EXISTS_SHA, 'ffffffffffffffffffffffffffffffffffffffff'), '1', k()],
            lambda: ['SCRIPT', 'EXISTS', EXISTS_SHA, 'ffffffffffffffffffffffffffffffffffffffff'],
            # whole key space scans: one call, so the cursor is 0 on both
            lambda: ['SCAN', '0', 'COUNT', '1000'] + self.maybe('MATCH', 'k[0-4]') + self.maybe('TYPE', 'string'),
            lambda: [self.pick('HSCAN', 'SSCAN', 'ZSCAN'), k(), '0', 'COUNT', '1000'],
            # transactions (sent on one connection): queued commands, queue-time errors, DISCARD
            lambda: [['MULTI']] + [self.command() for _ in range(r.randint(0, 3))] + [[self.pick('EXEC', 'EXEC', 'DISCARD')]],
            lambda: [['MULTI'], ['SET', k(), v()], ['NOSUCHCOMMAND'], ['EXEC']],
            lambda: [['MULTI'], ['INCR', k()], ['GET'], ['EXEC']],
            lambda: [['EXEC']], lambda: [['DISCARD']],
            # errors: arity, unknown commands, syntax
            lambda: [self.pick('GET', 'SET', 'HSET', 'ZADD', 'LPUSH')],
            lambda: ['NOSUCHCOMMAND', k()], lambda: ['SET', k(), v(), 'EX'],
            lambda: ['ZADD', k(), 'NX', 'XX', '1', 'a'],
        ]
        return r.choice(table)()


def raw_conn(port):
    c = redis.Connection(host='127.0.0.1', port=int(port), socket_timeout=20)
    c.connect()
    return c


def call(conn, args):
    conn.send_command(*args)
    try:
        return conn.read_response()
    except redis.ResponseError as e:
        return ('error', str(e))


def order_free_commands(redis_conn):
    """The commands whose output order Redis leaves to itself (COMMAND INFO's tips)."""
    out = set()
    for info in call(redis_conn, ['COMMAND']):
        tips = [t.decode() if isinstance(t, bytes) else t for t in info[7]]
        if 'nondeterministic_output_order' in tips:
            out.add((info[0].decode() if isinstance(info[0], bytes) else info[0]).upper())
    return out


def pairs_sorted(items):
    return sorted(zip(items[::2], items[1::2]))


def errors_as_text(reply):
    """Errors inside arrays (EXEC's) come as exception objects: compared by their text."""
    if isinstance(reply, Exception):
        return ('error', str(reply))
    if isinstance(reply, list):
        return [errors_as_text(e) for e in reply]
    return reply


def normalize(name, reply, order_free):
    reply = errors_as_text(reply)
    if name in ('TTL', 'PTTL') and isinstance(reply, int) and reply > 0:
        return 'positive'
    if name == 'SCAN' and isinstance(reply, list):
        return [reply[0], sorted(reply[1])]
    if name in ('HSCAN', 'ZSCAN') and isinstance(reply, list):
        return [reply[0], pairs_sorted(reply[1])]
    if name == 'SSCAN' and isinstance(reply, list):
        return [reply[0], sorted(reply[1])]
    if name in order_free and isinstance(reply, list):
        if name == 'HGETALL':
            return pairs_sorted(reply)
        return sorted(reply, key=repr)
    return reply


def report(diffs):
    unexpected = [d for d in diffs if d[0] not in DELIBERATE]
    for name, args, want, got in diffs:
        tag = 'deliberate' if name in DELIBERATE else 'DIFFERENT'
        print('%s: %s\n  redis: %r\n  synod: %r' % (tag, ' '.join(args), want, got))
    return unexpected


def random_sequence(seed, count, redis_port, ports):
    rng = random.Random(seed)
    gen = Gen(rng)
    rc = raw_conn(redis_port)
    order_free = order_free_commands(rc)
    synods = [raw_conn(p) for p in ports]
    for conn in (rc, synods[0]):
        call(conn, ['FLUSHALL'])
        call(conn, ['SCRIPT', 'FLUSH'])
    diffs, compared = [], 0
    for i in range(count):
        command = gen.command()
        group = command if isinstance(command[0], list) else [command]
        if any(isinstance(a, list) for c in group[1:-1] for a in c):
            continue  # a transaction drew a transaction: not nested
        synod = synods[i % len(synods)]
        queued = []  # the names of the commands a transaction holds, for EXEC's replies
        for args in group:
            name = args[0].upper()
            want, got = call(rc, args), call(synod, args)
            if name == 'EXEC':
                want, got = [[normalize(n, r, order_free) for n, r in zip(queued, x)]
                             if isinstance(x, list) else x for x in (want, got)]
            else:
                want, got = normalize(name, want, order_free), normalize(name, got, order_free)
            if name != 'MULTI' and len(group) > 1:
                queued.append(name)
            compared += 1
            if want != got:
                diffs.append((name, args, want, got))
    unexpected = report(diffs)
    print('random seed %d: %d commands compared, %d differ (%d not deliberate)' %
          (seed, compared, len(diffs), len(unexpected)))
    return 1 if unexpected else 0


def app(seed, redis_port, ports):
    """redis-py's API as an application uses it, the same calls on both, results compared."""
    rng = random.Random(seed)
    rr = redis.Redis(host='127.0.0.1', port=int(redis_port), decode_responses=True)
    ss = [redis.Redis(host='127.0.0.1', port=int(p), decode_responses=True, socket_timeout=20)
          for p in ports]
    rr.flushall()
    ss[0].flushall()
    diffs = []
    steps = 0

    def both(what, fn, norm=lambda x: x):
        nonlocal steps
        steps += 1
        results = []
        for client in (rr, ss[steps % len(ss)]):
            try:
                results.append(norm(fn(client)))
            except redis.RedisError as e:
                results.append(('error', type(e).__name__, str(e)))
        if results[0] != results[1]:
            diffs.append((what, [what], results[0], results[1]))

    users = ['u%d' % i for i in range(5)]
    for u in users:
        both('hset mapping', lambda c: c.hset('user:' + u, mapping={'name': u, 'visits': 0}))
    for _ in range(20):
        u, step = rng.choice(users), rng.randint(1, 3)
        both('hincrby', lambda c: c.hincrby('user:' + u, 'visits', step))
    for u in users:
        both('hgetall', lambda c: c.hgetall('user:' + u))
    both('set/get', lambda c: (c.set('greeting', 'hello', ex=100), c.get('greeting')))
    both('set nx', lambda c: c.set('greeting', 'again', nx=True))
    both('mset/mget', lambda c: (c.mset({'a': 1, 'b': 2}), c.mget('a', 'b', 'missing')))
    both('incr', lambda c: [c.incr('counter') for _ in range(3)] + [c.incrbyfloat('f', 0.5)])
    both('list', lambda c: (c.rpush('queue', *range(6)), c.lpop('queue'), c.lrange('queue', 0, -1),
                            c.rpop('queue', 2), c.llen('queue')))
    both('sets', lambda c: (c.sadd('tags', 'x', 'y', 'z'), c.smembers('tags'), c.sismember('tags', 'y'),
                            c.sinter('tags', 'none'), c.scard('tags')))
    both('zset', lambda c: (c.zadd('board', {'ann': 3, 'bob': 1, 'cy': 2}), c.zincrby('board', 5, 'bob'),
                            c.zrange('board', 0, -1, withscores=True),
                            c.zrevrangebyscore('board', '+inf', 2, withscores=True),
                            c.zrank('board', 'cy'), c.zscore('board', 'ann'), c.zpopmin('board')))
    both('hash fields', lambda c: (c.hkeys('user:u1'), c.hvals('user:u1'), c.hexists('user:u1', 'name'),
                                   c.hmget('user:u1', 'name', 'nope')), norm=lambda x: (sorted(x[0]), sorted(x[1]), x[2], x[3]))
    both('types', lambda c: [c.type(k) for k in ('greeting', 'queue', 'tags', 'board', 'user:u1', 'none')])
    both('expire/ttl', lambda c: (c.expire('greeting', 50), c.ttl('greeting') > 0, c.persist('greeting'),
                                  c.ttl('greeting')))

    def tx(c):
        p = c.pipeline(transaction=True)
        p.incr('txc').incr('txc').set('txk', 'v').get('txk').hset('txh', 'f', 1).hgetall('txh')
        return p.execute()
    both('pipeline (MULTI/EXEC)', tx)

    def tx_error(c):
        p = c.pipeline(transaction=True)
        p.set('txe', 'x').lpush('txe', 'y').get('txe')
        return p.execute(raise_on_error=False)
    both('pipeline with a runtime error', tx_error, norm=lambda rs: [repr(r) for r in rs])

    def plain(c):
        p = c.pipeline(transaction=False)
        for i in range(10):
            p.set('p%d' % i, i)
        p.mget(['p%d' % i for i in range(10)])
        return p.execute()
    both('pipeline without a transaction', plain)

    def watch_conflict(c, other):
        # A WATCH retry loop whose first attempt is broken by another client's write.
        attempts = 0
        with c.pipeline() as p:
            while True:
                attempts += 1
                try:
                    p.watch('balance')
                    current = int(p.get('balance') or 0)
                    if attempts == 1:
                        other.incrby('balance', 100)
                    p.multi()
                    p.set('balance', current + 1)
                    p.execute()
                    break
                except redis.WatchError:
                    continue
        return attempts, c.get('balance')
    rr2 = redis.Redis(host='127.0.0.1', port=int(redis_port), decode_responses=True)
    ss2 = redis.Redis(host='127.0.0.1', port=int(ports[-1]), decode_responses=True, socket_timeout=20)
    steps += 1
    got = [watch_conflict(rr, rr2), watch_conflict(ss[0], ss2)]
    if got[0] != got[1]:
        diffs.append(('watch retry', ['watch retry'], got[0], got[1]))

    def lock(c):
        lk = c.lock('resource', timeout=10)
        held = lk.acquire(blocking=False)
        second = c.lock('resource', timeout=10).acquire(blocking=False)
        locked = lk.locked()
        extended = lk.extend(5)
        lk.release()
        return held, second, locked, extended, lk.locked()
    both('Lock', lock)

    def scripts(c):
        add = c.register_script("return redis.call('incrby', KEYS[1], ARGV[1])")
        read = c.script_load("return redis.call('get', KEYS[1])")
        # A cached read-only script: a read on Synod (no log entry), the same reply.
        return (add(keys=['sc'], args=[5]), add(keys=['sc'], args=[2]), c.script_exists(add.sha),
                c.execute_command('EVALSHA_RO', read, 1, 'sc'),
                c.execute_command('EVAL_RO', "return redis.call('get', KEYS[1])", 1, 'sc'))
    both('register_script', scripts)

    for i in range(60):
        both('fill', lambda c: c.set('scan:%d' % i, i))
    both('scan_iter', lambda c: sorted(c.scan_iter(match='scan:*', count=7)))
    both('hscan_iter', lambda c: sorted(c.hscan_iter('user:u2')))
    both('sscan_iter', lambda c: sorted(c.sscan_iter('tags')))
    both('zscan_iter', lambda c: sorted(c.zscan_iter('board')))
    both('keys/dbsize', lambda c: (len(c.keys('scan:*')), c.dbsize(), c.exists('a', 'b', 'zz')))
    both('errors', lambda c: c.lpush('greeting', 'x'))
    both('flushdb', lambda c: (c.flushdb(), c.dbsize()))
    unexpected = report(diffs)
    print('app seed %d: %d steps compared, %d differ (%d not deliberate)' %
          (seed, steps, len(diffs), len(unexpected)))
    return 1 if unexpected else 0


class RedisServer:
    """Debian's redis-server on a free port of 127.0.0.1, for the length of a `with`."""

    def __enter__(self):
        binary = shutil.which('redis-server') or '/usr/bin/redis-server'
        if not os.path.exists(binary):
            raise SystemExit('redis-server is missing: scripts/setup installs it')
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            self.port = s.getsockname()[1]
        self.dir = tempfile.mkdtemp(prefix='synod-differential-redis-')
        self.proc = subprocess.Popen(
            [binary, '--port', str(self.port), '--bind', '127.0.0.1', '--save', '',
             '--appendonly', 'no', '--dir', self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(host='127.0.0.1', port=self.port).ping()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SystemExit('redis-server did not start')
                time.sleep(0.05)

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


def main():
    mode = sys.argv[1]
    if mode not in ('random', 'app'):
        print(__doc__)
        return 2
    with RedisServer() as server:
        if mode == 'random':
            return random_sequence(int(sys.argv[2]), int(sys.argv[3]), server.port, sys.argv[4:])
        return app(int(sys.argv[2]), server.port, sys.argv[3:])


if __name__ == '__main__':
    sys.exit(main())

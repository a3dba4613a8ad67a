#!/usr/bin/env python3
"""An application's worth of redis-py usage against a real Synod cluster (run by app_e2e_test.cc).

  app_e2e.py suite PORT               through one replica (a follower or the leader): transactional
                                      and plain pipelines, WATCH retry loops from concurrent
                                      threads, redis-py's Lock (acquire, extend, reacquire,
                                      release), scripts (register_script, EVAL), every data type
                                      and the SCAN iterators (types_e2e.write), fencing tokens
  app_e2e.py failover DIR PORT...     the same kinds of work from concurrent workers, each starting
                                      on its own port and moving to the next when one fails, while
                                      the test kills the leader: the script writes DIR/ready once
                                      every worker has made progress, the test SIGKILLs the leader
                                      and writes DIR/killed, and every worker must then make
                                      progress again before the script stops them and checks, on
                                      every port that answers, that nothing acknowledged was lost,
                                      that no write counted twice and that every counter is exact
  app_e2e.py fencing PORT_A PORT_B    docs/locks.md's fencing scripts: a holder whose lock expired
                                      cannot write once the next holder has acquired it

The application treats replies as Synod documents them (docs/operations.md): TRYAGAIN means not
applied (retry), UNKNOWN or a broken connection means the write may or may not have been applied
(it is never retried blindly, only counted as maybe-applied), WatchError means not applied unless
the connection broke under it (redis-py raises WatchError for a connection lost during EXEC).

Exits 0 when every check holds; otherwise prints the first failure and exits 1.
"""
import os
import re
import sys
import threading
import time
import uuid

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import (ExecAbortError, LockError, LockNotOwnedError, ResponseError,
                              TimeoutError, TryAgainError, WatchError)

import types_e2e


def fail(what):
    print('FAILED ' + what, flush=True)
    os._exit(1)  # also ends the worker threads


def check(what, got, want):
    if got != want:
        fail('%s: got %r, want %r' % (what, got, want))


def client(port, timeout_s=10):
    return redis.Redis(host='127.0.0.1', port=port, decode_responses=True,
                       socket_timeout=timeout_s, socket_connect_timeout=2)


# Fencing tokens (docs/locks.md): the scripts are read from the page, so what it documents is what
# this test runs.
_SCRIPTS = {}


def fencing_scripts():
    if _SCRIPTS:
        return _SCRIPTS
    page = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'docs', 'locks.md')
    with open(page) as f:
        blocks = re.findall(r'```lua\n(.*?)```', f.read(), re.S)
    scripts = {}
    for body in blocks:
        name = body.split('\n', 1)[0].strip('- ').strip()
        scripts[name] = body
    for name in ('fenced-acquire', 'fenced-write'):
        if name not in scripts:
            fail('docs/locks.md has no ```lua block starting "-- %s"' % name)
    _SCRIPTS.update(scripts)
    return _SCRIPTS


class Fenced:
    """A lock with fencing tokens, as docs/locks.md describes it."""

    def __init__(self, r, name, ttl_ms):
        s = fencing_scripts()
        self.r, self.name, self.ttl_ms = r, name, ttl_ms
        self.acquire_script = r.register_script(s['fenced-acquire'])
        self.write_script = r.register_script(s['fenced-write'])
        self.holder = uuid.uuid4().hex
        self.token = None

    def acquire(self):
        got = self.acquire_script(keys=[self.name, self.name + ':fence'],
                                  args=[self.holder, self.ttl_ms])
        self.token = got
        return got

    def write(self, key, value):
        return self.write_script(keys=[key, self.name + ':fence'], args=[self.token, value])

    def release(self):
        return self.r.execute_command('DELIFEQ', self.name, self.holder)


def fencing(a, b):
    a.delete('app:flock', 'app:flock:fence', 'app:fres')
    first = Fenced(a, 'app:flock', 1500)
    second = Fenced(b, 'app:flock', 10000)
    t1 = first.acquire()
    check('first acquire returns a token', isinstance(t1, int) and t1 >= 1, True)
    check('contended acquire returns nil', second.acquire(), None)
    check('holder writes', first.write('app:fres', 'from-first'), 'OK')
    # (A TTL long enough that a loaded machine still sees the contended acquire fail.) The first
    # holder pauses (does nothing) past its TTL; the second polls until it gets the lock,
    # which it can only once the first's lock has expired on the cluster's clock.
    deadline = time.monotonic() + 10
    while second.acquire() is None:
        if time.monotonic() > deadline:
            fail('the second holder never acquired the expired lock')
        time.sleep(0.05)
    check('the next token is higher', second.token > t1, True)
    check('new holder writes', second.write('app:fres', 'from-second'), 'OK')
    # The first holder wakes up and writes with its old token: refused, nothing changes.
    try:
        first.write('app:fres', 'stale')
        fail('a write with a stale fencing token was accepted')
    except ResponseError as e:
        check('stale refusal names the tokens', str(e).startswith('STALE fencing token'), True)
    check('resource kept the new holder\'s write', b.get('app:fres'), 'from-second')
    check('stale release leaves the new holder', first.release(), 0)
    check('new holder still holds it', b.get('app:flock'), second.holder)
    check('new holder writes again with its token', second.write('app:fres', 'again'), 'OK')
    check('release', second.release(), 1)
    # A token is never reused: the next acquisition is higher still, even after a release.
    third = Fenced(a, 'app:flock', 1000)
    check('token after release is higher', third.acquire() > second.token, True)
    third.release()


def pipelines(r):
    r.delete('app:p1', 'app:p2', 'app:plist')
    p = r.pipeline()  # transactional by default
    p.incr('app:p1').incrby('app:p1', 10).rpush('app:plist', 'a', 'b').lrange('app:plist', 0, -1)
    check('transactional pipeline', p.execute(), [1, 11, 2, ['a', 'b']])
    p = r.pipeline(transaction=False)
    for i in range(50):
        p.set('app:p2:%d' % i, i)
    p.mget(['app:p2:%d' % i for i in range(50)])
    out = p.execute()
    check('plain pipeline sets', out[:50], [True] * 50)
    check('plain pipeline mget', out[50], [str(i) for i in range(50)])
    # A command error inside a transaction is per command, as in Redis; the rest applied.
    p = r.pipeline()
    p.set('app:p1', 'x').incr('app:p1').get('app:p1')
    got = p.execute(raise_on_error=False)
    check('runtime error is per command', (got[0], isinstance(got[1], ResponseError), got[2]),
          (True, True, 'x'))
    r.delete(*['app:p2:%d' % i for i in range(50)])


def watch_loops(r, port):
    r.delete('app:wc')
    each, threads = 20, 4

    def worker():
        c = client(port)
        for _ in range(each):
            def incr(p):
                v = int(p.get('app:wc') or 0)
                p.multi()
                p.set('app:wc', v + 1)
            c.transaction(incr, 'app:wc')
    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check('WATCH loops count exactly', int(r.get('app:wc')), each * threads)


def locks_and_scripts(r):
    r.delete('app:lock', 'app:s')
    lock = r.lock('app:lock', timeout=10, blocking_timeout=5)
    check('acquire', lock.acquire(), True)
    check('second acquire waits and fails', r.lock('app:lock', timeout=10).acquire(
        blocking_timeout=0.2), False)
    check('extend', lock.extend(5), True)
    check('reacquire', lock.reacquire(), True)
    lock.release()
    check('released', r.exists('app:lock'), 0)
    with r.lock('app:lock', timeout=10, blocking_timeout=5):
        check('held in with-block', r.exists('app:lock'), 1)
    check('released by with-block', r.exists('app:lock'), 0)
    script = r.register_script(
        "local n = redis.call('INCRBY', KEYS[1], ARGV[1]) "
        "redis.call('HSET', KEYS[2], ARGV[2], n) return {n, redis.call('HLEN', KEYS[2])}")
    r.delete('app:s', 'app:sh')
    check('script', script(keys=['app:s', 'app:sh'], args=[5, 'f']), [5, 1])
    check('script again', script(keys=['app:s', 'app:sh'], args=[2, 'g']), [7, 2])
    check('eval', r.eval("return redis.call('GET', KEYS[1])", 1, 'app:s'), '7')
    check('eval_ro', r.eval_ro("return redis.call('GET', KEYS[1])", 1, 'app:s'), '7')
    try:
        r.eval_ro("return redis.call('SET', KEYS[1], 'x')", 1, 'app:s')
        fail('a read-only script wrote')
    except ResponseError as e:
        check('eval_ro refuses writes', 'Write commands are not allowed from read-only scripts'
              in str(e), True)
    check('eval_ro wrote nothing', r.get('app:s'), '7')
    ro = r.script_load("return redis.call('HLEN', KEYS[1])")
    check('evalsha_ro', r.evalsha_ro(ro, 1, 'app:sh'), 2)
    try:
        r.eval("return redis.call('LPUSH', KEYS[1], 'x')", 1, 'app:s')
        fail('a script error was not raised')
    except ResponseError as e:
        check('script error is WRONGTYPE', 'WRONGTYPE' in str(e), True)


def suite(port):
    r = client(port)
    pipelines(r)
    watch_loops(r, port)
    locks_and_scripts(r)
    types_e2e.write(r, r)
    types_e2e.verify(r)
    fencing(r, client(port))


# ---- failover ----

PROGRESS_BEFORE = 10  # successful operations each worker makes before and after the kill
FAILOVER_TIMEOUT_S = 90


class Outcomes:
    """What one kind of write did, by id: acknowledged, unknown (maybe applied) or failed."""

    def __init__(self):
        self.mu = threading.Lock()
        self.acked, self.unknown, self.failed = set(), set(), set()

    def add(self, which, op_id):
        with self.mu:
            which.add(op_id)


class Worker:
    """One application thread: its clients, one per port, starting at its own port."""

    def __init__(self, run, name, ports, first):
        self.run, self.name = run, name
        self.ports = ports[first:] + ports[:first]
        self.clients = [client(p, timeout_s=5) for p in self.ports]
        self.at = 0
        self.progress = 0  # successful operations
        self.n = 0

    def r(self):
        return self.clients[self.at]

    def move(self):
        self.at = (self.at + 1) % len(self.clients)
        time.sleep(0.05)

    def next_id(self):
        self.n += 1
        return '%s-%d' % (self.name, self.n)

    def done(self):
        self.progress += 1


def classify(e):
    """'retry' (not applied), 'unknown' (maybe applied); anything else is a test failure."""
    if isinstance(e, (RedisConnectionError, TimeoutError)):
        return 'unknown'
    if isinstance(e, WatchError):
        # redis-py turns a connection lost during EXEC into a WatchError: maybe applied.
        ctx = e.__context__
        return 'unknown' if isinstance(ctx, (RedisConnectionError, TimeoutError)) else 'retry'
    if isinstance(e, (TryAgainError, ExecAbortError)):
        return 'retry'  # redis-py strips the code from these errors' text
    if isinstance(e, ResponseError):
        text = str(e)
        if text.startswith('UNKNOWN'):
            return 'unknown'
    fail('unexpected error %r' % e)


class Failover:
    def __init__(self, ctl_dir, ports):
        self.ctl_dir, self.ports = ctl_dir, ports
        self.stop = threading.Event()
        self.killed = False
        self.kinds = {k: Outcomes() for k in ('watch', 'pipe', 'script', 'incr', 'types')}
        self.lock_cycles_after_kill = 0
        self.locks = {'acquired': 0, 'unknown': 0}
        self.fences = []  # (call time, token) of acknowledged fenced acquisitions
        self.mu = threading.Lock()

    # Each writer makes one write with a unique id and records its outcome.
    def write_once(self, w, kind, op):
        op_id = w.next_id()
        while not self.stop.is_set():
            try:
                op(w.r(), op_id)
                self.kinds[kind].add(self.kinds[kind].acked, op_id)
                w.done()
                return
            except Exception as e:  # noqa: BLE001 -- classified, or the test fails
                how = classify(e)
                w.move()
                if how == 'unknown':
                    self.kinds[kind].add(self.kinds[kind].unknown, op_id)
                    return
        self.kinds[kind].add(self.kinds[kind].failed, op_id)

    def watch_op(self, r, op_id):
        # Not r.transaction(): it retries every WatchError, and redis-py raises one when the
        # connection breaks during EXEC, when the transaction may have been applied.
        while True:
            with r.pipeline() as p:
                try:
                    p.watch('app:fw')
                    v = int(p.get('app:fw') or 0)
                    p.multi()
                    p.set('app:fw', v + 1)
                    p.sadd('app:fw:ids', op_id)
                    p.execute()
                    return
                except WatchError as e:
                    if classify(e) == 'unknown':
                        raise
                    # another writer changed the counter first: read it again

    def pipe_op(self, r, op_id):
        p = r.pipeline()
        p.incr('app:ft').incr('app:ft').sadd('app:ft:ids', op_id)
        a, b, _ = p.execute()
        if b != a + 1:
            fail('a transactional pipeline\'s INCRs were not consecutive: %r %r' % (a, b))

    def script_op(self, r, op_id):
        self.script(keys=['app:fs', 'app:fs:ids'], args=[op_id], client=r)

    def plain_pipeline(self, w):
        # Non-transactional: each INCR succeeds or fails on its own, so each is accounted alone.
        o = self.kinds['incr']
        ids = [w.next_id() for _ in range(3)]
        p = w.r().pipeline(transaction=False)
        for _ in ids:
            p.incr('app:fi')
        try:
            results = p.execute(raise_on_error=False)
        except Exception as e:  # noqa: BLE001
            classify(e)  # the connection broke: any of them may have been applied
            for op_id in ids:
                o.add(o.unknown, op_id)
            w.move()
            return
        for op_id, res in zip(ids, results):
            if isinstance(res, int):
                o.add(o.acked, op_id)
            elif classify(res) == 'unknown':
                o.add(o.unknown, op_id)
            else:
                o.add(o.failed, op_id)
        if all(isinstance(res, int) for res in results):
            w.done()
        else:
            w.move()

    def types_op(self, r, op_id):
        # One transaction writes every type, so each type's members are the applied ids.
        p = r.pipeline()
        n = int(op_id.rsplit('-', 1)[1])
        p.hset('app:fh', op_id, n).rpush('app:fl', op_id).sadd('app:fset', op_id)
        p.zadd('app:fz', {op_id: n})
        p.execute()

    def lock_cycle(self, w):
        lock = w.r().lock('app:flk', timeout=5, blocking_timeout=3)
        start = time.monotonic()
        try:
            if not lock.acquire():
                return
        except LockError:
            return  # redis-py wraps errors of the acquire it cannot tell apart: try again
        except Exception as e:  # noqa: BLE001
            if classify(e) == 'unknown':
                with self.mu:
                    self.locks['unknown'] += 1
            w.move()
            return
        with self.mu:
            self.locks['acquired'] += 1
        try:
            lock.extend(1)
            lock.release()
            # Released within the TTL that the acquire began: the lock was still ours.
            with self.mu:
                if self.killed:
                    self.lock_cycles_after_kill += 1
            w.done()
        except LockNotOwnedError:
            if time.monotonic() - start < 5 * 0.9:
                fail('a lock acquired %.2f s ago was no longer owned' % (time.monotonic() - start))
        except Exception as e:  # noqa: BLE001
            classify(e)
            w.move()

    def fence_cycle(self, w):
        f = Fenced(w.r(), 'app:ffl', 3000)
        call = time.monotonic()
        try:
            token = f.acquire()
        except Exception as e:  # noqa: BLE001
            classify(e)
            w.move()
            return
        if token is None:
            time.sleep(0.02)
            return
        with self.mu:
            self.fences.append((call, time.monotonic(), token))
        try:
            f.write('app:ffres', str(token))
            f.release()
            w.done()
        except ResponseError as e:
            if not str(e).startswith('STALE'):
                classify(e)
            w.move()
        except Exception as e:  # noqa: BLE001
            classify(e)
            w.move()

    def reader(self, w):
        # Each counter and its ids set read in one transaction: equal at every instant, since
        # every write changes both in one transaction or script.
        p = w.r().pipeline()
        p.get('app:fw').scard('app:fw:ids').get('app:ft').scard('app:ft:ids')
        p.get('app:fs').scard('app:fs:ids').hlen('app:fh').llen('app:fl').zcard('app:fz')
        try:
            fw, nw, ft, nt, fs, ns, nh, nl, nz = p.execute()
        except Exception as e:  # noqa: BLE001 -- a read: any failure is retried elsewhere
            classify(e)
            w.move()
            return
        got = (int(fw or 0), int(ft or 0), int(fs or 0), nh, nl)
        if got != (nw, 2 * nt, ns, nz, nz):
            fail('one transaction saw counters and their ids disagree: %r' % (
                [fw, nw, ft, nt, fs, ns, nh, nl, nz],))
        w.done()

    def worker(self, w, body):
        try:
            while not self.stop.is_set():
                body(w)
        except SystemExit:
            raise
        except Exception as e:  # noqa: BLE001
            fail('%s: %r' % (w.name, e))

    def run(self):
        r = client(self.ports[0])
        r.delete('app:fw', 'app:fw:ids', 'app:ft', 'app:ft:ids', 'app:fs', 'app:fs:ids', 'app:fi',
                 'app:fh', 'app:fl', 'app:fset', 'app:fz', 'app:flk', 'app:ffl', 'app:ffl:fence',
                 'app:ffres')
        self.script = r.register_script(
            "redis.call('INCR', KEYS[1]) return redis.call('SADD', KEYS[2], ARGV[1])")
        bodies = [
            ('watch', lambda w: self.write_once(w, 'watch', self.watch_op)),
            ('watch', lambda w: self.write_once(w, 'watch', self.watch_op)),
            ('pipe', lambda w: self.write_once(w, 'pipe', self.pipe_op)),
            ('pipe', lambda w: self.write_once(w, 'pipe', self.pipe_op)),
            ('read', self.reader),
            ('script', lambda w: self.write_once(w, 'script', self.script_op)),
            ('incr', self.plain_pipeline),
            ('types', lambda w: self.write_once(w, 'types', self.types_op)),
            ('lock', self.lock_cycle),
            ('fence', self.fence_cycle),
        ]
        workers = [Worker(self, '%s%d' % (kind, i), self.ports, i % len(self.ports))
                   for i, (kind, _) in enumerate(bodies)]
        threads = [threading.Thread(target=self.worker, args=(w, body), daemon=True)
                   for w, (_, body) in zip(workers, bodies)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + FAILOVER_TIMEOUT_S
        self.wait_all(workers, PROGRESS_BEFORE, deadline, 'before the kill')
        before = {w.name: w.progress for w in workers}
        open(os.path.join(self.ctl_dir, 'ready'), 'w').close()
        while not os.path.exists(os.path.join(self.ctl_dir, 'killed')):
            if time.monotonic() > deadline:
                fail('the test never wrote DIR/killed')
            time.sleep(0.02)
        with self.mu:
            self.killed = True
        self.wait_all(workers, None, deadline, 'after the kill', before)
        self.stop.set()
        for t in threads:
            t.join()
        self.verify()

    def wait_all(self, workers, at_least, deadline, when, before=None):
        while True:
            slow = [w.name for w in workers
                    if w.progress < (at_least if before is None
                                     else before[w.name] + PROGRESS_BEFORE)]
            if not slow:
                return
            if time.monotonic() > deadline:
                fail('no progress %s by %s' % (when, ', '.join(slow)))
            time.sleep(0.05)

    def read(self, fn):
        """A read through any port that answers (reads are retried: they change nothing)."""
        deadline = time.monotonic() + 30
        while True:
            for p in self.ports:
                try:
                    return fn(client(p))
                except (RedisConnectionError, TimeoutError, ResponseError):
                    if time.monotonic() > deadline:
                        raise
            time.sleep(0.1)

    def check_ids(self, kind, applied):
        o = self.kinds[kind]
        lost = o.acked - applied
        if lost:
            fail('%s: %d acknowledged writes lost, e.g. %s' % (kind, len(lost), sorted(lost)[:3]))
        phantom = applied - o.acked - o.unknown
        if phantom:
            fail('%s: applied writes never sent or definitely failed: %s' % (kind, sorted(phantom)))

    def verify(self):
        summary = []
        for kind, counter, ids, per in (('watch', 'app:fw', 'app:fw:ids', 1),
                                        ('pipe', 'app:ft', 'app:ft:ids', 2),
                                        ('script', 'app:fs', 'app:fs:ids', 1)):
            n = self.read(lambda c: int(c.get(counter) or 0))
            applied = self.read(lambda c: c.smembers(ids))
            self.check_ids(kind, applied)
            # Each applied transaction counted exactly once, and atomically with its id.
            check('%s counter is exact (per applied transaction)' % kind, n, per * len(applied))
            o = self.kinds[kind]
            summary.append('%s %d acked %d unknown %d applied' % (
                kind, len(o.acked), len(o.unknown), len(applied)))
        o = self.kinds['incr']
        n = self.read(lambda c: int(c.get('app:fi') or 0))
        if not len(o.acked) <= n <= len(o.acked) + len(o.unknown):
            fail('incr: %d acknowledged, %d unknown, counter %d' % (len(o.acked), len(o.unknown), n))
        summary.append('incr %d acked %d unknown counter %d' % (len(o.acked), len(o.unknown), n))
        # Every data type, read through the SCAN iterators on every replica that answers.
        o = self.kinds['types']
        for p in self.ports:
            try:
                c = client(p)
                views = {
                    'hash': set(dict(c.hscan_iter('app:fh', count=7))),
                    'set': set(c.sscan_iter('app:fset', count=7)),
                    'zset': set(m for m, _ in c.zscan_iter('app:fz', count=7)),
                }
                lst = c.lrange('app:fl', 0, -1)
                keys = set(c.scan_iter(match='app:f*', count=5))
            except (RedisConnectionError, TimeoutError):
                continue  # the killed replica
            for name, got in views.items():
                lost = o.acked - got
                if lost:
                    fail('%s via port %d lost acknowledged members %s' % (name, p, sorted(lost)[:3]))
                if got - o.acked - o.unknown:
                    fail('%s via port %d has members never written' % (name, p))
            if len(lst) != len(set(lst)):
                fail('list via port %d holds a write twice' % p)
            if o.acked - set(lst):
                fail('list via port %d lost acknowledged elements' % p)
            for k in ('app:fh', 'app:fl', 'app:fset', 'app:fz', 'app:fw', 'app:ft', 'app:fs'):
                if k not in keys:
                    fail('SCAN via port %d missed %s' % (p, k))
        summary.append('types %d acked %d unknown' % (len(o.acked), len(o.unknown)))
        # Fencing tokens: an acquisition that began after another returned has a higher token.
        fences = sorted(self.fences)
        for call, _, token in fences:
            for _, ret, other in fences:
                if ret < call and other >= token:
                    fail('fencing token %d issued after %d had been returned' % (token, other))
        if len(set(t for _, _, t in fences)) != len(fences):
            fail('a fencing token was issued twice')
        summary.append('locks %s (%d cycles after the kill), fenced acquisitions %d' % (
            self.locks, self.lock_cycles_after_kill, len(fences)))
        print('ok: ' + '; '.join(summary), flush=True)


def main():
    mode = sys.argv[1]
    if mode == 'suite':
        suite(int(sys.argv[2]))
    elif mode == 'failover':
        Failover(sys.argv[2], [int(p) for p in sys.argv[3:]]).run()
        return
    elif mode == 'fencing':
        fencing(client(int(sys.argv[2])), client(int(sys.argv[3])))
    else:
        fail('unknown mode ' + mode)
    print('ok', flush=True)


if __name__ == '__main__':
    main()

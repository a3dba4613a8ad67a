#!/usr/bin/env python3
"""Scripts through redis-py against a real Synod cluster (run by scripts_e2e_test.cc).

  scripts_e2e.py lock PORT_A PORT_B   redis-py's Lock (acquire with timeout, extend, reacquire,
                                      release: Lua by EVALSHA with NOSCRIPT fallback) from two
                                      clients on two replicas, and the script cache shared
                                      between them

Exits 0 when every check holds; otherwise prints the first failure and exits 1.
"""
import sys
import time

import redis
from redis.exceptions import LockNotOwnedError, NoScriptError


def check(what, got, want):
    if got != want:
        print('FAILED %s: got %r, want %r' % (what, got, want))
        sys.exit(1)


def locks(a, b):
    a.delete('lock:e2e', 'lock:short')
    # Acquire on one replica; the other's client cannot take it while it is held.
    mine = a.lock('lock:e2e', timeout=10)
    check('acquire', mine.acquire(blocking=False), True)
    theirs = b.lock('lock:e2e', timeout=10, blocking_timeout=0.3)
    check('contended acquire', theirs.acquire(), False)
    check('owned', mine.owned(), True)
    # Extend (adds to the TTL) and reacquire (resets it): EVALSHA of redis-py's scripts.
    check('extend', mine.extend(20), True)
    ttl = b.pttl('lock:e2e')
    check('ttl after extend in (20 s, 30 s]', 20000 < ttl <= 30000, True)
    check('reacquire', mine.reacquire(), True)
    ttl = b.pttl('lock:e2e')
    check('ttl after reacquire in (0, 10 s]', 0 < ttl <= 10000, True)
    # Release frees it for the other client.
    mine.release()
    check('released', b.exists('lock:e2e'), 0)
    check('acquire after release', theirs.acquire(blocking_timeout=2), True)
    theirs.release()
    # A lock whose TTL lapses on the log clock is free for the next client.
    short = a.lock('lock:short', timeout=0.3)
    check('acquire short', short.acquire(blocking=False), True)
    nxt = b.lock('lock:short', timeout=5, blocking_timeout=5)
    check('acquire after expiry', nxt.acquire(), True)
    try:
        short.extend(1)
        check('extend an expired lock refused', 'extended', 'LockNotOwnedError')
    except LockNotOwnedError:
        pass
    # Its release script sees another holder's token and refuses, leaving nxt's lock alone.
    try:
        short.release()
        check('release of a lost lock refused', 'released', 'LockNotOwnedError')
    except LockNotOwnedError:
        pass
    check('lost release kept the new holder', nxt.owned(), True)
    nxt.release()


def script_cache(a, b):
    # A flush anywhere empties every replica's cache; redis-py's Script then falls back from
    # NOSCRIPT to SCRIPT LOAD and runs it (Lock.release is such a Script).
    check('flush', a.script_flush(), True)
    lock = b.lock('lock:e2e', timeout=10)
    check('acquire after flush', lock.acquire(blocking=False), True)
    lock.release()
    check('release loaded the script', b.script_exists(lock.lua_release.sha), [True])
    # LOAD through one replica, EVALSHA through the other.
    sha = a.script_load("return {KEYS[1], ARGV[1], redis.call('incr', KEYS[1])}")
    a.delete('s:counter')
    check('evalsha elsewhere', b.evalsha(sha, 1, 's:counter', 'x'), [b's:counter', b'x', 1])
    check('exists elsewhere', b.script_exists(sha, '0' * 40), [True, False])
    check('flush elsewhere', b.script_flush(), True)
    try:
        a.evalsha(sha, 1, 's:counter', 'x')
        check('evalsha after flush', 'ran', 'NOSCRIPT')
    except NoScriptError:
        pass
    check('eval caches', a.eval("return 'e2e'", 0), b'e2e')
    check('evalsha of an evaled script', b.evalsha(a.script_load("return 'e2e'"), 0), b'e2e')


def main():
    mode, port_a, port_b = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    a = redis.Redis(port=port_a, socket_timeout=10)
    b = redis.Redis(port=port_b, socket_timeout=10)
    if mode != 'lock':
        print('unknown mode %r' % mode)
        sys.exit(2)
    start = time.monotonic()
    locks(a, b)
    script_cache(a, b)
    print('ok in %.2f s' % (time.monotonic() - start))


if __name__ == '__main__':
    main()

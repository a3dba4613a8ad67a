#!/usr/bin/env python3
"""Every data type through redis-py against a real Synod cluster (run by types_e2e_test.cc).

  types_e2e.py write WRITE_PORT READ_PORT   writes each type through one replica and reads it back
                                            through the other (a leader and a follower, both ways)
  types_e2e.py verify PORT                  checks the state `write` left, through any replica

Exits 0 when every check holds; otherwise prints the first failure and exits 1.
"""
import sys

import redis


def check(what, got, want):
    if got != want:
        print('FAILED %s: got %r, want %r' % (what, got, want))
        sys.exit(1)


def wrongtype(fn):
    try:
        fn()
    except redis.ResponseError as e:
        return str(e).startswith('WRONGTYPE Operation against a key holding the wrong kind')
    return False


def write(w, r):
    w.delete('t:str', 't:n', 't:hash', 't:list', 't:set', 't:zset', 't:big', 't:tmp')
    # Strings and keys.
    check('set', w.set('t:str', 'v', nx=True), True)
    check('getex', r.getex('t:str', px=600000), 'v')
    check('incrbyfloat', w.incrbyfloat('t:n', 2.5), 2.5)
    check('setrange', w.setrange('t:str', 3, 'xy'), 5)
    check('getrange', r.getrange('t:str', 0, -1), 'v\x00\x00xy')
    check('type', r.type('t:str'), 'string')
    # Hashes.
    check('hset', w.hset('t:hash', mapping={'a': '1', 'b': '2', 'c': '3'}), 3)
    check('hincrby', w.hincrby('t:hash', 'a', 41), 42)
    check('hdel', w.hdel('t:hash', 'c'), 1)
    check('hgetall', r.hgetall('t:hash'), {'a': '42', 'b': '2'})
    check('hmget', r.hmget('t:hash', ['a', 'zz']), ['42', None])
    check('hrandfield', r.hrandfield('t:hash', 2) is not None, True)
    # Lists.
    check('rpush', w.rpush('t:list', 'a', 'b', 'c', 'd'), 4)
    check('lpop count', w.lpop('t:list', 2), ['a', 'b'])
    check('lmove', w.lmove('t:list', 't:list', 'RIGHT', 'LEFT'), 'd')
    check('lrange', r.lrange('t:list', 0, -1), ['d', 'c'])
    check('lpos', r.lpos('t:list', 'c'), 1)
    check('lpop missing', w.lpop('t:nolist', 3), None)
    # Sets.
    check('sadd', w.sadd('t:set', 'x', 'y', 'z'), 3)
    popped = w.spop('t:set')
    check('spop', popped in ('x', 'y', 'z'), True)
    check('smembers', r.smembers('t:set'), {'x', 'y', 'z'} - {popped})
    check('sunionstore', w.sunionstore('t:tmp', ['t:set', 't:set2']), 2)
    check('sismember', r.sismember('t:set', popped), False)
    # Sorted sets.
    check('zadd', w.zadd('t:zset', {'m1': 1, 'm2': 2, 'm3': 3}), 3)
    check('zadd gt ch', w.zadd('t:zset', {'m1': 10}, gt=True, ch=True), 1)
    check('zincrby', w.zincrby('t:zset', 0.5, 'm2'), 2.5)
    check('zrange withscores', r.zrange('t:zset', 0, -1, withscores=True),
          [('m2', 2.5), ('m3', 3.0), ('m1', 10.0)])
    check('zrangebyscore', r.zrangebyscore('t:zset', '(2.5', '+inf'), ['m3', 'm1'])
    check('zrank', r.zrevrank('t:zset', 'm1'), 0)
    check('zpopmin', w.zpopmin('t:zset'), [('m2', 2.5)])
    # Scans, through the iterators clients use, over more than one page.
    pipe = w.pipeline(transaction=False)
    for i in range(100):
        pipe.hset('t:big', 'f%d' % i, i)
        pipe.sadd('t:bigset', 'm%d' % i)
        pipe.zadd('t:bigz', {'m%d' % i: i})
    pipe.execute()
    check('hscan_iter', len(dict(r.hscan_iter('t:big', count=7))), 100)
    check('sscan_iter', len(set(r.sscan_iter('t:bigset', count=7))), 100)
    check('zscan_iter', len(dict(r.zscan_iter('t:bigz', count=7))), 100)
    check('scan_iter', set(r.scan_iter(match='t:big*', count=3)), {'t:big', 't:bigset', 't:bigz'})
    # WRONGTYPE and refusals.
    check('wrongtype lpush', wrongtype(lambda: w.lpush('t:hash', 'x')), True)
    check('wrongtype get', wrongtype(lambda: r.get('t:zset')), True)
    try:
        w.blpop('t:list', 1)
        check('blpop refused', False, True)
    except redis.ResponseError as e:
        check('blpop refused', 'not supported' in str(e), True)
    # Expiry of a collection.
    check('pexpire', w.pexpire('t:tmp', 1), True)
    check('expired', r.exists('t:tmp') == 0 or r.pttl('t:tmp') <= 1, True)


def verify(c):
    check('verify str', c.get('t:str'), 'v\x00\x00xy')
    check('verify hash', c.hgetall('t:hash'), {'a': '42', 'b': '2'})
    check('verify list', c.lrange('t:list', 0, -1), ['d', 'c'])
    check('verify set', c.scard('t:set'), 2)
    check('verify zset', c.zrange('t:zset', 0, -1, withscores=True), [('m3', 3.0), ('m1', 10.0)])
    check('verify big', c.hlen('t:big'), 100)
    check('verify types', [c.type(k) for k in ('t:str', 't:hash', 't:list', 't:set', 't:zset')],
          ['string', 'hash', 'list', 'set', 'zset'])
    check('verify ttl', 0 < c.pttl('t:str') <= 600000, True)


def main():
    conn = lambda port: redis.Redis(host='127.0.0.1', port=int(port), decode_responses=True,
                                    socket_timeout=10)
    if sys.argv[1] == 'write':
        write(conn(sys.argv[2]), conn(sys.argv[3]))
    else:
        verify(conn(sys.argv[2]))
    print('ok')


if __name__ == '__main__':
    main()

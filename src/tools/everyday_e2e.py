#!/usr/bin/env python3
"""The everyday commands through redis-py and Redis's own tools against a real Synod cluster (run
by everyday_e2e_test.cc).

  everyday_e2e.py hello PORT     HELLO answers as Redis 7.0 standalone does, HELLO SETNAME names
  everyday_e2e.py clients PORT   CLIENT ID/SETNAME/GETNAME/INFO/LIST/KILL between real connections
  everyday_e2e.py info PORT      INFO's memory fields and keyspace line, as Redis writes them
  everyday_e2e.py tools PORT     redis-benchmark (every default test), redis-cli --bigkeys, --stat

Exits 0 when every check holds; otherwise prints the first failure and exits 1.
"""
import re
import socket
import subprocess
import sys
import time

import redis


def check(what, got, want):
    if got != want:
        print('FAILED %s: got %r, want %r' % (what, got, want))
        sys.exit(1)


def conn(port, **kw):
    return redis.Redis(host='127.0.0.1', port=int(port), decode_responses=True, socket_timeout=10,
                       **kw)


def fields(line):
    """CLIENT INFO's `k=v k=v ...` line as a dict."""
    return dict(item.split('=', 1) for item in line.strip().split(' '))


class Raw:
    """A connection of its own, without redis-py's pool, which reconnects unasked."""

    def __init__(self, port):
        self.sock = socket.create_connection(('127.0.0.1', int(port)), timeout=10)

    def command(self, *args):
        self.sock.sendall(('*%d\r\n' % len(args) + ''.join(
            '$%d\r\n%s\r\n' % (len(a), a) for a in args)).encode())
        return self.sock.recv(65536).decode()

    def closed_by_server(self):
        """True once the server has closed it (EOF, or a reset)."""
        try:
            return self.sock.recv(1) == b''
        except ConnectionResetError:
            return True


def hello(port):
    c = conn(port)
    # RESP2 (redis-py 4.3 reads no RESP3 maps): the map comes as an array of pairs.
    pairs = c.execute_command('HELLO', '2', 'SETNAME', 'greeter')
    h = dict(zip(pairs[::2], pairs[1::2]))
    check('hello server', h['server'], 'synod')
    check('hello version', h['version'], '7.0.0')
    check('hello mode', h['mode'], 'standalone')
    check('hello proto', h['proto'], 2)
    check('hello id is CLIENT ID', h['id'], c.execute_command('CLIENT', 'ID'))
    check('hello role', h['role'] in ('master', 'replica'), True)
    check('hello modules', h['modules'], [])
    check('hello setname', c.execute_command('CLIENT', 'GETNAME'), 'greeter')
    # RESP3 through redis-cli -3 (its raw output, not to a terminal: a `key value` line per
    # entry of the map, in the order sent).
    rc, out = run(['redis-cli', '-3', '-h', '127.0.0.1', '-p', str(port), 'HELLO', '3'], 30)
    check('redis-cli -3 exit', rc, 0)
    lines = [line.split(' ', 1) + [''] for line in out.strip().split('\n')]
    check('resp3 hello keys', [kv[0] for kv in lines],
          ['server', 'version', 'proto', 'id', 'mode', 'role', 'leader', 'modules'])
    check('resp3 hello mode', lines[4][1], 'standalone')
    check('resp3 hello proto', lines[2][1], '3')
    try:
        c.execute_command('HELLO', '2', 'SETNAME', 'has space')
        check('hello bad name refused', False, True)
    except redis.ResponseError as e:
        check('hello bad name', str(e), 'Client names cannot contain spaces, newlines or special '
              'characters.')


def clients(port):
    a, b = conn(port), conn(port)
    ida, idb = a.client_id(), b.client_id()
    check('ids differ', ida != idb and ida > 0 and idb > 0, True)
    check('id stable', a.client_id(), ida)
    check('no name yet', a.client_getname(), None)
    check('setname', a.client_setname('alpha'), True)
    check('getname', a.client_getname(), 'alpha')
    b.client_setname('beta')
    try:
        a.client_setname('a b')
        check('bad name refused', False, True)
    except redis.ResponseError:
        pass
    info = fields(a.execute_command('CLIENT', 'INFO'))
    check('info id', info['id'], str(ida))
    check('info name', info['name'], 'alpha')
    check('info laddr', info['laddr'], '127.0.0.1:' + str(port))
    check('info db', info['db'], '0')
    check('info cmd', info['cmd'], 'client|info')
    check('info flags', info['flags'], 'N')
    check('info age idle', int(info['age']) >= 0 and int(info['idle']) >= 0, True)
    check('info has fd and addr', int(info['fd']) > 0 and info['addr'].startswith('127.0.0.1:'),
          True)
    listed = {c['id']: c for c in a.client_list()}
    check('list has both', (listed[str(ida)]['name'], listed[str(idb)]['name']), ('alpha', 'beta'))
    by_id = a.execute_command('CLIENT', 'LIST', 'ID', str(idb), str(ida))
    check('list by ids', [fields(line)['name'] for line in by_id.strip().split('\n')],
          ['alpha', 'beta'])

    raw = Raw(port)
    rawid = int(raw.command('CLIENT', 'ID')[1:].strip())
    check('kill by id', a.execute_command('CLIENT', 'KILL', 'ID', str(rawid)), 1)
    check('killed connection closed', raw.closed_by_server(), True)
    check('kill b by id', a.execute_command('CLIENT', 'KILL', 'ID', str(idb)), 1)
    check('killed one gone from list', str(idb) in {c['id'] for c in a.client_list()}, False)
    check('kill unknown id', a.execute_command('CLIENT', 'KILL', 'ID', str(idb)), 0)
    check('kill skips me', a.execute_command('CLIENT', 'KILL', 'ID', str(ida)), 0)

    raw = Raw(port)
    caddr = fields(raw.command('CLIENT', 'INFO').split('\r\n')[1])['addr']
    check('old form kill', a.execute_command('CLIENT', 'KILL', caddr), 'OK')
    check('old-form-killed connection closed', raw.closed_by_server(), True)
    try:
        a.execute_command('CLIENT', 'KILL', caddr)
        check('old form kill of nobody refused', False, True)
    except redis.ResponseError as e:
        check('old form no such client', str(e), 'No such client')
    raw = Raw(port)
    daddr = fields(raw.command('CLIENT', 'INFO').split('\r\n')[1])['addr']
    check('kill by addr', a.execute_command('CLIENT', 'KILL', 'ADDR', daddr), 1)
    check('addr-killed connection closed', raw.closed_by_server(), True)
    # Killing itself with the old form: the reply first, then the connection closes.
    raw = Raw(port)
    raddr = fields(raw.command('CLIENT', 'INFO').split('\r\n')[1])['addr']
    check('kill myself', raw.command('CLIENT', 'KILL', raddr), '+OK\r\n')
    check('killed myself closed', raw.closed_by_server(), True)
    check('a still served', a.ping(), True)


def info(port):
    c = conn(port)
    c.set_response_callback('INFO', lambda r, **kw: r)  # the text as sent, not redis-py's dict
    c.flushall()
    c.set('plain', 'v')
    c.set('ttl1', 'v', ex=1000)
    c.set('ttl2', 'v', ex=2000)
    text = c.execute_command('INFO')
    check('info memory used_memory', re.search(r'\r\nused_memory:\d+\r\n', text) is not None, True)
    used = int(re.search(r'\r\nused_memory:(\d+)\r\n', text).group(1))
    check('used_memory positive', used > 0, True)
    check('used_memory_human', re.search(r'\r\nused_memory_human:\d+(\.\d\d[KMGTP]|B)\r\n', text)
          is not None, True)
    peak = int(re.search(r'\r\nused_memory_peak:(\d+)\r\n', text).group(1))
    check('peak >= used', peak >= used, True)
    check('maxmemory', '\r\nmaxmemory:0\r\n' in text, True)
    check('mem_allocator', re.search(r'\r\nmem_allocator:(jemalloc-\d+\.\d+\.\d+|libc|sanitizer)\r\n', text)
          is not None, True)
    ratio = float(re.search(r'\r\nmem_fragmentation_ratio:(\d+\.\d\d)\r\n', text).group(1))
    check('fragmentation ratio positive', ratio > 0, True)
    m = re.search(r'\r\ndb0:keys=(\d+),expires=(\d+),avg_ttl=(\d+)\r\n', text)
    check('keyspace line', m is not None, True)
    check('keys and expires', (m.group(1), m.group(2)), ('3', '2'))
    avg = int(m.group(3))
    check('avg_ttl about 1500 s', 1_400_000 < avg <= 1_500_000, True)
    parsed = conn(port)
    check('INFO memory section', parsed.info('memory')['maxmemory'], 0)
    check('connected_clients', parsed.info('clients')['connected_clients'] >= 1, True)


def run(args, timeout):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                       text=True)
    return p.returncode, p.stdout


def tools(port):
    c = conn(port)
    c.flushall()
    # redis-benchmark with every default test; each test prints one line "NAME: N requests per
    # second, p50=..." with -q, and an error reply stops it or shows up in its output.
    rc, out = run(['redis-benchmark', '-h', '127.0.0.1', '-p', str(port), '-q', '-n', '2000'], 600)
    check('redis-benchmark exit', rc, 0)
    names = ['PING_INLINE', 'PING_MBULK', 'SET', 'GET', 'INCR', 'LPUSH', 'RPUSH', 'LPOP', 'RPOP',
             'SADD', 'HSET', 'SPOP', 'ZADD', 'ZPOPMIN', 'LPUSH (needed to benchmark LRANGE)',
             'LRANGE_100 (first 100 elements)', 'LRANGE_300 (first 300 elements)',
             'LRANGE_500 (first 500 elements)', 'LRANGE_600 (first 600 elements)',
             'MSET (10 keys)']
    done = [line.split(':')[0] for line in out.replace('\r', '\n').split('\n')
            if 'requests per second' in line]
    for name in names:
        check('redis-benchmark ran ' + name, name in done, True)
    check('redis-benchmark printed no error', 'ERR' in out or 'Error' in out, False)

    c.flushall()  # what redis-benchmark wrote
    c.set('big:str', 'x' * 1000)
    c.rpush('big:list', *range(50))
    c.sadd('big:set', *range(20))
    c.hset('big:hash', mapping={str(i): i for i in range(30)})
    c.zadd('big:zset', {str(i): i for i in range(40)})
    rc, out = run(['redis-cli', '-h', '127.0.0.1', '-p', str(port), '--bigkeys'], 120)
    check('--bigkeys exit', rc, 0)
    for want in ["Biggest string found '\"big:str\"' has 1000 bytes",
                 "Biggest   list found '\"big:list\"' has 50 items",
                 "Biggest    set found '\"big:set\"' has 20 members",
                 "Biggest   hash found '\"big:hash\"' has 30 fields",
                 "Biggest   zset found '\"big:zset\"' has 40 members"]:
        if want not in out:
            print(out)
        check('--bigkeys says ' + want, want in out, True)

    # --stat prints a header and a line a second until stopped: read two lines, then stop it.
    p = subprocess.Popen(['redis-cli', '-h', '127.0.0.1', '-p', str(port), '--stat', '-i', '0.2'],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.time() + 30
    try:
        while time.time() < deadline and len(lines) < 4:
            lines.append(p.stdout.readline().rstrip('\n'))
    finally:
        p.kill()
        p.wait()
    check('--stat header', lines[0].split(), ['-------', 'data', '------',
                                              '---------------------', 'load',
                                              '--------------------', '-', 'child', '-'])
    row = lines[2].split()
    keys = c.dbsize()
    check('--stat keys column', row[0], str(keys))
    check('--stat mem column', re.fullmatch(r'\d+(\.\d+)?[KMGTP]?B?', row[1]) is not None, True)
    check('--stat clients column', int(row[2]) >= 1, True)
    check('--stat blocked column', row[3], '0')


def main():
    {'hello': hello, 'clients': clients, 'info': info, 'tools': tools}[sys.argv[1]](sys.argv[2])
    print('ok')


if __name__ == '__main__':
    main()

#!/usr/bin/env python3
"""Metrics and logs of a real 3-replica cluster, as an operator watches them (run by
metrics_e2e_test.cc; docs/operations.md, "Metrics" and "Logs", describe what it checks).

  metrics_e2e.py SYNOD_BINARY

1. Every replica serves /metrics (--metrics-listen) that Debian's `promtool check metrics`
   accepts, /health, and refuses other paths, other methods and oversized request heads.
2. A real Prometheus server (its own directory and port, scrape interval 1 s) scrapes the three:
   through its HTTP API every target is up, exactly one replica reports leading, and applied
   slots and write latency counts rise after writes.
   Every query of the Grafana dashboard (docs/grafana-dashboard.json) answers with data.
3. Logs (--log-format json): every line is a JSON object with ts, level, node, event and msg;
   after the leader is killed, a survivor logs election_started, election_won and
   leader_changed, and the restarted replica logs catching up or installing a snapshot; a
   replica whose log segment is damaged refuses to start and logs recovery_failed.

Everything runs on 127.0.0.1, with bounded waits that poll. Exits 0 when every check holds;
otherwise prints the first failure (and where the logs are) and exits 1.
"""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import redis

DIR = tempfile.mkdtemp(prefix='synod-metrics-e2e-')
SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROCS = {}


def fail(what):
    print('FAILED %s (logs in %s)' % (what, DIR))
    sys.exit(1)


def check(what, ok):
    if not ok:
        fail(what)


def eventually(pred, timeout_s=20.0, interval_s=0.1):
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            got = pred()
        except (OSError, redis.RedisError, ValueError, KeyError):
            got = None
        if got:
            return got
        if time.monotonic() >= deadline:
            return got
        time.sleep(interval_s)


def free_run(count):
    """A run of `count` free loopback ports below the ephemeral range, from a random base."""
    rng = random.Random(os.getpid())
    for _ in range(2000):
        base = rng.randrange(10000, 32000 - count)
        ok = True
        for port in range(base, base + count):
            with socket.socket() as s:
                try:
                    s.bind(('127.0.0.1', port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    fail('no free ports')


def http(port, path, method='GET', head=None):
    """(status, body) of one request, over a raw socket so any head can be sent."""
    with socket.create_connection(('127.0.0.1', port), timeout=5) as s:
        s.sendall(head if head is not None else
                  ('%s %s HTTP/1.1\r\nHost: x\r\n\r\n' % (method, path)).encode())
        data = b''
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head_bytes, _, body = data.partition(b'\r\n\r\n')
    return int(head_bytes.split(b' ')[1]), body.decode()


def start(binary, i, ports, extra=()):
    log = open(os.path.join(DIR, 'n%d.log' % i), 'ab')
    args = [binary, 'server', '--id', str(i), '--peers', ports['peers'],
            '--listen', '127.0.0.1:%d' % ports['client'][i],
            '--metrics-listen', '127.0.0.1:%d' % ports['metrics'][i],
            '--data', os.path.join(DIR, 'n%d' % i), '--log-format', 'json',
            '--snapshot-every', '100'] + list(extra)
    PROCS[i] = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL)


def log_events(i):
    """Every line of n<i>'s log parsed as JSON (fails on a line that is not a JSON object)."""
    events = []
    with open(os.path.join(DIR, 'n%d.log' % i)) as f:
        for line in f:
            try:
                obj = json.loads(line)
            except ValueError:
                fail('n%d log line is not JSON: %r' % (i, line))
            check('n%d log line %r has ts, level, node, event, msg' % (i, line),
                  isinstance(obj, dict) and
                  all(k in obj for k in ('ts', 'level', 'node', 'event', 'msg')))
            events.append(obj)
    return events


def has_event(i, name):
    return any(e['event'] == name for e in log_events(i))


def query(prom_port, expr):
    url = 'http://127.0.0.1:%d/api/v1/query?%s' % (prom_port, urllib.parse.urlencode({'query': expr}))
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.load(r)
    check('query %s succeeded' % expr, body.get('status') == 'success')
    return body['data']['result']


def scalar(prom_port, expr):
    result = query(prom_port, expr)
    return float(result[0]['value'][1]) if result else None


def promtool_accepts(port):
    _, text = http(port, '/metrics')
    done = subprocess.run(['promtool', 'check', 'metrics'], input=text.encode(),
                          capture_output=True)
    if done.returncode != 0:
        print(done.stdout.decode() + done.stderr.decode())
    return done.returncode == 0, text


def endpoint_checks(port):
    status, body = http(port, '/health')
    check('/health answers 200 with a leader known, got %d %r' % (status, body), status == 200)
    check('/nope is 404', http(port, '/nope')[0] == 404)
    check('POST /metrics is 405', http(port, '/metrics', method='POST')[0] == 405)
    check('not HTTP is 400', http(port, '', head=b'HELLO\r\n\r\n')[0] == 400)
    big = b'GET /metrics HTTP/1.1\r\nX-Big: ' + b'a' * 9000 + b'\r\n\r\n'
    check('a 9 KB request head is 431', http(port, '', head=big)[0] == 431)


def leader_of(clients):
    for i, c in clients.items():
        if PROCS[i].poll() is None and c.info('replication').get('role') == 'leader':
            return i
    return None


def main():
    binary = sys.argv[1]
    base = free_run(10)
    ports = {'client': {i: base + i - 1 for i in (1, 2, 3)},
             'peer': {i: base + 2 + i for i in (1, 2, 3)},
             'metrics': {i: base + 5 + i for i in (1, 2, 3)},
             'prometheus': base + 9}
    ports['peers'] = ','.join('%d=127.0.0.1:%d' % (i, ports['peer'][i]) for i in (1, 2, 3))
    for i in (1, 2, 3):
        start(binary, i, ports)
    clients = {i: redis.Redis(port=ports['client'][i], socket_timeout=5) for i in (1, 2, 3)}
    check('a leader is elected', eventually(lambda: leader_of(clients)))

    # 1. The endpoint, and promtool's verdict on its text.
    for i in (1, 2, 3):
        check('n%d /health is 200' % i,
              eventually(lambda: http(ports['metrics'][i], '/health')[0] == 200))
        ok, text = promtool_accepts(ports['metrics'][i])
        check('promtool check metrics accepts n%d /metrics' % i, ok)
        for family in ('synod_request_duration_seconds_bucket', 'synod_wal_fsync_duration_seconds',
                       'synod_peer_send_queue_bytes', 'synod_elections_started_total'):
            check('n%d exports %s' % (i, family), family in text)
    endpoint_checks(ports['metrics'][1])

    # 2. A real Prometheus server scraping all three.
    prom_dir = os.path.join(DIR, 'prometheus')
    os.makedirs(prom_dir)
    config = os.path.join(prom_dir, 'prometheus.yml')
    with open(config, 'w') as f:
        f.write('global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n'
                'scrape_configs:\n  - job_name: synod\n    static_configs:\n'
                '      - targets: [%s]\n' % ', '.join(
                    "'127.0.0.1:%d'" % ports['metrics'][i] for i in (1, 2, 3)))
    prom_log = open(os.path.join(prom_dir, 'prometheus.log'), 'wb')
    prom = subprocess.Popen(['prometheus', '--config.file', config,
                             '--storage.tsdb.path', os.path.join(prom_dir, 'data'),
                             '--web.listen-address', '127.0.0.1:%d' % ports['prometheus']],
                            stdout=prom_log, stderr=prom_log, stdin=subprocess.DEVNULL)
    PROCS['prometheus'] = prom
    pp = ports['prometheus']
    try:
        def all_up():
            with urllib.request.urlopen('http://127.0.0.1:%d/api/v1/targets' % pp, timeout=5) as r:
                active = json.load(r)['data']['activeTargets']
            return len(active) == 3 and all(t['health'] == 'up' for t in active)
        check('Prometheus sees all three targets up', eventually(all_up, timeout_s=60))
        check('exactly one replica reports leading',
              eventually(lambda: scalar(pp, 'sum(synod_is_leader)') == 1.0, timeout_s=30))
        before = eventually(lambda: scalar(pp, 'min(synod_applied_slot)'), timeout_s=30)
        check('applied slots are scraped', before is not None)
        c = clients[2]
        for n in range(300):
            c.set('metrics:%d' % n, 'v%d' % n)
        check('applied slots rose on every replica after writes',
              eventually(lambda: scalar(pp, 'min(synod_applied_slot)') > before + 1, timeout_s=30))
        check('write latencies were counted',
              eventually(lambda: scalar(
                  pp, 'sum(synod_request_duration_seconds_count{class="write"})') >= 300,
                  timeout_s=30))
        check('fsyncs were timed', eventually(lambda: scalar(
            pp, 'sum(synod_wal_fsync_duration_seconds_count)') > 0, timeout_s=30))
        check('a snapshot was saved (--snapshot-every 100)', eventually(lambda: scalar(
            pp, 'sum(synod_snapshots_saved_total)') >= 1, timeout_s=30))
        # Every query of the Grafana dashboard (docs/grafana-dashboard.json) answers, with data.
        with open(os.path.join(SOURCE_DIR, 'docs', 'grafana-dashboard.json')) as f:
            dashboard = json.load(f)
        for panel in dashboard['panels']:
            for target in panel['targets']:
                check('dashboard panel %r query %r answers with data' % (
                    panel['title'], target['expr']),
                    eventually(lambda: query(pp, target['expr']), timeout_s=30))
    finally:
        prom.terminate()
        prom.wait(timeout=30)

    # 3. Logs: kill the leader; a survivor wins an election and sees the leader change.
    old = leader_of(clients)
    check('a leader to kill', old)
    PROCS[old].kill()
    PROCS[old].wait()
    survivors = [i for i in (1, 2, 3) if i != old]
    new = eventually(lambda: leader_of({i: clients[i] for i in survivors}), timeout_s=30)
    check('a survivor took over', new)
    check('n%d logged election_started' % new, eventually(lambda: has_event(new, 'election_started')))
    check('n%d logged election_won' % new, eventually(lambda: has_event(new, 'election_won')))
    for i in survivors:
        check('n%d logged leader_changed to n%d' % (i, new), eventually(lambda: any(
            e['event'] == 'leader_changed' and e.get('leader') == new for e in log_events(i))))
    for n in range(300, 500):
        clients[new].set('metrics:%d' % n, 'v%d' % n)
    start(binary, old, ports)
    check('the restarted n%d caught up (catchup_finished or snapshot_installed)' % old,
          eventually(lambda: has_event(old, 'catchup_finished') or
                     has_event(old, 'snapshot_installed'), timeout_s=30))
    check('the restarted n%d logged peer connections' % old,
          eventually(lambda: has_event(old, 'peer_connected')))
    for i in (1, 2, 3):
        check('every level is one spdlog names', all(
            e['level'] in ('debug', 'info', 'warning', 'error') for e in log_events(i)))
        check('n%d lines name it' % i, all(e['node'] == i for e in log_events(i)))
    # Corruption found at recovery: a damaged segment header makes the replica refuse to start,
    # with an error line saying where.
    victim = survivors[0] if survivors[0] != new else survivors[1]
    PROCS[victim].terminate()
    PROCS[victim].wait(timeout=30)
    data = os.path.join(DIR, 'n%d' % victim)
    segment = sorted(f for f in os.listdir(data) if f.startswith('wal-') and f.endswith('.log'))[-1]
    with open(os.path.join(data, segment), 'r+b') as f:
        f.write(b'\xff' * 8)
    start(binary, victim, ports)
    check('n%d refused its corrupt log' % victim,
          eventually(lambda: PROCS[victim].poll() not in (None, 0), timeout_s=30))
    check('n%d logged recovery_failed as an error' % victim, any(
        e['event'] == 'recovery_failed' and e['level'] == 'error' and segment in e['msg']
        for e in log_events(victim)))
    print('metrics_e2e: all checks passed')


if __name__ == '__main__':
    ok = False
    try:
        main()
        ok = True
    finally:
        for p in PROCS.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in PROCS.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        if ok:
            shutil.rmtree(DIR, ignore_errors=True)

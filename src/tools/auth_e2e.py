#!/usr/bin/env python3
"""Users and permissions through redis-py against a real Synod cluster (run by auth_e2e_test.cc).

  auth_e2e.py LEADER_PORT FOLLOWER_PORT DEFAULT_PASSWORD
      with the users of docs/operations.md ("Users and permissions"): reader r-pw, writer w-pw,
      admin a-pw. Checks, through both replicas: no command before AUTH, wrong passwords refused,
      what each user may run, and that a read-only user cannot write by SET, MULTI/EXEC or EVAL.

Exits 0 when every check holds; otherwise prints the first failure and exits 1.
"""
import sys

import redis
from redis.exceptions import (AuthenticationError, ExecAbortError, NoPermissionError,
                              ResponseError)


def check(what, got, want):
    if got != want:
        print('FAILED %s: got %r, want %r' % (what, got, want))
        sys.exit(1)


def refused(what, call, error, text):
    try:
        got = call()
    except error as e:
        check(what + ' error text', text in str(e), True)
        return str(e)
    print('FAILED %s: answered %r, want %s containing %r' % (what, got, error.__name__, text))
    sys.exit(1)


def client(port, user=None, password=None):
    return redis.Redis(host='127.0.0.1', port=port, username=user, password=password,
                       socket_timeout=10)


def before_auth(port, default_password):
    anonymous = client(port)
    refused('GET before AUTH', lambda: anonymous.get('k'), AuthenticationError,
            'Authentication required')
    # redis-py raises WRONGPASS as a ResponseError, as it does against Redis.
    wrongpass = 'WRONGPASS invalid username-password pair or user is disabled.'
    refused('wrong default password', lambda: client(port, None, 'nope').ping(), ResponseError,
            wrongpass)
    refused('wrong user password', lambda: client(port, 'writer', 'r-pw').ping(), ResponseError,
            wrongpass)
    refused('unknown user', lambda: client(port, 'nobody', 'x').ping(), ResponseError, wrongpass)
    default = client(port, None, default_password)
    check('requirepass', default.ping(), True)
    check('default whoami', default.acl_whoami(), 'default')


def writer_and_admin(port):
    writer = client(port, 'writer', 'w-pw')
    check('writer whoami', writer.acl_whoami(), 'writer')
    check('writer set', writer.set('auth:k', 'v1'), True)
    check('writer get', writer.get('auth:k'), b'v1')
    check('writer eval', writer.eval("return redis.call('incr', KEYS[1])", 1, 'auth:n') > 0, True)
    noperm = "this user has no permissions to run the '%s' command"
    refused('writer flushall', lambda: writer.flushall(), NoPermissionError, noperm % 'flushall')
    refused('writer config get', lambda: writer.config_get('save'), NoPermissionError,
            noperm % 'config|get')
    refused('writer acl list', lambda: writer.acl_list(), NoPermissionError, noperm % 'acl|list')
    refused('writer info', lambda: writer.info(), NoPermissionError, noperm % 'info')
    admin = client(port, 'admin', 'a-pw')
    check('admin users', admin.acl_users(), ['admin', 'default', 'reader', 'writer'])
    listed = admin.acl_list()
    check('admin list shows no hashes', any('#<redacted>' in line for line in listed), True)
    check('admin info', 'role' in admin.info('replication'), True)
    check('admin config get', len(admin.config_get('appendfsync')), 1)
    refused('acl setuser', lambda: admin.acl_setuser('x', enabled=True), ResponseError,
            'users come from the server')


def reader(port):
    r = client(port, 'reader', 'r-pw')
    check('reader get', r.get('auth:k'), b'v1')
    refused('reader set', lambda: r.set('auth:k', 'x'), NoPermissionError,
            "this user has no permissions to run the 'set' command")
    # MULTI/EXEC: the SET is refused as it is queued, and EXEC discards the transaction.
    one = redis.Redis(host='127.0.0.1', port=port, username='reader', password='r-pw',
                      single_connection_client=True, socket_timeout=10)
    check('multi', one.execute_command('MULTI'), b'OK')
    check('queued get', one.execute_command('GET', 'auth:k'), b'QUEUED')
    refused('queued set', lambda: one.execute_command('SET', 'auth:k', 'x'), NoPermissionError,
            "this user has no permissions to run the 'set' command")
    refused('exec', lambda: one.execute_command('EXEC'), ExecAbortError,
            'Transaction discarded because of previous errors.')
    # redis-py's transactions report the queued command's refusal.
    tx = r.pipeline(transaction=True)
    tx.get('auth:k')
    tx.set('auth:k', 'x')
    refused('reader pipeline transaction', tx.execute, NoPermissionError,
            "Command # 2 (SET auth:k x) of pipeline caused error: this user has no permissions")
    # A script may read; its write is refused as it runs, on every replica alike.
    check('reader eval read', r.eval("return redis.call('get', KEYS[1])", 1, 'auth:k'), b'v1')
    refused('reader eval write', lambda: r.eval("return redis.call('set', KEYS[1], 'x')", 1,
                                                'auth:k'),
            ResponseError, "The user executing the script can't run this command or subcommand")
    sha = r.script_load("redis.call('del', KEYS[1]) return 1")
    refused('reader evalsha write', lambda: r.evalsha(sha, 1, 'auth:k'), ResponseError,
            "The user executing the script can't run this command or subcommand")
    check('nothing written', r.get('auth:k'), b'v1')
    check('reader whoami is @slow in Redis: refused',
          refused('reader whoami', r.acl_whoami, NoPermissionError, 'acl|whoami') != '', True)


def main():
    leader, follower, default_password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    for port in (leader, follower):
        before_auth(port, default_password)
    writer_and_admin(follower)
    writer_and_admin(leader)
    reader(follower)
    reader(leader)
    print('auth_e2e: every check held')


if __name__ == '__main__':
    main()

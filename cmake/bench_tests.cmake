# `synod bench kv` against a real 3-replica Synod cluster (started and stopped by the command):
# the load must complete operations and see no error. etcd is not run here.
add_test(NAME bench.kv_resp_local_cluster
         COMMAND $<TARGET_FILE:synod> bench kv --target resp --local 3 --connections 8
                 --pipeline 4 --read-share 0.5 --keys 200 --warmup 0.5 --duration 2 --check)
set_tests_properties(bench.kv_resp_local_cluster PROPERTIES TIMEOUT 180 LABELS e2e)

# The transaction workloads the same way, as short as the load allows: every EXEC must answer
# [OK, OK, counter, value or null] and every EVALSHA a counter (after its connection's SCRIPT
# LOAD), or --check fails the test.
foreach(transaction multi evalsha)
  add_test(NAME bench.kv_resp_local_cluster_${transaction}
           COMMAND $<TARGET_FILE:synod> bench kv --target resp --local 3 --connections 8
                   --pipeline 4 --transaction ${transaction} --keys 200 --warmup 0.2
                   --duration 0.5 --check)
  set_tests_properties(bench.kv_resp_local_cluster_${transaction} PROPERTIES TIMEOUT 180
                       LABELS e2e)
endforeach()
# bench/compare's plot (bench/plot.py): one bar per number, none for a system that did not run.
add_test(NAME bench.plot_draws_one_bar_per_number
         COMMAND sh -c "printf 'writes\\t1\\tsynod\\t2900\\nwrites\\t1\\tetcd\\t520\\nwrites\\t1\\tredis\\t5900\\nEVALSHA\\t64\\tsynod\\t21000\\nEVALSHA\\t64\\tetcd\\tn/a\\nEVALSHA\\t64\\tredis\\t60000\\n' > plot.tsv && /usr/bin/python3 ${CMAKE_SOURCE_DIR}/bench/plot.py plot.tsv plot.svg && /usr/bin/python3 -c \"import sys, xml.dom.minidom as m; d = m.parse('plot.svg'); rects = d.getElementsByTagName('rect'); titles = [r.getElementsByTagName('title')[0].firstChild.data for r in rects]; sys.exit(0 if len(rects) == 5 and 'EVALSHA x64 synod: 21,000 ops/s' in titles else 1)\"")
# `synod bench floor` (bench/compare's latency floor) prints its numbers: a p50 for fdatasync and
# for a loopback round trip, and their sum as the floor. Not a timing assertion: any number passes.
add_test(NAME bench.floor_prints_numbers
         COMMAND $<TARGET_FILE:synod> bench floor --dir bench-floor-test --ops 20 --kv)
set_tests_properties(
  bench.floor_prints_numbers
  PROPERTIES PASS_REGULAR_EXPRESSION
             "^fdatasync_p50_us=[0-9.]+ fdatasync_p99_us=[0-9.]+ rtt_p50_us=[0-9.]+ rtt_p99_us=[0-9.]+ floor_us=[0-9.]+ ops=20\n$"
             TIMEOUT 60)

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

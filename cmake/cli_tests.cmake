# The command line's contract, exercised through the real binary: exit status 0 exactly when a
# run found no violation, and each planted bug makes `synod sim` find one (exit status 1).
add_test(NAME cli.sim_clean
         COMMAND sh -c "$<TARGET_FILE:synod> sim --seeds 1-100 --replicas 5 | tail -1 | grep -q '^sim: 100 runs, .* 0 violations'")
add_test(NAME cli.sim_trace_is_reproducible
         COMMAND sh -c "a=$($<TARGET_FILE:synod> sim --seed 11 --trace | md5sum) && b=$($<TARGET_FILE:synod> sim --seed 11 --trace | md5sum) && test \"$a\" = \"$b\"")
add_test(NAME cli.sim_rejects_unknown_bug
         COMMAND sh -c "$<TARGET_FILE:synod> sim --bug no-such-bug; test $? -eq 2")
foreach(bug minority-quorum ignore-promised-value no-persist-promise accept-lower-ballot leader-skip-phase1)
  add_test(NAME cli.sim_finds_${bug}
           COMMAND sh -c "$<TARGET_FILE:synod> sim --seeds 1-300 --replicas 5 --bug ${bug} > out.${bug}.txt; rc=$?; grep -q '^VIOLATION seed' out.${bug}.txt && test $rc -eq 1")
endforeach()

# The real write-ahead log on the simulated disk: torn and bit-flipped unsynced writes at every
# crash never cost a synced record, and answering before the sync is caught.
add_test(NAME cli.sim_disk_faults_clean
         COMMAND sh -c "$<TARGET_FILE:synod> sim --seeds 1-500 --replicas 5 --disk-faults | tail -1 | grep '^sim: 500 runs, .* 0 violations' | grep -v ' 0 torn tails'")
add_test(NAME cli.sim_finds_ack-before-sync
         COMMAND sh -c "$<TARGET_FILE:synod> sim --seeds 1-500 --replicas 5 --disk-faults --bug ack-before-sync > out.ack-before-sync.txt; rc=$?; grep -q '^VIOLATION seed' out.ack-before-sync.txt && test $rc -eq 1")

# `synod chaos` against real server processes (docs/chaos.md): one short run per fault kind must
# end linearizable with nothing lost (exit 0, the summary line), and each planted server bug must
# be caught (exit 1, NOT LINEARIZABLE or lost>0). Servers under the sanitizers are several times
# slower, so those runs use fewer clients, and the planted-bug runs (which prove the harness, not
# the server) run only in the plain build.
if(SYNOD_SANITIZE)
  set(CHAOS_CLIENTS 3)
else()
  set(CHAOS_CLIENTS 6)
endif()
set(CHAOS_SUMMARY "^chaos: [0-9]* ops, [0-9]* acknowledged, [0-9]* failed, [0-9]* unknown, faults: kill=[0-9]*,pause=[0-9]*,partition=[0-9]*,restart-all=[0-9]*, lost=")

foreach(fault kill pause partition restart-all)
  set(out out.chaos-${fault}.txt)
  add_test(NAME chaos.${fault}
           COMMAND sh -c "$<TARGET_FILE:synod> chaos --replicas 3 --clients ${CHAOS_CLIENTS} --duration 30 --faults ${fault} --seed 11 > ${out}; rc=$?; cat ${out}; test $rc -eq 0 && grep -q '${CHAOS_SUMMARY}0, verdict=LINEARIZABLE$' ${out}")
  set_tests_properties(chaos.${fault} PROPERTIES TIMEOUT 300 LABELS chaos)
endforeach()

if(NOT SYNOD_SANITIZE)
  foreach(bug stale-follower-reads:partition ack-before-chosen:kill follower-read-before-apply:pause)
    string(REPLACE ":" ";" parts ${bug})
    list(GET parts 0 name)
    list(GET parts 1 fault)
    set(out out.chaos-${name}.txt)
    add_test(NAME chaos.planted_${name}_is_caught
             COMMAND sh -c "$<TARGET_FILE:synod> chaos --replicas 3 --clients ${CHAOS_CLIENTS} --duration 15 --faults ${fault} --seed 12 --planted-bug ${name} > ${out}; rc=$?; tail -3 ${out}; test $rc -eq 1 && grep -Eq '${CHAOS_SUMMARY}([1-9][0-9]*, verdict=.*|[0-9]*, verdict=NOT LINEARIZABLE)$' ${out}")
    set_tests_properties(chaos.planted_${name}_is_caught PROPERTIES TIMEOUT 300 LABELS chaos)
  endforeach()
endif()

add_test(NAME chaos.clock_fault_is_refused
         COMMAND sh -c "$<TARGET_FILE:synod> chaos --faults kill,clock 2> err.chaos-clock.txt; rc=$?; test $rc -eq 2 && grep -q 'read index' err.chaos-clock.txt")
add_test(NAME chaos.four_replicas_is_bad_usage
         COMMAND sh -c "$<TARGET_FILE:synod> chaos --replicas 4 2> /dev/null; test $? -eq 2")
set_tests_properties(chaos.clock_fault_is_refused chaos.four_replicas_is_bad_usage
                     PROPERTIES LABELS chaos)

# `synod lincheck` through the real binary: exit 0 for every shared linearizable history, 1 for
# every non-linearizable one, 2 for malformed input and for a budget too small to decide.
set(LINCHECK_HISTORIES ${CMAKE_SOURCE_DIR}/../shared/testdata/histories)
file(GLOB_RECURSE LINCHECK_HISTORY_FILES ${LINCHECK_HISTORIES}/*.jsonl)
foreach(history ${LINCHECK_HISTORY_FILES})
  file(RELATIVE_PATH name ${LINCHECK_HISTORIES} ${history})
  if(name MATCHES "(^|/|\\.)nonlinearizable(/|\\.)")
    set(expected_rc 1)
    set(expected_word "NOT LINEARIZABLE")
  else()
    set(expected_rc 0)
    set(expected_word "LINEARIZABLE")
  endif()
  add_test(NAME cli.lincheck.${name}
           COMMAND sh -c "$<TARGET_FILE:synod> lincheck '${history}' > /dev/null; test $? -eq ${expected_rc} && $<TARGET_FILE:synod> lincheck '${history}' | head -1 | grep -q '^${expected_word} '")
endforeach()
add_test(NAME cli.lincheck_found_shared_histories
         COMMAND sh -c "test -d '${LINCHECK_HISTORIES}/jepsen-etcd'")
add_test(NAME cli.lincheck_too_few_states_is_undecided
         COMMAND sh -c "$<TARGET_FILE:synod> lincheck --max-states 100 '${LINCHECK_HISTORIES}/jepsen-etcd/etcd_002.linearizable.jsonl' > out.lincheck-undecided.txt; rc=$?; test $rc -eq 2 && grep -q '^UNDECIDED: more than 100 states' out.lincheck-undecided.txt")
add_test(NAME cli.lincheck_malformed_line_names_it
         COMMAND sh -c "printf '# c\\n{\"client\":1}\\n' | $<TARGET_FILE:synod> lincheck - 2> err.lincheck.txt; rc=$?; test $rc -eq 2 && grep -q 'line 2: ' err.lincheck.txt")
add_test(NAME cli.lincheck_missing_file
         COMMAND sh -c "$<TARGET_FILE:synod> lincheck no-such-history.jsonl; test $? -eq 2")
# The picture of a history (chaos/html_report.h): a non-linearizable one draws its failing key
# with the operation no order could place; a linearizable one draws no such section.
add_test(NAME cli.lincheck_html_draws_the_failing_operation
         COMMAND sh -c "$<TARGET_FILE:synod> lincheck --html out.lincheck.html '${LINCHECK_HISTORIES}/jepsen-etcd/etcd_000.nonlinearizable.jsonl' > /dev/null; test $? -eq 1 && grep -q '<h2>Not linearizable: key ' out.lincheck.html && grep -q 'CANNOT BE PLACED: ' out.lincheck.html && grep -q '<polyline' out.lincheck.html && $<TARGET_FILE:synod> lincheck --html out.lincheck-ok.html '${LINCHECK_HISTORIES}/jepsen-etcd/etcd_002.linearizable.jsonl' > /dev/null && grep -q '<polyline' out.lincheck-ok.html && ! grep -q 'Not linearizable' out.lincheck-ok.html")

# Runs one program of tests/programs/ at every procs and seed of the matrix and
# checks each run as a user would see it: how it ended, what it printed, and
# that it printed nothing else.
#   cmake -DPROGRAM=<exe> -DEXPECTED=<name.out> -DPROCS=<1,2,4> [-DSEEDS=<1,2>]
#         [-DEXIT=<code or "Subprocess aborted">] [-DSTDERR=<regex>] [-DSTRICT_MONITOR=ON]
#         [-DEMULATOR=<cmd,args>] [-DRUN_TIMEOUT=<seconds>] [-DARGS=<a,b>] -P this
# Lists are comma-separated: a ';' would split the -D argument in two on its
# way through add_test.
#
# The matrix: $GOFER_PROCS over PROCS, and for each, one unseeded run (the
# scheduler's own order) and one per seed of the randomised mode
# ($GOFER_SCHED_SEED). Every run must
#   - end within RUN_TIMEOUT seconds: a hang is a failure, not a stall;
#   - end as EXIT says (default 0). A death by signal is spelled as
#     execute_process spells it: "Subprocess aborted" for SIGABRT (which is
#     how std::terminate ends a program), "Segmentation fault" for SIGSEGV;
#   - print exactly the contents of EXPECTED on stdout. A program whose order
#     is free sorts before it prints, so one file fits every schedule;
#   - print on stderr nothing at all, or, with STDERR set, text that matches
#     that regex; in either case no sanitizer report. The presets stop at the
#     first report (halt_on_error), but a program expected to abort would
#     hide one behind the expected status, so the text is checked too.
#     The monitor's report of a fiber that held its P for over 10 ms is left
#     out first, unless STRICT_MONITOR is set: whether a stretch of work
#     takes 10 ms depends on the machine's load and the sanitizer, not on the
#     program, and a layer that failed on it would fail at random. Programs
#     about the report itself set STRICT_MONITOR, and so does nothing else.
# The first failing run stops the script with the command that replays it.
cmake_minimum_required(VERSION 3.21)

foreach(required PROGRAM EXPECTED PROCS)
  if(NOT DEFINED ${required})
    message(FATAL_ERROR "run_program.cmake: ${required} is not set")
  endif()
endforeach()
if(NOT DEFINED EXIT)
  set(EXIT 0)
endif()
if(NOT DEFINED RUN_TIMEOUT)
  set(RUN_TIMEOUT 30)
endif()
file(READ "${EXPECTED}" expected_out)
foreach(list PROCS SEEDS EMULATOR ARGS)
  if(DEFINED ${list})
    string(REPLACE "," ";" ${list} "${${list}}")
  endif()
endforeach()

set(sanitizer_report "(AddressSanitizer|LeakSanitizer|ThreadSanitizer|MemorySanitizer|runtime error: )")

# "-" stands for the unseeded run: an empty element would vanish from a
# CMake list.
set(seeds "-")
if(DEFINED SEEDS)
  list(APPEND seeds ${SEEDS})
endif()

set(runs 0)
foreach(procs IN LISTS PROCS)
  foreach(seed IN LISTS seeds)
    set(ENV{GOFER_PROCS} "${procs}")
    if(seed STREQUAL "-")
      unset(ENV{GOFER_SCHED_SEED})
      set(replay "GOFER_PROCS=${procs}")
    else()
      set(ENV{GOFER_SCHED_SEED} "${seed}")
      set(replay "GOFER_PROCS=${procs} GOFER_SCHED_SEED=${seed}")
    endif()
    string(JOIN " " command ${EMULATOR} "${PROGRAM}" ${ARGS})
    set(replay "${replay} ${command}")
    execute_process(
      COMMAND ${EMULATOR} "${PROGRAM}" ${ARGS}
      RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err
      TIMEOUT ${RUN_TIMEOUT})
    math(EXPR runs "${runs} + 1")

    set(problems "")
    if(status MATCHES "timeout")
      list(APPEND problems "did not end within ${RUN_TIMEOUT} s (a hang)")
    elseif(NOT status STREQUAL EXIT)
      list(APPEND problems "ended with [${status}], expected [${EXIT}]")
    endif()
    if(NOT out STREQUAL expected_out)
      list(APPEND problems "stdout differs from ${EXPECTED}")
    endif()
    set(err_checked "${err}")
    if(NOT STRICT_MONITOR)
      string(REGEX REPLACE "gofer: fiber [0-9]+[^\n]* has held its P for [0-9]+ ms[^\n]*\n" ""
        err_checked "${err_checked}")
    endif()
    if(err MATCHES "${sanitizer_report}")
      list(APPEND problems "a sanitizer reported on stderr")
    elseif(DEFINED STDERR)
      if(NOT err_checked MATCHES "${STDERR}")
        list(APPEND problems "stderr does not match [${STDERR}]")
      endif()
    elseif(NOT err_checked STREQUAL "")
      list(APPEND problems "stderr is not empty")
    endif()

    if(problems)
      string(JOIN "\n  " why ${problems})
      message("--- expected stdout ---\n${expected_out}"
              "--- stdout ---\n${out}"
              "--- stderr ---\n${err}"
              "---\n${replay}\n  ${why}")
      message(FATAL_ERROR "a run failed; the command above replays it")
    endif()
  endforeach()
endforeach()
message(STATUS "${PROGRAM}: ${runs} runs as expected")

# Compiles every ```cpp block of one Markdown page as a translation unit of its
# own against gofer's headers: the docs' code must stay true to the API.
#   cmake -DDOC=<page.md> -DCXX=<compiler> -DINCLUDE=<include dir> -DOUT=<dir> -P this
cmake_minimum_required(VERSION 3.21)
file(READ "${DOC}" text)
file(MAKE_DIRECTORY "${OUT}")
# Walked with string(FIND), not a regex list: code is full of ';', CMake's
# list separator.
set(index 0)
set(failed 0)
set(fence_open "```cpp\n")
string(LENGTH "${fence_open}" open_len)
string(FIND "${text}" "${fence_open}" at)
while(NOT at EQUAL -1)
  math(EXPR start "${at} + ${open_len}")
  string(SUBSTRING "${text}" ${start} -1 text)
  string(FIND "${text}" "```" end)
  if(end EQUAL -1)
    message(FATAL_ERROR "${DOC}: unterminated cpp block")
  endif()
  string(SUBSTRING "${text}" 0 ${end} code)
  math(EXPR rest "${end} + 3")
  string(SUBSTRING "${text}" ${rest} -1 text)
  math(EXPR index "${index} + 1")
  set(src "${OUT}/snippet_${index}.cpp")
  file(WRITE "${src}" "${code}")
  execute_process(
    COMMAND "${CXX}" -std=c++20 -fsyntax-only -Wall -Wextra -Werror -I "${INCLUDE}" "${src}"
    RESULT_VARIABLE rc ERROR_VARIABLE err OUTPUT_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(SEND_ERROR "${DOC}: code block ${index} does not compile:\n${err}")
    set(failed 1)
  endif()
  string(FIND "${text}" "${fence_open}" at)
endwhile()
if(failed)
  message(FATAL_ERROR "${DOC}: some code blocks do not compile")
endif()
message(STATUS "${DOC}: ${index} code blocks compile")

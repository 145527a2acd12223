# Turns a CUDA source (.cu) into C++ the emulator compiles (run as `cmake -DIN=x.cu -DOUT=x.cpp -P this`):
#   kernel<<<grid, block, smem, stream>>>(args...)
#     ->  ::emu::launcher([&](auto... emu_args) { kernel(emu_args...); }, grid, block, smem, stream)(args...)
#   extern __shared__ T name[];                      ->  T* name = reinterpret_cast<T*>(::emu::dynamic_shared_memory());
# The kernel is a name (or a local function pointer) with optional template arguments (no nested <>); a launch may
# span lines.
if(NOT IN OR NOT OUT)
  message(FATAL_ERROR "usage: cmake -DIN=<file.cu> -DOUT=<file.cpp> -P rewrite_launches.cmake")
endif()
file(READ "${IN}" source)
string(REGEX REPLACE "([A-Za-z_][A-Za-z_0-9:]*(<[^;<>]*>)?)[ \t\r\n]*<<<([^;]*)>>>[ \t\r\n]*\\("
       "::emu::launcher([&](auto... emu_args) { \\1(emu_args...); }, \\3)(" source "${source}")
string(FIND "${source}" "<<<" left)
if(NOT left EQUAL -1)
  message(FATAL_ERROR "${IN}: a kernel launch the emulator rewrite does not understand (kernel name, optional "
                      "template arguments without nested <>, then <<<...>>>)")
endif()
string(REGEX REPLACE
  "extern[ \t]+__shared__[ \t]+(__align__\\([0-9]+\\)[ \t]+)?([^\n;\\[]*[^ \t\n;\\[])[ \t]+([A-Za-z_][A-Za-z_0-9]*)[ \t]*\\[\\][ \t]*;"
  "\\2* \\3 = reinterpret_cast<\\2*>(::emu::dynamic_shared_memory());" source "${source}")
if(source MATCHES "extern[ \t]+__shared__")
  message(FATAL_ERROR "${IN}: an `extern __shared__` declaration the emulator rewrite does not understand")
endif()
file(WRITE "${OUT}.tmp" "// Generated from ${IN} by tests/emu/rewrite_launches.cmake: do not edit.\n#include \"emulator.h\"\n#line 1 \"${IN}\"\n${source}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")

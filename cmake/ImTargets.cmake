# Helpers shared by every module's CMakeLists.txt.

# Warnings for code we write (generated code is built without them).
function(im_target_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Woverloaded-virtual)
  if(IM_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# im_test(NAME name SOURCES ... LIBS ... [LABELS ...]): a GoogleTest binary registered with ctest.
function(im_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  target_include_directories(${T_NAME} PRIVATE ${CMAKE_SOURCE_DIR})
  im_target_warnings(${T_NAME})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  # NO_PRETTY_VALUES: a parameterized test is named by its parameter's name (Test/Embedded), not
  # followed by gtest's print of the value.
  gtest_discover_tests(${T_NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    DISCOVERY_TIMEOUT 60 NO_PRETTY_VALUES)
endfunction()

# A libFuzzer target (IM_BUILD_FUZZ, clang): `name` built from the sources after it, with
# libFuzzer's main(); the libraries it tests carry -fsanitize=fuzzer-no-link themselves.
function(im_fuzz_target name)
  add_executable(${name} ${ARGN})
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR})
  target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  im_target_warnings(${name})
endfunction()

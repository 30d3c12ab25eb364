# Helpers shared by every target of the project.

# parcours_target_defaults(target): include root, warnings.
function(parcours_target_defaults target)
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR})
  target_compile_options(${target} PRIVATE ${PARCOURS_WARNINGS})
endfunction()

# parcours_test(NAME name LABEL unit|db|service SOURCES ... LIBS ...)
# One GoogleTest binary, registered with ctest per test case.
function(parcours_test)
  cmake_parse_arguments(T "" "NAME;LABEL" "SOURCES;LIBS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  parcours_target_defaults(${T_NAME})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  include(GoogleTest)
  gtest_discover_tests(${T_NAME} TEST_PREFIX "${T_NAME}." PROPERTIES LABELS ${T_LABEL} DISCOVERY_TIMEOUT 60)
endfunction()

# parcours_embed_migrations(target DIR dir NAMESPACE ns)
# Embeds dir/sqlite/*.sql and dir/mysql/*.sql into a generated .cc (in the build dir) exposing
#   const std::vector<parcours::db::Migration>& ns::SqliteMigrations();
#   const std::vector<parcours::db::Migration>& ns::MysqlMigrations();
# File names are NNNN_name.sql; NNNN is the schema version.
function(parcours_embed_migrations target)
  cmake_parse_arguments(M "" "DIR;NAMESPACE" "" ${ARGN})
  set(out ${CMAKE_CURRENT_BINARY_DIR}/${target}_migrations.cc)
  set(body "#include \"platform/db/migrations.h\"\nnamespace ${M_NAMESPACE} {\n")
  foreach(dialect sqlite mysql)
    file(GLOB files CONFIGURE_DEPENDS ${M_DIR}/${dialect}/*.sql)
    list(SORT files)
    if(dialect STREQUAL "sqlite")
      set(fn SqliteMigrations)
    else()
      set(fn MysqlMigrations)
    endif()
    string(APPEND body "const std::vector<parcours::db::Migration>& ${fn}() {\n  static const auto* m = new std::vector<parcours::db::Migration>{\n")
    foreach(f ${files})
      get_filename_component(base ${f} NAME_WE)
      string(REGEX MATCH "^[0-9]+" num ${base})
      math(EXPR num "${num}")
      file(READ ${f} sql)
      string(APPEND body "    {${num}, \"${base}\", R\"__sql__(${sql})__sql__\"},\n")
      set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${f})
    endforeach()
    string(APPEND body "  };\n  return *m;\n}\n")
  endforeach()
  string(APPEND body "}  // namespace ${M_NAMESPACE}\n")
  file(GENERATE OUTPUT ${out} CONTENT "${body}")
  target_sources(${target} PRIVATE ${out})
endfunction()

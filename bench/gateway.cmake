# Gateway benchmark (included from bench/CMakeLists.txt): what the gateway adds on top of the
# backends; see run_gateway.sh and README.md.
add_executable(gateway_bench gateway_bench.cc)
parcours_target_defaults(gateway_bench)
target_link_libraries(gateway_bench PRIVATE
  parcours_protos gRPC::grpc++
  absl::flags absl::flags_parse absl::strings absl::str_format absl::time)

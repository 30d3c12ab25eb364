# free_port: prints a TCP port nobody listens on, on loopback, below the kernel's ephemeral range
# (sourced by scripts/dev, bench/lib.sh and tests/k8s/check_database_incluster.sh).
#
# Below the ephemeral range because a port inside it can be the local end of any outgoing
# connection (the tests' own clients to MariaDB, the services' to each other): nothing listens
# there, so the check passes, yet a server's bind() on it fails with "Address already in use".
free_port() {
  local low=32768 p
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  local top=$((low - 1)) bottom=$((low - 12000))
  ((bottom < 10000)) && bottom=10000
  for _ in $(seq 100); do
    p=$((bottom + RANDOM % (top - bottom + 1)))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  echo "no free port found below $low" >&2
  return 1
}

// Test support: a private MariaDB server, and fresh databases for db tests.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace parcours::testing {

// A private MariaDB server on 127.0.0.1 in a temporary data dir (mariadb-install-db + mariadbd
// with --no-defaults, a free port picked by binding port 0 first, --skip-log-bin, socket in the
// data dir), stopped and removed by the destructor. Never touches a system service or a fixed port.
//
// The server is a child process; its stdout/stderr go to mariadbd.log in the temporary
// directory (quoted in error messages). It gets SIGTERM if the thread that started it exits
// (PR_SET_PDEATHSIG), so a crashed test leaves no server behind: start it from a thread that
// lives as long as the server (the test's main thread).
class MariaDbServer {
 public:
  static absl::StatusOr<std::unique_ptr<MariaDbServer>> Start();
  ~MariaDbServer();
  MariaDbServer(const MariaDbServer&) = delete;
  MariaDbServer& operator=(const MariaDbServer&) = delete;

  absl::Status Stop();     // server down, data kept
  absl::Status Restart();  // Stop (if running) then start again on the same port and data
  int port() const;
  // mysql://root@127.0.0.1:<port>/<database>
  std::string Dsn(std::string_view database) const;
  absl::Status CreateDatabase(std::string_view name);

 private:
  MariaDbServer(std::string dir, int port) : dir_(std::move(dir)), port_(port) {}
  absl::Status Launch();     // starts mariadbd and waits until it accepts connections
  absl::Status WaitReady();  // polls a connection for up to ~30 s
  std::string LogTail() const;

  std::string dir_;  // temporary directory: data/, mariadbd.sock, mariadbd.log
  int port_;
  int pid_ = -1;  // mariadbd, -1 when stopped
};

// For a test binary: if PARCOURS_TEST_MYSQL_DSN is set (e.g. "mysql://root@127.0.0.1:PORT/",
// a server started by scripts/dev test), use that server; otherwise start one MariaDbServer on first
// use for the whole process. Creates a new empty database with a unique name and returns its DSN.
absl::StatusOr<std::string> FreshMysqlDatabase();
// A DSN to a new SQLite file in a fresh temp directory.
std::string FreshSqliteDatabase();

}  // namespace parcours::testing

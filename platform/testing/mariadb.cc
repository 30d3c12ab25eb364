#include "platform/testing/mariadb.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "platform/db/db.h"

namespace parcours::testing {
namespace {

namespace fs = std::filesystem;

// Debian's Abseil has its own absl::string_view (ABSL_OPTION_USE_STD_STRING_VIEW 0).
inline absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }
inline std::string_view SV(absl::string_view s) { return std::string_view(s.data(), s.size()); }

constexpr absl::Duration kReadyTimeout = absl::Seconds(30);
constexpr absl::Duration kStopTimeout = absl::Seconds(30);

// PATH lookup, plus the sbin directories (Debian installs mariadbd in /usr/sbin).
absl::StatusOr<std::string> FindBinary(const std::string& name) {
  std::vector<std::string> dirs;
  if (const char* path = getenv("PATH")) dirs = absl::StrSplit(path, ':', absl::SkipEmpty());
  for (const char* extra : {"/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/bin"}) dirs.emplace_back(extra);
  for (const std::string& dir : dirs) {
    std::string candidate = absl::StrCat(dir, "/", name);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return absl::NotFoundError(absl::StrCat(name, " not found in PATH nor /usr/sbin (install mariadb-server)"));
}

absl::StatusOr<int> PickFreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    close(fd);
    return absl::InternalError(absl::StrCat("bind 127.0.0.1:0: ", strerror(err)));
  }
  close(fd);
  return ntohs(addr.sin_port);
}

// $TMPDIR if short enough for a unix socket path below it, else /tmp.
std::string TempBase() {
  if (const char* t = getenv("TMPDIR"); t != nullptr && *t != '\0' && strlen(t) < 60) return t;
  return "/tmp";
}

absl::StatusOr<std::string> MakeTempDir(std::string_view prefix) {
  std::string templ = absl::StrCat(TempBase(), "/", AV(prefix), "XXXXXX");
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp ", templ, ": ", strerror(errno)));
  }
  return std::string(buf.data());
}

// fork + exec with stdout/stderr appended to log_path. Only async-signal-safe calls in the child.
absl::StatusOr<int> Spawn(const std::vector<std::string>& argv, const std::string& log_path) {
  int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return absl::InternalError(absl::StrCat("open ", log_path, ": ", strerror(errno)));
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(log_fd);
    return absl::InternalError(absl::StrCat("fork: ", strerror(err)));
  }
  if (pid == 0) {
    // Stop with the test process, even if it crashes.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    // Do not leak the test's descriptors (client sockets, ...) into the server.
    if (close_range(3, ~0U, 0) != 0) {
      for (int fd = 3; fd < 4096; ++fd) close(fd);
    }
    execv(args[0], args.data());
    _exit(127);
  }
  close(log_fd);
  return static_cast<int>(pid);
}

// Waits for pid up to timeout. Returns true when it exited (status in *wstatus).
bool WaitFor(int pid, absl::Duration timeout, int* wstatus) {
  absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    int r = waitpid(pid, wstatus, WNOHANG);
    if (r == pid) return true;
    if (r < 0 && errno != EINTR) return true;  // not our child any more
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
}

std::string Tail(const std::string& path, size_t max_bytes = 3000) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  if (s.size() > max_bytes) s = "..." + s.substr(s.size() - max_bytes);
  return s;
}

// Extra options given to both mariadb-install-db and mariadbd (a small redo log: faster to
// create, copy and remove).
const std::vector<std::string>& InnodbOptions() {
  static const auto* opts = new std::vector<std::string>{"--innodb-log-file-size=8M"};
  return *opts;
}

absl::Status InstallDataDir(const std::string& install_db, const std::string& data, const std::string& log) {
  std::vector<std::string> argv = {install_db,
                                   "--no-defaults",
                                   "--datadir=" + data,
                                   "--user=root",
                                   "--auth-root-authentication-method=normal",
                                   "--skip-test-db"};
  for (const std::string& o : InnodbOptions()) argv.push_back(o);
  auto pid = Spawn(argv, log);
  if (!pid.ok()) return pid.status();
  int wstatus = 0;
  if (!WaitFor(*pid, absl::Seconds(120), &wstatus)) {
    kill(*pid, SIGKILL);
    WaitFor(*pid, absl::Seconds(5), &wstatus);
    return absl::DeadlineExceededError(absl::StrCat("mariadb-install-db timed out:\n", Tail(log)));
  }
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    return absl::InternalError(absl::StrCat("mariadb-install-db failed:\n", Tail(log)));
  }
  return absl::OkStatus();
}

// mariadb-install-db takes 0.5 s on an idle machine and several seconds on a busy one, once per
// test process under ctest. So a freshly installed data dir is kept as a template in the temp
// directory, keyed by the server binary and our options, published atomically by rename(2)
// (no lock: concurrent first runs each install, one wins), and copied for each new server.
absl::StatusOr<std::string> EnsureTemplate(const std::string& install_db, const std::string& mariadbd) {
  struct stat st;
  if (stat(mariadbd.c_str(), &st) != 0) return absl::InternalError("stat mariadbd");
  std::string key = absl::StrCat("v1-", getuid(), "-", absl::Hex(static_cast<uint64_t>(st.st_size)), "-",
                                 absl::Hex(static_cast<uint64_t>(st.st_mtime)));
  for (const std::string& o : InnodbOptions())
    key += "-" + std::to_string(std::hash<std::string>()(o) & 0xffff);
  std::string base = TempBase();
  std::string final_dir = absl::StrCat(base, "/parcours-mariadb-template-", key);
  std::error_code ec;
  if (fs::is_directory(final_dir + "/data", ec)) return final_dir + "/data";
  auto tmp = MakeTempDir("parcours-mariadb-template-tmp-");
  if (!tmp.ok()) return tmp.status();
  absl::Status installed = InstallDataDir(install_db, *tmp + "/data", *tmp + "/install.log");
  if (installed.ok() && rename(tmp->c_str(), final_dir.c_str()) == 0) return final_dir + "/data";
  fs::remove_all(*tmp, ec);  // failed, or another process published it first
  if (!installed.ok()) return installed;
  if (fs::is_directory(final_dir + "/data", ec)) return final_dir + "/data";
  return absl::InternalError("could not publish the MariaDB template data dir");
}

bool ValidDatabaseName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '_') return false;
  }
  return true;
}

absl::Status CreateDatabaseAt(const std::string& server_dsn, std::string_view name) {
  if (!ValidDatabaseName(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad database name \"", AV(name), "\" (letters, digits, _)"));
  }
  db::Options options;
  options.max_connections = 1;
  auto server = db::Open(server_dsn, options);
  if (!server.ok()) return server.status();
  return (*server)->ExecDdl(absl::StrCat("CREATE DATABASE `", AV(name), "` CHARACTER SET utf8mb4"));
}

std::string UniqueName(std::string_view prefix) {
  static std::atomic<int> counter{0};
  static absl::BitGen gen;
  static absl::Mutex gen_mu;
  uint32_t r;
  {
    absl::MutexLock lock(&gen_mu);
    r = absl::Uniform<uint32_t>(gen, 0, 1u << 24);
  }
  return absl::StrCat(AV(prefix), getpid(), "_", counter.fetch_add(1), "_", absl::Hex(r));
}

// Removes the temporary SQLite directories at exit.
class TempDirs {
 public:
  void Add(std::string dir) {
    absl::MutexLock lock(&mu_);
    dirs_.push_back(std::move(dir));
  }
  ~TempDirs() {
    std::error_code ec;
    for (const std::string& d : dirs_) fs::remove_all(d, ec);
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> dirs_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<MariaDbServer>> MariaDbServer::Start() {
  auto install_db = FindBinary("mariadb-install-db");
  if (!install_db.ok()) return install_db.status();
  auto mariadbd = FindBinary("mariadbd");
  if (!mariadbd.ok()) return mariadbd.status();
  auto dir = MakeTempDir("parcours-mariadb-");
  if (!dir.ok()) return dir.status();
  std::unique_ptr<MariaDbServer> server(new MariaDbServer(*dir, 0));
  const std::string data = *dir + "/data";

  // Copy the machine's template data dir (installed once), else install here.
  std::error_code ec;
  std::string from_template;
  if (auto tmpl = EnsureTemplate(*install_db, *mariadbd); tmpl.ok()) {
    fs::copy(*tmpl, data, fs::copy_options::recursive, ec);
    if (!ec) from_template = *tmpl;
    if (ec) fs::remove_all(data, ec);
  }
  if (from_template.empty()) {
    if (absl::Status st = InstallDataDir(*install_db, data, *dir + "/install.log"); !st.ok()) return st;
  }

  // The port picked may be taken by someone else between our bind and mariadbd's: try again.
  auto launch = [&]() -> absl::Status {
    absl::Status st;
    for (int attempt = 0; attempt < 3; ++attempt) {
      auto port = PickFreePort();
      if (!port.ok()) return port.status();
      server->port_ = *port;
      st = server->Launch();
      if (st.ok()) break;
      std::string log = server->LogTail();
      bool port_taken = log.find("already in use") != std::string::npos ||
                        log.find("Bind on TCP/IP port") != std::string::npos;
      if (!port_taken) break;
    }
    return st;
  };
  absl::Status st = launch();
  if (!st.ok() && !from_template.empty()) {
    // The template may be damaged: drop it, install afresh here and try once more.
    fs::remove_all(fs::path(from_template).parent_path(), ec);
    fs::remove_all(data, ec);
    if (absl::Status inst = InstallDataDir(*install_db, data, *dir + "/install.log"); !inst.ok()) return inst;
    st = launch();
  }
  if (!st.ok()) return st;
  return server;
}

MariaDbServer::~MariaDbServer() {
  Stop().IgnoreError();
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

absl::Status MariaDbServer::Launch() {
  auto mariadbd = FindBinary("mariadbd");
  if (!mariadbd.ok()) return mariadbd.status();
  std::vector<std::string> argv = {
      *mariadbd,
      "--no-defaults",
      "--datadir=" + dir_ + "/data",
      "--socket=" + dir_ + "/mariadbd.sock",
      "--pid-file=" + dir_ + "/mariadbd.pid",
      absl::StrCat("--port=", port_),
      "--bind-address=127.0.0.1",
      "--user=root",
      "--skip-log-bin",
      "--character-set-server=utf8mb4",
      "--collation-server=utf8mb4_general_ci",
      // Test data: durability to the OS is enough and much faster.
      "--innodb-flush-log-at-trx-commit=2",
      "--innodb-buffer-pool-size=64M",
  };
  for (const std::string& o : InnodbOptions()) argv.push_back(o);
  auto pid = Spawn(argv, dir_ + "/mariadbd.log");
  if (!pid.ok()) return pid.status();
  pid_ = *pid;
  absl::Status st = WaitReady();
  if (!st.ok()) Stop().IgnoreError();
  return st;
}

absl::Status MariaDbServer::WaitReady() {
  absl::Time deadline = absl::Now() + kReadyTimeout;
  absl::Status last;
  db::Options options;
  options.max_connections = 1;
  options.checkout_timeout_ms = 1000;
  while (absl::Now() < deadline) {
    int wstatus = 0;
    if (waitpid(pid_, &wstatus, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError(
          absl::StrCat("mariadbd exited during start-up (status ", wstatus, "):\n", LogTail()));
    }
    auto db = db::Open(Dsn(""), options);
    if (db.ok()) {
      auto rows = (*db)->Query("SELECT 1");
      if (rows.ok()) return absl::OkStatus();
      last = rows.status();
    } else {
      last = db.status();
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrCat("mariadbd not ready after ",
                                                  absl::FormatDuration(kReadyTimeout), ": ", last.message(),
                                                  "\n", LogTail()));
}

std::string MariaDbServer::LogTail() const { return Tail(dir_ + "/mariadbd.log"); }

absl::Status MariaDbServer::Stop() {
  if (pid_ <= 0) return absl::OkStatus();
  int pid = pid_;
  pid_ = -1;
  int wstatus = 0;
  if (kill(pid, SIGTERM) != 0 && errno == ESRCH) {
    WaitFor(pid, absl::Seconds(1), &wstatus);
    return absl::OkStatus();
  }
  if (WaitFor(pid, kStopTimeout, &wstatus)) return absl::OkStatus();
  kill(pid, SIGKILL);
  WaitFor(pid, absl::Seconds(10), &wstatus);
  return absl::DeadlineExceededError(absl::StrCat("mariadbd did not stop within ",
                                                  absl::FormatDuration(kStopTimeout), " of SIGTERM: killed"));
}

absl::Status MariaDbServer::Restart() {
  if (absl::Status st = Stop(); !st.ok()) return st;
  return Launch();
}

int MariaDbServer::port() const { return port_; }

std::string MariaDbServer::Dsn(std::string_view database) const {
  return absl::StrCat("mysql://root@127.0.0.1:", port_, "/", AV(database));
}

absl::Status MariaDbServer::CreateDatabase(std::string_view name) { return CreateDatabaseAt(Dsn(""), name); }

absl::StatusOr<std::string> FreshMysqlDatabase() {
  static absl::Mutex mu;
  static std::unique_ptr<MariaDbServer> server;  // destroyed at exit: stops mariadbd
  std::string base;  // DSN of the server without database: mysql://user@host:port/
  if (const char* env = getenv("PARCOURS_TEST_MYSQL_DSN"); env != nullptr && *env != '\0') {
    std::string dsn = env;
    size_t scheme = dsn.find("://");
    size_t slash = dsn.find('/', scheme == std::string::npos ? 0 : scheme + 3);
    base = slash == std::string::npos ? dsn + "/" : dsn.substr(0, slash + 1);
  } else {
    absl::MutexLock lock(&mu);
    if (server == nullptr) {
      auto started = MariaDbServer::Start();
      if (!started.ok()) return started.status();
      server = *std::move(started);
    }
    base = server->Dsn("");
  }
  std::string name = UniqueName("t_");
  if (absl::Status st = CreateDatabaseAt(base, name); !st.ok()) return st;
  return base + name;
}

std::string FreshSqliteDatabase() {
  static TempDirs dirs;
  auto dir = MakeTempDir("parcours-sqlite-");
  if (!dir.ok()) return "sqlite:/nonexistent-dir/could-not-create-temp-dir.db";
  dirs.Add(*dir);
  return absl::StrCat("sqlite:", *dir, "/test.db");
}

}  // namespace parcours::testing

#include "core/io/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "core/error.hpp"

namespace ag {

namespace {

// The path as errors show it: a NUL byte as \0, so the message is not cut there.
std::string shown(std::string_view path) {
  std::string out;
  for (char c : path) out += c == '\0' ? std::string("\\0") : std::string(1, c);
  return out;
}

std::string directory_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string name_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The file a path leads to: the path itself, or, through symbolic links, the
// last one's target (a relative target counts from the link's directory).
std::string follow_links(const char* op, const std::string& path) {
  std::string target = path;
  for (int hops = 0;; ++hops) {
    struct stat st;
    if (::lstat(target.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return target;
    AG_CHECK(hops < 40, "{}: cannot create '{}': too many levels of symbolic links", op, path);
    std::string link(4096, '\0');
    const ssize_t n = ::readlink(target.c_str(), link.data(), link.size());
    AG_CHECK(n >= 0, "{}: cannot read the symbolic link '{}': {}", op, target,
             std::strerror(errno));
    link.resize(static_cast<size_t>(n));
    target = link.starts_with('/') ? link : directory_of(target) + "/" + link;
  }
}

const char* kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

std::atomic<uint64_t> temporaries_made{0};

}  // namespace

void check_path(const char* op, const std::string& path) {
  AG_CHECK(!path.empty(), "{}: empty path", op);
  const size_t nul = path.find('\0');
  AG_CHECK(nul == std::string::npos,
           "{}: the path '{}' contains a NUL byte at position {}; the system would read it as "
           "'{}'",
           op, shown(path), nul, shown(path.substr(0, nul)));
}

void write_file_atomically(const char* op, const std::string& path, std::string_view bytes) {
  check_path(op, path);
  const std::string target = follow_links(op, path);
  const std::string via = target == path ? "" : fmt::format(" (it leads to '{}')", target);

  // What is there now: nothing, a regular file (its permission bits are kept),
  // or something no save may replace.
  struct stat old;
  const bool replacing = ::stat(target.c_str(), &old) == 0;
  AG_CHECK(!replacing || S_ISREG(old.st_mode),
           "{}: '{}'{} is {}, not a regular file; attograd saves only to regular files", op, path,
           via, kind_of(old.st_mode));

  // The temporary, in the target's directory (rename works within one file system).
  const std::string dir = directory_of(target);
  std::string temporary;
  int fd = -1;
  for (int attempt = 0; fd < 0; ++attempt) {
    temporary = fmt::format("{}/.{}.tmp-{}-{}", dir, name_of(target).substr(0, 200), ::getpid(),
                            temporaries_made++);
    // 0666 minus the umask, as fopen gives a new file
    fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    AG_CHECK(fd >= 0 || (errno == EEXIST && attempt < 100), "{}: cannot create '{}'{}: {}", op,
             path, via, std::strerror(errno));
  }
  // Any failure from here on: the temporary goes, the path stays as it was.
  auto fail = [&](const char* what, int error) {
    if (fd >= 0) ::close(fd);
    ::unlink(temporary.c_str());
    throw Error(fmt::format("{}: cannot {} '{}'{}: {}", op, what, path, via, std::strerror(error)));
  };
  // The old file's permission bits, where its owner lets us set them.
  if (replacing) (void)::fchmod(fd, old.st_mode & 07777);
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("write", errno);
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) fail("write", errno);  // the bytes on the disk before the name
  const int closed = ::close(fd);
  fd = -1;
  if (closed != 0) fail("write", errno);
  if (::rename(temporary.c_str(), target.c_str()) != 0) fail("replace", errno);

  // The rename on the disk too. A file system that cannot sync a directory
  // (EINVAL) has nothing more to do.
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    const int synced = ::fsync(dir_fd) == 0 ? 0 : errno;
    ::close(dir_fd);
    AG_CHECK(synced == 0 || synced == EINVAL,
             "{}: '{}'{} was written, but its directory could not be synced to the disk: {}", op,
             path, via, std::strerror(synced));
  }
}

}  // namespace ag

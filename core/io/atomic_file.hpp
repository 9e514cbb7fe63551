// Writing a file so that a failed or interrupted write never loses what was
// there: every file attograd writes (.safetensors, .npy, Graphviz .dot, the
// chapters' CSV) goes through write_file_atomically.
//
// The bytes go to a new temporary file in the same directory as the target,
// named ".<name>.tmp-<pid>-<n>", which is flushed to the disk (fsync) and then
// renamed over the target; the directory is synced too, so the rename itself
// survives a power cut. rename() swaps the name in one step, so whoever reads
// the path (another program, the next run after a crash or a kill) finds the
// old file whole or the new file whole, never a mix and never nothing.
//
//   - On any failure (disk full, a file-size limit, no permission, a name too
//     long) the temporary is removed, the path is left exactly as it was, and
//     the ag::Error names the function called, the path and the reason.
//   - A process killed in the middle of the write leaves its temporary behind
//     (".model.safetensors.tmp-1234-0"), and the path as it was.
//   - Through a symbolic link, the file the link points to is replaced; the
//     link stays a link.
//   - Only a regular file (or nothing) at the path is written over: a
//     directory, a device such as /dev/null, or a FIFO is refused, since
//     renaming over it would replace the directory entry of the device itself.
//   - A replaced file keeps its permission bits; a new file gets 0666 minus the
//     umask, as fopen gives it.
#pragma once

#include <string>
#include <string_view>

namespace ag {

void write_file_atomically(const char* op, const std::string& path, std::string_view bytes);

// Throws "op: the path 'a' contains a NUL byte at position 1 ..." for a path
// the operating system would read only up to its first NUL (so that
// "a.npy\0.bak" would silently name "a.npy"), and "op: empty path".
void check_path(const char* op, const std::string& path);

}  // namespace ag

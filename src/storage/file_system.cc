#include "storage/file_system.h"

namespace synod::storage {

bool parse_numbered_name(std::string_view name, std::string_view prefix, std::string_view suffix,
                         uint64_t& number) {
  constexpr size_t kDigits = 20;
  if (name.size() != prefix.size() + kDigits + suffix.size() || !name.starts_with(prefix) ||
      !name.ends_with(suffix))
    return false;
  number = 0;
  for (char c : name.substr(prefix.size(), kDigits)) {
    if (c < '0' || c > '9') return false;
    number = number * 10 + static_cast<uint64_t>(c - '0');
  }
  return true;
}

Status write_file_atomically(FileSystem& fs, const std::string& dir, const std::string& name,
                             std::string_view data) {
  const std::string tmp = join_path(dir, name + ".tmp");
  auto file = fs.open_writable(tmp);
  if (!file.is_ok()) return file.status();
  SYNOD_RETURN_IF_ERROR((*file)->truncate(0));
  SYNOD_RETURN_IF_ERROR((*file)->write_at(0, data));
  SYNOD_RETURN_IF_ERROR((*file)->sync());
  SYNOD_RETURN_IF_ERROR((*file)->close());
  SYNOD_RETURN_IF_ERROR(fs.rename(tmp, join_path(dir, name)));
  return fs.sync_dir(dir);
}

Status remove_files(FileSystem& fs, const FileRemover& remover, std::vector<std::string> paths,
                    const std::string& dir) {
  if (paths.empty()) return Status::ok();
  if (remover) {
    remover(std::move(paths), dir);
    return Status::ok();
  }
  bool stuck = false;
  return remove_in_order(fs, paths, dir, stuck);
}

Status remove_in_order(FileSystem& fs, const std::vector<std::string>& paths,
                       const std::string& dir, bool& stuck) {
  if (stuck) return Status::io_error("removals in " + dir + " stopped after an earlier failure");
  for (const auto& path : paths) {
    Status removed = fs.remove(path);
    if (removed.is_ok()) continue;
    if (auto exists = fs.exists(path); exists.is_ok() && !*exists) continue;
    stuck = true;
    return removed;
  }
  return fs.sync_dir(dir);
}

}  // namespace synod::storage

#include "storage/file_system.h"

namespace synod::storage {

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

}  // namespace synod::storage

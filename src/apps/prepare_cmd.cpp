#include "prepare_cmd.hpp"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>

#include "nmech/data/prepare.hpp"

namespace nmech::apps {

CLI::App* add_prepare_command(CLI::App& app, PrepareArgs& a) {
  auto* c = app.add_subcommand("prepare-data", "pack a dataset from its standard layout into one file for training");
  c->add_option("kind", a.kind, "tiny-imagenet, cifar10 or cifar100")->required();
  c->add_option("src", a.src, "the dataset's directory (as distributed, unpacked)")->required();
  c->add_option("out", a.out, "the packed file to write (HDF5)")->required();
  c->add_flag("--overwrite", a.overwrite, "replace OUT if it exists");
  return c;
}

int cmd_prepare(const PrepareArgs& a) {
  std::error_code ec;
  const auto st = std::filesystem::symlink_status(a.out, ec);
  if (std::filesystem::is_directory(st)) throw data::DataError(a.out + ": is a directory; give OUT a file name");
  if (std::filesystem::exists(st) && !a.overwrite)
    throw data::DataError(a.out + ": exists; pass --overwrite to replace it, or choose another OUT");
  const data::Packed p = data::prepare_data(a.kind, a.src, a.out);
  std::printf("%s: %s, %zu classes, %lld training and %lld validation images of %lld×%lld×%lld\n", a.out.c_str(),
              p.name.c_str(), p.classes.size(), static_cast<long long>(p.train.count), static_cast<long long>(p.val.count),
              static_cast<long long>(p.channels), static_cast<long long>(p.height), static_cast<long long>(p.width));
  return 0;
}

}  // namespace nmech::apps

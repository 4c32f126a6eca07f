#pragma once
// `nmech prepare-data KIND SRC OUT`: a dataset in its standard layout → one packed file
// (src/nmech/data/prepare.hpp) that runs read with dataset = "KIND", data_dir = OUT.
#include <string>

namespace CLI {
class App;
}

namespace nmech::apps {

struct PrepareArgs {
  std::string kind, src, out;
  bool overwrite = false;  // replace an existing OUT (never done unasked: it may be a store or a dataset in use)
};

CLI::App* add_prepare_command(CLI::App& app, PrepareArgs& a);
// Prints one summary line; bad input throws data::DataError (exit 2), leaving no OUT behind, as
// does an existing OUT without --overwrite.
int cmd_prepare(const PrepareArgs& a);

}  // namespace nmech::apps

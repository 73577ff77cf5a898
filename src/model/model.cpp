#include "model/model.h"

namespace memwall {

Model Model::load(const std::string& path) {
  Model m;
  m.file = gguf::File::open(path);
  m.spec = read_model_spec(m.file);
  m.weights = bind_weights(m.file, m.spec);
  return m;
}

}  // namespace memwall

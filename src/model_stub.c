#include "model.h"
const struct model_ops model_thread_ops = { .model = CONF_MODEL_THREAD };
const struct model_ops model_pool_ops = { .model = CONF_MODEL_THREAD_POOL };

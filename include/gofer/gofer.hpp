// gofer: Go's concurrency model for C++. This header includes every public
// header and nothing else.
#pragma once

#include "gofer/blocking.hpp"
#include "gofer/chan.hpp"
#include "gofer/context.hpp"
#include "gofer/defer.hpp"
#include "gofer/diagnostics.hpp"
#include "gofer/errors.hpp"
#include "gofer/go.hpp"
#include "gofer/runtime.hpp"
#include "gofer/select.hpp"
#include "gofer/sync/cond_var.hpp"
#include "gofer/sync/err_group.hpp"
#include "gofer/sync/mutex.hpp"
#include "gofer/sync/once.hpp"
#include "gofer/sync/pool.hpp"
#include "gofer/sync/rw_mutex.hpp"
#include "gofer/sync/semaphore.hpp"
#include "gofer/sync/wait_group.hpp"
#include "gofer/this_fiber.hpp"
#include "gofer/time.hpp"

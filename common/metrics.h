#pragma once

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace im::common {

// Latency buckets in seconds from 100 us to 10 s, shared so that dashboards compare like with like.
prometheus::Histogram::BucketBoundaries LatencyBuckets();

}  // namespace im::common

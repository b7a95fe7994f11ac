//! Prometheus metrics: one registry, built at start-up, rendered by
//! `/metrics`. Labels are bounded: routes are the matched route templates
//! (never raw paths), statuses are numbers.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    pub cache: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<RouteLabels, Histogram>,
    pub cache_hits: Family<CacheLabels, Counter>,
    pub cache_misses: Family<CacheLabels, Counter>,
    /// Origin objects served from the last good copy because the origin failed.
    pub origin_stale_served: Counter,
    /// Requests the local edge refused (CloudFront's 403).
    pub edge_denied: Counter,
    /// Content keys the key endpoint issued or refused.
    pub content_keys: Family<OutcomeLabels, Counter>,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("playgate");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let cache_hits = Family::<CacheLabels, Counter>::default();
        let cache_misses = Family::<CacheLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register("cache_hits", "Cache hits by cache", cache_hits.clone());
        registry.register(
            "cache_misses",
            "Cache misses by cache",
            cache_misses.clone(),
        );
        let origin_stale_served = Counter::default();
        registry.register(
            "origin_stale_served",
            "Origin objects served stale because the origin failed",
            origin_stale_served.clone(),
        );
        let edge_denied = Counter::default();
        registry.register(
            "edge_denied",
            "Requests the local edge refused",
            edge_denied.clone(),
        );
        let content_keys = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "content_keys",
            "Content keys issued or refused by the key endpoint",
            content_keys.clone(),
        );
        Metrics {
            registry,
            content_keys,
            origin_stale_served,
            edge_denied,
            requests,
            latency,
            cache_hits,
            cache_misses,
        }
    }

    /// The counter of one key-endpoint outcome (`issued`, `refused`).
    pub fn content_keys(&self, outcome: &str) -> Counter {
        self.content_keys
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .clone()
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

//! The Prometheus metrics of `serve`, with `prometheus-client` (the
//! Prometheus project's Rust client): kept by the HTTP layer (webhooks) and
//! by an observer of the pager (pages, calls, dispositions, provider
//! requests, rate-limit waits), served at `GET /metrics` in the text format.
//!
//! Every label value comes from a bounded set: routes and playbooks from
//! the configuration, statuses and outcomes from the engine's words, HTTP
//! codes, and dispositions folded to their kind (`FAILED:<code>` counts
//! as `FAILED`), so no caller can grow the number of series.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::model::Status;

/// The content type of `GET /metrics`.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Buckets of `callbook_time_to_ack_seconds`: from 10 s to 2 h.
const ACK_BUCKETS: [f64; 11] = [
    10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 5400.0, 7200.0,
];
/// Buckets of `callbook_rate_limit_wait_seconds`: from 1 ms to 10 s.
const WAIT_BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteOutcome {
    route: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PlaybookStatus {
    playbook: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PlaybookDisposition {
    playbook: String,
    disposition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteCode {
    route: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointCode {
    endpoint: String,
    code: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn ack_histogram() -> Histogram {
    Histogram::new(ACK_BUCKETS)
}

/// Every metric `serve` exposes, registered once.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pages: Family<RouteOutcome, Counter>,
    active: Family<RouteLabel, Gauge>,
    calls: Family<PlaybookStatus, Counter>,
    dispositions: Family<PlaybookDisposition, Counter>,
    time_to_ack: HistogramFamily<RouteLabel>,
    webhooks: Family<RouteCode, Counter>,
    provider: Family<EndpointCode, Counter>,
    rate_limit_wait: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric, at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("callbook");
        let pages = Family::<RouteOutcome, Counter>::default();
        let active = Family::<RouteLabel, Gauge>::default();
        let calls = Family::<PlaybookStatus, Counter>::default();
        let dispositions = Family::<PlaybookDisposition, Counter>::default();
        let time_to_ack: HistogramFamily<RouteLabel> =
            Family::new_with_constructor(ack_histogram as fn() -> Histogram);
        let webhooks = Family::<RouteCode, Counter>::default();
        let provider = Family::<EndpointCode, Counter>::default();
        let rate_limit_wait = Histogram::new(WAIT_BUCKETS);
        registry.register("pages", "Pages ended, by route and outcome", pages.clone());
        registry.register("pages_active", "Pages going, by route", active.clone());
        registry.register(
            "calls",
            "Calls ended, by playbook and status",
            calls.clone(),
        );
        registry.register(
            "call_dispositions",
            "How calls ended (FoneStorm's END callback), by playbook",
            dispositions.clone(),
        );
        registry.register(
            "time_to_ack_seconds",
            "From a page's start to its acknowledgement, by route",
            time_to_ack.clone(),
        );
        registry.register(
            "webhooks",
            "Webhook requests answered, by route and HTTP status",
            webhooks.clone(),
        );
        registry.register(
            "provider_requests",
            "Requests to FoneStorm, by endpoint and HTTP status (0: no answer)",
            provider.clone(),
        );
        registry.register(
            "rate_limit_wait_seconds",
            "Time requests waited for the account's rate limit",
            rate_limit_wait.clone(),
        );
        Metrics {
            registry,
            pages,
            active,
            calls,
            dispositions,
            time_to_ack,
            webhooks,
            provider,
            rate_limit_wait,
        }
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!("cannot encode the metrics: {e}");
        }
        out
    }

    /// A webhook request of `route` was answered with `code`.
    pub fn webhook(&self, route: &str, code: u16) {
        self.webhooks
            .get_or_create(&RouteCode {
                route: route.to_string(),
                code: code.to_string(),
            })
            .inc();
    }

    /// Makes the series of `route` exist at zero, so that dashboards see it
    /// before its first alert.
    pub fn route_known(&self, route: &str) {
        drop(self.active.get_or_create(&RouteLabel {
            route: route.to_string(),
        }));
    }

    /// A page of `route` started (or resumed).
    pub fn page_started(&self, route: &str) {
        self.active
            .get_or_create(&RouteLabel {
                route: route.to_string(),
            })
            .inc();
    }

    /// A page of `route` ended with `outcome`, acknowledged after `time_to_ack`.
    pub fn page_ended(&self, route: &str, outcome: &str, time_to_ack: Option<Duration>) {
        let label = RouteLabel {
            route: route.to_string(),
        };
        self.active.get_or_create(&label).dec();
        self.pages
            .get_or_create(&RouteOutcome {
                route: route.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
        if let Some(d) = time_to_ack {
            self.time_to_ack
                .get_or_create(&label)
                .observe(d.as_secs_f64());
        }
    }

    /// A call of `playbook` ended with `status`.
    pub fn call_finished(&self, playbook: &str, status: Status) {
        self.calls
            .get_or_create(&PlaybookStatus {
                playbook: playbook.to_string(),
                status: status.as_str().to_string(),
            })
            .inc();
    }

    /// A call of `playbook` ended with `disposition` (`FAILED:<code>` counts as `FAILED`).
    pub fn disposition(&self, playbook: &str, disposition: &str) {
        let kind = disposition.split(':').next().unwrap_or(disposition);
        let kind = match kind {
            "ANSWERED" | "NO_ANSWER" | "BUSY" | "CANCEL" | "REJECTED" | "FAILED"
            | "NO_CALLBACK" => kind,
            _ => "OTHER",
        };
        self.dispositions
            .get_or_create(&PlaybookDisposition {
                playbook: playbook.to_string(),
                disposition: kind.to_string(),
            })
            .inc();
    }

    /// A request to FoneStorm's `endpoint` was answered with `code` (0: no answer).
    pub fn provider_request(&self, endpoint: &str, code: u16) {
        self.provider
            .get_or_create(&EndpointCode {
                endpoint: endpoint.to_string(),
                code: code.to_string(),
            })
            .inc();
    }

    /// A request waited `waited` for the rate limit.
    pub fn rate_limit_wait(&self, waited: Duration) {
        self.rate_limit_wait.observe(waited.as_secs_f64());
    }
}

/// The pager tells the metrics what it does.
impl crate::engine::PagerObserver for Metrics {
    fn page_started(&self, route: &str) {
        Metrics::page_started(self, route);
    }
    fn page_ended(&self, route: &str, outcome: &str, time_to_ack: Option<Duration>) {
        Metrics::page_ended(self, route, outcome, time_to_ack);
    }
    fn call_finished(&self, playbook: &str, status: Status) {
        Metrics::call_finished(self, playbook, status);
    }
    fn disposition(&self, playbook: &str, disposition: &str) {
        Metrics::disposition(self, playbook, disposition);
    }
    fn provider_request(&self, endpoint: &str, code: u16) {
        Metrics::provider_request(self, endpoint, code);
    }
    fn rate_limit_wait(&self, waited: Duration) {
        Metrics::rate_limit_wait(self, waited);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_exposed_under_its_contract_name() {
        let m = Metrics::new();
        m.webhook("disk", 202);
        m.page_started("disk");
        m.page_ended("disk", "acknowledged", Some(Duration::from_secs(42)));
        m.call_finished("disk-full", Status::Placed);
        m.disposition("disk-full", "FAILED:503");
        m.disposition("disk-full", "<script>");
        m.provider_request("calls", 200);
        m.rate_limit_wait(Duration::from_millis(3));
        let text = m.encode();
        for needle in [
            "callbook_pages_total{route=\"disk\",outcome=\"acknowledged\"} 1",
            "callbook_pages_active{route=\"disk\"} 0",
            "callbook_calls_total{playbook=\"disk-full\",status=\"placed\"} 1",
            "callbook_call_dispositions_total{playbook=\"disk-full\",disposition=\"FAILED\"} 1",
            "callbook_call_dispositions_total{playbook=\"disk-full\",disposition=\"OTHER\"} 1",
            "callbook_time_to_ack_seconds_count{route=\"disk\"} 1",
            "callbook_webhooks_total{route=\"disk\",code=\"202\"} 1",
            "callbook_provider_requests_total{endpoint=\"calls\",code=\"200\"} 1",
            "callbook_rate_limit_wait_seconds_count 1",
        ] {
            assert!(text.contains(needle), "{needle} not in\n{text}");
        }
    }
}

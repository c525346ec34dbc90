import Prometheus

/// The scheduler's Prometheus metrics, served on `/metrics`.
public final class SchedulerMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    let submitted: Counter
    let dispatched: Counter
    let unconfirmed: Counter
    let eventsApplied: Counter
    let eventsIgnored: Counter
    let eventsDuplicate: Counter
    let eventsForged: Counter
    let eventsRepaired: Counter
    let deadLettered: Counter
    let nodesLost: Counter
    let attemptsTakenBack: Counter
    let isLeader: Gauge
    let dispatchRound: DurationHistogram
    let eventBatch: DurationHistogram

    public init() {
        submitted = registry.makeCounter(name: "fog_tasks_submitted_total", help: "Tasks accepted by this replica's API")
        dispatched = registry.makeCounter(name: "fog_attempts_dispatched_total", help: "Attempts placed and published by this replica")
        unconfirmed = registry.makeCounter(
            name: "fog_publish_unconfirmed_total", help: "Attempt publishes without a broker confirm (retried)")
        eventsApplied = registry.makeCounter(name: "fog_events_total", labels: [("result", "applied")], help: "Fog node events by result")
        eventsIgnored = registry.makeCounter(name: "fog_events_total", labels: [("result", "ignored")], help: "Fog node events by result")
        eventsDuplicate = registry.makeCounter(
            name: "fog_events_total", labels: [("result", "duplicate")], help: "Fog node events by result")
        eventsForged = registry.makeCounter(
            name: "fog_events_total", labels: [("result", "wrong_sender")], help: "Fog node events by result")
        eventsRepaired = registry.makeCounter(name: "fog_events_total", labels: [("result", "repaired")], help: "Fog node events by result")
        deadLettered = registry.makeCounter(
            name: "fog_events_dead_lettered_total", help: "Event messages or single events that could not be read or stored")
        nodesLost = registry.makeCounter(name: "fog_nodes_lost_total", help: "Fog nodes declared lost by this replica")
        attemptsTakenBack = registry.makeCounter(
            name: "fog_attempts_taken_back_total", help: "Attempts re-placed after their node was lost")
        isLeader = registry.makeGauge(name: "fog_scheduler_leader", help: "1 while this replica leads")
        let buckets: [Duration] = [
            .milliseconds(1), .milliseconds(5), .milliseconds(20), .milliseconds(100), .milliseconds(500), .seconds(2),
        ]
        dispatchRound = registry.makeDurationHistogram(
            name: "fog_dispatch_round_seconds", buckets: buckets, help: "One dispatch transaction and its publishes")
        eventBatch = registry.makeDurationHistogram(name: "fog_event_batch_seconds", buckets: buckets, help: "One batch of events applied")
    }
}

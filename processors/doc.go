// Package processors owns the stage runner: it consumes a topic, hands each decoded record
// to a stage, and writes the stage's outputs, its per-key state and its consumer offsets in
// one Kafka transaction, so every hop is exactly once. Stages are plain values that never
// touch Kafka; the runner owns polling, transactions, retries, the dead-letter queue,
// state restore and metrics. Topic and group names come from schemas/catalog; this package
// never spells one.
package processors

"""The stream jobs' one engine, on aiokafka: what every job is built from.

- :mod:`~stream_jobs.runtime.consumer`: a job is a :class:`BatchConsumer`, a consumer group that
  handles whole fetched batches and commits once their outputs are acknowledged (at-least-once);
- :mod:`~stream_jobs.runtime.outbox`: what a batch produces goes out as whole record batches;
- :mod:`~stream_jobs.runtime.state`: per-partition job state mirrored to a compacted changelog,
  rebuilt by the worker that is given the partition;
- :mod:`~stream_jobs.runtime.compacted`: compacted topics every worker keeps whole (the
  registers, the erasure block-list);
- :mod:`~stream_jobs.runtime.topic_end`: reading a topic to its true end on the embedded broker.

The jobs themselves (screening, the per-plate job, statistics, day closing, webhooks, parking)
live beside this package and hold only their rules and state.
"""

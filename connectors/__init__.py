"""A participant's node: local datasets and profiling, publishing, negotiation, job
orchestration (consumer and provider roles), the outbox of usage records."""

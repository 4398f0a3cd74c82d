//! Kafka on Cedar: the request model, the policy store and index, and decisions.

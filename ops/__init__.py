"""Operations: liveness, readiness and metrics endpoints, the database-outage page, and the cache
that falls back to local memory when Redis is away."""

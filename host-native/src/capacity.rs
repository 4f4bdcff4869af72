//! How many connections the process can hold: each WebSocket is a file descriptor, so
//! the engine's `limits.maxConnections` is lowered to the descriptor limit
//! (`RLIMIT_NOFILE`) minus a reserve. The reserve keeps the listener, the storage
//! files, the runtime and plain HTTP requests (health, readiness, the admin API,
//! upgrade handshakes that will be refused) working while WebSockets are at the limit:
//! beyond it upgrades get the documented 503 instead of `accept` failing with EMFILE.

/// Descriptors kept out of the connection limit: a tenth of the limit, at least 32 and
/// at most 1024.
pub fn reserve(nofile: u64) -> u64 {
    (nofile / 10).clamp(32, 1024)
}

/// The connection limit for `configured` (`limits.maxConnections`) under a descriptor
/// limit of `nofile` (`None`: unknown, nothing lowered).
pub fn effective_max_connections(configured: usize, nofile: Option<u64>) -> usize {
    match nofile {
        Some(n) => {
            let fit = n.saturating_sub(reserve(n)).max(1);
            configured.min(usize::try_from(fit).unwrap_or(usize::MAX))
        }
        None => configured,
    }
}

/// The process's soft descriptor limit, if the platform tells.
pub fn nofile_limit() -> Option<u64> {
    rlimit::getrlimit(rlimit::Resource::NOFILE)
        .ok()
        .map(|(soft, _)| soft)
        .filter(|&n| n != rlimit::INFINITY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_never_exceeds_the_descriptors_minus_the_reserve() {
        assert_eq!(effective_max_connections(100_000, Some(20_000)), 18_976);
        assert_eq!(effective_max_connections(100_000, Some(200)), 168);
        assert_eq!(effective_max_connections(500, Some(20_000)), 500);
        assert_eq!(effective_max_connections(100_000, None), 100_000);
        assert_eq!(effective_max_connections(10, Some(10)), 1);
    }
}

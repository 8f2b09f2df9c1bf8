//! Where the test servers are: the URL in an environment variable, or a loud skip.

/// The URL in `var` (e.g. `OPSWEAVE_TEST_POSTGRES_URL`), or `None` after saying loudly that
/// `test` is skipped. Skipping is allowed only while `OPSWEAVE_REQUIRE_SERVERS` is unset: the
/// project's test command starts the servers and sets it, so a missing server fails there.
pub fn server_url(var: &str, test: &str) -> Option<String> {
    let start = match var {
        "OPSWEAVE_TEST_POSTGRES_URL" => {
            " (start one: eval \"$(adapters/opsweave-postgres/pg-test-server.sh start)\")"
        }
        "OPSWEAVE_TEST_REDIS_URL" => {
            " (start one: eval \"$(adapters/opsweave-redis/redis-test-server.sh start)\")"
        }
        _ => "",
    };
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var_os("OPSWEAVE_REQUIRE_SERVERS").is_some() => {
            panic!("{test}: {var} is not set but OPSWEAVE_REQUIRE_SERVERS is{start}")
        }
        _ => {
            eprintln!("\n*** SKIPPED {test}: {var} is not set{start} ***\n");
            None
        }
    }
}

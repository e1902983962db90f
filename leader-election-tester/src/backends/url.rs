//! URL surgery shared by the backends: the `host:port` a partition proxy forwards to, the same
//! URL through a proxy, and a URL fit for logs.

use std::net::SocketAddr;

/// A URL with any password replaced, for logs: the core's
/// [`redact_url`](leader_election::backend::redact_url).
pub(crate) use leader_election::backend::redact_url;

/// The `host:port` of `endpoint` as a socket address, `default_port` when it names none.
///
/// # Errors
/// When the URL names no host, or the host is not an IP address (or `localhost`).
pub(crate) fn socket_addr(endpoint: &str, default_port: u16) -> Result<SocketAddr, String> {
    let (_, host_port, _) = split_url(endpoint)
        .ok_or_else(|| format!("cannot find host:port in {}", redact_url(endpoint)))?;
    let with_port = if host_port
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        host_port.to_owned()
    } else {
        format!("{host_port}:{default_port}")
    };
    let with_port = with_port.replace("localhost:", "127.0.0.1:");
    with_port
        .parse::<SocketAddr>()
        .map_err(|_| format!("{with_port} is not an IP address and port; partitions need one"))
}

/// `url` with its `host:port` replaced by `addr` (unchanged when it has none).
pub(crate) fn via_url(url: &str, addr: SocketAddr) -> String {
    match split_url(url) {
        Some((prefix, _, rest)) => format!("{prefix}{addr}{rest}"),
        None => url.to_owned(),
    }
}

/// Splits `scheme://[user@]host:port/rest` into (`scheme://[user@]`, `host:port`, `/rest`);
/// a bare `host:port[/rest]` (ZooKeeper's servers) has an empty first part.
fn split_url(url: &str) -> Option<(String, &str, &str)> {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let after = &url[scheme_end..];
    let authority_end = after.find(['/', '?']).unwrap_or(after.len());
    let authority = &after[..authority_end];
    let (userinfo, host_port) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    if host_port.is_empty() {
        return None;
    }
    // Without a scheme, only what is plainly `host:port`.
    if scheme_end == 0
        && !host_port
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.contains(' ') && port.parse::<u16>().is_ok())
    {
        return None;
    }
    Some((
        format!("{}{userinfo}", &url[..scheme_end]),
        host_port,
        &after[authority_end..],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_rewrites_only_the_host_and_port() {
        let addr: SocketAddr = "127.0.0.1:4242".parse().unwrap();
        assert_eq!(
            via_url("redis://:secret@127.0.0.1:6380/0", addr),
            "redis://:secret@127.0.0.1:4242/0"
        );
        assert_eq!(via_url("no url", addr), "no url");
        assert_eq!(via_url("127.0.0.1:2181", addr), "127.0.0.1:4242");
        assert_eq!(
            socket_addr("localhost:2182", 2181),
            Ok("127.0.0.1:2182".parse().unwrap())
        );
        assert_eq!(
            socket_addr("redis://localhost", 6379),
            Ok("127.0.0.1:6379".parse().unwrap())
        );
        assert!(socket_addr("http://example.com:80", 80).is_err());
        assert_eq!(
            redact_url("postgres://app:secret@127.0.0.1:5433/app"),
            "postgres://app:***@127.0.0.1:5433/app"
        );
    }
}

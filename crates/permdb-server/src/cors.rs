//! Cross-origin access for browsers: the origins `ServerOptions::cors_origins` names may
//! call the API with credentials, sending the headers Appwrite's and Nuvix's web SDKs send.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

use permdb::wire::quote;
use permdb::{Error, Result};

/// Request headers a page may send: those of Appwrite's web SDK (as Appwrite's own server
/// allows them), their Nuvix names, and the standard ones a JSON request carries.
const ALLOWED_HEADERS: [&str; 31] = [
    "accept",
    "content-type",
    "content-range",
    "range",
    "cache-control",
    "expires",
    "pragma",
    "authorization",
    "x-requested-with",
    "x-appwrite-project",
    "x-appwrite-key",
    "x-appwrite-jwt",
    "x-appwrite-session",
    "x-appwrite-locale",
    "x-appwrite-mode",
    "x-appwrite-response-format",
    "x-appwrite-timeout",
    "x-appwrite-id",
    "x-appwrite-impersonate-user-id",
    "x-appwrite-impersonate-user-email",
    "x-appwrite-impersonate-user-phone",
    "x-sdk-version",
    "x-sdk-name",
    "x-sdk-language",
    "x-sdk-platform",
    "x-fallback-cookies",
    "x-nuvix-project",
    "x-nuvix-key",
    "x-nuvix-jwt",
    "x-nuvix-session",
    "x-nuvix-response-format",
];

/// An origin as browsers send it: lowercase, without the scheme's default port. Checked
/// by [`check_origin`].
pub(crate) fn normalize_origin(origin: &str) -> Result<String> {
    let lower = origin.to_ascii_lowercase();
    check_origin(&lower)?;
    let default_port = if lower.starts_with("https://") {
        ":443"
    } else {
        ":80"
    };
    Ok(lower
        .strip_suffix(default_port)
        .map_or_else(|| lower.clone(), str::to_owned))
}

/// Checks an origin as a browser sends it: `http` or `https`, `://`, a host of letters,
/// digits, `-` and `.` (or a bracketed IPv6 address), and an optional port; no path,
/// query, user or wildcard.
pub(crate) fn check_origin(origin: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::InvalidArgument(format!(
            "CORS origin {}: {why}",
            quote(origin)
        )))
    };
    let Some(rest) = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
    else {
        return bad("must start with http:// or https://");
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(':') && !port.contains(']') => (host, Some(port)),
        _ => (rest, None),
    };
    let host_ok = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        !v6.is_empty()
            && v6
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    };
    if !host_ok {
        return bad(
            "the host must be a name, an IPv4 address or a bracketed IPv6 address, with no path",
        );
    }
    if let Some(port) = port
        && (port.is_empty()
            || !port.bytes().all(|b| b.is_ascii_digit())
            || port.parse::<u16>().is_err())
    {
        return bad("the port must be a number up to 65535");
    }
    Ok(())
}

/// The CORS layer for `origins`, or `None` when there are none (no cross-origin access,
/// and no CORS headers). Origins are compared exactly, as browsers send them.
pub(crate) fn layer(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        // Checked when added (`ServerOptions::cors_origin`); one set directly in the
        // public field and malformed is left out: it could never match a real origin.
        .filter_map(|o| normalize_origin(o).ok())
        .filter_map(|o| HeaderValue::from_str(&o).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers(ALLOWED_HEADERS.map(HeaderName::from_static))
            .max_age(Duration::from_secs(24 * 60 * 60)),
    )
}

#[cfg(test)]
mod tests {
    use super::{check_origin, normalize_origin};

    #[test]
    fn origins_are_kept_as_browsers_send_them() {
        for (given, sent) in [
            ("http://LOCALHOST:5173", "http://localhost:5173"),
            ("HTTPS://App.Example.com:443", "https://app.example.com"),
            ("http://example.com:80", "http://example.com"),
            ("http://example.com:443", "http://example.com:443"),
            ("https://example.com:80", "https://example.com:80"),
        ] {
            assert_eq!(normalize_origin(given).unwrap(), sent, "{given}");
        }
    }

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        for good in [
            "http://localhost:5173",
            "https://app.example.com",
            "http://127.0.0.1:8080",
            "http://[::1]:3000",
            "https://[::1]",
        ] {
            assert!(check_origin(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "*",
            "null",
            "localhost:5173",
            "ftp://example.com",
            "https://",
            "https://example.com/",
            "https://example.com/app",
            "https://user@example.com",
            "https://example.com:",
            "https://example.com:99999",
            "https://example.com:8o",
            "https://*.example.com",
            "https://exa mple.com",
            "https://example.com?x=1",
            "https://[]:80",
            "https://[::1",
        ] {
            assert!(check_origin(bad).is_err(), "{bad:?}");
        }
    }
}

//! Reading and writing cookies, without a cookie jar crate: latchkey only needs names, values
//! and a fixed set of attributes.

use http::HeaderMap;

/// The value of cookie `name` in the request's `Cookie` headers.
#[must_use]
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"'))
}

/// A `Set-Cookie` value: `Path=/`, `SameSite=Lax`, `Secure` when asked, `HttpOnly` when asked,
/// and `Max-Age` in seconds when given (a session cookie otherwise).
#[must_use]
pub fn build(
    name: &str,
    value: &str,
    secure: bool,
    http_only: bool,
    max_age: Option<i64>,
) -> String {
    let mut cookie = format!("{name}={value}; Path=/; SameSite=Lax");
    if let Some(seconds) = max_age {
        cookie.push_str(&format!("; Max-Age={seconds}"));
    }
    if http_only {
        cookie.push_str("; HttpOnly");
    }
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}

/// A `Set-Cookie` value that deletes cookie `name`.
#[must_use]
pub fn clear(name: &str, secure: bool, http_only: bool) -> String {
    build(name, "", secure, http_only, Some(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_cookie_among_several_headers() {
        let mut headers = HeaderMap::new();
        headers.append("cookie", "a=1; b=2".parse().unwrap());
        headers.append("cookie", "c=\"3\"".parse().unwrap());
        assert_eq!(get(&headers, "b"), Some("2"));
        assert_eq!(get(&headers, "c"), Some("3"));
        assert_eq!(get(&headers, "d"), None);
    }

    #[test]
    fn builds_attributes() {
        assert_eq!(
            build("x", "v", true, true, Some(60)),
            "x=v; Path=/; SameSite=Lax; Max-Age=60; HttpOnly; Secure"
        );
        assert_eq!(
            clear("x", false, false),
            "x=; Path=/; SameSite=Lax; Max-Age=0"
        );
    }
}

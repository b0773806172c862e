//! Deciding where a `redirect_url` may send the browser: only back to this site.

/// `target` if it stays on `public_url`'s origin, as a path (`/dashboard?tab=2`); `None` for
/// anything that could leave the site: other origins, scheme-relative `//evil`, backslash
/// tricks, `javascript:` and the like, or control characters.
#[must_use]
pub fn same_origin_path(target: &str, public_url: &url::Url) -> Option<String> {
    let target = target.trim();
    if target.is_empty()
        || target.len() > 2048
        || target.chars().any(char::is_control)
        || target.contains('\\')
    {
        return None;
    }
    let resolved = if target.starts_with('/') && !target.starts_with("//") {
        // A path on this site; resolve it to normalise dot segments.
        public_url.join(target).ok()?
    } else {
        url::Url::parse(target).ok()?
    };
    if !same_origin(&resolved, public_url) {
        return None;
    }
    // `/.//evil.example` and `https://app.example.com//evil.example` resolve to the path
    // `//evil.example`, which a browser reads as another host.
    let path = path_of(&resolved);
    (!path.starts_with("//")).then_some(path)
}

fn same_origin(a: &url::Url, b: &url::Url) -> bool {
    a.origin() == b.origin()
}

fn path_of(url: &url::Url) -> String {
    let mut path = url.path().to_owned();
    if let Some(query) = url.query() {
        path.push('?');
        path.push_str(query);
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_same_origin_targets_pass() {
        let public = url::Url::parse("https://app.example.com").unwrap();
        let ok = [
            ("/dashboard", "/dashboard"),
            ("/a/../b?x=1", "/b?x=1"),
            ("https://app.example.com/notes?id=3", "/notes?id=3"),
        ];
        for (input, expected) in ok {
            assert_eq!(
                same_origin_path(input, &public).as_deref(),
                Some(expected),
                "{input}"
            );
        }
        for bad in [
            "https://evil.example",
            "//evil.example/x",
            "/\\evil.example",
            "\\\\evil.example",
            "javascript:alert(1)",
            "http://app.example.com/x",
            "https://app.example.com.evil.example/",
            "https://app.example.com:444/",
            "https://app.example.com//evil.example",
            "https://app.example.com//evil.example/x?y=1",
            "/.//evil.example",
            "/a/..//evil.example",
            "/%2e//evil.example",
            "https://app.example.com/.//evil.example",
            "/x\nSet-Cookie: a=b",
            "",
            "dashboard",
        ] {
            assert_eq!(same_origin_path(bad, &public), None, "{bad:?}");
        }
    }
}

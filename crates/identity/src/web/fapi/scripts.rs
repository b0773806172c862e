//! The pinned scripts Clerk's SDKs hot-load: `clerk-js` (5: UI inside; 6: with `@clerk/ui`)
//! and `@clerk/ui`, at `/npm/@clerk/<package>@<version>/dist/<file>` (and under the Frontend
//! API's prefix, where a relative `proxyUrl` loads them), as Clerk's CDN serves them. No
//! network at run time: the files come from the directory `LATCHKEY_CLERK_ASSETS_DIR` names,
//! filled by the documented, checksummed npm step.
//!
//! The directory is read once at start: every `package.json` naming `@clerk/clerk-js` or
//! `@clerk/ui` found at `<dir>/<a>/`, `<dir>/<a>/<b>/` (the fetch step's
//! `@clerk/clerk-js@5.128.0/`), `<dir>/node_modules/@clerk/<package>/` or
//! `<dir>/<a>/node_modules/@clerk/<package>/` is one pinned version. A request names
//! either the exact version (the chunk paths clerk-js rewrites to its own version; cached for
//! a year) or a major tag (`@5`, `@6`, `@1`: the newest pinned version of that major; cached
//! for five minutes). A file path with an empty, hidden or `..` segment is refused before the
//! file system is touched, and the resolved file must lie inside its package's `dist`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, StatusCode, header};

use crate::state::Identity;

/// The route both places serve.
pub(crate) const ROUTE: &str = "/npm/@clerk/{spec}/dist/{*file}";

/// One pinned package version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    /// `clerk-js` or `ui`.
    pub package: String,
    pub version: String,
    /// Its `dist` directory.
    pub dist: PathBuf,
}

/// Every pinned version found.
#[derive(Debug, Default)]
pub struct Catalogue {
    pinned: Vec<Pinned>,
}

fn read_package(dir: &Path) -> Option<Pinned> {
    let text = std::fs::read_to_string(dir.join("package.json")).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    let name = value.get("name")?.as_str()?;
    let package = name.strip_prefix("@clerk/")?;
    if !matches!(package, "clerk-js" | "ui") {
        return None;
    }
    let version = value.get("version")?.as_str()?.to_owned();
    let dist = dir.join("dist");
    dist.is_dir().then(|| Pinned {
        package: package.to_owned(),
        version,
        dist,
    })
}

fn subdirectories(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default()
}

impl Catalogue {
    /// Reads the pinned versions under `dir`.
    #[must_use]
    pub fn load(dir: &Path) -> Self {
        let mut candidates = vec![dir.to_path_buf()];
        candidates.extend(subdirectories(&dir.join("node_modules/@clerk")));
        for sub in subdirectories(dir) {
            candidates.extend(subdirectories(&sub.join("node_modules/@clerk")));
            candidates.extend(subdirectories(&sub));
            candidates.push(sub);
        }
        let mut pinned: Vec<Pinned> = candidates.iter().filter_map(|d| read_package(d)).collect();
        pinned.sort_by(|a, b| (&a.package, &a.version).cmp(&(&b.package, &b.version)));
        pinned.dedup_by(|a, b| a.package == b.package && a.version == b.version);
        Self { pinned }
    }

    /// What was found.
    #[must_use]
    pub fn pinned(&self) -> &[Pinned] {
        &self.pinned
    }

    /// The pinned version a request's `<package>@<version>` names, and whether it named it
    /// exactly.
    fn find(&self, spec: &str) -> Option<(&Pinned, bool)> {
        let (package, wanted) = spec.split_once('@')?;
        if let Some(exact) = self
            .pinned
            .iter()
            .find(|p| p.package == package && p.version == wanted)
        {
            return Some((exact, true));
        }
        if wanted.is_empty() || !wanted.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        self.pinned
            .iter()
            .filter(|p| p.package == package && p.version.split('.').next() == Some(wanted))
            .max_by(|a, b| version_key(&a.version).cmp(&version_key(&b.version)))
            .map(|p| (p, false))
    }
}

fn version_key(version: &str) -> Vec<u64> {
    version
        .split(['.', '-'])
        .map(|part| part.parse().unwrap_or(0))
        .collect()
}

/// A file path inside `dist`, refused if any segment could leave it or is hidden.
fn safe_relative(file: &str) -> Option<PathBuf> {
    let mut path = PathBuf::new();
    for segment in file.split('/') {
        if segment.is_empty()
            || segment.starts_with('.')
            || segment.contains('\\')
            || segment.contains('\0')
            || segment.contains(':')
        {
            return None;
        }
        path.push(segment);
    }
    Some(path)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("js" | "mjs" | "cjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("wasm") => "application/wasm",
        Some("svg") => "image/svg+xml",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")],
        "not found",
    )
        .into_response()
}

async fn serve(
    State(catalogue): State<Arc<Catalogue>>,
    // By name: under the Frontend API's prefix the nesting route's parameters come too.
    UrlPath(params): UrlPath<std::collections::HashMap<String, String>>,
) -> Response {
    let (Some(spec), Some(file)) = (params.get("spec"), params.get("file")) else {
        return not_found();
    };
    let Some((pinned, exact)) = catalogue.find(spec) else {
        return not_found();
    };
    let Some(relative) = safe_relative(file) else {
        return not_found();
    };
    let candidate = pinned.dist.join(relative);
    let dist = pinned.dist.clone();
    let read = tokio::task::spawn_blocking(move || {
        let resolved = candidate.canonicalize().ok()?;
        let root = dist.canonicalize().ok()?;
        if !resolved.starts_with(&root) || !resolved.is_file() {
            return None;
        }
        std::fs::read(&resolved).ok().map(|bytes| (resolved, bytes))
    })
    .await
    .ok()
    .flatten();
    let Some((resolved, bytes)) = read else {
        return not_found();
    };
    let cache = if exact {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    let mut response = Body::from(bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&resolved)),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        http::HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("cross-origin"),
    );
    response
}

/// The scripts' route, served from the catalogue of `LATCHKEY_CLERK_ASSETS_DIR` (nothing
/// without it).
pub(crate) fn router(identity: &Identity) -> Router {
    let catalogue = identity
        .config()
        .fapi
        .assets_dir
        .as_deref()
        .map(Catalogue::load)
        .unwrap_or_default();
    if let Some(dir) = &identity.config().fapi.assets_dir {
        if catalogue.pinned().is_empty() {
            tracing::warn!(dir = %dir.display(), "no @clerk/clerk-js or @clerk/ui package found in the Clerk assets directory");
        }
        for pinned in catalogue.pinned() {
            tracing::info!(package = %pinned.package, version = %pinned.version, "serving a pinned Clerk script package");
        }
    }
    Router::new()
        .route(ROUTE, get(serve))
        .with_state(Arc::new(catalogue))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_paths_cannot_leave_dist() {
        assert!(safe_relative("clerk.browser.js").is_some());
        assert!(safe_relative("chunks/a.js").is_some());
        for bad in [
            "../x",
            "a/../../x",
            ".env",
            "a//b",
            "",
            "a\\..\\b",
            "/etc/passwd",
            "c:x",
        ] {
            assert!(safe_relative(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn major_tags_pick_the_newest_pinned_version() {
        let pin = |package: &str, version: &str| Pinned {
            package: package.to_owned(),
            version: version.to_owned(),
            dist: PathBuf::from("/nowhere"),
        };
        let catalogue = Catalogue {
            pinned: vec![
                pin("clerk-js", "5.9.0"),
                pin("clerk-js", "5.10.1"),
                pin("clerk-js", "6.1.0"),
            ],
        };
        assert_eq!(
            catalogue
                .find("clerk-js@5")
                .map(|(p, e)| (p.version.as_str(), e)),
            Some(("5.10.1", false))
        );
        assert_eq!(
            catalogue
                .find("clerk-js@5.9.0")
                .map(|(p, e)| (p.version.as_str(), e)),
            Some(("5.9.0", true))
        );
        assert!(catalogue.find("clerk-js@7").is_none());
        assert!(catalogue.find("ui@1").is_none());
        assert!(catalogue.find("clerk-js@latest").is_none());
    }
}

//! The client's files: content-hashed names and how long browsers keep them.
//!
//! `cargo leptos build` (`hash-files = true` in Cargo.toml) names the WASM module, its JS glue
//! and the stylesheet after their content (`pkg/connections.<hash>.wasm`) and writes the hashes
//! to `hash.txt` beside the server binary; when that file is there the page links the hashed
//! names ([`hashed_names`]), and [`cache_headers`] lets browsers keep them for a year without
//! asking again. Anything else under the site root is revalidated on each use.

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// Whether `hash.txt` sits beside the running binary (built by `cargo leptos build`); without it
/// (a plain `cargo build`, the tests) the files keep their plain names.
pub fn hashed_names() -> bool {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("hash.txt")))
        .is_some_and(|file| file.is_file())
}

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// `pkg/connections.<hash>.wasm` and the like: a name that changes with the content.
fn is_hashed(path: &str) -> bool {
    let Some(name) = path.strip_prefix("/pkg/") else { return false };
    let mut parts = name.split('.');
    let (Some(_stem), Some(hash), Some(_ext), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    hash.len() >= 8 && hash.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn is_static(path: &str) -> bool {
    path.starts_with("/pkg/") || path.starts_with("/logos/") || path == "/favicon.svg"
}

/// Long-lived caching for content-hashed files, revalidation for other static files; answers
/// that set their own `Cache-Control` keep it.
pub async fn cache_headers(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    if !response.status().is_success() || response.headers().contains_key(header::CACHE_CONTROL) {
        return response;
    }
    let value = if is_hashed(&path) {
        IMMUTABLE
    } else if is_static(&path) {
        REVALIDATE
    } else {
        return response;
    };
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
    response
}

#[cfg(test)]
mod tests {
    use super::{is_hashed, is_static};

    #[test]
    fn only_content_hashed_client_files_are_immutable() {
        assert!(is_hashed("/pkg/connections.Xk2h9aQ_b1c-ZZ.wasm"));
        assert!(is_hashed("/pkg/connections.0123456789abcdef.css"));
        assert!(!is_hashed("/pkg/connections.wasm"));
        assert!(!is_hashed("/pkg/connections_bg.wasm"));
        assert!(!is_hashed("/pkg/connections.ab.js"));
        assert!(!is_hashed("/logos/zoho.svg"));
        assert!(!is_hashed("/pkg/../secret.abcdefgh.txt"));
        assert!(is_static("/logos/zoho.svg") && is_static("/pkg/connections.css") && !is_static("/microservices"));
    }
}

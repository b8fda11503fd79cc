//! `/v1/docs`: the API reference rendered on the server from the generated OpenAPI document
//! (no script, nothing fetched from elsewhere), with the problem types.

use super::problem::{KINDS, TYPE_BASE};
use crate::authorizations::ssr::escape_html;
use utoipa::openapi::path::Operation;
use utoipa::openapi::OpenApi;

fn operation(out: &mut String, method: &str, path: &str, op: &Operation) {
    out.push_str(&format!("<section><h3><code>{method} {}</code></h3>", escape_html(path)));
    if let Some(summary) = &op.summary {
        out.push_str(&format!("<p><strong>{}</strong></p>", escape_html(summary)));
    }
    if let Some(desc) = &op.description {
        out.push_str(&format!("<p>{}</p>", escape_html(desc)));
    }
    if let Some(params) = &op.parameters {
        out.push_str("<table><thead><tr><th>Parameter</th><th>In</th><th>Description</th></tr></thead><tbody>");
        for p in params {
            let place = serde_json::to_value(&p.parameter_in).ok().and_then(|v| v.as_str().map(str::to_owned));
            out.push_str(&format!(
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                escape_html(&p.name),
                place.unwrap_or_default(),
                escape_html(p.description.as_deref().unwrap_or(""))
            ));
        }
        out.push_str("</tbody></table>");
    }
    let statuses: Vec<String> = op.responses.responses.keys().map(|s| escape_html(s)).collect();
    out.push_str(&format!("<p>Answers: {}</p></section>", statuses.join(", ")));
}

pub fn page(doc: &OpenApi) -> String {
    let mut out = String::from(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>API reference · Connections</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1d2433}
code{background:#f1f3f7;padding:0 .2em;border-radius:3px}table{border-collapse:collapse;margin:.5rem 0}
td,th{border:1px solid #d5d9e2;padding:.25rem .5rem;text-align:left;vertical-align:top}section{margin:1.5rem 0}</style>
</head><body><main><h1>Connections manager API (v1)</h1>"#,
    );
    if let Some(d) = &doc.info.description {
        out.push_str(&format!("<p>{}</p>", escape_html(d)));
    }
    out.push_str(
        "<p>The machine-readable document: <a href=\"/v1/openapi.json\">/v1/openapi.json</a> (OpenAPI 3.1). \
         Writes accept an <code>Idempotency-Key</code> header; each key is rate limited per minute \
         (429 with <code>Retry-After</code>).</p><h2>Routes</h2>",
    );
    for (path, item) in &doc.paths.paths {
        for (method, op) in [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("PATCH", &item.patch),
            ("DELETE", &item.delete),
        ] {
            if let Some(op) = op {
                operation(&mut out, method, path, op);
            }
        }
    }
    out.push_str("<h2 id=\"problems\">Problem types</h2><table><thead><tr><th>type</th><th>Status</th><th>Title</th></tr></thead><tbody>");
    for (slug, status, title) in KINDS {
        out.push_str(&format!(
            "<tr id=\"problem-{slug}\"><td><code>{TYPE_BASE}{slug}</code></td><td>{status}</td><td>{}</td></tr>",
            escape_html(title)
        ));
    }
    out.push_str("</tbody></table></main></body></html>");
    out
}

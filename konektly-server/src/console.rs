//! The web console's pages (server-rendered HTML, no separate front end).

/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page with `title` (escaped here) and `body` (HTML, escaped by the caller).
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{t} · konektly</title><style>{CSS}</style></head><body><header><b>konektly</b></header><main><h1>{t}</h1>{body}</main></body></html>",
        t = escape(title)
    )
}

const CSS: &str = "body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1b1b1f}header{background:#1b1b1f;color:#fff;padding:.6em 1.2em}\
main{max-width:60em;margin:1em auto;padding:0 1em}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3em;text-align:left}\
code{background:#f2f2f5;padding:0 .2em}";

/// The API reference page: every operation of the OpenAPI document, grouped by tag.
pub fn reference(doc: &utoipa::openapi::OpenApi) -> String {
    let mut rows = String::new();
    for (path, item) in &doc.paths.paths {
        let ops = [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("PATCH", &item.patch),
            ("DELETE", &item.delete),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            let tag = op.tags.as_ref().and_then(|t| t.first()).cloned().unwrap_or_default();
            let summary = op.summary.clone().or_else(|| op.description.clone()).unwrap_or_default();
            rows.push_str(&format!(
                "<tr><td>{}</td><td><code>{method} {}</code></td><td>{}</td></tr>",
                escape(&tag),
                escape(path),
                escape(&summary)
            ));
        }
    }
    page(
        "API reference",
        &format!(
            "<p>The machine-readable document: <a href=\"/v1/openapi.json\">/v1/openapi.json</a> (OpenAPI 3.1). \
             Authenticate with <code>Authorization: Bearer &lt;API key&gt;</code>; errors are RFC 9457 \
             <code>application/problem+json</code>.</p><table><tr><th>Tag</th><th>Operation</th><th>What it does</th></tr>{rows}</table>"
        ),
    )
}

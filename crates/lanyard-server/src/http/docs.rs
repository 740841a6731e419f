//! The `/docs` page: the OpenAPI document and the error registry rendered to one self-contained
//! HTML page. It is rendered on the server with inline CSS, so it works with no network at all.

use std::fmt::Write;

use lanyard_core::{Audience, ErrorCode};
use serde_json::Value;

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#1d2330}\
h1{margin-bottom:0}h2{border-bottom:1px solid #d8dde6;padding-bottom:.2em;margin-top:2em}\
.op{border:1px solid #d8dde6;border-radius:6px;margin:1em 0;padding:.6em 1em}\
.m{display:inline-block;min-width:4.5em;font-weight:700;font-family:monospace}\
.get{color:#0a6b38}.post{color:#1f4fb5}.delete{color:#b3261e}.put,.patch{color:#8a5a00}\
code,.path{font-family:ui-monospace,monospace}table{border-collapse:collapse;width:100%}\
td,th{border:1px solid #d8dde6;padding:.3em .5em;text-align:left;vertical-align:top}\
.lock{color:#8a5a00;font-size:.85em}small{color:#5b6474}";

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders a description's Markdown (CommonMark, by pulldown-cmark) as inline HTML: raw HTML in
/// it is shown as text, a link goes only to `http(s)://` or a path on this server (any other
/// keeps its text and loses the link), and paragraphs are not wrapped, so it sits inside a
/// table cell or a list item.
pub fn md(s: &str) -> String {
    use pulldown_cmark::{Event, Parser, Tag, TagEnd};
    let safe = |url: &str| {
        (url.starts_with("https://") || url.starts_with("http://") || url.starts_with('/'))
            && !url.starts_with("//")
    };
    let mut dropped_link = false;
    let mut paragraphs = 0;
    let events = Parser::new(s).filter_map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Some(Event::Text(raw)),
        Event::Start(Tag::Paragraph) => {
            paragraphs += 1;
            (paragraphs > 1).then_some(Event::HardBreak)
        }
        Event::End(TagEnd::Paragraph) => None,
        Event::Start(Tag::Link { ref dest_url, .. }) if !safe(dest_url) => {
            dropped_link = true;
            None
        }
        Event::End(TagEnd::Link) if dropped_link => {
            dropped_link = false;
            None
        }
        other => Some(other),
    });
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events);
    out.trim_end().to_string()
}

fn schema_name(v: &Value) -> String {
    if let Some(r) = v.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        return format!("<a href=\"#schema-{0}\">{0}</a>", esc(name));
    }
    if let Some(items) = v.get("items") {
        return format!("array of {}", schema_name(items));
    }
    if let Some(any) = v
        .get("oneOf")
        .or_else(|| v.get("anyOf"))
        .and_then(Value::as_array)
    {
        return any.iter().map(schema_name).collect::<Vec<_>>().join(" | ");
    }
    match v.get("type") {
        Some(Value::String(t)) => esc(t),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" | "),
        _ => "object".into(),
    }
}

/// Renders the page from the OpenAPI document (as JSON) and the error registry.
pub fn render(openapi: &Value) -> String {
    let mut h = String::new();
    let title = openapi
        .pointer("/info/title")
        .and_then(Value::as_str)
        .unwrap_or("API");
    let version = openapi
        .pointer("/info/version")
        .and_then(Value::as_str)
        .unwrap_or("");
    let intro = openapi
        .pointer("/info/description")
        .and_then(Value::as_str)
        .unwrap_or("");
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t} API</title>\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><style>{STYLE}</style>\
         </head><body><h1>{t} API</h1><small>version {v} · <a href=\"/openapi.json\">openapi.json</a> · \
         <a href=\"#errors\">error codes</a></small><p>{i}</p>",
        t = esc(title),
        v = esc(version),
        i = md(intro)
    );

    let paths = openapi.get("paths").and_then(Value::as_object);
    let mut by_tag: Vec<(String, String)> = Vec::new();
    for (path, item) in paths.into_iter().flatten() {
        for method in ["get", "post", "put", "patch", "delete"] {
            let Some(op) = item.get(method) else { continue };
            let tag = op
                .pointer("/tags/0")
                .and_then(Value::as_str)
                .unwrap_or("other")
                .to_string();
            by_tag.push((tag, render_operation(method, path, op)));
        }
    }
    let mut tags: Vec<&str> = by_tag.iter().map(|(t, _)| t.as_str()).collect();
    tags.dedup();
    tags.sort_unstable();
    tags.dedup();
    for tag in tags {
        let _ = write!(h, "<h2 id=\"tag-{0}\">{0}</h2>", esc(tag));
        for (_, html) in by_tag.iter().filter(|(t, _)| t == tag) {
            h.push_str(html);
        }
    }

    h.push_str("<h2 id=\"errors\">Error codes</h2><p>Every error has the body \
        <code>{\"ok\": false, \"error\", \"message\", \"request_id\", \"agent_action\"?, \
        \"retry_after_seconds\"?}</code>, and the <code>x-request-id</code> header repeats the id.</p>\
        <table><tr><th>code</th><th>status</th><th>meaning</th><th>audience</th></tr>");
    for &code in ErrorCode::ALL {
        let spec = code.spec();
        let audience = match spec.audience {
            Audience::Customer { .. } => "customer-facing",
            Audience::Operator => "operator-only",
        };
        let _ = write!(
            h,
            "<tr id=\"error-{c}\"><td><code>{c}</code></td><td>{s}</td><td>{d}</td><td>{a}</td></tr>",
            c = code.as_str(),
            s = spec.status,
            d = md(spec.description),
            a = audience
        );
    }
    h.push_str("</table>");

    if let Some(schemas) = openapi
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    {
        h.push_str("<h2 id=\"schemas\">Schemas</h2>");
        for (name, schema) in schemas {
            let _ = write!(h, "<h3 id=\"schema-{0}\">{0}</h3>", esc(name));
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let Some(props) = schema.get("properties").and_then(Value::as_object) else {
                continue;
            };
            h.push_str("<table><tr><th>field</th><th>type</th><th>description</th></tr>");
            for (field, p) in props {
                let desc = p.get("description").and_then(Value::as_str).unwrap_or("");
                let opt = if required.contains(&field.as_str()) {
                    ""
                } else {
                    " <small>optional</small>"
                };
                let _ = write!(
                    h,
                    "<tr><td><code>{}</code>{opt}</td><td>{}</td><td>{}</td></tr>",
                    esc(field),
                    schema_name(p),
                    md(desc)
                );
            }
            h.push_str("</table>");
        }
    }
    h.push_str("</body></html>");
    h
}

fn render_operation(method: &str, path: &str, op: &Value) -> String {
    let mut h = String::new();
    let summary = op.get("summary").and_then(Value::as_str).unwrap_or("");
    let secured = op
        .get("security")
        .is_some_and(|s| s.as_array().is_some_and(|a| !a.is_empty()));
    let _ = write!(
        h,
        "<div class=\"op\" id=\"{m}-{id}\"><span class=\"m {m}\">{M}</span> <span class=\"path\">{p}</span>{lock}\
         <p>{s}</p>",
        m = method,
        M = method.to_uppercase(),
        id = esc(&path.replace(['/', '{', '}'], "_")),
        p = esc(path),
        lock = if secured { " <span class=\"lock\">Bearer auth</span>" } else { "" },
        s = md(summary)
    );
    if let Some(description) = op.get("description").and_then(Value::as_str) {
        if description != summary {
            let _ = write!(h, "<p>{}</p>", md(description));
        }
    }
    if let Some(params) = op.get("parameters").and_then(Value::as_array) {
        h.push_str(
            "<table><tr><th>parameter</th><th>in</th><th>type</th><th>description</th></tr>",
        );
        for p in params {
            let _ = write!(
                h,
                "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(p.get("name").and_then(Value::as_str).unwrap_or("")),
                if p.get("required").and_then(Value::as_bool).unwrap_or(false) {
                    ""
                } else {
                    " <small>optional</small>"
                },
                esc(p.get("in").and_then(Value::as_str).unwrap_or("")),
                p.get("schema").map(schema_name).unwrap_or_default(),
                md(p.get("description").and_then(Value::as_str).unwrap_or(""))
            );
        }
        h.push_str("</table>");
    }
    if let Some(body) = op.pointer("/requestBody/content/application~1json/schema") {
        let _ = write!(h, "<p>Body: {}</p>", schema_name(body));
    }
    if let Some(responses) = op.get("responses").and_then(Value::as_object) {
        h.push_str("<ul>");
        for (status, r) in responses {
            let desc = r.get("description").and_then(Value::as_str).unwrap_or("");
            let schema = r
                .get("content")
                .and_then(Value::as_object)
                .and_then(|c| c.values().next())
                .and_then(|c| c.get("schema"))
                .map(|s| format!(" → {}", schema_name(s)))
                .unwrap_or_default();
            let _ = write!(h, "<li><b>{}</b> {}{schema}</li>", esc(status), md(desc));
        }
        h.push_str("</ul>");
    }
    h.push_str("</div>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_lists_every_operation_and_error_code_and_escapes_text() {
        let doc = serde_json::json!({
            "info": {"title": "T<x>", "version": "1"},
            "paths": {"/v1/me": {"get": {"tags": ["team"], "summary": "Me & you", "responses": {"200": {"description": "ok"}}}}}
        });
        let html = render(&doc);
        assert!(html.contains("T&lt;x&gt;") && html.contains("Me &amp; you"));
        assert!(html.contains("/v1/me"));
        for &code in ErrorCode::ALL {
            assert!(
                html.contains(&format!("id=\"error-{code}\"")),
                "{code} has no anchor"
            );
        }
        assert!(!html.contains("<script"), "no external or inline scripts");
    }

    #[test]
    fn inline_markdown_is_rendered_and_everything_else_escaped() {
        assert_eq!(
            md("answers `unauthorized` <b>"),
            "answers <code>unauthorized</code> &lt;b&gt;"
        );
        assert_eq!(
            md("`a<b>` and `c`"),
            "<code>a&lt;b&gt;</code> and <code>c</code>"
        );
        assert_eq!(md("a lone ` tick"), "a lone ` tick");
        assert_eq!(md("**never** twice"), "<strong>never</strong> twice");
        assert_eq!(
            md("see [the guide](https://x.example/g)."),
            "see <a href=\"https://x.example/g\">the guide</a>."
        );
        assert_eq!(md("[a](javascript:alert(1))"), "a");
        assert_eq!(md("[a](//evil.example/x)"), "a");
        assert_eq!(
            md("[x](<https://e.example/\"onclick>)"),
            "<a href=\"https://e.example/%22onclick\">x</a>",
            "a quote cannot leave the attribute"
        );
        let doc = serde_json::json!({
            "info": {"title": "T", "version": "1", "description": "Uses `Bearer` keys"},
            "paths": {"/v1/me": {"get": {"summary": "The team", "description": "Answers `unauthorized` without a key",
                "responses": {"401": {"description": "`unauthorized`"}}}}}
        });
        let html = render(&doc);
        assert!(
            html.contains("<code>unauthorized</code> without a key"),
            "{html}"
        );
        assert!(html.contains("Uses <code>Bearer</code> keys"));
        assert!(!html.contains("`unauthorized`"));
    }
}

//! The TwiML documents the runtime answers with.

/// Escapes text for an XML attribute or element.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// `<Connect><Stream>` to the media stream, with parameters the stream receives in
/// its `start` message; Twilio reports the stream's start, stop and errors to
/// `status_callback`.
pub fn connect_stream(stream_url: &str, status_callback: &str, parameters: &[(&str, &str)]) -> String {
    let mut out = String::from(r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect>"#);
    out.push_str(&format!(
        r#"<Stream url="{}" statusCallback="{}" statusCallbackMethod="POST">"#,
        escape(stream_url),
        escape(status_callback)
    ));
    for (name, value) in parameters {
        out.push_str(&format!(r#"<Parameter name="{}" value="{}"/>"#, escape(name), escape(value)));
    }
    out.push_str("</Stream></Connect></Response>");
    out
}

/// Refuses the call with a busy signal.
pub fn reject_busy() -> String {
    r#"<?xml version="1.0" encoding="UTF-8"?><Response><Reject reason="busy"/></Response>"#.to_owned()
}

/// Dials `number` (a transfer).
pub fn dial(number: &str) -> String {
    format!(r#"<?xml version="1.0" encoding="UTF-8"?><Response><Dial>{}</Dial></Response>"#, escape(number))
}

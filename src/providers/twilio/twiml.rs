//! TwiML answers (SPEC §7). Every document starts with the XML declaration at byte 0 (Twilio
//! rejects leading whitespace, error 12100) and is one line. Attribute values are fully escaped
//! (`& < > " '`), text content has `& < >` escaped.

use quick_xml::escape::{escape, partial_escape};

use crate::config::{TwilioConfig, TwilioTarget};
use crate::domain::Language;
use crate::messages::SpokenMessage;
use crate::providers::CallAction;

/// The `Content-Type` of every TwiML answer.
pub const CONTENT_TYPE: &str = "text/xml";

const DECLARATION: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// The path Twilio requests when a `<Dial>` ends (relative to `server.public_url`).
pub const DIAL_STATUS_PATH: &str = "/webhooks/twilio/dial-status";

pub(super) fn document(body: &str) -> String {
    format!("{DECLARATION}<Response>{body}</Response>")
}

/// The answer for a decision.
///
/// * `Continue` → `<Redirect method="POST">{continue_url}</Redirect>`;
/// * `Route` → `<Dial timeout=… action="{public_url}/webhooks/twilio/dial-status" [timeLimit=…]>`
///   with `<Client>`, `<Sip>` or `<Number>` per the staff member's `twilio` target. A member of
///   staff **without** a Twilio target cannot be rung here, so the call continues into the normal
///   flow instead (the caller is not refused because of a configuration gap);
/// * `Refuse` → one `<Say>` per message in order (English `en-GB`; Welsh `cy-GB` with
///   `Polly.Gwyneth`), then `<Hangup/>`;
/// * `Reject` → `<Reject reason="rejected"/>` (unanswered, unbilled).
pub fn render(action: &CallAction, cfg: &TwilioConfig, public_url: &str) -> String {
    match action {
        CallAction::Continue => render_continue(&cfg.continue_url),
        CallAction::Route {
            staff,
            max_call_minutes,
        } => match &staff.twilio {
            Some(target) => render_dial(
                target,
                cfg.ring_timeout_seconds,
                *max_call_minutes,
                public_url,
            ),
            None => render_continue(&cfg.continue_url),
        },
        CallAction::Refuse { messages } => render_refuse(messages),
        CallAction::Reject => document(r#"<Reject reason="rejected"/>"#),
    }
}

/// `<Redirect method="POST">{continue_url}</Redirect>`.
pub fn render_continue(continue_url: &str) -> String {
    document(&format!(
        r#"<Redirect method="POST">{}</Redirect>"#,
        partial_escape(continue_url)
    ))
}

/// Ring one target, with the dial-status callback.
pub fn render_dial(
    target: &TwilioTarget,
    ring_timeout_seconds: u32,
    max_call_minutes: Option<u32>,
    public_url: &str,
) -> String {
    let action = format!("{}{DIAL_STATUS_PATH}", public_url.trim_end_matches('/'));
    let time_limit = max_call_minutes
        .map(|m| format!(r#" timeLimit="{}""#, u64::from(m) * 60))
        .unwrap_or_default();
    let noun = match target {
        TwilioTarget::Client(identity) => {
            format!("<Client>{}</Client>", partial_escape(identity.as_str()))
        }
        TwilioTarget::Sip(uri) => format!("<Sip>{}</Sip>", partial_escape(uri.as_str())),
        TwilioTarget::Number(n) => format!("<Number>{}</Number>", partial_escape(n.as_str())),
    };
    document(&format!(
        r#"<Dial timeout="{ring_timeout_seconds}" action="{}"{time_limit}>{noun}</Dial>"#,
        escape(action.as_str())
    ))
}

pub(super) fn say(message: &SpokenMessage) -> String {
    let attrs = match message.language {
        Language::En => r#"language="en-GB""#,
        Language::Cy => r#"language="cy-GB" voice="Polly.Gwyneth""#,
    };
    format!(
        "<Say {attrs}>{}</Say>",
        partial_escape(message.text.as_str())
    )
}

/// Speak the messages in order, then hang up. No messages: just `<Hangup/>`.
pub fn render_refuse(messages: &[SpokenMessage]) -> String {
    let says: String = messages.iter().map(say).collect();
    document(&format!("{says}<Hangup/>"))
}

/// `<Hangup/>` only.
pub fn render_hangup() -> String {
    document("<Hangup/>")
}

/// The answer to the `<Dial action>` callback: when the member of staff answered
/// (`completed`/`answered`) just hang up; otherwise (busy, no answer, failed, canceled, or no
/// status at all) speak the `staff_unavailable` messages, then hang up.
pub fn render_dial_result(dial_call_status: Option<&str>, messages: &[SpokenMessage]) -> String {
    if super::events::dial_connected(dial_call_status) {
        render_hangup()
    } else {
        render_refuse(messages)
    }
}

/// What to answer when anything fails inside Fairline (never a 5xx to Twilio): the caller
/// continues into the organisation's normal call flow (fail open).
pub fn render_fallback(cfg: &TwilioConfig) -> String {
    render_continue(&cfg.continue_url)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::config::{RefuseBlockedWith, Secret, StaffMember};
    use crate::domain::{PhoneNumber, StaffId};

    fn cfg() -> TwilioConfig {
        TwilioConfig {
            enabled: true,
            account_sid: "AC00000000000000000000000000000000".into(),
            auth_token: Secret::new("t"),
            verify_signatures: true,
            continue_url: "https://example.org/twiml/main-menu?a=1&b=<2>".into(),
            api_base_url: "https://api.twilio.com".into(),
            refuse_blocked_with: RefuseBlockedWith::Reject,
            ring_timeout_seconds: 25,
        }
    }

    fn staff(target: Option<TwilioTarget>) -> StaffMember {
        StaffMember {
            id: StaffId::parse("alice").unwrap(),
            name: "Alice Jones".into(),
            twilio: target,
            telnyx: None,
        }
    }

    fn en(t: &str) -> SpokenMessage {
        SpokenMessage {
            language: Language::En,
            text: t.into(),
        }
    }
    fn cy(t: &str) -> SpokenMessage {
        SpokenMessage {
            language: Language::Cy,
            text: t.into(),
        }
    }

    /// One verb of a parsed answer: (name, attributes, text).
    type Verb = (String, Vec<(String, String)>, Option<String>);

    /// Parse, check the prologue and the root, return the root's element children.
    fn verbs(xml: &str) -> Vec<Verb> {
        assert!(
            xml.starts_with(r#"<?xml version="1.0" encoding="UTF-8"?>"#),
            "{xml}"
        );
        let doc = roxmltree::Document::parse(xml).unwrap();
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "Response");
        root.children()
            .filter(|n| n.is_element())
            .map(|n| {
                assert!(
                    n.first_element_child().is_none(),
                    "verbs here have no children"
                );
                (
                    n.tag_name().name().to_string(),
                    n.attributes()
                        .map(|a| (a.name().to_string(), a.value().to_string()))
                        .collect(),
                    n.text().map(str::to_string),
                )
            })
            .collect()
    }

    fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
        attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn continue_redirects_with_escaped_url() {
        let xml = render(&CallAction::Continue, &cfg(), "https://calls.example.org");
        assert!(xml.contains("a=1&amp;b=&lt;2&gt;"), "{xml}");
        let v = verbs(&xml);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].0, "Redirect");
        assert_eq!(attr(&v[0].1, "method"), Some("POST"));
        assert_eq!(
            v[0].2.as_deref(),
            Some("https://example.org/twiml/main-menu?a=1&b=<2>")
        );
    }

    #[test]
    fn continue_matches_spec_text() {
        let mut c = cfg();
        c.continue_url = "https://example.org/twiml/main-menu".into();
        assert_eq!(
            render(&CallAction::Continue, &c, "https://x"),
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Redirect method="POST">https://example.org/twiml/main-menu</Redirect></Response>"#
        );
        assert_eq!(
            render_fallback(&c),
            render(&CallAction::Continue, &c, "https://x")
        );
    }

    fn dial_of(xml: &str) -> (Vec<(String, String)>, String, String) {
        let doc = roxmltree::Document::parse(xml).unwrap();
        let dial = doc.root_element().first_element_child().unwrap();
        assert_eq!(dial.tag_name().name(), "Dial");
        assert!(dial.next_sibling_element().is_none());
        let attrs = dial
            .attributes()
            .map(|a| (a.name().to_string(), a.value().to_string()))
            .collect();
        let noun = dial.first_element_child().unwrap();
        assert!(noun.next_sibling_element().is_none());
        (
            attrs,
            noun.tag_name().name().to_string(),
            noun.text().unwrap_or("").to_string(),
        )
    }

    #[test]
    fn route_to_client_with_time_limit() {
        let action = CallAction::Route {
            staff: staff(Some(TwilioTarget::Client("alice".into()))),
            max_call_minutes: Some(20),
        };
        let xml = render(&action, &cfg(), "https://calls.example.org/");
        assert_eq!(
            xml,
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Dial timeout="25" action="https://calls.example.org/webhooks/twilio/dial-status" timeLimit="1200"><Client>alice</Client></Dial></Response>"#
        );
        let (attrs, noun, text) = dial_of(&xml);
        assert_eq!(attr(&attrs, "timeout"), Some("25"));
        assert_eq!(attr(&attrs, "timeLimit"), Some("1200"));
        assert_eq!((noun.as_str(), text.as_str()), ("Client", "alice"));
    }

    #[test]
    fn route_to_sip_and_number_without_time_limit() {
        let sip = CallAction::Route {
            staff: staff(Some(TwilioTarget::Sip(
                "sip:alice@pbx.example.org;transport=tls&x=1".into(),
            ))),
            max_call_minutes: None,
        };
        let (attrs, noun, text) = dial_of(&render(&sip, &cfg(), "https://calls.example.org"));
        assert_eq!(attr(&attrs, "timeLimit"), None);
        assert_eq!(
            attr(&attrs, "action"),
            Some("https://calls.example.org/webhooks/twilio/dial-status")
        );
        assert_eq!(
            (noun.as_str(), text.as_str()),
            ("Sip", "sip:alice@pbx.example.org;transport=tls&x=1")
        );

        let num = CallAction::Route {
            staff: staff(Some(TwilioTarget::Number(
                PhoneNumber::parse("+447700900123").unwrap(),
            ))),
            max_call_minutes: None,
        };
        let (_, noun, text) = dial_of(&render(&num, &cfg(), "https://calls.example.org"));
        assert_eq!((noun.as_str(), text.as_str()), ("Number", "+447700900123"));
    }

    #[test]
    fn route_action_url_is_escaped() {
        let action = CallAction::Route {
            staff: staff(Some(TwilioTarget::Client("alice".into()))),
            max_call_minutes: None,
        };
        let xml = render(&action, &cfg(), "https://h.example/p?x=1&y=<\"");
        let (attrs, _, _) = dial_of(&xml);
        assert_eq!(
            attr(&attrs, "action"),
            Some("https://h.example/p?x=1&y=<\"/webhooks/twilio/dial-status")
        );
    }

    #[test]
    fn route_without_twilio_target_continues() {
        let action = CallAction::Route {
            staff: staff(None),
            max_call_minutes: Some(5),
        };
        assert_eq!(
            render(&action, &cfg(), "https://x"),
            render(&CallAction::Continue, &cfg(), "https://x")
        );
    }

    #[test]
    fn refuse_english() {
        let xml = render(
            &CallAction::Refuse {
                messages: vec![en("Sorry & goodbye <now>.")],
            },
            &cfg(),
            "https://x",
        );
        let v = verbs(&xml);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].0, "Say");
        assert_eq!(v[0].1, vec![("language".to_string(), "en-GB".to_string())]);
        assert_eq!(v[0].2.as_deref(), Some("Sorry & goodbye <now>."));
        assert_eq!(v[1].0, "Hangup");
        assert!(v[1].1.is_empty() && v[1].2.is_none());
    }

    #[test]
    fn refuse_welsh() {
        let xml = render_refuse(&[cy("Mae'n ddrwg gennym.")]);
        let v = verbs(&xml);
        assert_eq!(attr(&v[0].1, "language"), Some("cy-GB"));
        assert_eq!(attr(&v[0].1, "voice"), Some("Polly.Gwyneth"));
        assert_eq!(v[0].2.as_deref(), Some("Mae'n ddrwg gennym."));
        assert_eq!(v[1].0, "Hangup");
    }

    #[test]
    fn refuse_bilingual_keeps_order() {
        for (msgs, langs) in [
            (vec![en("One"), cy("Dau")], ["en-GB", "cy-GB"]),
            (vec![cy("Dau"), en("One")], ["cy-GB", "en-GB"]),
        ] {
            let v = verbs(&render_refuse(&msgs));
            let names: Vec<&str> = v.iter().map(|x| x.0.as_str()).collect();
            assert_eq!(names, ["Say", "Say", "Hangup"]);
            assert_eq!(attr(&v[0].1, "language"), Some(langs[0]));
            assert_eq!(attr(&v[1].1, "language"), Some(langs[1]));
            assert_eq!(v[0].2.as_deref(), Some(msgs[0].text.as_str()));
            assert_eq!(v[1].2.as_deref(), Some(msgs[1].text.as_str()));
        }
    }

    #[test]
    fn reject_is_first_and_only_verb() {
        let xml = render(&CallAction::Reject, &cfg(), "https://x");
        assert_eq!(
            xml,
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Reject reason="rejected"/></Response>"#
        );
        let v = verbs(&xml);
        assert_eq!(v.len(), 1);
        assert_eq!(attr(&v[0].1, "reason"), Some("rejected"));
    }

    #[test]
    fn dial_result() {
        let msgs = [en("Nobody is free."), cy("Does neb ar gael.")];
        for status in [Some("completed"), Some("answered")] {
            let v = verbs(&render_dial_result(status, &msgs));
            assert_eq!(v.len(), 1);
            assert_eq!(v[0].0, "Hangup");
        }
        for status in [
            Some("no-answer"),
            Some("busy"),
            Some("failed"),
            Some("canceled"),
            None,
        ] {
            let v = verbs(&render_dial_result(status, &msgs));
            let names: Vec<&str> = v.iter().map(|x| x.0.as_str()).collect();
            assert_eq!(names, ["Say", "Say", "Hangup"], "{status:?}");
            assert_eq!(v[1].2.as_deref(), Some("Does neb ar gael."));
        }
    }
}

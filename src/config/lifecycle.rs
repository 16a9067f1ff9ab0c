//! Configuration keys for reviews, letters, notices and signed notifications (SPEC §13):
//! `[notifications] signing_secret` / `reminder_days`. Read by the same key-by-key reader as
//! the rest of the configuration, so problems are reported with their key paths.

use std::fmt;
use std::path::PathBuf;

use base64::Engine as _;

use crate::fields::{Fields, Optional, Required};

/// The default for `notifications.reminder_days`.
pub const DEFAULT_REMINDER_DAYS: u32 = 14;

/// A Standard Webhooks signing key (`whsec_` + base64 of 24 to 64 bytes). Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(Vec<u8>);

impl SigningSecret {
    /// Parse `whsec_<base64>`.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let b64 = raw
            .trim()
            .strip_prefix("whsec_")
            .ok_or("must start with whsec_ followed by the base64 key")?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| "the part after whsec_ must be base64")?;
        if !(24..=64).contains(&key.len()) {
            return Err("the key after whsec_ must be 24 to 64 bytes");
        }
        Ok(SigningSecret(key))
    }

    pub fn key(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(***)")
    }
}

/// The §13 additions to the configuration.
#[derive(Clone, Debug)]
pub struct LifecycleConfig {
    /// Sign every notification (Standard Webhooks) when set.
    pub signing_secret: Option<SigningSecret>,
    /// Notices of reviews due and arrangements ending look this many days ahead.
    pub reminder_days: u32,
    /// `[organisation]` keys used in letters to the customer.
    pub letterhead: Letterhead,
    /// `[letters] templates_dir`: templates found there replace the built-in ones.
    pub letters_dir: Option<PathBuf>,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig {
            signing_secret: None,
            reminder_days: DEFAULT_REMINDER_DAYS,
            letterhead: Letterhead::default(),
            letters_dir: None,
        }
    }
}

/// `[organisation] address`, `phone`, `email`, `appeal_contact`, `advocacy_text`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Letterhead {
    /// Postal address; lines separated by newlines.
    pub address: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    /// How to appeal: who to write to.
    pub appeal_contact: Option<String>,
    /// What the customer is told about advocates.
    pub advocacy_text: Option<String>,
}

impl LifecycleConfig {
    /// `check-config` lines; the signing secret is never shown.
    pub fn summary_lines(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "notifications.signing_secret",
                if self.signing_secret.is_some() {
                    "(set, hidden)".to_owned()
                } else {
                    "(none: notifications are not signed)".to_owned()
                },
            ),
            (
                "notifications.reminder_days",
                self.reminder_days.to_string(),
            ),
            (
                "letters.templates_dir",
                self.letters_dir
                    .as_ref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_else(|| "(built-in templates)".to_owned()),
            ),
        ]
    }

    pub(super) fn combine(
        notifications: Option<LifecycleConfig>,
        letterhead: Option<Letterhead>,
        letters_dir: Option<Option<PathBuf>>,
    ) -> Option<LifecycleConfig> {
        let mut c = notifications?;
        c.letterhead = letterhead?;
        c.letters_dir = letters_dir?;
        Some(c)
    }
}

/// The optional §13 keys of `[notifications]`.
pub(super) fn read_notifications(t: &mut Fields<'_>) -> Option<LifecycleConfig> {
    let before = t.problem_count();
    let signing_secret = t
        .string_with("signing_secret", Optional, |s| {
            if s.is_empty() {
                Ok(None)
            } else {
                SigningSecret::parse(s).map(Some).map_err(str::to_owned)
            }
        })
        .flatten();
    let reminder_days = if t.has("reminder_days") {
        t.uint("reminder_days", Required, 1..=365)
            .and_then(|d| u32::try_from(d).ok())
    } else {
        Some(DEFAULT_REMINDER_DAYS)
    };
    if t.problem_count() != before {
        return None;
    }
    Some(LifecycleConfig {
        signing_secret,
        reminder_days: reminder_days?,
        ..LifecycleConfig::default()
    })
}

/// The optional letter keys of `[organisation]`.
pub(super) fn read_letterhead(t: &mut Fields<'_>) -> Option<Letterhead> {
    let mut text = |key: &str| t.text(key, Optional, 2000);
    Some(Letterhead {
        address: text("address"),
        phone: text("phone"),
        email: text("email"),
        appeal_contact: text("appeal_contact"),
        advocacy_text: text("advocacy_text"),
    })
}

/// `[letters]`: `templates_dir`, a directory that must exist when given.
pub(super) fn read_letters(t: &mut Fields<'_>) -> Option<Option<PathBuf>> {
    let dir = t
        .string("templates_dir", Optional)
        .filter(|s| !s.is_empty())
        .map(PathBuf::from);
    match dir {
        Some(d) if !d.is_dir() => {
            t.problem(
                "templates_dir",
                format!("{} is not a directory", d.display()),
            );
            None
        }
        other => Some(other),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn secrets_need_the_prefix_base64_and_a_sensible_length() {
        assert!(SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
        assert!(SigningSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(SigningSecret::parse("whsec_not base64!").is_err());
        assert!(SigningSecret::parse("whsec_c2hvcnQ=").is_err());
        let s = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(format!("{s:?}"), "SigningSecret(***)");
    }

    #[test]
    fn the_keys_are_read_with_defaults_and_the_secret_never_shown() {
        const PROVIDERS: &str =
            "[twilio]\nverify_signatures = false\n[telnyx]\nverify_signatures = false\n";
        let base = &format!(
            "{PROVIDERS}[organisation]\nname = \"X\"\naddress = \"1 Stryd\\nCaerdydd\"\n\
                    appeal_contact = \"the Head of Casework\"\n\
                    [notifications]\nsigning_secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n"
        );
        let c = crate::config::from_sources(base, &[]).unwrap();
        assert!(c.lifecycle.signing_secret.is_some());
        assert_eq!(c.lifecycle.reminder_days, DEFAULT_REMINDER_DAYS);
        assert_eq!(
            c.lifecycle.letterhead.address.as_deref(),
            Some("1 Stryd\nCaerdydd")
        );
        assert_eq!(
            c.lifecycle.letterhead.appeal_contact.as_deref(),
            Some("the Head of Casework")
        );
        assert_eq!(c.lifecycle.letterhead.phone, None);
        let summary = c.summary();
        assert!(summary.contains("(set, hidden)"), "{summary}");
        assert!(!summary.contains("MfKQ9r8"), "{summary}");
        assert!(!format!("{c:?}").contains("MfKQ9r8"));

        let env = [(
            "FAIRLINE_NOTIFICATIONS__REMINDER_DAYS".to_owned(),
            "30".to_owned(),
        )];
        let c = crate::config::from_sources(PROVIDERS, &env).unwrap();
        assert_eq!(c.lifecycle.reminder_days, 30);
        assert!(c.lifecycle.signing_secret.is_none());

        let problems = match crate::config::from_sources(
            &format!(
                "{PROVIDERS}[letters]\ntemplates_dir = \"/nonexistent/fairline\"\ncolour = 1\n"
            ),
            &[],
        ) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.problems().join("\n"),
        };
        assert!(problems.contains("letters.templates_dir"), "{problems}");
        assert!(problems.contains("letters.colour"), "{problems}");
    }
}

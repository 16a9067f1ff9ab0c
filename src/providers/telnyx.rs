//! Telnyx Call Control v2.
